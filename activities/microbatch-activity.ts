import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { Bus, BusEntry, DeadLetter } from '../pipeline/bus/index.js';
import { shardOf, shardStream } from '../pipeline/bus/index.js';
import type { BarSink, JobRunSink } from '../pipeline/contracts/index.js';
import { decodeEvent, intervalLabel } from '../pipeline/contracts/index.js';
import type { Logger, Metrics } from '../pipeline/telemetry/index.js';
import type { WindowFlush } from '../pipeline/windowing/index.js';
import { MicroBatcher } from '../pipeline/windowing/index.js';
import type { FeatureWindowSpec } from '../pipeline/features/index.js';
import { FeatureEngine, featureWarmSpanMs } from '../pipeline/features/index.js';
import type { MicroBatchCounts, MicroBatchHeartbeat, MicroBatchInput, MicroBatchRunResult } from './types.js';

/** Settings a micro-batch run needs beyond its input (from the worker's config). */
export interface MicroBatchDefaults {
  readonly stream: string;
  readonly group: string;
  readonly lateStream: string;
  readonly dlqStream: string;
  readonly windowMs: number;
  readonly allowLateMs: number;
  readonly flushTimeoutMs: number;
  readonly maxBatchSize: number;
  readonly maxBufferedEvents: number;
  readonly maxDeliveries: number;
  readonly maxRunMs: number;
  /** Base name of the feature snapshot streams (`${featuresStream}.${shard}`). */
  readonly featuresStream: string;
  readonly featureWindows: readonly FeatureWindowSpec[];
  readonly shards: number;
}

export interface MicroBatchDeps {
  readonly openBus: () => Bus;
  readonly bars: BarSink;
  readonly jobs: JobRunSink & { markAbandoned(jobName: string): Promise<number> };
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly defaults: MicroBatchDefaults;
}

/**
 * Rebuilds the shard's feature windows from stored bars, so a restarted consumer's features (and
 * the signals derived from them) do not start warming up from scratch. Returns the bars replayed.
 */
async function warmFeatures(engine: FeatureEngine, bars: BarSink, windows: readonly FeatureWindowSpec[],
  windowMs: number, shard: number, shards: number): Promise<number> {
  const fromMs = Date.now() - featureWarmSpanMs(windows, windowMs);
  let replayed = 0;
  for (const bar of await bars.listBars({ interval: intervalLabel(windowMs), fromMs })) {
    if (shardOf(bar.provider, bar.symbol, shards) !== shard) continue;
    engine.update(bar);
    replayed++;
  }
  return replayed;
}

/** Longest a read blocks, so cancellation and idle flushes are noticed promptly. */
const BLOCK_MS = 100;
const LAG_EVERY_MS = 1000;
const AUDIT_EVERY_MS = 5000;

function zeroCounts(): MicroBatchCounts {
  return { events: 0, accepted: 0, duplicates: 0, late: 0, invalid: 0, windows: 0, bars: 0, inserted: 0, updated: 0, unchanged: 0, forcedFlushes: 0 };
}

/**
 * One shard's micro-batch consumer: the single owner of `${stream}.${shard}` in its group, named
 * after its workflow id. It re-reads its own pending entries first (a crashed attempt's events
 * whose windows never committed), then new ones; windows flush by event-time watermark; a
 * window's bars are upserted before its entries are acknowledged, and the acknowledgement moves
 * the durable frontier in the same Redis transaction.
 */
