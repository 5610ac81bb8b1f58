import type { WorkerOptions } from '@temporalio/worker';

/**
 * Worker settings every mdp worker (process or test) uses. Heartbeats carry cancellation, so they
 * are flushed at least every second: a `drain` or shutdown reaches a consumer within about a second
 * instead of 0.8 x the heartbeat timeout.
 */
export const WORKER_TUNING = {
  maxHeartbeatThrottleInterval: '1 second',
  defaultHeartbeatThrottleInterval: '1 second',
  shutdownGraceTime: '5 seconds',
} as const satisfies Partial<WorkerOptions>;
