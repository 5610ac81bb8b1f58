import type { Client } from '@temporalio/client';
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy } from '@temporalio/client';
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
 * Creates the `mdp-recovery` Temporal Schedule, which starts `consumerRecoveryWorkflow` (input `{}`:
 * the worker's config decides idle threshold and delivery limit) every `recovery.interval` on the
 * pipeline's task queue; when it exists already, updates its interval and action to the config and
 * keeps its paused/unpaused state. Overlapping runs are skipped.
 */
export async function ensureRecoverySchedule(client: Client, config: StreamingConfig, scheduleId = RECOVERY_SCHEDULE_ID): Promise<RecoverySchedule> {
  const intervalMs = recoveryIntervalMs(config);
  const spec = { intervals: [{ every: intervalMs }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'consumerRecoveryWorkflow',
    workflowId: scheduleId,
    taskQueue: config.temporal.task_queue,
    args: [{}],
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
