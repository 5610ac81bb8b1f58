import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { Bus, BusEntry } from '../pipeline/bus/index.js';
import { DEFAULT_EVENT_FORMAT, encodeShardBatch } from '../pipeline/bus/index.js';
import type { Bar, StreamEventV1 } from '../pipeline/contracts/index.js';
import { abortableSleep, formatMicros, makeEventId, parseIsoToMicros } from '../pipeline/contracts/index.js';
import type { DatasetDefinition } from '../pipeline/datasets/index.js';
import { openFileDataset } from '../pipeline/datasets/index.js';
import { routeEvents } from '../pipeline/routing/index.js';
import type { WindowFlush } from '../pipeline/windowing/index.js';
import { MicroBatcher } from '../pipeline/windowing/index.js';
import { addUpserts } from './counts.js';
import type { OutcomeTarget } from './entry-outcomes.js';
import { settleRoutedEvents } from './entry-outcomes.js';
import { inferChunk } from './replay-inference.js';
import { replayDefinition } from './replay-plan.js';
import type { ReplayDeps } from './replay-activity.js';
import { reportFailure } from './shard-consumer.js';
import { activityFailure } from './expected-failure.js';
import { SignalEmitter } from './signal-emitter.js';
import type { ReplayChunkHeartbeat, ReplayChunkInput, ReplayChunkResult, ReplayCounts, ReplayInferenceCounts } from './types.js';

/** Stored bars of a range, for `format: store` datasets. */
export type StoredBarsReader = (query: { provider: string; interval: string; fromMs: number; toMs: number; symbol?: string }) => Promise<Bar[]>;

/** Consumer group of every replay chunk stream (each chunk has its own stream, so one name serves). */
const REPLAY_GROUP = 'mdp-replay';
/** Events per batch when a replay is paced: small enough that the pace holds inside a chunk. */
const PACED_BATCH = 50;

export function zeroReplayCounts(): ReplayCounts {
  return { events: 0, accepted: 0, duplicates: 0, late: 0, invalid: 0, windows: 0, bars: 0, inserted: 0, updated: 0, unchanged: 0 };
}

/** Stored bars → v1 `bar` events (seq 0: one bar per key), so they aggregate like a provider's bars. */
function barsToEvents(bars: readonly Bar[], provider: string): StreamEventV1[] {
  return bars.map((bar) => {
    const srcTs = formatMicros(bar.tsMs * 1000);
    return {
      ver: 1,
      provider,
      symbol: bar.symbol,
      kind: 'bar',
      interval: bar.interval,
      src_ts: srcTs,
      ingest_ts: srcTs,
      o: bar.open,
      h: bar.high,
      l: bar.low,
      c: bar.close,
      v: bar.volume,
      seq: 0,
      event_id: makeEventId(provider, bar.symbol, srcTs, 0),
    } satisfies StreamEventV1;
  });
}

