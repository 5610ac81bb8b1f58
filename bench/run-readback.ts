/**
 * What a run left behind, read back after it settled: the bounds of its event streams, its bars
 * and signals rows in PostgreSQL, and its feature snapshots in the features streams.
 */
import type { Kysely } from 'kysely';
import type { Bus } from '../pipeline/bus/index.js';
import { busNames } from '../pipeline/config/index.js';
import { intervalLabel } from '../pipeline/contracts/index.js';
import type { FeatureSnapshot } from '../pipeline/contracts/index.js';
import { buildInputRow, defaultSidecarPath, loadModelSidecar } from '../pipeline/inference/onnx/index.js';
import type { ModelSidecar } from '../pipeline/inference/onnx/index.js';
import type { Database } from '../store/index.js';
import { progress } from './bench-progress.js';
import type { BarToSignal, ExactLatency } from './bench-report.js';
import type { BusServer } from './bus-server.js';
import { percentile } from './bench-report.js';
import type { RunPlan } from './run-plan.js';
import type { RunServices } from './run-services.js';

/** Most snapshots per shard read back to check readiness (a 60 s run with 2 s windows has ~30 per symbol). */
const SNAPSHOT_READBACK_LIMIT = 100_000;

/**
 * First and last published event of the run (Redis: their ids; Kafka: their records' timestamps):
 * the producing time comes from these, not from the clock. `firstSeenMs`: the first entry as the
 * sampler saw it at the start, before Redis could trim it.
 */
export async function publishedSpan(
  server: BusServer,
  streams: readonly string[],
  firstSeenMs: number | undefined,
): Promise<{ firstEntryMs: number; lastEntryMs: number }> {
  const first = firstSeenMs ?? (await server.firstEntryMs(streams));
  const last = await server.lastEntryMs(streams);
  if (first === undefined || last === undefined) throw new Error('nothing was published');
  return { firstEntryMs: first, lastEntryMs: last };
}

interface LatencyRow {
  ts: Date;
  updated_at: Date;
  trades: number;
}

/** The run's live bars (window start ≥ `fromMs`: `--warm-features` history bars are older). */
async function exactLatency(
  db: Kysely<Database>,
  provider: string,
  windowMs: number,
  fromMs: number,
): Promise<{ rows: LatencyRow[]; exact: ExactLatency | undefined }> {
  const rows = await db
    .selectFrom('bars_ohlcv')
    .select(['ts', 'updated_at', 'trades'])
    .where('provider', '=', provider)
    .where('ts', '>=', new Date(fromMs))
    .execute();
  if (rows.length === 0) return { rows, exact: undefined };
  // updated_at is now() of the upsert's transaction: when the bar reached PostgreSQL.
  const latencies = rows.map((r) => r.updated_at.getTime() - (r.ts.getTime() + windowMs)).sort((a, b) => a - b);
  return {
    rows,
    exact: {
      bars: rows.length,
      early: latencies.filter((ms) => ms < 0).length,
      p50: percentile(latencies, 0.5),
      p95: percentile(latencies, 0.95),
      p99: percentile(latencies, 0.99),
      max: latencies[latencies.length - 1],
    },
  };
}

/**
 * Reads the run's feature snapshots back: how many have every value warmed up, and (with a
 * sidecar) how many had every model input ready, which is when the sklearn adapter calls the model.
 * Small: one snapshot per symbol per window.
 */
async function snapshotReadiness(
  bus: Bus,
  streams: readonly string[],
  sidecar: ModelSidecar | undefined,
): Promise<{ complete: number; nullByFeature: Record<string, number>; modelReady: number | undefined }> {
  let complete = 0;
  let modelReady = 0;
  const nullByFeature: Record<string, number> = {};
  for (const stream of streams) {
    for (const entry of await bus.tail(stream, SNAPSHOT_READBACK_LIMIT)) {
      try {
        const snapshot = JSON.parse(entry.payload ?? 'null') as FeatureSnapshot | null;
        if (!snapshot?.values) continue;
        const nulls = Object.entries(snapshot.values)
          .filter(([, v]) => v === null)
          .map(([name]) => name);
        if (nulls.length === 0) complete++;
        for (const name of nulls) nullByFeature[name] = (nullByFeature[name] ?? 0) + 1;
        if (sidecar && buildInputRow(sidecar, snapshot.values) !== undefined) modelReady++;
      } catch {
        // not a snapshot: the inference consumer sends it to the DLQ, counted there
      }
    }
  }
  return { complete, nullByFeature, modelReady: sidecar ? modelReady : undefined };
}

