import { proxyActivities, setWorkflowOptions } from '@temporalio/workflow';
import { onVersionedWorkers } from './versioning.js';
import type { Activities } from '../activities/index.js';
import type { RecoveryInput, RecoveryReport } from '../activities/types.js';

const { sweepPendingEntries } = proxyActivities<Activities>({
  // One pass over every shard's pending list: seconds, even for thousands of entries.
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 5 },
});

/** Id of the Temporal Schedule that runs the sweep every `recovery.interval` (default 5m). */
export const RECOVERY_SCHEDULE_ID = 'mdp-recovery';

/**
 * Input of {@link consumerRecoveryWorkflow}, JSON — `{}` takes everything from the worker's config;
 * e.g. `temporal workflow start --task-queue mdp-pipeline --type consumerRecoveryWorkflow
 *   --workflow-id mdp-recovery-now --input '{"minIdleMs":0}'`.
 */
export type RecoveryWorkflowInput = RecoveryInput;

export type RecoveryWorkflowResult = RecoveryReport;

/**
 * One sweep of the consumer groups' pending entries (`XPENDING` idle → re-appended for the shard's
 * owner, or DLQ past `max_deliveries`); see `sweepPendingEntries`. Short-lived: the `mdp-recovery`
 * Schedule runs it periodically (with `skipWhenNoConsumers`: skipped while no shard owner runs)
 * and `mdp stream recover` on demand. A re-appended entry is a new entry to its owner, which reads
 * it without a restart.
 */
export async function consumerRecoveryWorkflow(input: RecoveryWorkflowInput = {}): Promise<RecoveryWorkflowResult> {
  return sweepPendingEntries(input);
}

// One sweep takes seconds: it finishes on the code it started on.
setWorkflowOptions(onVersionedWorkers('PINNED'), consumerRecoveryWorkflow);
