/**
 * Whether `err` is ioredis saying the server cannot be reached (a command given up after
 * `maxRetriesPerRequest` reconnects, or sent on a closed connection): an outage, which the bus's
 * {@link OutageLog} reports once, not a fault of the command.
 */
export function isRedisConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.name === 'MaxRetriesPerRequestError' || err.message === 'Connection is closed.' || err.message.startsWith("Stream isn't writeable");
}