export function createMicroBatchActivity(deps: MicroBatchDeps) {
  return async function runMicroBatchShard(input: MicroBatchInput): Promise<MicroBatchRunResult> {
    const ctx = Context.current();
    const d = deps.defaults;
    const opts = {
      windowMs: input.windowMs ?? d.windowMs,
      allowLateMs: input.allowLateMs ?? d.allowLateMs,
      flushTimeoutMs: input.flushTimeoutMs ?? d.flushTimeoutMs,
      maxBufferedEvents: input.maxBufferedEvents ?? d.maxBufferedEvents,
    };
    // `max_batch_size` caps one read (and so one routing/ack round); `max_buffered_events` caps memory.
    const readCount = input.maxBatchSize ?? d.maxBatchSize;
    const stream = shardStream(input.stream ?? d.stream, input.shard);
    const shards = input.shards ?? d.shards;
    const group = input.group ?? d.group;
    const execution = ctx.info.workflowExecution;
    if (!execution) throw ApplicationFailure.nonRetryable('runMicroBatchShard must run inside a workflow: the workflow id names the shard owner');
    const consumer = execution.workflowId;
    const windowLabel = String(opts.windowMs);
    const interval = intervalLabel(opts.windowMs);
    const log = deps.log.child({ activity: 'runMicroBatchShard', stream, consumer, attempt: ctx.info.attempt });
    const metrics = deps.metrics;
    const bus = deps.openBus();
    const counts = zeroCounts();
    let lastId: string | undefined;
    let lagMs = 0;

    await deps.jobs.markAbandoned(consumer);
    const jobRunId = await deps.jobs.start({
      jobName: consumer, kind: 'microbatch',
      meta: { stream, group, interval, attempt: ctx.info.attempt, workflowRunId: execution.runId },
    });

    try {
      await bus.ensureGroup(stream, group);
      const frontierMs = await bus.readCheckpoint(stream, group);
      const batcher = new MicroBatcher<string>({ ...opts, frontierMs });
      const featuresStream = shardStream(input.featuresStream ?? d.featuresStream, input.shard);
      const features = new FeatureEngine({ windows: d.featureWindows });
      const warmed = await warmFeatures(features, deps.bars, d.featureWindows, opts.windowMs, input.shard, shards);
      for (const outcome of ['accepted', 'duplicate', 'late', 'invalid']) metrics.consumedEvents.inc({ topic: stream, outcome }, 0);
      for (const reason of ['invalid_event', 'max_deliveries', 'late_event', 'forced_flush', 'activity_failure']) metrics.errors.inc({ component: 'microbatch', reason }, 0);
      log.info('micro-batch consumer started', { frontierMs, featuresWarmedFromBars: warmed, ...opts });

      const commit = async (flushes: readonly WindowFlush<string>[], forced = false) => {
        if (flushes.length === 0) return;
        const bars = flushes.flatMap((f) => f.bars);
        const refs = flushes.flatMap((f) => f.refs);
        const written = await deps.bars.upsertBars(bars); // timed by the store's onWrite
        // Features after the bars are durable and before the acknowledgement: a crash in between
        // re-flushes the same bars and re-publishes the same snapshots (at least once, never lost).
        const snapshots: string[] = [];
        for (const bar of bars) {
          const began = performance.now();
          const snapshot = features.update(bar);
          metrics.featuresUpdateSeconds.observe({ symbol: bar.symbol, window: bar.interval }, (performance.now() - began) / 1000);
          snapshots.push(JSON.stringify(snapshot));
        }
        await bus.publish(featuresStream, snapshots);
        await bus.ackWithCheckpoint(stream, group, refs, batcher.frontierMs ?? flushes[flushes.length - 1].windowEndMs);
        const committedMs = Date.now();
        counts.windows += flushes.length;
        counts.bars += bars.length;
        counts.inserted += written.inserted;
        counts.updated += written.updated;
        counts.unchanged += written.unchanged;
        metrics.flushRows.inc({ window_ms: windowLabel }, written.inserted + written.updated);
        for (const bar of bars) metrics.flushTotal.inc({ window_ms: windowLabel, symbol: bar.symbol });
        // A window cut early for memory has no meaningful latency; it is counted as forced_flush.
        for (const f of forced ? [] : flushes) {
          metrics.windowLatencyMs.observe(Math.max(0, committedMs - Math.max(f.windowEndMs, f.lastArrivalMs)));
        }
      };

      const route = async (entries: readonly BusEntry[], nowMs: number) => {
        const dead: DeadLetter[] = [];
        const late: BusEntry[] = [];
        for (const entry of entries) {
          counts.events++;
          if (entry.deliveries !== undefined && entry.deliveries > d.maxDeliveries) {
            dead.push({ sourceStream: stream, sourceId: entry.id, payload: entry.payload, reason: `delivered ${entry.deliveries} times (max_deliveries ${d.maxDeliveries})`, deliveries: entry.deliveries });
            continue;
          }
          if (entry.payload === undefined) {
            dead.push({ sourceStream: stream, sourceId: entry.id, payload: entry.foreign, reason: 'entry has no payload field "d" (deleted or foreign entry)' });
            continue;
          }
          const decoded = decodeEvent(entry.payload);
          if (!decoded.ok) {
            dead.push({ sourceStream: stream, sourceId: entry.id, payload: entry.payload, reason: decoded.reason, deliveries: entry.deliveries });
            continue;
          }
          const outcome = batcher.add(decoded.event, entry.id, nowMs);
          if (outcome === 'accepted') counts.accepted++;
          else if (outcome === 'duplicate') counts.duplicates++;
          else late.push(entry);
          metrics.consumedEvents.inc({ topic: stream, outcome });
        }
        if (dead.length > 0) batcher.touch(nowMs);
        if (dead.length > 0) {
          await bus.deadLetter(d.dlqStream, group, dead);
          counts.invalid += dead.length;
          metrics.consumedEvents.inc({ topic: stream, outcome: 'invalid' }, dead.length);
          for (const letter of dead) metrics.errors.inc({ component: 'microbatch', reason: letter.reason.startsWith('delivered') ? 'max_deliveries' : 'invalid_event' });
          log.warn('events sent to DLQ', { count: dead.length, first: dead[0].reason });
        }
        if (late.length > 0) {
          // The late stream keeps the original payload; acknowledging only after it is written loses nothing.
          await bus.publish(d.lateStream, late.map((e) => e.payload!), { trim: false });
          await bus.ack(stream, group, late.map((e) => e.id));
          counts.late += late.length;
          metrics.errors.inc({ component: 'microbatch', reason: 'late_event' }, late.length);
        }
        if (entries.length > 0) lastId = entries[entries.length - 1].id;
      };

      let nextAuditAt = Date.now() + AUDIT_EVERY_MS;
      const beat = async () => {
        const snap = batcher.snapshot();
        const details: MicroBatchHeartbeat = {
          consumer, stream, frontierMs: batcher.frontierMs, watermarkMs: batcher.watermarkMs, lastId,
          openWindows: snap.openWindows, bufferedEvents: snap.bufferedRefs, lagMs, counts: { ...counts }, jobRunId,
        };
        ctx.heartbeat(details);
        metrics.consumerHeartbeat.set({ topic: stream, consumer }, Date.now() / 1000);
        if (batcher.watermarkMs !== undefined) metrics.watermarkMs.set({ topic: stream }, batcher.watermarkMs);
        if (Date.now() >= nextAuditAt) {
          // The audit row keeps counts current, so a run killed mid-way still shows how far it got.
          nextAuditAt = Date.now() + AUDIT_EVERY_MS;
          await deps.jobs.heartbeat(jobRunId, { ...counts });
        }
      };

      // 1. Our own pending entries: a previous attempt's events whose windows never committed.
      for (let after = '0'; ;) {
        const entries = await bus.readPending(stream, group, consumer, after, readCount);
        if (entries.length === 0) break;
        await route(entries, Date.now());
        after = entries[entries.length - 1].id;
        const forced = [];
        while (batcher.isFull) forced.push(batcher.forceFlushOldest()!);
        if (forced.length > 0) {
          counts.forcedFlushes += forced.length;
          metrics.errors.inc({ component: 'microbatch', reason: 'forced_flush' }, forced.length);
          await commit(forced, true);
        }
        await commit(batcher.flush(Date.now()));
        await beat();
      }
      if (counts.events > 0) log.info('re-read own pending entries', { events: counts.events });

      // 2. New entries until cancelled or the run's time is up.
      const deadline = Date.now() + (input.maxRunMs ?? d.maxRunMs);
      let nextLagAt = 0;
      while (!ctx.cancellationSignal.aborted && Date.now() < deadline) {
        const capacity = opts.maxBufferedEvents - batcher.bufferedRefs;
        if (capacity <= 0) {
          // Memory bound reached (a single window holds more events than max_buffered_events):
          // the oldest window is cut rather than holding unbounded events. Below that bound the
          // shard simply reads less, and the backlog waits durably in Redis.
          counts.forcedFlushes++;
          metrics.errors.inc({ component: 'microbatch', reason: 'forced_flush' });
          await commit([batcher.forceFlushOldest()!], true);
          continue;
        }
        const entries = await bus.readNew(stream, group, consumer, Math.min(capacity, readCount), BLOCK_MS);
        const nowMs = Date.now();
        if (entries.length > 0) await route(entries, nowMs);
        await commit(batcher.flush(Date.now()));
        if (nowMs >= nextLagAt) {
          nextLagAt = nowMs + LAG_EVERY_MS;
          const lag = await bus.lag(stream, group, Date.now());
          lagMs = lag.lagMs;
          metrics.consumerLagMs.set({ topic: stream, group, consumer }, lag.lagMs);
          metrics.pendingEntries.set({ topic: stream, group }, lag.pending);
        }
        await beat();
      }
      const stoppedBy = ctx.cancellationSignal.aborted ? 'cancelled' : 'max_run';
      await deps.jobs.finish(jobRunId, 'success', { ...counts });
      log.info('micro-batch consumer stopped', { stoppedBy, ...counts });
      const result: MicroBatchRunResult = { counts: { ...counts }, frontierMs: batcher.frontierMs, stoppedBy };
      // A cancelled activity has no result; its counts travel in the failure's details instead.
      if (stoppedBy === 'cancelled') throw new CancelledFailure('micro-batch consumer cancelled', [result]);
      return result;
    } catch (err) {
      if (!(err instanceof CancelledFailure)) {
        metrics.errors.inc({ component: 'microbatch', reason: 'activity_failure' });
        log.error('micro-batch consumer failed', { err });
        await deps.jobs.finish(jobRunId, 'failure', { ...counts }, (err as Error).message).catch(() => undefined);
      }
      throw err;
    } finally {
      metrics.consumerHeartbeat.remove({ topic: stream, consumer });
      metrics.consumerLagMs.remove({ topic: stream, group, consumer });
      metrics.pendingEntries.remove({ topic: stream, group });
      metrics.watermarkMs.remove({ topic: stream });
      await bus.close();
    }
  };
}
