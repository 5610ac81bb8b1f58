import { ApplicationFailure } from '@temporalio/activity';
import { ApplicationFailureCategory } from '@temporalio/common';
import { isRedisConnectionError } from '../pipeline/bus/index.js';

/** Failure type of an activity attempt that failed because Redis was unreachable (retried). */
export const REDIS_UNAVAILABLE = 'RedisUnavailable';

/**
 * A retryable failure the SDK logs at debug (category BENIGN), for an expected event some other
 * line already reports once: a fenced owner (the activity's warning), an outage (the bus's).
 */
export function benignFailure(message: string, type: string, cause?: Error): ApplicationFailure {
  return ApplicationFailure.create({ message, type, nonRetryable: false, category: ApplicationFailureCategory.BENIGN, ...(cause ? { cause } : {}) });
}

/**
 * What an activity throws for `err`: a Redis outage becomes a {@link benignFailure} — still retried,
 * but not logged again per attempt of every activity (the worker's shared `OutageLog` logged the
 * outage, naming Redis and its masked URL); anything else as it is.
 */
export function activityFailure(err: unknown): unknown {
  if (!isRedisConnectionError(err)) return err;
  return benignFailure(`Redis unreachable: ${(err as Error).message}`, REDIS_UNAVAILABLE, err as Error);
}