/** The chunk's events in event-time order, and the first minute holding data after it. */
async function readChunk(
  readStoredBars: StoredBarsReader,
  def: DatasetDefinition,
  fromMs: number,
  toMs: number,
  rangeToMs: number,
): Promise<{ events: StreamEventV1[]; nextDataMs: number | null }> {
  if (def.format === 'store') {
    const bars = await readStoredBars({ provider: def.provider, interval: def.interval, fromMs, toMs });
    const kept = def.symbols ? bars.filter((b) => def.symbols!.includes(b.symbol)) : bars;
    kept.sort((a, b) => a.tsMs - b.tsMs || (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
    // Store ranges are not indexed here: the next chunk is simply the next one.
    return { events: barsToEvents(kept, def.as_provider ?? def.provider), nextDataMs: toMs < rangeToMs ? toMs : null };
  }
  const source = openFileDataset(def);
  const { events } = await source.read(fromMs, toMs);
  return { events, nextDataMs: await source.nextDataMs(toMs, rangeToMs) };
}

/**
 * One chunk of a replay: publishes its events (in event-time order) to the chunk's own stream,
 * and its own consumer — a fresh {@link MicroBatcher} with its own watermark, the same windowing,
 * routing and aggregation as live — reads them back, upserts each closed window's bars and
 * acknowledges them; then, when the replay runs inference, the chunk's features and signals.
 */
export async function runReplayChunk(deps: ReplayDeps, input: ReplayChunkInput): Promise<ReplayChunkResult> {
  const ctx = Context.current();
  const d = deps.replay;
  const mb = d.microBatch;
  const execution = ctx.info.workflowExecution;
  if (!execution) throw ApplicationFailure.nonRetryable('runReplayChunk must run inside a workflow: the workflow id names the replay');
  const replayId = execution.workflowId;
  const { fromMs, toMs } = input.chunk;
  const stream = `${d.stream}.${replayId}.${fromMs}`;
  const log = deps.log.child({ activity: 'runReplayChunk', replayId, chunk: new Date(fromMs).toISOString(), attempt: ctx.info.attempt });
  const def = replayDefinition(d.datasetsFile, input.dataset, input.definition);
  const inference = input.inference ?? d.inference?.adapter ?? 'off';
  if (inference !== 'off' && d.inference === undefined) {
    throw ApplicationFailure.nonRetryable(`inference ${inference} requested, but this worker has no inference settings`);
  }
  const windowMs = input.range.windowMs;
  const batchSize = mb.maxBatchSize;
  const target: OutcomeTarget = {
    component: 'replay',
    stream,
    group: REPLAY_GROUP,
    dlqStream: mb.dlqStream,
    events: { lateStream: mb.lateStream, topic: d.stream },
  };
  const counts: ReplayCounts & ReplayInferenceCounts = { ...zeroReplayCounts(), snapshots: 0, signals: 0 };
  /** The chunk's bars in commit (window) order, for its features and signals. */
  const committed: Bar[] = [];
  const started = Date.now();
  let bus: Bus | undefined;
  try {
    bus = deps.openBus();
    const chunkBus = bus;
    const { events, nextDataMs } = await readChunk(deps.readStoredBars, def, fromMs, toMs, input.range.toMs);
    // A retried attempt starts the chunk over on a fresh stream: the bars it rewrites are
    // identical (idempotent upserts), and chunks before it are never touched again.
    await chunkBus.dropStream(stream);
    await chunkBus.ensureGroup(stream, REPLAY_GROUP);
    // The replay's own watermark: event time only. The wall-clock idle rule of live consumers
    // would push the watermark past windows a replay is still filling after any pause.
    const batcher = new MicroBatcher<BusEntry>({
      windowMs,
      allowLateMs: mb.allowLateMs,
      flushTimeoutMs: Number.MAX_SAFE_INTEGER,
      maxBufferedEvents: mb.maxBufferedEvents,
    });
    const commit = async (flushes: readonly WindowFlush<BusEntry>[]) => {
      if (flushes.length === 0) return;
      const bars = flushes.flatMap((f) => f.bars);
      const written = await deps.bars.upsertBars(bars);
      await chunkBus.ack(
        stream,
        REPLAY_GROUP,
        flushes.flatMap((f) => f.refs.map((entry) => entry.id)),
      );
      if (inference !== 'off') committed.push(...bars);
      counts.windows += flushes.length;
      counts.bars += bars.length;
      addUpserts(counts, written);
      // A replay's own counter: the live microbatch_flush_rows measures the live pipeline only.
      deps.metrics.replayBarsWritten.inc({ window_ms: String(windowMs) }, written.inserted + written.updated);
    };
    const beat = (published: number) => {
      const details: ReplayChunkHeartbeat = {
        chunkFromMs: fromMs,
        chunkToMs: toMs,
        chunkFromIso: new Date(fromMs).toISOString(),
        chunkToIso: new Date(toMs).toISOString(),
        events: events.length,
        published,
        counts: { ...counts },
      };
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
        if (dueMs > Date.now()) await abortableSleep(dueMs - Date.now(), ctx.cancellationSignal);
      }
      await chunkBus.publish(stream, encodeShardBatch(batch, chunkBus.eventFormat ?? DEFAULT_EVENT_FORMAT), { trim: false });
      counts.events += batch.length;
      for (;;) {
        const entries = await chunkBus.readNew(stream, REPLAY_GROUP, replayId, batchSize, 1);
        if (entries.length === 0) break;
        // Event time drives everything; `nowMs` is constant so the idle rule never fires. A replay
        // is history (or a synthetic future) on its own streams, not the wall clock's: no
        // future_event check, which would also measure against that constant.
        const routed = routeEvents(entries, batcher, { sourceStream: stream, maxDeliveries: mb.maxDeliveries, maxFutureMs: Infinity }, 0);
        counts.accepted += routed.accepted;
        counts.duplicates += routed.duplicates;
        counts.invalid += routed.dead.length;
        counts.late += routed.late.length;
        await settleRoutedEvents(chunkBus, deps.metrics, log, target, routed);
        while (batcher.isFull) await commit([batcher.forceFlushOldest()!]);
      }
      await commit(batcher.flush(0));
      beat(i + batch.length);
    }
    if (paced) {
      // The chunk's quiet tail is event time too.
      const endMs = started + (toMs - fromMs) / paced;
      if (endMs > Date.now()) await abortableSleep(endMs - Date.now(), ctx.cancellationSignal);
    }
    // The chunk ends on a window boundary and holds every event of its windows: all are complete.
    const rest: WindowFlush<BusEntry>[] = [];
    for (let w = batcher.forceFlushOldest(); w !== undefined; w = batcher.forceFlushOldest()) rest.push(w);
    await commit(rest);
    beat(events.length);
    if (inference !== 'off') {
      // After every bar of the chunk is durable: a retried attempt recomputes the same signals.
      // They stay out of the live signals stream unless the replay was asked to publish them.
      const emitter = new SignalEmitter({
        bus: chunkBus,
        sink: deps.signals,
        metrics: deps.metrics,
        replayId,
        ...(input.publishSignals === true ? { signalsStream: d.inference!.signalsStream } : {}),
      });
      const inferred = await inferChunk(
        {
          kind: inference,
          settings: d.inference!,
          createAdapter: deps.createAdapter,
          readStoredBars: deps.readStoredBars,
          emitter,
          signal: ctx.cancellationSignal,
          progress: () => beat(events.length),
        },
        committed,
        fromMs,
        windowMs,
      );
      counts.snapshots += inferred.snapshots;
      counts.signals += inferred.signals;
      log.debug('replay chunk signals', { adapter: inference, ...inferred });
    }
    await chunkBus.dropStream(stream);
    const totals: Record<string, number> = { ...input.totalsBefore };
    for (const [key, value] of Object.entries(counts) as [string, number][]) totals[key] = (totals[key] ?? 0) + value;
    totals.chunksDone = (totals.chunksDone ?? 0) + 1;
    await deps.jobs.heartbeat(input.jobRunId, totals);
    const elapsedMs = Date.now() - started;
    log.debug('replay chunk done', { ...counts, elapsedMs });
    return { fromMs, toMs, counts, nextDataMs, attempt: ctx.info.attempt, elapsedMs };
  } catch (err) {
    reportFailure(deps.metrics, log, 'replay', 'replay chunk failed', err);
    throw activityFailure(err);
  } finally {
    await bus?.close();
  }
}
