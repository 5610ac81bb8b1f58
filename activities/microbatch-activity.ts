import type { Bus, BusEntry } from '../pipeline/bus/index.js';
import { shardStream } from '../pipeline/bus/index.js';
import type { BarSink, JobRunSink, ShardLease, ShardPosition, ShardStore, UpsertCounts } from '../pipeline/contracts/index.js';
import { BarsRejectedError, intervalLabel } from '../pipeline/contracts/index.js';
import type { FeatureWindowSpec } from '../pipeline/features/index.js';
import { PositionTracker, rejectedBarLetters, ResumeGuard, routeEvents } from '../pipeline/routing/index.js';
import type { Logger, Metrics } from '../pipeline/telemetry/index.js';
import type { WindowFlush } from '../pipeline/windowing/index.js';
import { MicroBatcher } from '../pipeline/windowing/index.js';
import { addUpserts } from './counts.js';
import type { OutcomeTarget } from './entry-outcomes.js';
import { sendToDlq, settleRoutedEvents, zeroOutcomeMetrics } from './entry-outcomes.js';
import { finishJobRun } from './job-run-finish.js';
import { runShardConsumer } from './shard-consumer.js';
import { ShardFeatures } from './shard-features.js';
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
  /** `micro_batch.max_future_ms`: how far ahead of the wall clock an event's src_ts may be. */
  readonly maxFutureMs: number;
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
  /** Where bars and the shard's position are committed together, fenced by the owner's epoch. */
  readonly shards: ShardStore;
  readonly jobs: JobRunSink;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly microBatch: MicroBatchDefaults;
}

const AUDIT_EVERY_MS = 5000;

export function zeroMicroBatchCounts(): MicroBatchCounts {
  return {
    events: 0,
    accepted: 0,
    duplicates: 0,
    late: 0,
    invalid: 0,
    redelivered: 0,
    rejected: 0,
    windows: 0,
    bars: 0,
    inserted: 0,
    updated: 0,
    unchanged: 0,
    forcedFlushes: 0,
  };
}

/**
 * One shard's micro-batch consumer (on the shared {@link runShardConsumer} loop): the single owner
 * of `${stream}.${shard}` in its group. Windows flush by event-time watermark; a window's bars are
 * upserted, its feature snapshots published, then its entries acknowledged, and the
 * acknowledgement moves the durable frontier in the same bus transaction.
 */
