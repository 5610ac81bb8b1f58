import { Context } from '@temporalio/activity';
import type { Bus } from '../pipeline/bus/index.js';
import { shardStream } from '../pipeline/bus/index.js';
import { shardOwnerId } from '../pipeline/contracts/index.js';
import type { Logger, Metrics } from '../pipeline/telemetry/index.js';
import type { InferenceDefaults } from './inference-activity.js';
import type { MicroBatchDefaults } from './microbatch-activity.js';
import { sweepStream } from './recovery-sweep.js';
import type { StreamRef } from './recovery-sweep.js';
import { activityClient, runningWorkflows } from './running-owners.js';
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

/** A target's stream, group and owner (the consumer named after the shard's workflow id). */
function streamRef(d: RecoveryDefaults, target: RecoveryTarget): StreamRef {
  const base = target.stream ?? (target.role === 'microbatch' ? d.microBatch.stream : d.inference.featuresStream);
  const group = target.group ?? (target.role === 'microbatch' ? d.microBatch.group : d.inference.inferenceGroup);
  return { role: target.role, shard: target.shard, stream: shardStream(base, target.shard), group, owner: shardOwnerId(target.role, base, target.shard) };
}

const NO_CONSUMERS = 'no consumers running';

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
 *
 * With `skipWhenNoConsumers` (the schedule's sweeps) it first describes the shards' owner
 * workflows by their ids and, when none runs, returns at once with `skipped: "no consumers
 * running"`: nobody would read a re-appended entry, and a stopped pipeline should not wake the bus
 * every few minutes. When the check itself fails, it sweeps (the sweep is the safety net).
 */
export function createRecoveryActivity(deps: RecoveryDeps) {
  return async function sweepPendingEntries(input: RecoveryInput = {}): Promise<RecoveryReport> {
    const d = deps.recovery;
    const minIdleMs = input.minIdleMs ?? d.minIdleMs;
    const maxDeliveries = input.maxDeliveries ?? d.microBatch.maxDeliveries;
    const maxEntries = input.maxEntries ?? DEFAULT_MAX_ENTRIES;
    const refs = (input.targets ?? defaultTargets(d)).map((target) => streamRef(d, target));
    const heartbeat = activityHeartbeat();
    const log = deps.log.child({ activity: 'sweepPendingEntries' });
    const zero = { requeued: 0, deadLettered: 0, skippedOwned: 0, skippedRecent: 0 };
    let ownersRunning: string[] | undefined;
    if (input.skipWhenNoConsumers) {
      ownersRunning = await runningOwners(refs, log);
      if (ownersRunning?.length === 0) {
        log.debug('recovery sweep skipped: no consumers running', { owners: refs.length });
        return { skipped: NO_CONSUMERS, ownersRunning, minIdleMs, maxDeliveries, dlqStream: d.microBatch.dlqStream, streams: [], totals: zero };
      }
    }
    const metrics = deps.metrics;
    for (const reason of ['orphan_requeued', 'max_deliveries']) metrics.errors.inc({ component: 'recovery', reason }, 0);
    const bus = deps.openBus();
    const streams: RecoveryStreamReport[] = [];
    try {
      for (const ref of refs) {
        const report = await sweepStream(bus, ref, { minIdleMs, maxDeliveries, maxEntries, dlqStream: d.microBatch.dlqStream }, log);
        streams.push(report);
        if (report.requeued > 0) metrics.errors.inc({ component: 'recovery', reason: 'orphan_requeued' }, report.requeued);
        if (report.deadLettered > 0) metrics.errors.inc({ component: 'recovery', reason: 'max_deliveries' }, report.deadLettered);
        heartbeat({ streamsDone: streams.length, streams: refs.length });
      }
    } finally {
      await bus.close();
    }
    const sum = (key: keyof typeof zero) => streams.reduce((n, s) => n + s[key], 0);
    const totals = { requeued: sum('requeued'), deadLettered: sum('deadLettered'), skippedOwned: sum('skippedOwned'), skippedRecent: sum('skippedRecent') };
    if (totals.requeued > 0 || totals.deadLettered > 0) log.warn('recovery sweep moved pending entries', { ...totals, minIdleMs, maxDeliveries });
    else log.debug('recovery sweep found nothing to move', { ...totals });
    const kafka = bus.kind === 'kafka';
    return {
      ...(ownersRunning ? { ownersRunning } : {}),
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

/** The owners of `refs` that run, or undefined (logged) when that cannot be told: no client, Temporal not answering. */
async function runningOwners(refs: readonly StreamRef[], log: Logger): Promise<string[] | undefined> {
  const client = activityClient();
  if (!client) return undefined;
  try {
    return await runningWorkflows(client, [...new Set(refs.map((r) => r.owner))]);
  } catch (err) {
    log.warn('recovery sweep could not tell whether consumers run; sweeping', { error: (err as Error).message });
    return undefined;
  }
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
