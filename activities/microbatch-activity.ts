import type { Bus } from '../pipeline/bus/index.js';
import { shardOf, shardStream } from '../pipeline/bus/index.js';
import type { BarSink, JobRunSink } from '../pipeline/contracts/index.js';
import { intervalLabel } from '../pipeline/contracts/index.js';
import type { FeatureWindowSpec } from '../pipeline/features/index.js';
import { FeatureEngine, featureWarmSpanMs } from '../pipeline/features/index.js';
import { routeEvents } from '../pipeline/routing/index.js';
import type { Logger, Metrics } from '../pipeline/telemetry/index.js';
import type { WindowFlush } from '../pipeline/windowing/index.js';
import { MicroBatcher } from '../pipeline/windowing/index.js';
import { addUpserts } from './counts.js';
import type { OutcomeTarget } from './entry-outcomes.js';
import { settleRoutedEvents, zeroOutcomeMetrics } from './entry-outcomes.js';
import { finishJobRun } from './job-run-finish.js';
import { runShardConsumer } from './shard-consumer.js';
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
  readonly jobs: JobRunSink;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly microBatch: MicroBatchDefaults;
}

const AUDIT_EVERY_MS = 5000;

export function zeroMicroBatchCounts(): MicroBatchCounts {
  return { events: 0, accepted: 0, duplicates: 0, late: 0, invalid: 0, windows: 0, bars: 0, inserted: 0, updated: 0, unchanged: 0, forcedFlushes: 0 };
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
    const { metrics } = deps;
    const windowLabel = String(opts.windowMs);
    const interval = intervalLabel(opts.windowMs);
    const target: OutcomeTarget = { component: 'microbatch', stream, group, dlqStream: d.dlqStream, events: { lateStream: d.lateStream, topic: stream } };
    // `max_batch_size` caps one read (and so one routing/ack round); `max_buffered_events` caps memory.
    const consumerTarget = { role: 'microbatch' as const, stream, group, readCount: input.maxBatchSize ?? d.maxBatchSize, maxRunMs: input.maxRunMs ?? d.maxRunMs };

    return runShardConsumer<MicroBatchRunResult>(deps, consumerTarget, async ({ bus, consumer, log, ctx }) => {
      const counts = zeroMicroBatchCounts();
      await deps.jobs.markAbandoned(consumer);
      const jobRunId = await deps.jobs.start({
        jobName: consumer, kind: 'microbatch',
        meta: { stream, group, interval, attempt: ctx.info.attempt, workflowRunId: ctx.info.workflowExecution!.runId },
      });
      const frontierMs = await bus.readCheckpoint(stream, group);
      const batcher = new MicroBatcher<string>({ ...opts, frontierMs });
      const featuresStream = shardStream(input.featuresStream ?? d.featuresStream, input.shard);
      const features = new FeatureEngine({ windows: d.featureWindows });
      const warmed = await warmFeatures(features, deps.bars, d.featureWindows, opts.windowMs, input.shard, shards);
      zeroOutcomeMetrics(metrics, target);
      metrics.errors.inc({ component: 'microbatch', reason: 'forced_flush' }, 0);
      log.info('micro-batch consumer started', { frontierMs, featuresWarmedFromBars: warmed, ...opts });

      const commit = async (flushes: readonly WindowFlush<string>[], forced = false) => {
        if (flushes.length === 0) return;
        const bars = flushes.flatMap((f) => f.bars);
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
        await bus.ackWithCheckpoint(stream, group, flushes.flatMap((f) => f.refs), batcher.frontierMs ?? flushes[flushes.length - 1].windowEndMs);
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
          const routed = routeEvents(entries, batcher, { sourceStream: stream, maxDeliveries: d.maxDeliveries }, nowMs);
          counts.accepted += routed.accepted;
          counts.duplicates += routed.duplicates;
          counts.invalid += routed.dead.length;
          counts.late += routed.late.length;
          await settleRoutedEvents(bus, metrics, log, target, routed);
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
            consumer, stream, frontierMs: batcher.frontierMs, watermarkMs: batcher.watermarkMs, lastId,
            openWindows: snap.openWindows, bufferedEvents: snap.bufferedRefs, lagMs, counts: { ...counts }, jobRunId,
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