export function createMicroBatchActivity(deps: MicroBatchDeps) {
  return async function runMicroBatchShard(input: MicroBatchInput): Promise<MicroBatchRunResult> {
    const d = deps.microBatch;
    const opts = {
      windowMs: input.windowMs ?? d.windowMs,
      allowLateMs: input.allowLateMs ?? d.allowLateMs,
      flushTimeoutMs: input.flushTimeoutMs ?? d.flushTimeoutMs,
      maxBufferedEvents: input.maxBufferedEvents ?? d.maxBufferedEvents,
    };
    const stream = shardStream(input.stream ?? d.stream, input.shard);
    const group = input.group ?? d.group;
    const shards = input.shards ?? d.shards;
    const maxFutureMs = input.maxFutureMs ?? d.maxFutureMs;
    const { metrics } = deps;
    const windowLabel = String(opts.windowMs);
    const interval = intervalLabel(opts.windowMs);
    const target: OutcomeTarget = { component: 'microbatch', stream, group, dlqStream: d.dlqStream, events: { lateStream: d.lateStream, topic: stream } };
    // `max_batch_size` caps one read (and so one routing/ack round); `max_buffered_events` caps memory.
    const consumerTarget = {
      role: 'microbatch' as const,
      stream,
      group,
      readCount: input.maxBatchSize ?? d.maxBatchSize,
      maxRunMs: input.maxRunMs ?? d.maxRunMs,
    };

    return runShardConsumer<MicroBatchRunResult>(deps, consumerTarget, async ({ bus, consumer, epoch, log, ctx, keepAlive }) => {
      const counts = zeroMicroBatchCounts();
      // Take the shard before anything else: a stale attempt stops here, before it can touch the
      // job rows, the store or the bus of its successor.
      const lease: ShardLease = { stream, group, owner: consumer, epoch };
      const stored = await deps.shards.acquire(lease);
      await deps.jobs.markAbandoned(consumer);
      const jobRunId = await deps.jobs.start({
        jobName: consumer,
        kind: 'microbatch',
        meta: { stream, group, interval, attempt: ctx.info.attempt, epoch: lease.epoch, workflowRunId: ctx.info.workflowExecution!.runId },
      });
      // The frontier stored with the bars; an owner upgraded from a release that kept it on the bus reads it there once.
      const frontierMs = stored?.frontierMs ?? (await bus.readCheckpoint(stream, group));
      // Refs are the entries, payloads included: a bar the store refuses is dead-lettered with them.
      const batcher = new MicroBatcher<BusEntry>({ ...opts, frontierMs });
      const resume = new ResumeGuard(stored, opts.windowMs, (a, b) => bus.compareIds(a, b));
      const features = new ShardFeatures(bus, shardStream(input.featuresStream ?? d.featuresStream, input.shard), d.featureWindows, metrics);
      const shardBars = { shard: input.shard, shards, windowMs: opts.windowMs };
      const warmed = await features.warm(deps.bars, shardBars);
      zeroOutcomeMetrics(metrics, target);
      metrics.errors.inc({ component: 'microbatch', reason: 'forced_flush' }, 0);
      const republished = await features.republish(deps.bars, stored, shardBars);
      log.info('micro-batch consumer started', {
        frontierMs,
        readId: stored?.readId,
        epoch: lease.epoch,
        featuresWarmedFromBars: warmed,
        republished,
        ...opts,
      });

      const position = new PositionTracker(stored, (a, b) => bus.compareIds(a, b));
      /** The position this owner stores with a commit: see {@link ShardPosition}. */
      const nextPosition = (firstWindowMs: number): ShardPosition =>
        position.next(
          batcher.frontierMs,
          batcher.openWindowFirstRefs().map((entry) => entry.id),
          firstWindowMs,
        );

      const commit = async (flushes: readonly WindowFlush<BusEntry>[], forced = false) => {
        if (flushes.length === 0) return;
        let bars = flushes.flatMap((f) => f.bars);
        // Bars and position in one fenced transaction; the acknowledgement after it is only an
        // optimisation (a lost one is recognised by the stored position on restart).
        const stored = nextPosition(flushes[0].windowStartMs);
        const deadIds = new Set<string>();
        let written: UpsertCounts | undefined;
        while (written === undefined) {
          try {
            const committing = bars;
            written = await keepAlive(() => deps.shards.commit(lease, committing, stored)); // timed by the store's onWrite
          } catch (err) {
            if (!(err instanceof BarsRejectedError) || err.rejected.length === 0) throw err;
            // The store refused some bars for their own values and wrote nothing: their entries go
            // to the DLQ (acknowledged there) before the commit whose position covers them, then
            // their neighbours commit. Each round drops at least one bar.
            const letters = rejectedBarLetters(flushes, err.rejected, stream);
            // Not counted again in microbatch_events_total: these entries were counted as accepted.
            await sendToDlq(bus, metrics, log, { component: target.component, stream, group, dlqStream: d.dlqStream }, letters.dead);
            counts.rejected += letters.dead.length;
            for (const id of letters.deadIds) deadIds.add(id);
            bars = bars.filter((bar) => !letters.refused.has(bar));
          }
        }
        await features.publish(bars);
        const ids = flushes.flatMap((f) => f.refs.map((entry) => entry.id));
        await bus.ack(stream, group, deadIds.size === 0 ? ids : ids.filter((id) => !deadIds.has(id)));
        const committedMs = Date.now();
        counts.windows += flushes.length;
        counts.bars += bars.length;
        addUpserts(counts, written);
        metrics.flushRows.inc({ window_ms: windowLabel }, written.inserted + written.updated);
        for (const bar of bars) metrics.flushTotal.inc({ window_ms: windowLabel, symbol: bar.symbol });
        // A window cut early for memory has no meaningful latency; it is counted as forced_flush.
        for (const f of forced ? [] : flushes) {
          metrics.windowLatencyMs.observe(Math.max(0, committedMs - Math.max(f.windowEndMs, f.lastArrivalMs)));
        }
      };

      let nextAuditAt = Date.now() + AUDIT_EVERY_MS;
      return {
        async process(entries, nowMs) {
          counts.events += entries.length;
          position.read(entries[entries.length - 1].id);
          const routed = routeEvents(entries, batcher, { sourceStream: stream, maxDeliveries: d.maxDeliveries, resume, maxFutureMs }, nowMs);
          counts.redelivered += routed.redelivered.length;
          counts.accepted += routed.accepted;
          counts.duplicates += routed.duplicates;
          counts.invalid += routed.dead.length;
          counts.late += routed.late.length;
          await settleRoutedEvents(bus, metrics, log, target, routed);
          // Already in stored bars (a lost acknowledgement, a crashed attempt): acknowledged, nothing rewritten.
          await bus.ack(
            stream,
            group,
            routed.redelivered.map((e) => e.id),
          );
        },
        afterRead: (nowMs) => commit(batcher.flush(nowMs)),
        room: () => opts.maxBufferedEvents - batcher.bufferedRefs,
        async relieve() {
          // Memory bound reached (a single window holds more events than max_buffered_events):
          // the oldest window is cut rather than holding unbounded events. Below that bound the
          // shard simply reads less, and the backlog waits durably on the bus.
          counts.forcedFlushes++;
          metrics.errors.inc({ component: 'microbatch', reason: 'forced_flush' });
          await commit([batcher.forceFlushOldest()!], true);
        },
        heartbeat({ lastId, lagMs }): MicroBatchHeartbeat {
          const snap = batcher.snapshot();
          if (batcher.watermarkMs !== undefined) metrics.watermarkMs.set({ topic: stream }, batcher.watermarkMs);
          return {
            consumer,
            stream,
            frontierMs: batcher.frontierMs,
            watermarkMs: batcher.watermarkMs,
            ...(batcher.frontierMs === undefined ? {} : { frontierIso: new Date(batcher.frontierMs).toISOString() }),
            ...(batcher.watermarkMs === undefined ? {} : { watermarkIso: new Date(batcher.watermarkMs).toISOString() }),
            lastId,
            openWindows: snap.openWindows,
            bufferedEvents: snap.bufferedRefs,
            lagMs,
            counts: { ...counts },
            jobRunId,
          };
        },
        async afterHeartbeat() {
          // The audit row keeps counts current, so a run killed mid-way still shows how far it got.
          if (Date.now() < nextAuditAt) return;
          nextAuditAt = Date.now() + AUDIT_EVERY_MS;
          await deps.jobs.heartbeat(jobRunId, { ...counts });
        },
        result: (stoppedBy) => ({ counts: { ...counts }, frontierMs: batcher.frontierMs, stoppedBy }),
        stopped: (result) => deps.jobs.finish(jobRunId, 'success', { ...result.counts }),
        failed: (err) => finishJobRun(deps.jobs, log, { id: jobRunId, status: 'failure', counts: { ...counts }, error: (err as Error).message }),
        close: () => {
          metrics.watermarkMs.remove({ topic: stream });
          return Promise.resolve();
        },
      };
    });
  };
}
