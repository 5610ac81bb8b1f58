import type { ActivityOptions } from '@temporalio/workflow';

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
