import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { abortableSleep } from '../pipeline/contracts/index.js';

// Written the same way by the workflows' current details; kept importable from here for the commands.
export { formatDuration } from '../pipeline/contracts/index.js';

/** A progress bar of `fraction` (0..1) and its percentage: `[#####-----]  45%`. */
export function progressBar(fraction: number, width = 24): string {
  const clamped = Math.max(0, Math.min(1, fraction));
  const filled = Math.round(clamped * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.round(clamped * 100)).padStart(3)}%`;
}

/** The innermost message of an error chain: a failed workflow's result error only says "Workflow execution failed". */
export function rootCause(err: unknown): string {
  let e = err instanceof Error ? err : new Error(String(err));
  while (e.cause instanceof Error) e = e.cause;
  return e.message;
}

/** How {@link followWorkflow} shows one kind of job. */
export interface FollowFormat<P> {
  /** `replay`, `backfill`: the job's name in messages. */
  readonly noun: string;
  /** What to do when the id is unknown, e.g. `start one with --dataset NAME --from D --to D`. */
  readonly startHint: string;
  /** One progress line from the `progress` query (or the finished result). */
  readonly line: (progress: P) => string;
  /** The closing line of a finished job. */
  readonly summary: (workflowId: string, result: P) => string;
}

/**
 * Polls a workflow's `progress` query and redraws one line until the workflow closes, or until
 * `signal` aborts (Ctrl-C: detach only — the job keeps running on the workers).
 */
export async function followWorkflow<P>(
  client: Client,
  workflowId: string,
  format: FollowFormat<P>,
  write: (text: string) => void,
  options: { signal?: AbortSignal; everyMs?: number; tty?: boolean } = {},
): Promise<'finished' | 'detached' | 'failed'> {
  const handle = client.workflow.getHandle(workflowId);
  const tty = options.tty ?? false;
  let last = '';
  const show = (line: string, final = false) => {
    if (tty) write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
    else if (line !== last || final) write(line + '\n');
    last = line;
  };
  for (;;) {
    if (options.signal?.aborted) {
      if (tty) write('\n');
      return 'detached';
    }
    let status, raw;
    try {
      ({ status, raw } = await handle.describe());
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new Error(`no ${format.noun} workflow ${workflowId} (${format.startHint})`);
      throw err;
    }
    if (status.name !== 'RUNNING') {
      try {
        const result = (await handle.result()) as P;
        show(format.line(result), true);
        write(format.summary(workflowId, result) + '\n');
        return 'finished';
      } catch (err) {
        show(`${format.noun} ${workflowId} ${status.name.toLowerCase()}: ${rootCause(err)}`, true);
        return 'failed';
      }
    }
    // A failing activity being retried (e.g. TWS unreachable) says so, instead of a frozen line.
    const retrying = raw.pendingActivities?.find((a) => (a.attempt ?? 0) > 1 && a.lastFailure?.message);
    const retry = retrying ? ` | retrying (attempt ${retrying.attempt}): ${retrying.lastFailure!.message}` : '';
    try {
      show(format.line(await handle.query<P>('progress')) + retry);
    } catch {
      show(`waiting for a worker to pick up the ${format.noun}…`);
    }
    await abortableSleep(options.everyMs ?? 500, options.signal);
  }
}
