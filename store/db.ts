import { Kysely, PostgresDialect } from 'kysely';
import type { PostgresPool, PostgresPoolClient } from 'kysely';
import pg from 'pg';
import { redactSecrets } from '../pipeline/config/index.js';
import { OutageLog, SILENT_LOGGER } from '../pipeline/telemetry/index.js';
import type { Logger } from '../pipeline/telemetry/index.js';
import type { Database } from './schema.js';
import { StoreError } from './store-error.js';

/** The local stack's database (see `scripts/env.sh`); used when no URL is configured. */
export const DEFAULT_STORE_URL = 'postgres://mdp:mdp@127.0.0.1:5432/mdp';

/** Options for {@link createDb}. */
export interface CreateDbOptions {
  /** Pool size; defaults to 10. */
  readonly max?: number;
  /** How long to wait for a new connection before failing; defaults to 10 s (pg waits forever). */
  readonly connectTimeoutMs?: number;
  /**
   * Called when an idle pooled connection fails (e.g. the server restarted). Without a listener
   * node-postgres would crash the process; the default reports it on `log`, once per outage.
   */
  readonly onPoolError?: (err: Error) => void;
  /** The process's logger (component `store`); by default nothing is logged. */
  readonly log?: Logger;
}

/** A short description of a driver error; Node's connect errors can have an empty message. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    if (err.message !== '') return err.message;
    if (typeof code === 'string') return code;
    if (err instanceof AggregateError && err.errors.length > 0) return describeError(err.errors[0]);
    return err.name;
  }
  return String(err);
}

/**
 * Creates a kysely instance on a node-postgres pool for `url`. Connecting is lazy: the first
 * query opens a connection, and a failure to connect surfaces as a {@link StoreError} with code
 * `CONNECTION_FAILED` whose message names the redacted URL. The caller owns the instance and
 * must `destroy()` it on shutdown.
 *
 * @example
 * const db = createDb(process.env.STORE_URL ?? DEFAULT_STORE_URL);
 * try { await migrateToLatest(db); } finally { await db.destroy(); }
 */
export function createDb(url: string, options: CreateDbOptions = {}): Kysely<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    application_name: 'mdp',
  });
  const urlForLogs = redactSecrets(url, [url]);
  const outage = new OutageLog((options.log ?? SILENT_LOGGER).child({ component: 'store' }), 'postgres');
  const onPoolError = options.onPoolError ?? ((err: Error) => outage.error(new Error(redactSecrets(describeError(err), [url])), { url: urlForLogs }));
  pool.on('error', onPoolError);
  pool.on('connect', () => outage.recovered({ url: urlForLogs }));

  // Kysely only needs connect/end; wrapping connect is the one place where every connection
  // failure passes, so the error can name the (redacted) URL.
  const connectingPool: PostgresPool = {
    async connect(): Promise<PostgresPoolClient> {
      try {
        return await pool.connect();
      } catch (err) {
        // The driver's message may echo the URL or its password too.
        throw new StoreError('CONNECTION_FAILED', redactSecrets(`cannot connect to PostgreSQL at ${url}: ${describeError(err)}`, [url]), {
          cause: err,
        });
      }
    },
    end: () => pool.end(),
  };
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: connectingPool }) });
}
