import type { Client } from '@temporalio/client';
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { parseDurationMs } from '../pipeline/contracts/index.js';
import type { RecoveryWorkflowInput, RecoveryWorkflowResult } from '../workflows/index.js';
import { RECOVERY_SCHEDULE_ID } from '../workflows/index.js';
import { legibleStart, recoveryLegibility } from './workflow-summaries.js';

/** Temporal's shortest catch-up window. */
const MIN_CATCHUP_MS = 10_000;

export interface RecoverySchedule {
  readonly scheduleId: string;
  /** True when created now, false when an existing schedule was updated to the config. */
  readonly created: boolean;
  readonly intervalMs: number;
  readonly nextRunAt: Date | undefined;
}

/** `recovery.interval` in ms (validated by the config loader). */
export function recoveryIntervalMs(config: StreamingConfig): number {
  const ms = parseDurationMs(config.recovery.interval);
  if (ms === undefined || ms <= 0) throw new Error(`recovery.interval must be a duration such as "1m" (got ${JSON.stringify(config.recovery.interval)})`);
  return ms;
}

/**
 * Input of the scheduled sweeps: the worker's config decides idle threshold and delivery limit, and
 * a sweep with no consumer running returns at once ("skipped: no consumers running").
 */
export const SCHEDULED_RECOVERY_INPUT: RecoveryWorkflowInput = { skipWhenNoConsumers: true };

/**
 * Creates the `mdp-recovery` Temporal Schedule, which starts `consumerRecoveryWorkflow` (input
 * {@link SCHEDULED_RECOVERY_INPUT}) every `recovery.interval` on the pipeline's task queue; when it
 * exists already, updates its interval and action to the config and keeps its paused/unpaused
 * state. Overlapping runs are skipped.
 */
export async function ensureRecoverySchedule(client: Client, config: StreamingConfig, scheduleId = RECOVERY_SCHEDULE_ID): Promise<RecoverySchedule> {
  const intervalMs = recoveryIntervalMs(config);
  const spec = { intervals: [{ every: intervalMs }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'consumerRecoveryWorkflow',
    workflowId: scheduleId,
    taskQueue: config.temporal.task_queue,
    args: [SCHEDULED_RECOVERY_INPUT],
    // A sweep takes seconds; one stuck without a worker must not pile up.
    workflowExecutionTimeout: Math.max(intervalMs, 60_000) * 5,
    ...(await legibleStart(client, recoveryLegibility(config))),
  };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: Math.max(intervalMs, MIN_CATCHUP_MS) };
  let created = true;
  try {
    await client.schedule.create({ scheduleId, spec, action, policies, memo: { purpose: 'mdp pending-entry recovery sweep' } });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    created = false;
    await client.schedule.getHandle(scheduleId).update((previous) => ({
      spec,
      action,
      policies,
      state: { paused: previous.state.paused, ...(previous.state.note === undefined ? {} : { note: previous.state.note }) },
    }));
  }
  const described = await client.schedule.getHandle(scheduleId).describe();
  return { scheduleId, created, intervalMs, nextRunAt: described.info.nextActionTimes[0] };
}

/** Why `mdp up` pauses the schedule when it stops (the schedule's note, shown by `temporal schedule describe`). */
export const PAUSED_BY_UP = 'paused by mdp up on exit: its worker stopped, and a sweep with no worker would only wait in the workflow list; mdp up unpauses it';
/** Why `mdp down` pauses it. */
export const PAUSED_BY_DOWN = 'paused by mdp down: the pipeline is drained, no consumer runs to sweep for; mdp up unpauses it';
export const UNPAUSED_BY_UP = 'unpaused by mdp up';

/**
 * Pauses or unpauses the recovery schedule with `note`; false when there is no schedule (`mdp up`
 * never ran, or it was deleted), which is not an error: there is nothing to run.
 */
export async function setRecoveryPaused(client: Client, paused: boolean, note: string, scheduleId = RECOVERY_SCHEDULE_ID): Promise<boolean> {
  const handle = client.schedule.getHandle(scheduleId);
  try {
    if (paused) await handle.pause(note);
    else await handle.unpause(note);
    return true;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return false;
    throw err;
  }
}

/** Runs one sweep now (`mdp stream recover`) and waits for its report. */
export async function runRecovery(
  client: Client,
  config: StreamingConfig,
  input: RecoveryWorkflowInput = {},
  workflowId = `${RECOVERY_SCHEDULE_ID}-manual-${Date.now()}`,
): Promise<{ workflowId: string; result: RecoveryWorkflowResult }> {
  const handle = await client.workflow.start('consumerRecoveryWorkflow', {
    taskQueue: config.temporal.task_queue,
    workflowId,
    args: [input],
    // Without a worker the sweep would wait forever; it gives up instead.
    workflowExecutionTimeout: '10 minutes',
  });
  return { workflowId, result: (await handle.result()) as RecoveryWorkflowResult };
}

/** Human-readable lines of a sweep's report: one per stream that had pending entries, then totals. */
export function formatRecoveryReport(result: RecoveryWorkflowResult): string[] {
  if (result.skipped !== undefined) return [`recovery sweep skipped: ${result.skipped}`];
  if (result.bus === 'kafka') {
    // Nothing to claim on Kafka: report where each group is on each partition.
    return [
      `recovery on kafka: ${result.note ?? ''}`,
      ...result.streams
        .filter((s) => !s.missing)
        .map(
          (s) =>
            `  ${s.stream} (${s.group}, owner ${s.owner}): pending ${s.pending} (the owner re-reads them if it restarts), not yet delivered ${s.undelivered ?? 0}, lag ${((s.lagMs ?? 0) / 1000).toFixed(1)}s`,
        ),
    ];
  }
  const lines: string[] = [];
  for (const s of result.streams) {
    if (s.missing) continue;
    if (s.pending === 0) continue;
    lines.push(
      `  ${s.stream} (${s.group}, owner ${s.owner}): pending ${s.pending}, re-appended ${s.requeued}, dead-lettered ${s.deadLettered}, owner's own ${s.skippedOwned}, too recent ${s.skippedRecent}${s.truncated ? ' (more left for the next sweep)' : ''}`,
    );
  }
  const t = result.totals;
  const streams = result.streams.filter((s) => !s.missing).length;
  lines.unshift(
    `recovery sweep over ${streams} stream(s) (idle >= ${result.minIdleMs} ms, max_deliveries ${result.maxDeliveries}): re-appended ${t.requeued}, dead-lettered ${t.deadLettered} to ${result.dlqStream}, left with their owner ${t.skippedOwned}, too recent ${t.skippedRecent}`,
  );
  return lines;
}
