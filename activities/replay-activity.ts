import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { Bus, BusEntry, DeadLetter } from '../pipeline/bus/index.js';
import type { Bar, BarSink, InferenceAdapter, JobRunSink, SignalEventV1, StreamEventV1, UpsertCounts } from '../pipeline/contracts/index.js';
import { decodeEvent, formatMicros, intervalLabel, makeEventId, parseIsoToMicros } from '../pipeline/contracts/index.js';
import type { DatasetDefinition } from '../pipeline/datasets/index.js';
import {
  DatasetCatalogError, findDataset, loadDatasetCatalog, openFileDataset, parseReplayBound, parseSpanMs, replayRange,
} from '../pipeline/datasets/index.js';
import type { FeatureWindowSpec } from '../pipeline/features/index.js';
import { FeatureEngine, featureWarmSpanMs } from '../pipeline/features/index.js';
import type { Logger, Metrics } from '../pipeline/telemetry/index.js';
import type { WindowFlush } from '../pipeline/windowing/index.js';
import { MicroBatcher } from '../pipeline/windowing/index.js';
import type {
  ReplayAuditFinish, ReplayAuditStart, ReplayChunkHeartbeat, ReplayChunkInput, ReplayChunkResult, ReplayCounts, ReplayInferenceCounts, ReplayPlan,
  ReplayPlanInput,
} from './types.js';

/** Replay settings from the worker's config (`replay.*`, `micro_batch.*`). */
export interface ReplayDefaults {
  readonly datasetsFile: string;
  /** Base of a replay's own streams: `<stream>.<workflow id>.<chunk start ms>`. */
  readonly stream: string;
  readonly chunkSpan: string;
  readonly windowMs: number;
  readonly allowLateMs: number;
  readonly maxBatchSize: number;
  readonly maxBufferedEvents: number;
  readonly dlqStream: string;
  readonly lateStream: string;
  /**
   * Inference after each chunk's bars (see {@link ReplayInferenceDefaults}); absent or `adapter:
   * 'off'`: bars only.
   */
  readonly inference?: ReplayInferenceDefaults;
}

/** What a replay needs to compute features and signals like the live pipeline (from the worker's config). */
export interface ReplayInferenceDefaults {
  /** The adapter the live pipeline runs: `sklearn` if enabled, else `rules` if enabled, else `off`. */
  readonly adapter: 'rules' | 'sklearn' | 'off';
  /** `features.windows`. */
  readonly featureWindows: readonly FeatureWindowSpec[];
  /** Where live signals go (`bus.redis.signals_stream`): replayed signals are published there too. */
  readonly signalsStream: string;
  /** Longest `cooldown` of the rules file, ms (0 without rules); read per chunk, so edits apply. */
  readonly maxRuleCooldownMs: () => number;
}

/** Stored bars of a range, for `format: store` datasets. */
export type StoredBarsReader = (query: { provider: string; interval: string; fromMs: number; toMs: number; symbol?: string }) => Promise<Bar[]>;

export interface ReplayDeps {
  readonly openBus: () => Bus;
  readonly bars: BarSink;
  readonly jobs: JobRunSink & { markAbandoned(jobName: string): Promise<number> };
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly replay: ReplayDefaults;
  readonly readStoredBars: StoredBarsReader;
  /** Deletes a stream (a finished or abandoned chunk's). */
  readonly dropStream: (stream: string) => Promise<void>;
  /** Where signals are written (only used when the replay runs inference). */
  readonly signals: { upsertSignals(signals: readonly SignalEventV1[]): Promise<UpsertCounts> };
  /** Builds the inference adapter (only used when the replay runs inference). */
  readonly createAdapter: (kind: 'rules' | 'sklearn', modelPath?: string) => Promise<InferenceAdapter>;
}

/** Consumer group of every replay chunk stream (each chunk has its own stream, so one name serves). */
const REPLAY_GROUP = 'mdp-replay';
/** Events per batch when a replay is paced: small enough that the pace holds inside a chunk. */
const PACED_BATCH = 50;
/** Signals per upsert/publish round of a chunk's inference. */
const SIGNALS_BATCH = 1000;
/**
 * How far before a chunk its features and rule state are rebuilt from stored bars: the features'
 * warm-up span ({@link featureWarmSpanMs}) plus the longest rule cooldown (so a firing just before
 * the chunk still silences the rule inside it, as it would in one pass). A cooldown chain longer
 * than that (firings each inside the previous one's cooldown for the whole span) is the one case
 * not reproduced exactly.
 */
