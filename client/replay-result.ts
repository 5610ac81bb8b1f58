import type { Client } from '@temporalio/client';
import type { ReplayProgress } from '../workflows/index.js';
import { rootCause } from './follow-workflow.js';

/** What `mdp stream replay -o json` prints once it stops following: the replay's state and its counts. */
export interface ReplayResult {
  readonly workflowId: string;
  /** `finished` / `failed` (the replay ended), `detached` (Ctrl-C: it keeps running). */
  readonly outcome: 'finished' | 'detached' | 'failed';
  /** Temporal's status of the run: `COMPLETED`, `FAILED`, `RUNNING`, … */
  readonly status: string;
  /** The final result, or the last progress of a detached replay. */
  readonly progress?: ReplayProgress;
  readonly error?: string;
}

/** The result of a replay the CLI followed (see {@link ReplayResult}). */
export async function replayResult(client: Client, workflowId: string, outcome: ReplayResult['outcome']): Promise<ReplayResult> {
  const handle = client.workflow.getHandle(workflowId);
  const { status } = await handle.describe();
  const base = { workflowId, outcome, status: status.name };
  if (status.name === 'RUNNING') {
    const progress = await handle.query<ReplayProgress>('progress').catch(() => undefined);
    return progress ? { ...base, progress } : base;
  }
  try {
    return { ...base, progress: (await handle.result()) as ReplayProgress };
  } catch (err) {
    return { ...base, error: rootCause(err) };
  }
}
