import type { ActivityOptions } from '@temporalio/workflow';
import { ActivityCancellationType } from '@temporalio/workflow';

/**
 * The long-running, heartbeating loops: shard consumers and the producer. A dead worker is noticed
 * by the heartbeat timeout (workers send heartbeats at least every second, see `WORKER_TUNING`),
 * and the next attempt starts at most `maximumInterval` after a failure, however many attempts
 * failed before. Issue 9 measured 40 s to recover from repeated kills (10 s timeout + backoff up to
 * 30 s) and a 59 s stall after a 30 s PostgreSQL outage with the previous values.
 */
export const LOOP_ACTIVITY_OPTIONS = {
  // A run lasts `maxRunMs` (15 minutes); a dead worker is the heartbeat timeout's business.
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '5 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '3 seconds' },
} as const satisfies ActivityOptions;

/**
 * The IBKR live producer: the loop's heartbeat and retry, but a run of up to a day (each run
 * reconnects to TWS, which the producer reports as a gap, so runs are long; TWS restarts daily).
 */
export const IBKR_LOOP_ACTIVITY_OPTIONS = {
  ...LOOP_ACTIVITY_OPTIONS,
  startToCloseTimeout: '25 hours',
} as const satisfies ActivityOptions;

/**
 * Ending a job's `job_runs` row (a replay, a model reload): retried until the store answers, for up
 * to a day, so an outage at the end of a job does not leave its row `running` (ten attempts gave
 * up after about three minutes).
 */
export const AUDIT_FINISH_OPTIONS = {
  startToCloseTimeout: '1 minute',
  scheduleToCloseTimeout: '1 day',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds' },
} as const satisfies ActivityOptions;
