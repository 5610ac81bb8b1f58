import { openBus } from '../pipeline/bus/index.js';
import type { Bus } from '../pipeline/bus/index.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { redactSecrets } from '../pipeline/config/redact.js';
import { createLogger, OutageLog } from '../pipeline/telemetry/index.js';
import { ServiceUnreachableError } from './service-unreachable-error.js';

/**
 * Runs `fn` with the configured bus, for a command: connection errors are not logged as they
 * happen (a worker logs them; a command has one thing to say), and a command that fails while
 * the bus cannot be reached fails with one {@link ServiceUnreachableError} naming the bus and its
 * masked URL instead of the driver's retry message. The bus is closed afterwards.
 */
export async function withBus<T>(config: StreamingConfig, fn: (bus: Bus) => Promise<T>): Promise<T> {
  const connectionErrors = new RememberedOutage(
    createLogger('ERROR', () => undefined),
    'bus',
  );
  const bus = openBus(config, { connectionErrors });
  try {
    return await fn(bus);
  } catch (err) {
    if (bus.kind === 'redis' && (connectionErrors.down || isRetriesExhausted(err))) {
      const uri = config.bus.redis.uri;
      throw new ServiceUnreachableError('Redis', redactSecrets(uri, [uri]), { cause: connectionErrors.last ?? err });
    }
    const root = rootOf(err);
    if (bus.kind === 'kafka' && NETWORK_ERROR.test(root.message)) {
      throw new ServiceUnreachableError('Kafka', config.bus.kafka.brokers.join(','), { cause: root });
    }
    throw err;
  } finally {
    await bus.close();
  }
}

/** An outage log that logs nothing and remembers the driver's own reason (ECONNREFUSED, NOAUTH) for the one line. */
class RememberedOutage extends OutageLog {
  last: Error | undefined;

  override error(err: Error, fields?: Record<string, unknown>): void {
    this.last = err;
    super.error(err, fields);
  }
}

const NETWORK_ERROR = /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|ECONNRESET/;

function isRetriesExhausted(err: unknown): boolean {
  return err instanceof Error && /maxRetriesPerRequest|Connection is closed/.test(err.message);
}

/** The innermost error of a chain (`cause`, or the first of an AggregateError's `errors`). */
function rootOf(err: unknown): Error {
  let e = err instanceof Error ? err : new Error(String(err));
  for (;;) {
    const errors = (e as { errors?: unknown }).errors;
    const next = e.cause instanceof Error ? e.cause : Array.isArray(errors) && errors[0] instanceof Error ? errors[0] : undefined;
    if (!next) return e;
    e = next;
  }
}