/**
 * Per signal of the run: its row's `updated_at` minus its bar's (same provider, symbol and bar
 * start): from the bar reaching PostgreSQL to the signal derived from it reaching PostgreSQL.
 */
async function barToSignal(
  db: Kysely<Database>,
  provider: string,
  windowMs: number,
): Promise<{ rows: number; byName: Record<string, number>; exact: BarToSignal | undefined }> {
  const rows = await db
    .selectFrom('signals as s')
    .leftJoin('bars_ohlcv as b', (join) =>
      join.onRef('b.provider', '=', 's.provider').onRef('b.symbol', '=', 's.symbol').onRef('b.ts', '=', 's.ts').on('b.interval', '=', intervalLabel(windowMs)),
    )
    .select(['s.name', 's.updated_at as signal_at', 'b.updated_at as bar_at'])
    .where('s.provider', '=', provider)
    .where('s.interval_ms', '=', windowMs)
    .execute();
  const byName: Record<string, number> = {};
  for (const row of rows) byName[row.name] = (byName[row.name] ?? 0) + 1;
  const delays = rows
    .filter((r) => r.bar_at !== null)
    .map((r) => r.signal_at.getTime() - r.bar_at!.getTime())
    .sort((a, b) => a - b);
  return {
    rows: rows.length,
    byName,
    exact:
      delays.length === 0 ? undefined : { signals: delays.length, p50: percentile(delays, 0.5), p99: percentile(delays, 0.99), max: delays[delays.length - 1] },
  };
}

export interface RunReadback {
  /** The run's live bars: one per symbol per window, `trades` events each. */
  readonly bars: readonly LatencyRow[];
  readonly exact: ExactLatency | undefined;
  /** `--inference` on only: the run's signals rows, and bar row → signal row delays. */
  readonly signals: { readonly rows: number; readonly exact: BarToSignal | undefined } | undefined;
  /** Length (XLEN; Kafka: end − start offset) over the features streams. */
  readonly featuresStreamLength: number;
  /** Undefined when reading the snapshots back failed (noted in the progress output). */
  readonly readiness: Awaited<ReturnType<typeof snapshotReadiness>> | undefined;
  /** Entries ever added to the signals stream (0 with inference off). */
  readonly signalsStreamAdded: number;
}

/** Reads back the run's bars from `liveFromMs` on, its signals and its feature snapshots (sklearn: checked against the model's inputs). */
export async function readBack(adapter: 'rules' | 'sklearn' | 'off', plan: RunPlan, { db, bus }: RunServices, liveFromMs: number): Promise<RunReadback> {
  const { tag, windowMs, inferenceOn, featureStreams } = plan;
  const { rows: bars, exact } = await exactLatency(db, tag, windowMs, liveFromMs);
  const signals = inferenceOn ? await barToSignal(db, tag, windowMs) : undefined;
  const featuresStreamLength = (await Promise.all(featureStreams.map((stream) => bus.length(stream)))).reduce((acc, n) => acc + n, 0);
  const readiness = await snapshotReadiness(
    bus,
    featureStreams,
    adapter === 'sklearn' ? await loadModelSidecar(defaultSidecarPath(plan.modelPath)) : undefined,
  ).catch((err: unknown) => {
    progress(`note: reading the snapshots back failed: ${(err as Error).message}`);
    return undefined;
  });
  const signalsStreamAdded = inferenceOn ? await bus.added(busNames(plan.config).signals_stream) : 0;
  return { bars, exact, signals, featuresStreamLength, readiness, signalsStreamAdded };
}
