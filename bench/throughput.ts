#!/usr/bin/env node
/**
 * End-to-end throughput and latency benchmark of the pipeline on the local stack (spec §6.2,
 * §10.3): a real worker process, real Temporal workflows, Redis Streams and PostgreSQL, under names
 * unique to the run, so the live pipeline's streams, bars and workflows are never touched.
 * See bench/README.md for what is measured and how.
 *
 *   node dist/bench/throughput.js [--rate N|max] [--duration 60s] [--window 2s] [--shards 4] [--inference rules|sklearn|off]
 *
 * Exit codes: 0 the run completed (SLA misses are reported, not failed), 1 the bench could not
 * run, 2 usage, 3 events were lost or the pipeline did not settle (with --inference: also a
 * snapshot not evaluated, or the inference group not settled).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { dump as dumpYaml } from 'js-yaml';
import type { Kysely } from 'kysely';
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { startInference, startMicroBatchers, startProducer } from '../client/stream-commands.js';
import { connectTemporal } from '../client/temporal.js';
import { RedisBus, shardOf, shardStream, streamIdMs } from '../pipeline/bus/index.js';
import { ConfigError, loadStreamingConfig } from '../pipeline/config/index.js';
import type { StreamingConfig, StreamingConfigOverrides } from '../pipeline/config/index.js';
import { intervalLabel, parseDurationMs, parseIsoToMicros } from '../pipeline/contracts/index.js';
import type { Bar, FeatureSnapshot } from '../pipeline/contracts/index.js';
import { buildInputRow, defaultSidecarPath, loadModelSidecar } from '../pipeline/inference/onnx/index.js';
import type { ModelSidecar } from '../pipeline/inference/onnx/index.js';
import { SyntheticProducer } from '../pipeline/producers/index.js';
import { StoreClient, createDb, migrateToLatest } from '../store/index.js';
import type { Database } from '../store/index.js';
import type { LoopStatus } from '../workflows/index.js';
import { inferenceWorkflowId, microBatchWorkflowId, producerWorkflowId } from '../workflows/index.js';
import { freePort, pollUntil, waitFor } from '../test/helpers/wait.js';
import type { BarToSignal, BenchSummary, DurationHistogram, ExactLatency, InferenceSummary, Sample } from './bench-report.js';
import { SLA_LAG_WINDOWS, SLA_LATENCY_WINDOWS, fmtInt, fmtMs, formatReport, percentile, slope, verdicts } from './bench-report.js';
import { LoadPublisher } from './load-publisher.js';
import { readCpuSeconds, readMemory } from './proc-stats.js';
import { fractionAtOrBelow, histogramOf, histogramQuantile, parsePrometheusText, select, sumOf } from './prometheus-text.js';
import type { PromSample } from './prometheus-text.js';
import type { RedisBaseline } from './redis-baseline.js';
import { runRedisBaseline } from './redis-baseline.js';

const REPO_ROOT = resolve(import.meta.dirname, '../..');
const WORKER_PATH = fileURLToPath(new URL('../workers/worker.js', import.meta.url));
/** Hash where RedisBus keeps consumer checkpoints (its default; workers/wiring.ts does not change it). */
const CHECKPOINT_KEY = 'mdp:checkpoints';
/** Env vars that the config loader applies over the file; the worker must read our file only. */
const ENV_BOUND_KEYS = ['REDIS_URI', 'STORE_URL', 'TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'MDP_TASK_QUEUE', 'MDP_METRICS_PORT', 'MDP_SHARDS', 'LOG_LEVEL', 'MDP_CONFIG'];
const LATENCY_METRIC = 'microbatch_window_latency_ms';
const FEATURES_UPDATE_METRIC = 'features_update_duration_seconds';
const INFERENCE_EVAL_METRIC = 'inference_eval_duration_seconds';
/** The model `--inference sklearn` runs when the base config names none. */
const DEFAULT_MODEL_PATH = 'models/signal_model.onnx';
/**
 * `--inference` on: how often the inference group's lag is sampled. Snapshots come in bursts (one
 * per symbol per window) and are acknowledged within milliseconds, so the 1 s sampler would
 * rarely see one unacknowledged; this one is cheap (a few Redis commands per shard).
 */
const INFERENCE_LAG_EVERY_MS = 200;
/** Most snapshots per shard read back to check readiness (a 60 s run with 2 s windows has ~30 per symbol). */
const SNAPSHOT_READBACK_LIMIT = 100_000;
/**
 * Rate mode: the drain signal goes out this long before the producer activity's own `maxRunMs`
 * deadline. Cancellation reaches an activity only with a heartbeat response (heartbeats are
 * throttled by the SDK), and the producer workflow starts a new run whenever one returns, so a
 * drain sent at the deadline could let a second run publish for a while; sent just before, the
 * running attempt either sees it or returns at its deadline, and no second run starts. The
 * producing time reported is measured from the stream ids, not assumed.
 */
const DRAIN_LEAD_MS = 1500;
const SAMPLE_EVERY_MS = 1000;
const PROGRESS_EVERY_MS = 5000;

const USAGE = `usage: node dist/bench/throughput.js [options]
  --rate N|max          events/s through the producer workflow, or "max": an in-process publisher
                        XADDs synthetic events as fast as it can (default 1000)
  --duration 60s        how long to produce (default 60s)
  --window 2s           micro-batch window, 500ms..5s (default 2s)
  --shards N            event streams / consumer workflows (default: the config's bus.shards)
  --symbols A,B,C       symbols to simulate (default: the config's producers.synthetic.symbols)
  --max-batch-size N    override micro_batch.max_batch_size (default: the config's)
  --inference A         rules|sklearn|off: also run one inference consumer per shard of the run's
                        features streams with adapter A, and wait for every snapshot to be
                        evaluated (default off)
  --warm-features       before the consumers start, store synthetic history bars of the run's
                        provider covering the longest feature window, so the consumers' feature
                        windows start warm (default: cold, values null until each window fills)
  --max-backlog N       --rate max only: closed loop, pause publishing while more than N events
                        wait undelivered (default: open loop, as fast as possible)
  --publish-batch N     --rate max only: events per pipelined batch (default 1000)
  --in-flight N         --rate max only: batches in flight (default 4)
  --settle-timeout 120s longest wait, after producing, for every event to be acknowledged
  --skip-baseline       do not run redis-benchmark
  --keep                keep the run's streams, bars and job rows (default: deleted)
  --config FILE         base config (default configs/streaming.yaml)`;

class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}

interface BenchOptions {
  readonly rate: number | 'max';
  readonly durationMs: number;
  readonly windowMs: number;
  readonly shards: number | undefined;
  readonly symbols: readonly string[] | undefined;
  readonly maxBatchSize: number | undefined;
  readonly inference: 'rules' | 'sklearn' | 'off';
  readonly warmFeatures: boolean;
  readonly maxBacklog: number | undefined;
  readonly publishBatch: number;
  readonly inFlight: number;
  readonly settleTimeoutMs: number;
  readonly baseline: boolean;
  readonly keep: boolean;
  readonly configFile: string;
}