export function replayWarmSpanMs(windows: readonly FeatureWindowSpec[], windowMs: number, maxCooldownMs: number): number {
  return featureWarmSpanMs(windows, windowMs) + Math.max(0, maxCooldownMs);
}

export function zeroReplayCounts(): ReplayCounts {
  return { events: 0, accepted: 0, duplicates: 0, late: 0, invalid: 0, windows: 0, bars: 0, inserted: 0, updated: 0, unchanged: 0 };
}

/** Orders bars like the live consumer sees them: by window, then symbol. */
function byTimeThenSymbol(a: Bar, b: Bar): number {
  return a.tsMs - b.tsMs || (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0);
}

function nonRetryable(err: unknown): never {
  throw ApplicationFailure.nonRetryable((err as Error).message, (err as Error).name);
}

function dataset(deps: ReplayDeps, name: string): DatasetDefinition {
  try {
    return findDataset(loadDatasetCatalog(deps.replay.datasetsFile), name, deps.replay.datasetsFile);
  } catch (err) {
    if (err instanceof DatasetCatalogError) nonRetryable(err);
    throw err;
  }
}

/** Stored bars → v1 `bar` events (seq 0: one bar per key), so they aggregate like a provider's bars. */
function barsToEvents(bars: readonly Bar[], provider: string): StreamEventV1[] {
  return bars.map((bar) => {
    const srcTs = formatMicros(bar.tsMs * 1000);
    return {
      ver: 1, provider, symbol: bar.symbol, kind: 'bar', interval: bar.interval, src_ts: srcTs, ingest_ts: srcTs,
      o: bar.open, h: bar.high, l: bar.low, c: bar.close, v: bar.volume, seq: 0, event_id: makeEventId(provider, bar.symbol, srcTs, 0),
    } satisfies StreamEventV1;
  });
}

