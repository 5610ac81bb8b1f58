import { Kysely, PostgresDialect, sql } from 'kysely';
import type { PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely';
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
        return withClientProbe(await pool.connect());
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

/**
 * The text of the query {@link pgClientOf} sends. A connection made by {@link createDb} answers it
 * itself with its `pg` client; any other server-bound connection runs it and returns no client.
 */
const CLIENT_PROBE = '/* mdp: the pg client of this connection */ SELECT NULL AS client';

/** The kysely-facing side of each pooled client, made once per client (kysely caches its connection by it). */
const probeable = new WeakMap<pg.PoolClient, PostgresPoolClient>();

/** `client` as kysely sees it, answering {@link CLIENT_PROBE} without a round trip. */
function withClientProbe(client: pg.PoolClient): PostgresPoolClient {
  let wrapped = probeable.get(client);
  if (wrapped === undefined) {
    const answer: PostgresQueryResult<{ client: pg.PoolClient }> = { command: 'SELECT', rowCount: 1, rows: [{ client }] };
    wrapped = {
      // Kysely calls query(text, parameters) for statements and query(cursor) for streams; both pass through.
      query: ((text: unknown, parameters?: readonly unknown[]) =>
        text === CLIENT_PROBE ? Promise.resolve(answer) : client.query(text as string, parameters as unknown[])) as PostgresPoolClient['query'],
      release: () => client.release(),
    };
    probeable.set(client, wrapped);
  }
  return wrapped;
}

/**
 * The `pg` client running the transaction `trx`, for what kysely cannot say (`COPY … FROM STDIN`
 * through `pg-copy-streams`); `undefined` when `trx` is not on a pool made by {@link createDb}.
 * The client belongs to the transaction: use it only while the transaction runs, and never
 * concurrently with a query of `trx`.
 *
 * @example
 * await db.transaction().execute(async (trx) => {
 *   const client = await pgClientOf(trx);
 *   if (client) await pipeline(Readable.from(lines), client.query(copyFrom('COPY t FROM STDIN')));
 * });
 */
export async function pgClientOf(trx: Kysely<Database>): Promise<pg.PoolClient | undefined> {
  // Outside a transaction each query may run on another pooled connection: the client would be anyone's.
  if (!trx.isTransaction) throw new TypeError('pgClientOf needs a transaction: outside one the client returned could be running anything');
  const { rows } = await sql.raw<{ client: pg.PoolClient | null }>(CLIENT_PROBE).execute(trx);
  return rows[0]?.client ?? undefined;
}