function positiveInt(name: string, value: string | undefined, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0 || n > max) throw new UsageError(`--${name} must be an integer between 1 and ${max} (got "${value}")`);
  return n;
}

function duration(name: string, value: string, min: number, max: number): number {
  const ms = parseDurationMs(value);
  if (ms === undefined || ms < min || ms > max) throw new UsageError(`--${name} must be a duration between ${fmtMs(min)} and ${fmtMs(max)}, e.g. 60s (got "${value}")`);
  return ms;
}

function parseOptions(argv: string[]): BenchOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      rate: { type: 'string', default: '1000' },
      duration: { type: 'string', default: '60s' },
      window: { type: 'string', default: '2s' },
      shards: { type: 'string' },
      symbols: { type: 'string' },
      'max-batch-size': { type: 'string' },
      inference: { type: 'string', default: 'off' },
      'warm-features': { type: 'boolean', default: false },
      'max-backlog': { type: 'string' },
      'publish-batch': { type: 'string', default: '1000' },
      'in-flight': { type: 'string', default: '4' },
      'settle-timeout': { type: 'string', default: '120s' },
      'skip-baseline': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      config: { type: 'string', default: resolve(REPO_ROOT, 'configs/streaming.yaml') },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const rate = values.rate === 'max' ? 'max' : Number(values.rate);
  if (rate !== 'max' && !(Number.isFinite(rate) && rate > 0)) throw new UsageError(`--rate must be a positive number of events/s or "max" (got "${values.rate}")`);
  const maxBacklog = positiveInt('max-backlog', values['max-backlog']);
  if (maxBacklog !== undefined && rate !== 'max') throw new UsageError('--max-backlog only applies to --rate max');
  const symbols = values.symbols?.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const inference = values.inference;
  if (inference !== 'rules' && inference !== 'sklearn' && inference !== 'off') throw new UsageError(`--inference must be rules, sklearn or off (got "${inference}")`);
  return {
    rate,
    durationMs: duration('duration', values.duration, 5_000, 10 * 60_000),
    windowMs: duration('window', values.window, 500, 5000),
    shards: positiveInt('shards', values.shards, 64),
    symbols: symbols && symbols.length > 0 ? symbols : undefined,
    maxBatchSize: positiveInt('max-batch-size', values['max-batch-size']),
    inference,
    warmFeatures: values['warm-features'],
    maxBacklog,
    publishBatch: positiveInt('publish-batch', values['publish-batch'], 100_000)!,
    inFlight: positiveInt('in-flight', values['in-flight'], 64)!,
    settleTimeoutMs: duration('settle-timeout', values['settle-timeout'], 5_000, 30 * 60_000),
    baseline: !values['skip-baseline'],
    keep: values.keep,
    configFile: values.config,
  };
}

const progress = (line: string) => process.stderr.write(`[bench] ${line}\n`);

/** Steps run in reverse order of registration at the end of the run, whatever happened. */
class Cleanup {
  readonly #steps: { what: string; fn: () => Promise<unknown> }[] = [];

  add(what: string, fn: () => Promise<unknown>): void {
    this.#steps.push({ what, fn });
  }

  async run(): Promise<void> {
    for (const step of this.#steps.reverse()) {
      try {
        await step.fn();
      } catch (err) {
        progress(`cleanup: ${step.what} failed: ${(err as Error).message}`);
      }
    }
  }
}

/**
 * A run tag (also the provider name) that spreads the symbols over as many shards as the shard
 * function allows, so runs compare (with more symbols than shards some must share).
 */