async function readChunk(deps: ReplayDeps, def: DatasetDefinition, fromMs: number, toMs: number, rangeToMs: number): Promise<{ events: StreamEventV1[]; nextDataMs: number | null }> {
  if (def.format === 'store') {
    const bars = await deps.readStoredBars({ provider: def.provider, interval: def.interval, fromMs, toMs });
    const kept = def.symbols ? bars.filter((b) => def.symbols!.includes(b.symbol)) : bars;
    kept.sort((a, b) => a.tsMs - b.tsMs || (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
    // Store ranges are not indexed here: the next chunk is simply the next one.
    return { events: barsToEvents(kept, def.as_provider ?? def.provider), nextDataMs: toMs < rangeToMs ? toMs : null };
  }
  const source = openFileDataset(def);
  const { events } = await source.read(fromMs, toMs);
  return { events, nextDataMs: await source.nextDataMs(toMs, rangeToMs) };
}

const sleep = (ms: number, signal: AbortSignal) => new Promise<void>((done) => {
  const timer = setTimeout(done, ms);
  signal.addEventListener('abort', () => { clearTimeout(timer); done(); }, { once: true });
});

/**
 * The replay's activities: plan the range, replay one chunk, and the `job_runs` audit. A chunk
 * publishes its events (in event-time order) to its own stream, and its own consumer — a fresh
 * {@link MicroBatcher} with its own watermark, the same windowing and aggregation as live — reads
 * them back, upserts each closed window's bars and acknowledges them.
 */
export function createReplayActivities(deps: ReplayDeps) {
  const d = deps.replay;

  async function planReplay(input: ReplayPlanInput): Promise<ReplayPlan> {
    const def = dataset(deps, input.dataset);
    const fromMs = parseReplayBound(input.from);
    const toMs = parseReplayBound(input.to);
    if (fromMs === undefined) nonRetryable(new Error(`from must be a date (2025-10-01) or an ISO-8601 timestamp with zone (got ${JSON.stringify(input.from)})`));
    if (toMs === undefined) nonRetryable(new Error(`to must be a date (2025-10-02) or an ISO-8601 timestamp with zone (got ${JSON.stringify(input.to)})`));
    const windowMs = input.windowMs ?? d.windowMs;
    if (!Number.isSafeInteger(windowMs) || windowMs <= 0) nonRetryable(new Error(`windowMs must be a positive integer (got ${windowMs})`));
    const spanMs = parseSpanMs(input.chunkSpan ?? d.chunkSpan);
    if (spanMs === undefined) nonRetryable(new Error(`chunkSpan must be a duration such as "15m" (got ${JSON.stringify(input.chunkSpan)})`));
    let range;
    try {
      range = replayRange(fromMs, toMs, windowMs, spanMs);
    } catch (err) {
      nonRetryable(err);
    }
    if (def.format === 'store' && intervalLabel(windowMs) === def.interval && (def.as_provider ?? def.provider) === def.provider) {
      nonRetryable(new Error(`dataset ${def.name} re-aggregates ${def.provider} ${def.interval} bars into the same rows; set as_provider or replay with another window`));
    }
    const base = { dataset: def.name, format: def.format, ...range, interval: intervalLabel(windowMs) };
    if (def.format === 'store') {
      const chunksTotal = Math.ceil((range.toMs - range.fromMs) / range.chunkSpanMs);
      return { ...base, eventsTotal: null, chunksTotal, firstDataMs: range.fromMs, skippedLines: 0, skippedSample: [] };
    }
    let summary;
    try {
      summary = await openFileDataset(def).summary(range.fromMs, range.toMs, range.chunkSpanMs);
    } catch (err) {
      nonRetryable(err);
    }
    if (summary.skippedLines > 0) deps.log.warn('dataset lines without a parseable time were skipped', { dataset: def.name, skipped: summary.skippedLines, first: summary.skippedSample[0] });
    return {
      ...base, eventsTotal: summary.events, chunksTotal: summary.chunks, firstDataMs: summary.firstMs,
      skippedLines: summary.skippedLines, skippedSample: summary.skippedSample.map((s) => `${s.file}:${s.line}: ${s.reason}`),
    };
  }

  /**
   * Features and signals of a chunk whose bars are committed, as the live pipeline computes them:
   * a fresh {@link FeatureEngine} and adapter are warmed on the stored bars of the chunk's
   * series just before it (see {@link replayWarmSpanMs}) — their snapshots go through the
   * adapter so its edge and cooldown state matches one continuous pass, but their signals are
   * dropped — then every bar of the chunk, in window order, gives a snapshot whose signals are
   * upserted (idempotent by key) and published to the signals stream. Snapshots are not
   * published: the live `features` streams feed live inference, which must not see history.
   */
  async function inferChunk(kind: 'rules' | 'sklearn', bars: readonly Bar[], fromMs: number, windowMs: number,
    ctx: Context, beat: () => void): Promise<ReplayInferenceCounts & { written: UpsertCounts }> {
    const inf = d.inference!;
    const result = { snapshots: 0, signals: 0, written: { inserted: 0, updated: 0, unchanged: 0 } };
    if (bars.length === 0) return result;
    let adapter: InferenceAdapter;
    let warmMs: number;
    try {
      warmMs = replayWarmSpanMs(inf.featureWindows, windowMs, inf.maxRuleCooldownMs());
      adapter = await deps.createAdapter(kind);
    } catch (err) {
      // A rules file or model that does not load will not load on retry either.
      throw ApplicationFailure.nonRetryable(`cannot load the ${kind} adapter: ${(err as Error).message}`, 'AdapterLoadError');
    }
    const bus = deps.openBus();
    try {
      const engine = new FeatureEngine({ windows: inf.featureWindows });
      const interval = intervalLabel(windowMs);
      const series = new Set(bars.map((b) => `${b.provider}\u0000${b.symbol}`));
      const providers = [...new Set(bars.map((b) => b.provider))].sort();
      const warm: Bar[] = [];
      for (const provider of providers) {
        const stored = await deps.readStoredBars({ provider, interval, fromMs: fromMs - warmMs, toMs: fromMs });
        for (const bar of stored) if (series.has(`${bar.provider}\u0000${bar.symbol}`)) warm.push(bar);
      }
      warm.sort(byTimeThenSymbol);
      for (const bar of warm) await adapter.evaluate(engine.update(bar));

      const ordered = [...bars].sort(byTimeThenSymbol);
      let pending: SignalEventV1[] = [];
      const emit = async () => {
        if (pending.length === 0) return;
        const written = await deps.signals.upsertSignals(pending);
        await bus.publish(inf.signalsStream, pending.map((sig) => JSON.stringify(sig)));
        result.signals += pending.length;
        result.written.inserted += written.inserted;
        result.written.updated += written.updated;
        result.written.unchanged += written.unchanged;
        for (const sig of pending) deps.metrics.signalsEmitted.inc({ name: sig.name, adapter: sig.meta.adapter });
        pending = [];
        beat();
      };
      for (const bar of ordered) {
        if (ctx.cancellationSignal.aborted) throw new CancelledFailure('replay chunk cancelled');
        const snapshot = engine.update(bar);
        result.snapshots++;
        const began = performance.now();
        const signals = await adapter.evaluate(snapshot);
        deps.metrics.inferenceEvalSeconds.observe({ adapter: adapter.name }, (performance.now() - began) / 1000);
        pending.push(...signals);
        if (pending.length >= SIGNALS_BATCH) await emit();
      }
      await emit();
      return result;
    } finally {
      await adapter.close?.();
      await bus.close();
    }
  }

  async function runReplayChunk(input: ReplayChunkInput): Promise<ReplayChunkResult> {
    const ctx = Context.current();
    const execution = ctx.info.workflowExecution;
    if (!execution) throw ApplicationFailure.nonRetryable('runReplayChunk must run inside a workflow: the workflow id names the replay');
    const replayId = execution.workflowId;
    const { fromMs, toMs } = input.chunk;
    const stream = `${d.stream}.${replayId}.${fromMs}`;
    const log = deps.log.child({ activity: 'runReplayChunk', replayId, chunk: new Date(fromMs).toISOString(), attempt: ctx.info.attempt });
    const def = dataset(deps, input.dataset);
    const inference = input.inference ?? d.inference?.adapter ?? 'off';
    if (inference !== 'off' && d.inference === undefined) {
      throw ApplicationFailure.nonRetryable(`inference ${inference} requested, but this worker has no inference settings`);
    }
    const windowMs = input.range.windowMs;
    const batchSize = d.maxBatchSize;
    const counts: ReplayCounts & ReplayInferenceCounts = { ...zeroReplayCounts(), snapshots: 0, signals: 0 };
    /** The chunk's bars in commit (window) order, for its features and signals. */
    const committed: Bar[] = [];
    const started = Date.now();
    const bus = deps.openBus();
    try {
      const { events, nextDataMs } = await readChunk(deps, def, fromMs, toMs, input.range.toMs);
      // A retried attempt starts the chunk over on a fresh stream: the bars it rewrites are
      // identical (idempotent upserts), and chunks before it are never touched again.
      await deps.dropStream(stream);
      await bus.ensureGroup(stream, REPLAY_GROUP);
      // The replay's own watermark: event time only. The wall-clock idle rule of live consumers
      // would push the watermark past windows a replay is still filling after any pause.
      const batcher = new MicroBatcher<string>({
        windowMs, allowLateMs: d.allowLateMs, flushTimeoutMs: Number.MAX_SAFE_INTEGER, maxBufferedEvents: d.maxBufferedEvents,
      });
      const commit = async (flushes: readonly WindowFlush<string>[]) => {
        if (flushes.length === 0) return;
        const bars = flushes.flatMap((f) => f.bars);
        const written = await deps.bars.upsertBars(bars);
        await bus.ack(stream, REPLAY_GROUP, flushes.flatMap((f) => f.refs));
        if (inference !== 'off') committed.push(...bars);
        counts.windows += flushes.length;
        counts.bars += bars.length;
        counts.inserted += written.inserted;
        counts.updated += written.updated;
        counts.unchanged += written.unchanged;
        deps.metrics.flushRows.inc({ window_ms: String(windowMs) }, written.inserted + written.updated);
      };
      const route = async (entries: readonly BusEntry[]) => {
        const dead: DeadLetter[] = [];
        const late: BusEntry[] = [];
        for (const entry of entries) {
          const decoded = entry.payload === undefined ? { ok: false as const, reason: 'entry has no payload' } : decodeEvent(entry.payload);
          if (!decoded.ok) {
            dead.push({ sourceStream: stream, sourceId: entry.id, payload: entry.payload, reason: decoded.reason });
            continue;
          }
          // Event time drives everything; `nowMs` is constant so the idle rule never fires.
          const outcome = batcher.add(decoded.event, entry.id, 0);
          if (outcome === 'accepted') counts.accepted++;
          else if (outcome === 'duplicate') counts.duplicates++;
          else late.push(entry);
          deps.metrics.consumedEvents.inc({ topic: d.stream, outcome });
        }
        if (dead.length > 0) {
          await bus.deadLetter(d.dlqStream, REPLAY_GROUP, dead);
          counts.invalid += dead.length;
          deps.metrics.consumedEvents.inc({ topic: d.stream, outcome: 'invalid' }, dead.length);
          log.warn('replayed events sent to DLQ', { count: dead.length, first: dead[0].reason });
        }
        if (late.length > 0) {
          await bus.publish(d.lateStream, late.map((e) => e.payload!), { trim: false });
          await bus.ack(stream, REPLAY_GROUP, late.map((e) => e.id));
          counts.late += late.length;
        }
      };
      const beat = (published: number) => {
        const details: ReplayChunkHeartbeat = { chunkFromMs: fromMs, chunkToMs: toMs, events: events.length, published, counts: { ...counts } };
        ctx.heartbeat(details);
      };

      // Paced (`speed`): event time, measured from the chunk's start, advances `speed` times faster
      // than the wall clock, in small batches so the pace holds within a chunk too.
      const paced = input.speed !== undefined && input.speed > 0 ? input.speed : undefined;
      const step = paced ? Math.min(batchSize, PACED_BATCH) : batchSize;
      for (let i = 0; i < events.length; i += step) {
        if (ctx.cancellationSignal.aborted) throw new CancelledFailure('replay chunk cancelled');
        const batch = events.slice(i, i + step);
        if (paced) {
          const batchUs = parseIsoToMicros(batch[0].src_ts) ?? fromMs * 1000;
          const dueMs = started + (batchUs / 1000 - fromMs) / paced;
          if (dueMs > Date.now()) await sleep(dueMs - Date.now(), ctx.cancellationSignal);
        }
        await bus.publish(stream, batch.map((e) => JSON.stringify(e)), { trim: false });
        counts.events += batch.length;
        for (;;) {
          const entries = await bus.readNew(stream, REPLAY_GROUP, replayId, batchSize, 1);
          if (entries.length === 0) break;
          await route(entries);
          while (batcher.isFull) await commit([batcher.forceFlushOldest()!]);
        }
        await commit(batcher.flush(0));
        beat(i + batch.length);
      }
      if (paced) {
        // The chunk's quiet tail is event time too.
        const endMs = started + (toMs - fromMs) / paced;
        if (endMs > Date.now()) await sleep(endMs - Date.now(), ctx.cancellationSignal);
      }
      // The chunk ends on a window boundary and holds every event of its windows: all are complete.
      const rest: WindowFlush<string>[] = [];
      for (let w = batcher.forceFlushOldest(); w !== undefined; w = batcher.forceFlushOldest()) rest.push(w);
      await commit(rest);
      beat(events.length);
      if (inference !== 'off') {
        // After every bar of the chunk is durable: a retried attempt recomputes the same signals.
        const inferred = await inferChunk(inference, committed, fromMs, windowMs, ctx, () => beat(events.length));
        counts.snapshots += inferred.snapshots;
        counts.signals += inferred.signals;
        log.debug('replay chunk signals', { adapter: inference, snapshots: inferred.snapshots, signals: inferred.signals, ...inferred.written });
      }
      await deps.dropStream(stream);
      const totals: Record<string, number> = { ...input.totalsBefore };
      for (const [key, value] of Object.entries(counts) as [string, number][]) totals[key] = (totals[key] ?? 0) + value;
      totals.chunksDone = (totals.chunksDone ?? 0) + 1;
      await deps.jobs.heartbeat(input.jobRunId, totals);
      const elapsedMs = Date.now() - started;
      log.debug('replay chunk done', { ...counts, elapsedMs });
      return { fromMs, toMs, counts, nextDataMs, attempt: ctx.info.attempt, elapsedMs };
    } catch (err) {
      if (!(err instanceof CancelledFailure)) {
        deps.metrics.errors.inc({ component: 'replay', reason: 'activity_failure' });
        log.error('replay chunk failed', { err });
      }
      throw err;
    } finally {
      await bus.close();
    }
  }

  async function startReplayAudit(input: ReplayAuditStart): Promise<number> {
    await deps.jobs.markAbandoned(input.jobName);
    return deps.jobs.start({ jobName: input.jobName, kind: 'replay', meta: { ...input.meta } });
  }

  async function finishReplayAudit(input: ReplayAuditFinish): Promise<void> {
    await deps.jobs.finish(input.jobRunId, input.status, input.counts, input.error);
  }

  return { planReplay, runReplayChunk, startReplayAudit, finishReplayAudit };
}
