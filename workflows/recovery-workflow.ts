import { getExternalWorkflowHandle, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { RecoveryInput, RecoveryReport } from '../activities/types.js';
import { recheckPendingSignal } from './definitions.js';

const { sweepPendingEntries } = proxyActivities<Activities>({
  // One pass over every shard's pending list: seconds, even for thousands of entries.
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 5 },
});

/** Id of the Temporal Schedule that runs the sweep every `recovery.interval`. */
export const RECOVERY_SCHEDULE_ID = 'mdp-recovery';

/**
 * Input of {@link consumerRecoveryWorkflow}, JSON — `{}` takes everything from the worker's config;
 * e.g. `temporal workflow start --task-queue mdp-pipeline --type consumerRecoveryWorkflow
 *   --workflow-id mdp-recovery-now --input '{"minIdleMs":0}'`.
 */
export interface RecoveryWorkflowInput extends RecoveryInput {
  /** Signal `recheckPending` to owners that were given entries (default true). */
  readonly notifyOwners?: boolean;
}

export interface RecoveryWorkflowResult extends RecoveryReport {
  /** Owners told to re-read their pending entries; those not running pick them up when they start. */
  readonly notified: readonly string[];
}

/**
 * One sweep of the consumer groups' pending entries (`XPENDING` idle → claim for the shard's owner,
 * or DLQ past `max_deliveries`); see `sweepPendingEntries`. Short-lived: the `mdp-recovery` Schedule
 * runs it periodically and `mdp stream recover` on demand.
 *
 * An owner re-reads its pending list when its activity run starts; the workflow therefore signals
 * `recheckPending` to every owner that was given entries, so a consumer that handles the signal
 * restarts its run at once. Either way the entries stay pending under the owner's name and are
 * processed by its next run (at the latest after `maxRunMs`).
 */
export async function consumerRecoveryWorkflow(input: RecoveryWorkflowInput = {}): Promise<RecoveryWorkflowResult> {
  const { notifyOwners = true, ...sweepInput } = input;
  const report = await sweepPendingEntries(sweepInput);
  const notified: string[] = [];
  if (notifyOwners) {
    const owners = [...new Set(report.streams.filter((s) => s.claimed > 0).map((s) => s.owner))];
    for (const owner of owners) {
      try {
        await getExternalWorkflowHandle(owner).signal(recheckPendingSignal);
        notified.push(owner);
      } catch {
        // The owner is not running: it re-reads its pending entries first thing when it starts.
      }
    }
  }
  return { ...report, notified };
}