function pickRunTag(symbols: readonly string[], shards: number): string {
  const want = Math.min(symbols.length, shards);
  let best = { tag: '', used: 0 };
  for (let i = 0; i < 1000 && best.used < want; i++) {
    const tag = `bench-${randomBytes(4).toString('hex')}`;
    const used = new Set(symbols.map((s) => shardOf(tag, s, shards))).size;
    if (used > best.used) best = { tag, used };
  }
  return best.tag;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${fmtMs(ms)} waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function tail(path: string, lines: number): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** SIGTERM, then SIGKILL after 30 s; resolves with how long the process took to exit (undefined if it was gone). */
async function stopProcess(child: ChildProcess, exited: Promise<void>, isRunning: () => boolean): Promise<number | undefined> {
  if (!isRunning()) return undefined;
  const started = Date.now();
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(killer);
  return Date.now() - started;
}

function infoNumber(info: string, field: string): number | undefined {
  const m = new RegExp(`^${field}:([\\d.]+)`, 'm').exec(info);
  return m ? Number(m[1]) : undefined;
}

/** Undelivered entries of a group on a stream (XINFO GROUPS `lag`), 0 when the group is missing. */
async function groupUndelivered(redis: Redis, stream: string, group: string): Promise<number> {
  const rows = (await redis.xinfo('GROUPS', stream)) as (string | number | null)[][];
  for (const row of rows) {
    const info = new Map<string, string | number | null>();
    for (let i = 0; i < row.length; i += 2) info.set(String(row[i]), row[i + 1] ?? null);
    if (info.get('name') === group) return Number(info.get('lag') ?? 0);
  }
  return 0;
}

interface LatencyRow {
  ts: Date;
  updated_at: Date;
  trades: number;
}

/** The run's live bars (window start ≥ `fromMs`: `--warm-features` history bars are older). */
async function exactLatency(db: Kysely<Database>, provider: string, windowMs: number, fromMs: number): Promise<{ rows: LatencyRow[]; exact: ExactLatency | undefined }> {
  const rows = await db.selectFrom('bars_ohlcv').select(['ts', 'updated_at', 'trades']).where('provider', '=', provider).where('ts', '>=', new Date(fromMs)).execute();
  if (rows.length === 0) return { rows, exact: undefined };
  // updated_at is now() of the upsert's transaction: when the bar reached PostgreSQL.
  const latencies = rows.map((r) => r.updated_at.getTime() - (r.ts.getTime() + windowMs)).sort((a, b) => a - b);
  return {
    rows,
    exact: { bars: rows.length, early: latencies.filter((ms) => ms < 0).length, p50: percentile(latencies, 0.5), p95: percentile(latencies, 0.95), p99: percentile(latencies, 0.99), max: latencies[latencies.length - 1] },
  };
}

/** A seconds histogram of the worker's metrics, all series matching `match` added up. */
function durationHistogram(metrics: readonly PromSample[], name: string, match: Readonly<Record<string, string>> = {}): DurationHistogram {
  const h = histogramOf(metrics, name, match);
  return {
    observations: h?.count ?? 0,
    meanSeconds: h && h.count > 0 ? h.sum / h.count : undefined,
    p50: h && histogramQuantile(h, 0.5),
    p99: h && histogramQuantile(h, 0.99),
    bucketBounds: h?.buckets.map((b) => b.le).filter((le) => Number.isFinite(le)) ?? [],
    distribution: h?.buckets.map((b, i) => ({ le: Number.isFinite(b.le) ? b.le : null, count: b.count - (i === 0 ? 0 : h.buckets[i - 1].count) })) ?? [],
  };
}

/**
 * `--warm-features`: bars of the run's provider for every symbol, one per window, covering
 * `[endMs − spanMs, endMs)`, aggregated from a SyntheticProducer's ticks (1 per symbol per second,
 * the config's volatility, start prices as the live feed's, so prices join up). The micro-batch
 * activity replays stored bars of its shard into its feature engine when it starts
 * (`warmFeatures`), so the first live bar already sees full windows.
 */
function warmUpBars(provider: string, symbols: readonly string[], seed: number, priceVolatility: number, windowMs: number, spanMs: number, endMs: number): Bar[] {
  const startMs = endMs - spanMs;
  const producer = new SyntheticProducer({ provider, symbols, seed: seed + 1, tickRate: 1, priceVolatility });
  const events = producer.generateFinite({ count: Math.ceil(spanMs / 1000) * symbols.length, startUs: startMs * 1000 });
  const interval = intervalLabel(windowMs);
  const bars = new Map<string, { -readonly [K in keyof Bar]: Bar[K] }>();
  for (const e of events) {
    const tsMs = Math.floor(parseIsoToMicros(e.src_ts)! / 1000 / windowMs) * windowMs;
    if (tsMs < startMs || tsMs >= endMs) continue;
    const key = `${e.symbol}|${tsMs}`;
    const bar = bars.get(key);
    if (bar === undefined) {
      bars.set(key, { provider, symbol: e.symbol, interval, tsMs, open: e.o, high: e.h, low: e.l, close: e.c, volume: e.v, trades: 1 });
    } else {
      bar.high = Math.max(bar.high, e.h);
      bar.low = Math.min(bar.low, e.l);
      bar.close = e.c;
      bar.volume += e.v;
      bar.trades++;
    }
  }
  return [...bars.values()].sort((a, b) => a.tsMs - b.tsMs);
}

/**
 * Reads the run's feature snapshots back: how many have every value warmed up, and (with a
 * sidecar) how many had every model input ready, which is when the sklearn adapter calls the model.
 * Small: one snapshot per symbol per window.
 */
async function snapshotReadiness(bus: RedisBus, streams: readonly string[], sidecar: ModelSidecar | undefined):
Promise<{ complete: number; nullByFeature: Record<string, number>; modelReady: number | undefined }> {
  let complete = 0;
  let modelReady = 0;
  const nullByFeature: Record<string, number> = {};
  for (const stream of streams) {
    for (const entry of await bus.tail(stream, SNAPSHOT_READBACK_LIMIT)) {
      try {
        const snapshot = JSON.parse(entry.payload ?? 'null') as FeatureSnapshot | null;
        if (!snapshot?.values) continue;
        const nulls = Object.entries(snapshot.values).filter(([, v]) => v === null).map(([name]) => name);
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

/** Sums a counter's samples by one label. */
function countBy(metrics: readonly PromSample[], name: string, label: string, match: Readonly<Record<string, string>> = {}): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of select(metrics, name, match)) {
    const key = s.labels[label] ?? '';
    out[key] = (out[key] ?? 0) + s.value;
  }
  return out;
}

/**
 * Per signal of the run: its row's `updated_at` minus its bar's (same provider, symbol and bar
 * start): from the bar reaching PostgreSQL to the signal derived from it reaching PostgreSQL.
 */
async function barToSignal(db: Kysely<Database>, provider: string, interval: string): Promise<{ rows: number; byName: Record<string, number>; exact: BarToSignal | undefined }> {
  const rows = await db.selectFrom('signals as s')
    .leftJoin('bars_ohlcv as b', (join) => join.onRef('b.provider', '=', 's.provider').onRef('b.symbol', '=', 's.symbol').onRef('b.ts', '=', 's.ts').on('b.interval', '=', interval))
    .select(['s.name', 's.updated_at as signal_at', 'b.updated_at as bar_at'])
    .where('s.provider', '=', provider)
    .execute();
  const byName: Record<string, number> = {};
  for (const row of rows) byName[row.name] = (byName[row.name] ?? 0) + 1;
  const delays = rows.filter((r) => r.bar_at !== null).map((r) => r.signal_at.getTime() - r.bar_at!.getTime()).sort((a, b) => a - b);
  return {
    rows: rows.length,
    byName,
    exact: delays.length === 0 ? undefined : { signals: delays.length, p50: percentile(delays, 0.5), p99: percentile(delays, 0.99), max: delays[delays.length - 1] },
  };
}

async function runBench(opts: BenchOptions, interrupt: AbortSignal): Promise<BenchSummary> {
  const cleanup = new Cleanup();
  try {
    return await measure(opts, interrupt, cleanup);
  } finally {
    await cleanup.run();
  }
}

async function measure(opts: BenchOptions, interrupt: AbortSignal, cleanup: Cleanup): Promise<BenchSummary> {
  if (!existsSync(WORKER_PATH)) throw new Error(`${WORKER_PATH} is missing: build first (npm run build)`);
  const base = loadStreamingConfig({ file: opts.configFile, env: process.env });
  const shards = opts.shards ?? base.bus.shards;
  const symbols = opts.symbols ?? base.producers.synthetic.symbols;
  const tag = pickRunTag(symbols, shards);
  const metricsPort = await freePort();
  // Relative paths resolve against the worker's cwd (the repo root); absolute ones say what ran.
  const baseAdapters = base.inference.adapters;
  const rulesFile = resolve(REPO_ROOT, baseAdapters.rules.file || 'configs/rules.yaml');
  const modelPath = resolve(REPO_ROOT, baseAdapters.sklearn.model_path || DEFAULT_MODEL_PATH);
  const inferenceSource = opts.inference === 'sklearn' ? modelPath : rulesFile;
  if (opts.inference !== 'off' && !existsSync(inferenceSource)) throw new Error(`${inferenceSource} is missing: --inference ${opts.inference} needs it`);
  const overrides: StreamingConfigOverrides = {
    bus: {
      shards,
      redis: { stream: `${tag}.events`, signals_stream: `${tag}.signals`, consumer_group: `${tag}-group`, dlq_stream: `${tag}.dlq`, late_stream: `${tag}.events.late`,
        features_stream: `${tag}.features`, inference_group: `${tag}-inference` },
    },
    producers: { synthetic: { provider: tag, symbols } },
    micro_batch: { window_ms: opts.windowMs, ...(opts.maxBatchSize !== undefined ? { max_batch_size: opts.maxBatchSize } : {}) },
    temporal: { task_queue: `${tag}-queue` },
    telemetry: { metrics_port: metricsPort },
    ...(opts.inference === 'off' ? {} : {
      inference: {
        adapters: {
          // rules also serve as the sklearn adapter's circuit-breaker fallback, as in the shipped config.
          rules: { enabled: true, file: rulesFile },
          ...(opts.inference === 'sklearn' ? { sklearn: { enabled: true, model_path: modelPath } } : {}),
        },
      },
    }),
  };
  const config: StreamingConfig = loadStreamingConfig({ file: opts.configFile, env: process.env, overrides });
  const r = config.bus.redis;
  const group = r.consumer_group;
  const streams = Array.from({ length: shards }, (_, shard) => shardStream(r.stream, shard));
  const consumerIds = Array.from({ length: shards }, (_, shard) => microBatchWorkflowId(r.stream, shard));
  const featureStreams = Array.from({ length: shards }, (_, shard) => shardStream(r.features_stream, shard));
  const inferenceOn = opts.inference !== 'off';
  const inferenceGroup = r.inference_group;
  const inferenceIds = inferenceOn ? Array.from({ length: shards }, (_, shard) => inferenceWorkflowId(r.features_stream, shard)) : [];
  const symbolShards = Object.fromEntries(symbols.map((s) => [s, shardOf(tag, s, shards)]));
  const windowMs = config.micro_batch.window_ms;
  const usedShards = new Set(Object.values(symbolShards)).size;
  if (usedShards < Math.min(symbols.length, shards)) {
    progress(`note: no provider name spreads ${symbols.join(', ')} over more than ${usedShards} of ${shards} shards`);
  }

  // 1. The run's config file: the base config resolved, with the run's names; the worker reads only it.
  const dir = resolve(REPO_ROOT, '.data/bench');
  mkdirSync(dir, { recursive: true });
  const configPath = resolve(dir, `${tag}.yaml`);
  writeFileSync(configPath, `# mdp bench run ${tag}: ${opts.configFile} resolved, with names unique to the run (safe to delete)\n${dumpYaml(config, { lineWidth: 200 })}`, { mode: 0o600 });
  const workerEnv: Record<string, string | undefined> = { ...process.env };
  for (const key of ENV_BOUND_KEYS) delete workerEnv[key];
  if (JSON.stringify(loadStreamingConfig({ file: configPath, env: workerEnv })) !== JSON.stringify(config)) {
    throw new Error(`${configPath} does not load back to the same config`);
  }
  progress(`run ${tag}: ${opts.rate === 'max' ? 'max rate' : `${opts.rate} events/s`} for ${fmtMs(opts.durationMs)}, window ${fmtMs(windowMs)}, ${shards} shards (${Object.entries(symbolShards).map(([s, n]) => `${s}→${n}`).join(' ')}), ` +
    `inference ${inferenceOn ? `${opts.inference} (${inferenceSource})` : 'off'}, config ${configPath}`);

  // 2. Services.
  const redis = new Redis(r.uri, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined); // surfaced by the commands that fail
  try {
    await redis.connect();
  } catch (err) {
    throw new Error(`Redis is not reachable at ${r.uri.replace(/\/\/[^@]*@/, '//***@')}: ${(err as Error).message} (start the stack: bash scripts/stack-start.sh)`);
  }
  cleanup.add('close redis', () => redis.quit());
  const bus = new RedisBus(r.uri, { maxLen: r.maxlen });
  cleanup.add('close bus', () => bus.close());
  const db = createDb(config.store.url);
  cleanup.add('close db', () => db.destroy());
  await migrateToLatest(db);
  const temporal = await connectTemporal(config);
  cleanup.add('close temporal', () => temporal.close());
  const client: Client = temporal.client;

  const baselineStream = `${tag}.baseline`;
  if (!opts.keep) {
    cleanup.add('delete the run\'s streams, checkpoints, bars, signals and job rows', async () => {
      const keys = await redis.del(...streams, ...featureStreams, r.late_stream, r.dlq_stream, r.signals_stream, baselineStream);
      await redis.hdel(CHECKPOINT_KEY, ...streams.map((s) => `${s}|${group}`));
      const bars = await db.deleteFrom('bars_ohlcv').where('provider', '=', tag).executeTakeFirst();
      const signals = await db.deleteFrom('signals').where('provider', '=', tag).executeTakeFirst();
      const jobs = await db.deleteFrom('job_runs').where('job_name', 'in', consumerIds).executeTakeFirst();
      progress(`cleanup: deleted ${keys} streams, ${String(bars.numDeletedRows)} bars, ${String(signals.numDeletedRows)} signals, ${String(jobs.numDeletedRows)} job_runs rows`);
    });
  }

  // 3. The ceiling: redis-benchmark's pipelined XADD with a payload the size of one of our events.
  let baseline: RedisBaseline | { skipped: string };
  const redisUrl = new URL(r.uri);
  if (!opts.baseline) baseline = { skipped: '--skip-baseline' };
  else if (redisUrl.password !== '' || redisUrl.username !== '') baseline = { skipped: 'the Redis URI carries credentials' };
  else {
    const sample = new SyntheticProducer({ provider: tag, symbols, seed: 1, tickRate: 1, priceVolatility: 0.02 }).generateFinite({ count: 1, startUs: Date.now() * 1000 })[0];
    progress('redis-benchmark: pipelined XADD baseline...');
    baseline = await runRedisBaseline({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379), stream: baselineStream, payload: JSON.stringify(sample) });
    await redis.del(baselineStream);
    progress(`redis-benchmark: ${fmtInt(baseline.xaddPerSecond)} XADD/s`);
  }

  // 4. A worker process of the run's own, on its own task queue and metrics port.
  const logPath = resolve(dir, `${tag}.worker.log`);
  const logFd = openSync(logPath, 'a');
  const worker = spawn(process.execPath, [WORKER_PATH, '--config', configPath], { cwd: REPO_ROOT, env: workerEnv, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  let workerExit: string | undefined;
  const workerExited = new Promise<void>((done) => worker.once('exit', (code, signal) => { workerExit = signal ?? String(code); done(); }));
  const workerRunning = () => workerExit === undefined;
  cleanup.add('stop worker', () => stopProcess(worker, workerExited, workerRunning));
  const workerPid = worker.pid!;
  const guard = () => {
    if (interrupt.aborted) throw new Error('interrupted');
    if (!workerRunning()) throw new Error(`the worker exited (${workerExit}); last lines of ${logPath}:\n${tail(logPath, 15)}`);
  };

  // Workflows left running by an interrupted run would hold nothing (their queue has no worker) but clutter the UI.
  const workflowIds = [...consumerIds, ...inferenceIds, producerWorkflowId(tag)];
  cleanup.add('terminate leftover workflows', async () => {
    for (const id of workflowIds) {
      try {
        const handle = client.workflow.getHandle(id);
        if ((await handle.describe()).status.name === 'RUNNING') await handle.terminate('mdp bench cleanup');
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    }
  });

  const metricsUrl = `http://${config.telemetry.metrics_host}:${metricsPort}`;
  const scrape = async (): Promise<PromSample[] | undefined> => {
    try {
      const res = await fetch(`${metricsUrl}/metrics`, { signal: AbortSignal.timeout(2000) });
      return res.ok ? parsePrometheusText(await res.text()) : undefined;
    } catch {
      return undefined;
    }
  };
  await waitFor('the worker\'s /healthz', 60_000, async () => (await fetch(`${metricsUrl}/healthz`, { signal: AbortSignal.timeout(1000) })).ok || undefined, { guard });

  // 5. Optionally warm history bars, then one micro-batch workflow per shard; wait until every consumer loop heartbeats.
  let warmUp: BenchSummary['run']['warmUp'] = null;
  let liveFromMs = 0;
  if (opts.warmFeatures) {
    // What the micro-batch activity replays at its start: the longest horizon (or 16 windows for RSI) and a margin.
    const longestMs = Math.max(16 * windowMs, ...config.features.windows.map((w) => parseDurationMs(w.horizon) ?? 0));
    const spanMs = Math.ceil(longestMs / windowMs) * windowMs + 4 * windowMs;
    // Only windows that ended before now: live events land in this window or later ones.
    const endMs = Math.floor(Date.now() / windowMs) * windowMs;
    const bars = warmUpBars(tag, symbols, config.producers.synthetic.seed, config.producers.synthetic.price_volatility, windowMs, spanMs, endMs);
    await new StoreClient(db).upsertBars(bars);
    liveFromMs = endMs;
    warmUp = { bars: bars.length, fromMs: endMs - spanMs, toMs: endMs };
    progress(`warm-up: stored ${bars.length} history bars of ${tag} over ${fmtMs(spanMs)} before ${new Date(endMs).toISOString()}`);
  }
  await startMicroBatchers(client, config, undefined);
  await waitFor('every shard\'s consumer to run', 90_000, async () => {
    const metrics = await scrape();
    return metrics && streams.every((topic) => select(metrics, 'stream_consumer_last_heartbeat_seconds', { topic }).length > 0) ? true : undefined;
  }, { guard });
  if (inferenceOn) {
    // One inference workflow per shard of the features streams (as `mdp stream infer`), before any
    // snapshot exists; an adapter that does not load fails its workflow at once (non-retryable).
    await startInference(client, config, opts.inference);
    let nextStatusAt = 0;
    let failed: string | undefined;
    const inferenceGuard = () => {
      guard();
      if (failed !== undefined) throw new Error(failed);
    };
    await waitFor(`every shard's ${opts.inference} inference consumer to run`, 90_000, async () => {
      if (Date.now() >= nextStatusAt) {
        nextStatusAt = Date.now() + 2000;
        for (const id of inferenceIds) {
          const handle = client.workflow.getHandle(id);
          const { status } = await handle.describe();
          if (status.name !== 'RUNNING') {
            // The failure's cause chain names the reason (e.g. the adapter that did not load).
            const reasons: string[] = [];
            await handle.result().catch((err: unknown) => {
              for (let e: unknown = err; e instanceof Error && reasons.length < 5; e = e.cause) reasons.push(e.message);
            });
            failed = `${id} is ${status.name}: ${reasons.join(': ') || 'no reason given'} (worker log ${logPath})`;
          }
        }
      }
      const metrics = await scrape();
      return failed === undefined && metrics && featureStreams.every((topic) => select(metrics, 'stream_consumer_last_heartbeat_seconds', { topic }).length > 0) ? true : undefined;
    }, { guard: inferenceGuard });
  }
  progress(`worker pid ${workerPid} ready, ${shards} consumers${inferenceOn ? ` and ${shards} ${opts.inference} inference consumers` : ''} running; producing...`);

  // 6. Sample every second while producing and settling.
  /** Max `stream_consumer_lag_ms` over the consumers of `topics`; undefined when none exports it. */
  const lagOf = (metrics: readonly PromSample[], topics: readonly string[]): number | undefined => {
    const values = select(metrics, 'stream_consumer_lag_ms').filter((m) => topics.includes(m.labels.topic ?? '')).map((m) => m.value);
    return values.length > 0 ? Math.max(...values) : undefined;
  };
  /** The inference group on the features streams: pending, undelivered, oldest unacknowledged age (max over shards). */
  const readInference = async () => {
    const now = Date.now();
    const states = await Promise.all(featureStreams.map(async (stream) => {
      const lag = await bus.lag(stream, inferenceGroup, now);
      return { lag, added: await bus.added(stream) };
    }));
    return {
      atMs: now,
      published: states.reduce((acc, s) => acc + s.added, 0),
      pending: states.reduce((acc, s) => acc + s.lag.pending, 0),
      undelivered: states.reduce((acc, s) => acc + s.lag.undelivered, 0),
      lagMs: Math.max(0, ...states.map((s) => s.lag.lagMs)),
    };
  };
  const readRedis = async () => {
    const now = Date.now();
    // Shards in parallel, so a sample stays short while Redis is busy with a flood.
    const shardStates = await Promise.all(streams.map(async (stream) => {
      // Group state first, then entries-added: read the other way round, entries published in
      // between would count as pending before they count as published.
      const lag = await bus.lag(stream, group, now);
      return { lag, added: await bus.added(stream) };
    }));
    // The features streams after the events: a window's snapshots are published before its events
    // are acknowledged, so once the events read as settled every snapshot is already counted here.
    const inference = inferenceOn ? await readInference() : undefined;
    const featuresPublished = inference?.published ?? (await Promise.all(featureStreams.map((stream) => bus.added(stream)))).reduce((acc, n) => acc + n, 0);
    return {
      atMs: now,
      published: shardStates.reduce((acc, s) => acc + s.added, 0),
      pending: shardStates.reduce((acc, s) => acc + s.lag.pending, 0),
      undelivered: shardStates.reduce((acc, s) => acc + s.lag.undelivered, 0),
      lagMs: Math.max(0, ...shardStates.map((s) => s.lag.lagMs)),
      pendingByShard: shardStates.map((s) => s.lag.pending),
      featuresPublished,
      inference,
    };
  };
  const redisStats = async () => {
    const info = `${await redis.info('memory')}\n${await redis.info('cpu')}`;
    const user = infoNumber(info, 'used_cpu_user');
    const sys = infoNumber(info, 'used_cpu_sys');
    return { rssBytes: infoNumber(info, 'used_memory_rss'), cpuSeconds: user !== undefined && sys !== undefined ? user + sys : undefined };
  };
  const cpuAt = async () => ({ atMs: Date.now(), worker: readCpuSeconds(workerPid), bench: readCpuSeconds('self'), redis: (await redisStats()).cpuSeconds });

  const samples: Sample[] = [];
  let phase: Sample['phase'] = 'produce';
  let sampling = true;
  let lastPrinted: Sample | undefined;
  let sampleError: string | undefined;
  const t0 = Date.now();
  const loadAtStart = loadavg()[0];
  const cpuStart = await cpuAt();
  const sampler = (async () => {
    let next = Date.now();
    while (sampling) {
      try {
        const [state, metrics, redisMem] = await Promise.all([readRedis(), scrape(), redisStats()]);
        const sample: Sample = {
          atMs: state.atMs, phase, published: state.published, pending: state.pending, pendingByShard: state.pendingByShard,
          undelivered: state.undelivered, redisLagMs: state.lagMs,
          // The inference consumers export the same gauge for the features streams: keep the two apart.
          metricLagMs: metrics ? (lagOf(metrics, streams) ?? 0) : undefined,
          ...(inferenceOn && metrics ? { inferenceMetricLagMs: lagOf(metrics, featureStreams) } : {}),
          workerRssBytes: readMemory(workerPid)?.rssBytes, benchRssBytes: readMemory('self')?.rssBytes, redisRssBytes: redisMem.rssBytes,
          featuresPublished: state.featuresPublished,
          ...(state.inference ? { inferencePending: state.inference.pending, inferenceUndelivered: state.inference.undelivered, inferenceLagMs: state.inference.lagMs } : {}),
        };
        samples.push(sample);
        if (lastPrinted === undefined || sample.atMs - lastPrinted.atMs >= PROGRESS_EVERY_MS) {
          const previous = lastPrinted ?? sample;
          lastPrinted = sample;
          const secs = Math.max(0.001, (sample.atMs - previous.atMs) / 1000);
          const acked = (s: Sample) => s.published - s.pending - s.undelivered;
          progress(`t+${String(Math.round((sample.atMs - t0) / 1000)).padStart(3)}s ${phase.padEnd(7)} published ${fmtInt(sample.published)} (${fmtInt((sample.published - previous.published) / secs)}/s)` +
            ` acked ${fmtInt(acked(sample))} (${fmtInt((acked(sample) - acked(previous)) / secs)}/s) pending ${fmtInt(sample.pending)} undelivered ${fmtInt(sample.undelivered)}` +
            ` lag ${fmtMs(sample.metricLagMs ?? sample.redisLagMs)} snapshots ${fmtInt(sample.featuresPublished)}` +
            (state.inference ? ` (inference pending ${fmtInt(state.inference.pending)} undelivered ${fmtInt(state.inference.undelivered)} lag ${fmtMs(state.inference.lagMs)})` : '') +
            ` worker RSS ${((sample.workerRssBytes ?? 0) / 1048576).toFixed(0)} MB`);
        }
      } catch (err) {
        sampleError ??= (err as Error).message;
      }
      next += SAMPLE_EVERY_MS;
      await delay(Math.max(0, next - Date.now()));
    }
  })();
  cleanup.add('stop sampling', async () => {
    sampling = false;
    await sampler;
  });
  // The inference lag, more often than the rest (see INFERENCE_LAG_EVERY_MS).
  const inferenceLags: { atMs: number; lagMs: number; pending: number; undelivered: number }[] = [];
  const lagSampler = inferenceOn
    ? (async () => {
      let next = Date.now();
      while (sampling) {
        try {
          inferenceLags.push(await readInference());
        } catch (err) {
          sampleError ??= (err as Error).message;
        }
        next += INFERENCE_LAG_EVERY_MS;
        await delay(Math.max(0, next - Date.now()));
      }
    })()
    : Promise.resolve();
  cleanup.add('stop sampling the inference lag', async () => {
    sampling = false;
    await lagSampler;
  });

  // 7. Produce for the duration.
  let loadSource: string;
  let producerDrainMs: number | undefined;
  if (opts.rate === 'max') {
    const pubBus = new RedisBus(r.uri, { maxLen: r.maxlen });
    cleanup.add('close publisher bus', () => pubBus.close());
    const publisher = new LoadPublisher({
      bus: pubBus, baseStream: r.stream, shards,
      producer: { provider: tag, symbols, seed: config.producers.synthetic.seed, priceVolatility: config.producers.synthetic.price_volatility },
      batchSize: opts.publishBatch, inFlight: opts.inFlight, maxBacklog: opts.maxBacklog,
      undelivered: async () => {
        let sum = 0;
        for (const stream of streams) sum += await groupUndelivered(redis, stream, group);
        return sum;
      },
    });
    const onAbort = () => publisher.stop();
    interrupt.addEventListener('abort', onAbort);
    const result = await publisher.run(t0 + opts.durationMs);
    interrupt.removeEventListener('abort', onAbort);
    loadSource = `in-bench publisher: SyntheticProducer events with live timestamps, Bus.publishMany (pipelined XADD) ${opts.publishBatch}/batch × ${opts.inFlight} in flight, ` +
      (opts.maxBacklog === undefined ? 'open loop (as fast as possible)' : `closed loop (paused ${fmtMs(result.throttledMs)} while > ${fmtInt(opts.maxBacklog)} undelivered)`);
  } else {
    const started = await startProducer(client, config, { provider: 'synthetic', rate: opts.rate, maxRunMs: opts.durationMs });
    const handle = client.workflow.getHandle(started.workflowId);
    const firstMs = await waitFor('the first published event', 60_000, async () => {
      const firsts = await Promise.all(streams.map((s) => redis.xrange(s, '-', '+', 'COUNT', 1)));
      const ids = firsts.flat().map(([id]) => streamIdMs(id));
      return ids.length > 0 ? Math.min(...ids) : undefined;
    }, { guard });
    await delay(Math.max(0, firstMs + opts.durationMs - DRAIN_LEAD_MS - Date.now()), undefined, { signal: interrupt });
    const drainAt = Date.now();
    await handle.signal('drain');
    await withTimeout(handle.result() as Promise<LoopStatus>, 60_000, 'the producer workflow to finish');
    producerDrainMs = Date.now() - drainAt;
    loadSource = `producer workflow ${started.workflowId} in the worker, rate mode (${opts.rate}/s, maxRunMs ${opts.durationMs})`;
  }
  phase = 'settle';

  // 8. Wait until every published event is acknowledged: committed in a bar, or routed late / to the
  //    DLQ; with inference on, also until every feature snapshot is acknowledged by the inference group.
  progress(`production stopped; waiting for every event${inferenceOn ? ' and every feature snapshot' : ''} to be acknowledged...`);
  let eventsSettledAtMs: number | undefined;
  const settledState = await pollUntil(opts.settleTimeoutMs, async () => {
    const state = await readRedis();
    const eventsDone = state.pending === 0 && state.undelivered === 0;
    if (eventsDone) eventsSettledAtMs ??= state.atMs;
    const inferenceDone = state.inference === undefined || (state.inference.pending === 0 && state.inference.undelivered === 0);
    return eventsDone && inferenceDone ? state : undefined;
  }, { everyMs: 250, guard });
  const settled = eventsSettledAtMs !== undefined;
  const finalState = settledState ?? (await readRedis());
  const inferenceSettled = inferenceOn && settledState !== undefined;
  const cpuEnd = await cpuAt();
  const finalMetrics = (await scrape()) ?? [];
  sampling = false;
  await Promise.all([sampler, lagSampler]);
  if (sampleError) progress(`note: a sample failed: ${sampleError}`);

  const firstIds = (await Promise.all(streams.map((s) => redis.xrange(s, '-', '+', 'COUNT', 1)))).flat().map(([id]) => streamIdMs(id));
  const lastIds = (await Promise.all(streams.map((s) => redis.xrevrange(s, '+', '-', 'COUNT', 1)))).flat().map(([id]) => streamIdMs(id));
  if (firstIds.length === 0) throw new Error('nothing was published');
  const firstEntryMs = Math.min(...firstIds);
  const lastEntryMs = Math.max(...lastIds);

  // 9. What reached PostgreSQL, then drain the consumers (in parallel: each may wait for a throttled heartbeat).
  const { rows: barRows, exact } = await exactLatency(db, tag, windowMs, liveFromMs);
  const signalRows = inferenceOn ? await barToSignal(db, tag, intervalLabel(windowMs)) : undefined;
  const featuresStreamLength = (await Promise.all(featureStreams.map((stream) => bus.length(stream)))).reduce((acc, n) => acc + n, 0);
  const readiness = await snapshotReadiness(bus, featureStreams, opts.inference === 'sklearn' ? await loadModelSidecar(defaultSidecarPath(modelPath)) : undefined)
    .catch((err: unknown) => {
      progress(`note: reading the snapshots back failed: ${(err as Error).message}`);
      return undefined;
    });
  const signalsStreamAdded = inferenceOn ? await bus.added(r.signals_stream) : 0;
  progress(`settled=${settled}${inferenceOn ? ` inference settled=${inferenceSettled}` : ''}; draining ${shards} consumer workflows${inferenceOn ? ` and ${shards} inference workflows` : ''}...`);
  const drain = (ids: readonly string[]) => Promise.all(ids.map(async (id) => {
    const handle = client.workflow.getHandle(id);
    const at = Date.now();
    try {
      await handle.signal('drain');
      const status = await withTimeout(handle.result() as Promise<LoopStatus>, 60_000, `${id} to drain`);
      return { id, ms: Date.now() - at, status };
    } catch (err) {
      progress(`drain of ${id} failed: ${(err as Error).message}`);
      return { id, ms: Date.now() - at, status: undefined };
    }
  }));
  const [drained, drainedInference] = await Promise.all([drain(consumerIds), drain(inferenceIds)]);
  const workerPeakRssBytes = readMemory(workerPid)?.peakRssBytes;
  const workerExitMs = await stopProcess(worker, workerExited, workerRunning);
  progress(`worker stopped (${String(workerExit)})`);

  // 10. Accounting.
  const lateStream = await redis.xlen(r.late_stream);
  const dlqStream = await redis.xlen(r.dlq_stream);
  const published = finalState.published;
  const unacked = finalState.pending + finalState.undelivered;
  const total = (key: string) => drained.reduce((acc, d) => acc + (d.status?.totals[key] ?? 0), 0);
  const fromWorkflows = drained.every((d) => d.status !== undefined);
  // Fallback when a drain failed: the outcomes the micro-batcher counts (accepted, duplicate, late, invalid).
  const metricOutcome = (outcome: string) => sumOf(finalMetrics, 'microbatch_events_total', { outcome });
  const metricLate = metricOutcome('late');
  const metricInvalid = metricOutcome('invalid');
  const accepted = fromWorkflows ? total('accepted') : metricOutcome('accepted');
  const duplicates = fromWorkflows ? total('duplicates') : metricOutcome('duplicate');
  const late = fromWorkflows ? total('late') : metricLate;
  const invalid = fromWorkflows ? total('invalid') : metricInvalid;
  const accounted = accepted + duplicates + late + invalid;
  const forcedFlushes = fromWorkflows ? total('forcedFlushes') : sumOf(finalMetrics, 'errors_total', { component: 'microbatch', reason: 'forced_flush' });

  // 11. Rates, latency, lag, backlog.
  const endMs = eventsSettledAtMs ?? Date.now();
  const producingSeconds = Math.max(0.001, (lastEntryMs - firstEntryMs) / 1000);
  const wholeRunSeconds = Math.max(0.001, (endMs - firstEntryMs) / 1000);
  const warmupMs = windowMs + config.micro_batch.allow_late_ms + 1000;
  const producing = samples.filter((s) => s.phase === 'produce');
  const steady = producing.filter((s) => s.atMs - firstEntryMs >= warmupMs && s.atMs <= lastEntryMs);
  const trend = steady.length >= 3 ? steady : producing;
  const at = (s: Sample) => (s.atMs - firstEntryMs) / 1000;
  const histogram = histogramOf(finalMetrics, LATENCY_METRIC);
  const latencyTargetMs = SLA_LATENCY_WINDOWS * windowMs;
  const lagMetrics = samples.map((s) => s.metricLagMs).filter((v): v is number => v !== undefined);
  const peak = (values: (number | undefined)[]) => {
    const known = values.filter((v): v is number => v !== undefined);
    return known.length > 0 ? Math.max(...known) : undefined;
  };
  const cpuDelta = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined ? b - a : undefined);
  const committed = published - unacked;
  const featuresPublished = finalState.featuresPublished;
  const featuresUpdate = durationHistogram(finalMetrics, FEATURES_UPDATE_METRIC);

  let inference: InferenceSummary | null = null;
  if (inferenceOn) {
    const infTotal = (key: string) => drainedInference.reduce((acc, d) => acc + (d.status?.totals[key] ?? 0), 0);
    const infFromWorkflows = drainedInference.every((d) => d.status !== undefined);
    const evalDuration = durationHistogram(finalMetrics, INFERENCE_EVAL_METRIC);
    const evaluated = infFromWorkflows ? infTotal('snapshots') : evalDuration.observations;
    const infInvalid = infFromWorkflows ? infTotal('invalid') : sumOf(finalMetrics, 'errors_total', { component: 'inference', reason: 'invalid_snapshot' });
    const infEndMs = inferenceSettled ? finalState.atMs : Date.now();
    const infSeconds = Math.max(0.001, (infEndMs - firstEntryMs) / 1000);
    const lagValues = [...inferenceLags.map((l) => l.lagMs), ...samples.map((s) => s.inferenceLagMs ?? 0)].sort((a, b) => a - b);
    const infPending = [...inferenceLags.map((l) => l.pending), ...samples.map((s) => s.inferencePending ?? 0)];
    const infUndelivered = [...inferenceLags.map((l) => l.undelivered), ...samples.map((s) => s.inferenceUndelivered ?? 0)];
    const evalByAdapter: Record<string, number> = {};
    for (const adapter of new Set(select(finalMetrics, `${INFERENCE_EVAL_METRIC}_count`).map((m) => m.labels.adapter ?? ''))) {
      evalByAdapter[adapter] = sumOf(finalMetrics, `${INFERENCE_EVAL_METRIC}_count`, { adapter });
    }
    const errors = countBy(finalMetrics, 'errors_total', 'reason', { component: 'inference' });
    inference = {
      adapter: opts.inference,
      source: inferenceSource,
      settled: inferenceSettled,
      evaluated,
      modelReady: readiness?.modelReady,
      invalid: infInvalid,
      lost: featuresPublished - evaluated - infInvalid,
      accountingSource: infFromWorkflows ? 'workflow totals' : 'worker metrics',
      unacked: (finalState.inference?.pending ?? 0) + (finalState.inference?.undelivered ?? 0),
      evalDuration,
      evalByAdapter,
      signals: {
        emitted: sumOf(finalMetrics, 'signals_emitted_total'),
        byName: countBy(finalMetrics, 'signals_emitted_total', 'name'),
        byAdapter: countBy(finalMetrics, 'signals_emitted_total', 'adapter'),
        stream: signalsStreamAdded,
        rows: signalRows?.rows ?? 0,
        barToSignal: signalRows?.exact,
      },
      lag: {
        maxMs: lagValues.length > 0 ? lagValues[lagValues.length - 1] : 0,
        maxMetricMs: peak(samples.map((s) => s.inferenceMetricLagMs)),
        p50Ms: lagValues.length > 0 ? percentile(lagValues, 0.5) : 0,
        samples: lagValues.length,
        nonZeroSamples: lagValues.filter((ms) => ms > 0).length,
        everyMs: INFERENCE_LAG_EVERY_MS,
        maxPending: Math.max(0, ...infPending),
        maxUndelivered: Math.max(0, ...infUndelivered),
        targetMs: SLA_LAG_WINDOWS * windowMs,
      },
      rates: {
        wholeRunSeconds: infSeconds,
        endToEndPerSecond: accepted / infSeconds,
        snapshotsPerSecond: evaluated / infSeconds,
        tailAfterEventsMs: inferenceSettled && eventsSettledAtMs !== undefined ? finalState.atMs - eventsSettledAtMs : undefined,
      },
      errors,
      breakerTransitions: sumOf(finalMetrics, 'inference_breaker_transitions_total'),
    };
  }

  const partial: Omit<BenchSummary, 'verdicts'> = {
    run: {
      tag, mode: opts.rate === 'max' ? 'max' : 'rate', targetRate: opts.rate === 'max' ? undefined : opts.rate, loadSource,
      durationMs: opts.durationMs, windowMs, allowLateMs: config.micro_batch.allow_late_ms, maxBatchSize: config.micro_batch.max_batch_size,
      shards, symbolShards, warmUp, cpus: availableParallelism(), loadAverage: [loadAtStart, loadavg()[0]], startedAt: new Date(t0).toISOString(),
    },
    settled,
    events: {
      published, accepted, duplicates, late, invalid, accounted, lost: published - accounted,
      accountingSource: fromWorkflows ? 'workflow totals' : 'worker metrics', unacked, lateStream, dlqStream,
      bars: barRows.length, eventsInBars: barRows.reduce((acc, row) => acc + row.trades, 0), forcedFlushes,
    },
    rates: {
      producingSeconds, publishedPerSecond: published / producingSeconds, wholeRunSeconds, committedPerSecond: committed / wholeRunSeconds,
      intoBarsPerSecond: accepted / wholeRunSeconds,
      steadyPublishedPerSecond: slope(steady.map((s) => [at(s), s.published])),
      steadyCommittedPerSecond: slope(steady.map((s) => [at(s), s.published - s.pending - s.undelivered])),
    },
    latency: {
      targetMs: latencyTargetMs,
      windows: histogram?.count ?? 0,
      bucketBounds: histogram?.buckets.map((b) => b.le).filter((le) => Number.isFinite(le)) ?? [],
      p50: histogram && histogramQuantile(histogram, 0.5),
      p95: histogram && histogramQuantile(histogram, 0.95),
      p99: histogram && histogramQuantile(histogram, 0.99),
      withinTarget: histogram && fractionAtOrBelow(histogram, latencyTargetMs),
      exactFromBars: exact,
    },
    features: { published: featuresPublished, streamLength: featuresStreamLength, complete: readiness?.complete, nullByFeature: readiness?.nullByFeature, updateDuration: featuresUpdate },
    inference,
    lag: { maxMetricMs: lagMetrics.length > 0 ? Math.max(...lagMetrics) : undefined, maxRedisMs: Math.max(0, ...samples.map((s) => s.redisLagMs)), targetMs: SLA_LAG_WINDOWS * windowMs },
    pending: {
      first: trend[0]?.pending ?? 0,
      mid: trend[Math.floor(trend.length / 2)]?.pending ?? 0,
      last: trend[trend.length - 1]?.pending ?? 0,
      max: Math.max(0, ...producing.map((s) => s.pending)),
      maxUndelivered: Math.max(0, ...samples.map((s) => s.undelivered)),
      backlogSlopePerSecond: slope(steady.map((s) => [at(s), s.pending + s.undelivered])),
    },
    resources: {
      workerPeakRssBytes,
      workerMaxSampledRssBytes: peak(samples.map((s) => s.workerRssBytes)),
      benchPeakRssBytes: readMemory('self')?.peakRssBytes,
      benchMaxSampledRssBytes: peak(samples.map((s) => s.benchRssBytes)),
      redisPeakRssBytes: peak(samples.map((s) => s.redisRssBytes)),
      cpuWallSeconds: (cpuEnd.atMs - cpuStart.atMs) / 1000,
      workerCpuSeconds: cpuDelta(cpuStart.worker, cpuEnd.worker),
      benchCpuSeconds: cpuDelta(cpuStart.bench, cpuEnd.bench),
      redisCpuSeconds: cpuDelta(cpuStart.redis, cpuEnd.redis),
    },
    baseline: 'xaddPerSecond' in baseline
      ? {
        xaddPerSecond: baseline.xaddPerSecond, command: baseline.command, payloadBytes: baseline.payloadBytes,
        publishedRatio: published / producingSeconds / baseline.xaddPerSecond, intoBarsRatio: accepted / wholeRunSeconds / baseline.xaddPerSecond,
      }
      : baseline,
    shutdown: { consumerDrainMs: drained.map((d) => d.ms), inferenceDrainMs: drainedInference.map((d) => d.ms), producerDrainMs, workerExitMs },
  };
  return { ...partial, verdicts: verdicts(partial) };
}

async function run(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const interrupt = new AbortController();
  process.once('SIGINT', () => {
    progress('interrupted: cleaning up (Ctrl-C again to quit at once)');
    interrupt.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  const summary = await runBench(opts, interrupt.signal);
  process.stdout.write(`${formatReport(summary)}\n\n`);
  process.stdout.write(`${JSON.stringify({ bench: 'throughput', ...summary })}\n`);
  const inf = summary.inference;
  if (!summary.settled || summary.events.lost !== 0 || (inf !== null && (!inf.settled || inf.lost !== 0))) process.exitCode = 3;
}

run().catch((err: unknown) => {
  if (err instanceof UsageError || err instanceof ConfigError || (err as { code?: string } | undefined)?.code?.startsWith('ERR_PARSE_ARGS')) {
    console.error(`bench: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
