import type { JobRunSink } from '../pipeline/contracts/index.js';
import type { Logger } from '../pipeline/telemetry/index.js';

export interface FinishRetry {
  /** First pause before trying again; doubles up to `maxDelayMs`. Default 1 s. */
  readonly firstDelayMs?: number;
  /** Default 10 s. */
  readonly maxDelayMs?: number;
  /** How long to keep trying; default 1 hour. */
  readonly retryForMs?: number;
}

/** The one code of a `finish` that can never succeed (the store's `JOB_RUN_NOT_FOUND`). */
const NOT_FOUND = 'JOB_RUN_NOT_FOUND';

/**
 * Ends an attempt's `job_runs` row, and keeps trying in the background while the store cannot be
 * reached. An attempt that fails because PostgreSQL is down cannot end its row then; left alone,
 * the row stays `running` until a later attempt abandons it, and for good when none comes (a
 * consumer drained during the outage). Resolves after the first try, so the attempt's failure is
 * not held up. The retries do not keep the process alive, and never fight a successor's
 * `markAbandoned`: the first terminal status wins.
 */
export async function finishJobRun(
  jobs: JobRunSink,
  log: Logger,
  run: { readonly id: number; readonly status: 'success' | 'failure'; readonly counts: Record<string, number>; readonly error?: string },
  retry: FinishRetry = {},
): Promise<void> {
  const { firstDelayMs = 1000, maxDelayMs = 10_000, retryForMs = 3_600_000 } = retry;
  const giveUpAt = Date.now() + retryForMs;
  const attempt = async (): Promise<unknown> => {
    try {
      await jobs.finish(run.id, run.status, run.counts, run.error);
      return undefined;
    } catch (err) {
      return err;
    }
  };
  const first = await attempt();
  if (first === undefined) return;
  if ((first as { code?: unknown }).code === NOT_FOUND) {
    log.warn('job run not ended: no such row', { jobRunId: run.id, err: first });
    return;
  }
  log.warn('cannot end the job run now; retrying in the background', { jobRunId: run.id, status: run.status, err: first });
  const again = (delayMs: number) => {
    const timer = setTimeout(() => {
      void attempt().then((err) => {
        if (err === undefined) log.info('job run ended after retrying', { jobRunId: run.id, status: run.status });
        else if (Date.now() + delayMs > giveUpAt) log.error('gave up ending the job run; the next attempt abandons it', { jobRunId: run.id, err });
        else again(Math.min(delayMs * 2, maxDelayMs));
      });
    }, delayMs);
    timer.unref(); // a worker shutting down does not wait for the store to come back
  };
  again(firstDelayMs);
}
