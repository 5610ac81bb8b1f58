import type { Logger } from './logger.js';

export interface OutageLogOptions {
  /** Least time between two error lines of one outage; default 10 s. */
  readonly intervalMs?: number;
  /** The clock, in milliseconds (tests pass their own). */
  readonly now?: () => number;
}

/** Default least time between two error lines of one outage. */
export const OUTAGE_LOG_INTERVAL_MS = 10_000;

/**
 * Logs the connection errors of one dependency without flooding the log: the first error of an
 * outage at once, then at most one line per interval saying how many errors happened since the
 * last line, and one line when a connection is back. Clients retry every few hundred
 * milliseconds; one line per retry of every connection would bury everything else. Share one
 * instance between all clients of the dependency in a process, so an outage is reported once.
 *
 * @example
 * const redisErrors = new OutageLog(log, 'redis');
 * connection.on('error', (err) => redisErrors.error(err, { uri }));
 * connection.on('ready', () => redisErrors.recovered({ uri }));
 */
export class OutageLog {
  readonly #log: Logger;
  readonly #what: string;
  readonly #intervalMs: number;
  readonly #now: () => number;
  #outage: { readonly since: number; lastLineAt: number; errors: number; unreported: number } | undefined;

  constructor(log: Logger, what: string, options: OutageLogOptions = {}) {
    this.#log = log;
    this.#what = what;
    this.#intervalMs = options.intervalMs ?? OUTAGE_LOG_INTERVAL_MS;
    this.#now = options.now ?? Date.now;
  }

  /** Whether an outage is going on (an error since the last recovery). */
  get down(): boolean {
    return this.#outage !== undefined;
  }

  error(err: Error, fields: Record<string, unknown> = {}): void {
    const now = this.#now();
    const outage = this.#outage;
    if (outage === undefined) {
      this.#outage = { since: now, lastLineAt: now, errors: 1, unreported: 0 };
      this.#log.error(`${this.#what} connection error`, { ...fields, err: err.message });
      return;
    }
    outage.errors += 1;
    outage.unreported += 1;
    if (now - outage.lastLineAt < this.#intervalMs) return;
    this.#log.error(`${this.#what} connection errors continue`, { ...fields, err: err.message, errors: outage.unreported, downMs: now - outage.since });
    outage.lastLineAt = now;
    outage.unreported = 0;
  }

  /** A connection works again: ends the outage with one line (nothing if there was none). */
  recovered(fields: Record<string, unknown> = {}): void {
    const outage = this.#outage;
    if (outage === undefined) return;
    this.#outage = undefined;
    this.#log.info(`${this.#what} connection restored`, { ...fields, errors: outage.errors, downMs: this.#now() - outage.since });
  }
}
