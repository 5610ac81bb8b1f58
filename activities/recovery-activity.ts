import { Context } from '@temporalio/activity';
import type { Bus } from '../pipeline/bus/index.js';
import { shardStream } from '../pipeline/bus/index.js';
import { shardOwnerId } from '../pipeline/contracts/index.js';
import type { Logger, Metrics } from '../pipeline/telemetry/index.js';
import type { InferenceDefaults } from './inference-activity.js';
import type { MicroBatchDefaults } from './microbatch-activity.js';
import { sweepStream } from './recovery-sweep.js';
import type { RecoveryInput, RecoveryReport, RecoveryStreamReport, RecoveryTarget } from './types.js';

export { RECOVERY_CONSUMER, RECOVERY_REQUEUE_CONSUMER } from './recovery-sweep.js';

/** Settings the sweep needs beyond its input (from the worker's config): both roles' streams, `recovery.*`. */
export interface RecoveryDefaults {
  /** The event streams and the micro-batch group; their DLQ, `max_deliveries` and shard count. */
  readonly microBatch: Pick<MicroBatchDefaults, 'stream' | 'group' | 'dlqStream' | 'maxDeliveries' | 'shards'>;
  /** The feature streams and the inference group. */
  readonly inference: Pick<InferenceDefaults, 'featuresStream' | 'inferenceGroup'>;
  /** `recovery.min_idle_ms`. */
  readonly minIdleMs: number;
}

export interface RecoveryDeps {
  readonly openBus: () => Bus;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly recovery: RecoveryDefaults;
}

const DEFAULT_MAX_ENTRIES = 10_000;

/** Every shard of both roles of the config, when the input names none. */
function defaultTargets(d: RecoveryDefaults): RecoveryTarget[] {
  const targets: RecoveryTarget[] = [];
  for (let shard = 0; shard < d.microBatch.shards; shard++) targets.push({ role: 'microbatch', shard });
  for (let shard = 0; shard < d.microBatch.shards; shard++) targets.push({ role: 'inference', shard });
  return targets;
}

/**
 * The pending-entry sweep behind `consumerRecoveryWorkflow`. For each shard stream of the events
 * (micro-batch group) and the features (inference group) it looks at the group's pending entries:
 * - held by the shard's owner (the consumer named after its workflow id): left alone — the owner
 *   holds them in open windows, or will re-read them when its next activity run starts;
 * - held by any other consumer (a dead or renamed one) and idle at least `minIdleMs`: delivered more
 *   than `maxDeliveries` times → written to the DLQ with reason and delivery count, then
 *   acknowledged; otherwise re-appended to the stream (a copy with a new id) and acknowledged in one
 *   transaction, so the owner reads it as a new entry. It is not handed to the owner as it is: the
 *   owner's position, stored with its bars, covers entries by id, and this id was read elsewhere.
 * Idle time is checked again atomically by XCLAIM, so an entry a live consumer touched meanwhile
 * is not taken from it.
 */
export function createRecoveryActivity(deps: RecoveryDeps) {
  return async function sweepPendingEntries(input: RecoveryInput = {}): Promise<RecoveryReport> {
    const d = deps.recovery;
    const minIdleMs = input.minIdleMs ?? d.minIdleMs;
    const maxDeliveries = input.maxDeliveries ?? d.microBatch.maxDeliveries;
    const maxEntries = input.maxEntries ?? DEFAULT_MAX_ENTRIES;
    const targets = input.targets ?? defaultTargets(d);
    const heartbeat = activityHeartbeat();
    const log = deps.log.child({ activity: 'sweepPendingEntries' });
    const metrics = deps.metrics;
    for (const reason of ['orphan_requeued', 'max_deliveries']) metrics.errors.inc({ component: 'recovery', reason }, 0);
    const bus = deps.openBus();
    const streams: RecoveryStreamReport[] = [];
    try {
      for (const target of targets) {
        const base = target.stream ?? (target.role === 'microbatch' ? d.microBatch.stream : d.inference.featuresStream);
        const group = target.group ?? (target.role === 'microbatch' ? d.microBatch.group : d.inference.inferenceGroup);
        const stream = shardStream(base, target.shard);
        const owner = shardOwnerId(target.role, base, target.shard);
        const report = await sweepStream(
          bus,
          { role: target.role, shard: target.shard, stream, group, owner },
          { minIdleMs, maxDeliveries, maxEntries, dlqStream: d.microBatch.dlqStream },
          log,
        );
        streams.push(report);
        if (report.requeued > 0) metrics.errors.inc({ component: 'recovery', reason: 'orphan_requeued' }, report.requeued);
        if (report.deadLettered > 0) metrics.errors.inc({ component: 'recovery', reason: 'max_deliveries' }, report.deadLettered);
        heartbeat({ streamsDone: streams.length, streams: targets.length });
      }
    } finally {
      await bus.close();
    }
    const sum = (key: 'requeued' | 'deadLettered' | 'skippedOwned' | 'skippedRecent') => streams.reduce((n, s) => n + s[key], 0);
    const totals = { requeued: sum('requeued'), deadLettered: sum('deadLettered'), skippedOwned: sum('skippedOwned'), skippedRecent: sum('skippedRecent') };
    if (totals.requeued > 0 || totals.deadLettered > 0) log.warn('recovery sweep moved pending entries', { ...totals, minIdleMs, maxDeliveries });
    else log.debug('recovery sweep found nothing to move', { ...totals });
    const kafka = bus.kind === 'kafka';
    return {
      minIdleMs,
      maxDeliveries,
      dlqStream: d.microBatch.dlqStream,
      bus: bus.kind,
      ...(kafka ? { note: KAFKA_NOTE } : {}),
      streams,
      totals,
    };
  };
}

const KAFKA_NOTE =
  'bus is kafka: each partition has one owner (its shard workflow), which re-reads its own unacknowledged records on restart; ' +
  'there are no orphaned pending entries, so nothing was claimed or moved. Per-partition pending records and lag are reported.';

/** Heartbeats when running as an activity (a no-op when called directly, e.g. from a unit test). */
function activityHeartbeat(): (details: unknown) => void {
  try {
    const ctx = Context.current();
    return (details) => ctx.heartbeat(details);
  } catch {
    return () => undefined;
  }
}
