import type { Client } from '@temporalio/client';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { RECOVERY_SCHEDULE_ID } from '../workflows/index.js';
import { PAUSED_BY_DOWN, setRecoveryPaused } from './recover-command.js';
import type { DrainedWorkflow } from './stream-commands.js';
import { drainPipeline, formatDrained } from './stream-commands.js';

export interface DownOptions {
  /** How long to wait, in all, for the drained workflows to complete. */
  readonly timeoutMs: number;
  readonly write: (text: string) => void;
}

export interface DownResult {
  readonly recovery: 'paused' | 'missing';
  readonly drained: readonly DrainedWorkflow[];
  /** The workflows still running at the deadline: exit code 1 names them. */
  readonly notStopped: readonly string[];
}

/**
 * `mdp down`: stops the live pipeline. Pauses the `mdp-recovery` schedule first (with no consumer
 * there is nothing to sweep, and a paused schedule adds no runs to the workflow list), then drains
 * the producers and the consumers as `mdp stream drain` does, waiting up to `timeoutMs` for their
 * workflows to complete. A consumer drains through a worker (`mdp up`'s, or any on the task queue):
 * without one it cannot stop and is reported. The workers keep running; `mdp up` starts it all again.
 */
export async function down(client: Client, config: StreamingConfig, options: DownOptions): Promise<DownResult> {
  const { write } = options;
  const recovery = (await setRecoveryPaused(client, true, PAUSED_BY_DOWN)) ? 'paused' : 'missing';
  write(recovery === 'paused' ? `${RECOVERY_SCHEDULE_ID}: ${PAUSED_BY_DOWN}\n` : `${RECOVERY_SCHEDULE_ID}: no such schedule, nothing to pause\n`);
  const drained = await drainPipeline(client, config, { timeoutMs: options.timeoutMs });
  for (const d of drained) write(`${formatDrained(d)}\n`);
  const notStopped = drained.filter((d) => d.status === 'still running').map((d) => d.workflowId);
  const stopped = drained.filter((d) => d.status !== 'not running' && d.status !== 'still running').length;
  write(
    notStopped.length === 0
      ? `stopped ${stopped} workflow(s); the pipeline is down (workers keep running; mdp up starts it again)\n`
      : `${notStopped.length} workflow(s) did not stop within ${options.timeoutMs / 1000}s: is a worker running on task queue ${config.temporal.task_queue}? (mdp status shows them)\n`,
  );
  return { recovery, drained, notStopped };
}
