import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sql } from 'kysely';
import type { Kysely, RawBuilder } from 'kysely';
import { from as copyFrom } from 'pg-copy-streams';
import type { Bar, IsolatedUpsert, RejectedBar } from '../pipeline/contracts/index.js';
import { pgClientOf } from './db.js';
import type { Database } from './schema.js';

/** Options of {@link upsertBarsIsolated}. */
export interface UpsertBarsOptions {
  /**
   * A batch of at least this many bars (after collapsing repeated keys) is written with
   * `COPY … FROM STDIN` into a staging table and one upsert from it, instead of one upsert of
   * array parameters: same guard, counts and rejections (config `store.copy_min_rows`). 0 or
   * absent: never.
   */
  readonly copyMinRows?: number;
}

/**
 * SQLSTATE classes of errors a row's own values cause, which no retry can cure: 22 data exception
 * (e.g. 22021 invalid byte sequence, 22P05 untranslatable character, 22003 out of range),
 * 23 integrity constraint violation, 54 program limit exceeded (e.g. 54000 index row size).
 * Everything else (connection loss, 40001/40P01, 57P01 shutdown, 55P03 lock timeout…) is transient
 * or not about the rows, and is rethrown untouched.
 */
const PERMANENT_SQLSTATE_CLASSES: readonly string[] = ['22', '23', '54'];

/** The SQLSTATE of a PostgreSQL error (`code` of node-postgres' `DatabaseError`), if it has one. */
function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** Whether `err` is a PostgreSQL error a bar's own values cause (see {@link PERMANENT_SQLSTATE_CLASSES}). */
export function isPermanentRowError(err: unknown): boolean {
  const state = sqlState(err);
  return state !== undefined && PERMANENT_SQLSTATE_CLASSES.includes(state.slice(0, 2));
}

/** Savepoint of one attempt; attempts never nest, so one name serves (and shadows a caller's of the same name only for the attempt). */
const SAVEPOINT = sql.raw('mdp_bars_upsert');
/** Savepoint of one COPY attempt: rolled back to when the staged batch holds a bar PostgreSQL refuses. */
const COPY_SAVEPOINT = sql.raw('mdp_bars_copy');

/**
 * Upserts bars like {@link upsertBarsStatement}, but a permanent error (see
 * {@link isPermanentRowError}) is narrowed to the bars that cause it: the batch is bisected, each
 * part under a SAVEPOINT, down to the single offending bars, which are returned with the store's
 * reason; every other bar is written. Transient errors are rethrown untouched.
 *
 * `db` is either a `Kysely` (the batch is tried as one autocommitted statement, and only a
 * permanent failure opens a transaction to bisect in) or a `Transaction` of the caller's (each
 * attempt runs under a savepoint, so a rejected bar never aborts the caller's transaction; a
 * transient error leaves that transaction to its owner, usually to roll back).
 *
 * Bars repeating a key are collapsed first, the last one winning. `rejected[i].bar` is the very
 * object passed in; `counts` add up with the rejected: inserted + updated + unchanged +
 * rejected.length = bars.length.
 *
 * With `options.copyMinRows`, a batch that large goes through the COPY path ({@link copyAttempt})
 * in a transaction (the caller's, or one of its own); a permanent error there sends the batch to
 * the path above, which names the offending bars with the same reasons.
 *
 * @example
 * await db.transaction().execute(async (trx) => {
 *   const { counts, rejected } = await upsertBarsIsolated(trx, bars);
 *   await saveFrontier(trx, frontierMs); // same transaction: bars and frontier commit together
 * });
 */
export async function upsertBarsIsolated(db: Kysely<Database>, bars: readonly Bar[], options: UpsertBarsOptions = {}): Promise<IsolatedUpsert> {
  const rejected: RejectedBar[] = [];
  if (bars.length === 0) return { counts: { inserted: 0, updated: 0, unchanged: 0 }, rejected };
  const rows = lastPerKey(bars);
  const written = { inserted: 0, updated: 0 };
  const { copyMinRows = 0 } = options;
  if (copyMinRows > 0 && rows.length >= copyMinRows) {
    // The staging table lives in a transaction: the caller's, or one around the COPY and the upsert.
    if (db.isTransaction) await copyAttempt(db, rows, written, rejected);
    else await db.transaction().execute((trx) => copyAttempt(trx, rows, written, rejected));
  } else if (db.isTransaction) {
    await attempt(db, rows, written, rejected);
  } else {
    try {
      add(written, await upsertBarsStatement(db, rows));
    } catch (err) {
      if (!isPermanentRowError(err)) throw err;
      if (rows.length === 1) rejected.push(rejection(rows[0], err));
      else await db.transaction().execute((trx) => bisect(trx, rows, written, rejected));
    }
  }
  const { inserted, updated } = written;
  return { counts: { inserted, updated, unchanged: bars.length - inserted - updated - rejected.length }, rejected };
}

interface Written {
  inserted: number;
  updated: number;
}

function add(written: Written, counts: Written): void {
  written.inserted += counts.inserted;
  written.updated += counts.updated;
}

function rejection(bar: Bar, err: unknown): RejectedBar {
  const code = sqlState(err)!;
  return { bar, code, reason: `${(err as Error).message} (SQLSTATE ${code})` };
}

/** One try of `rows` under a savepoint in `trx`; on a permanent error, rolls back to it and bisects. */
async function attempt(trx: Kysely<Database>, rows: readonly Bar[], written: Written, rejected: RejectedBar[]): Promise<void> {
  await sql`SAVEPOINT ${SAVEPOINT}`.execute(trx);
  let counts: Written;
  try {
    counts = await upsertBarsStatement(trx, rows);
  } catch (err) {
    // A transient error is the caller's: after a lost connection not even the rollback could run.
    if (!isPermanentRowError(err)) throw err;
    await sql`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`.execute(trx);
    await sql`RELEASE SAVEPOINT ${SAVEPOINT}`.execute(trx);
    if (rows.length === 1) rejected.push(rejection(rows[0], err));
    else await bisect(trx, rows, written, rejected);
    return;
  }
  // Released at once: savepoints left open pile up as subtransactions for the rest of the caller's transaction.
  await sql`RELEASE SAVEPOINT ${SAVEPOINT}`.execute(trx);
  add(written, counts);
}

/** Tries each half of a batch that failed as a whole. */
async function bisect(trx: Kysely<Database>, rows: readonly Bar[], written: Written, rejected: RejectedBar[]): Promise<void> {
  const middle = Math.ceil(rows.length / 2);
  await attempt(trx, rows.slice(0, middle), written, rejected);
  await attempt(trx, rows.slice(middle), written, rejected);
}

/** Window start as both paths send it: ISO-8601 UTC, which `timestamptz` reads back exactly. */
function tsText(bar: Bar): string {
  return new Date(bar.tsMs).toISOString();
}

/**
 * The one upsert of both paths: inserts new bars and rewrites changed ones in one SQL statement;
 * rows whose values are identical are left untouched (`updated_at` too), so re-delivered windows
 * cost no writes. `source` yields the rows in `bars_ohlcv`'s column order, after the CTEs in
 * `before` (each ending with a comma). Returns how many rows were inserted and updated.
 */
function upsertFrom(before: RawBuilder<unknown>, source: RawBuilder<unknown>): RawBuilder<Written> {
  // `xmax = 0` marks a freshly inserted row; rows skipped by the WHERE are not returned at all, and count as unchanged.
  return sql<Written>`
    WITH ${before} written AS (
      INSERT INTO bars_ohlcv AS b (provider, symbol, "interval", ts, open, high, low, close, volume, trades)
      SELECT * FROM ${source}
      ON CONFLICT (provider, symbol, "interval", ts) DO UPDATE SET
        open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
        volume = excluded.volume, trades = excluded.trades, updated_at = now()
      WHERE (b.open, b.high, b.low, b.close, b.volume, b.trades)
        IS DISTINCT FROM (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume, excluded.trades)
      RETURNING (xmax = 0) AS inserted
    )
    SELECT count(*) FILTER (WHERE inserted)::int4 AS inserted,
           count(*) FILTER (WHERE NOT inserted)::int4 AS updated
    FROM written`;
}

/**
 * Upserts `rows` with one statement of array parameters (one round trip whatever the number of
 * bars). `rows` must not repeat a key (PostgreSQL rejects an upsert that would touch the same row
 * twice).
 */
async function upsertBarsStatement(db: Kysely<Database>, rows: readonly Bar[]): Promise<Written> {
  const n = rows.length;
  const provider = new Array<string>(n);
  const symbol = new Array<string>(n);
  const interval = new Array<string>(n);
  const ts = new Array<string>(n);
  const open = new Array<number>(n);
  const high = new Array<number>(n);
  const low = new Array<number>(n);
  const close = new Array<number>(n);
  const volume = new Array<number>(n);
  const trades = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const bar = rows[i];
    provider[i] = bar.provider;
    symbol[i] = bar.symbol;
    interval[i] = bar.interval;
    ts[i] = tsText(bar);
    open[i] = bar.open;
    high[i] = bar.high;
    low[i] = bar.low;
    close[i] = bar.close;
    volume[i] = bar.volume;
    trades[i] = bar.trades;
  }
  // One array parameter per column keeps the bind count at 10 for any batch size (the protocol caps a statement at 65535 parameters).
  const source = sql`unnest(
        ${provider}::text[], ${symbol}::text[], ${interval}::text[], ${ts}::timestamptz[],
        ${open}::float8[], ${high}::float8[], ${low}::float8[], ${close}::float8[],
        ${volume}::float8[], ${trades}::int4[])`;
  const {
    rows: [written],
  } = await upsertFrom(sql``, source).execute(db);
  // An aggregate without GROUP BY always yields exactly one row.
  return written;
}

// ---------------------------------------------------------------------------------------------
// The COPY path: for thousands of bars, COPY's text stream costs the server less to parse than
// ten array parameters of the same values (see bench/store-flush.ts).

/**
 * The session's staging table, created on first use. Its rows go at commit (`ON COMMIT DELETE
 * ROWS`) and already when the upsert reads them (`DELETE … RETURNING`), so a second COPY in the
 * same transaction starts empty; kept for the session, it costs no catalog writes per flush.
 * The column types are `bars_ohlcv`'s: a value out of range fails in the COPY as it would in the
 * upsert, and the fallback names it.
 */
const CREATE_STAGING = sql`
  CREATE TEMP TABLE IF NOT EXISTS mdp_bars_staging (
    provider text, symbol text, "interval" text, ts timestamptz,
    open float8, high float8, low float8, close float8, volume float8, trades int4
  ) ON COMMIT DELETE ROWS`;
const COPY_STAGING = 'COPY pg_temp.mdp_bars_staging (provider, symbol, "interval", ts, open, high, low, close, volume, trades) FROM STDIN';
const TAKE_STAGED = sql`staged AS (
      DELETE FROM pg_temp.mdp_bars_staging RETURNING provider, symbol, "interval", ts, open, high, low, close, volume, trades
    ),`;

/** Bars per chunk written to the COPY stream (about 100 kB of text). */
const COPY_CHUNK_ROWS = 1000;

/** COPY's text format escapes: a backslash, and the tab, newline and carriage return that would end a field or a row. */
const COPY_SPECIAL = /[\\\t\n\r]/g;
const COPY_ESCAPES: Readonly<Record<string, string>> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** A text value as a field of COPY's text format. Everything else (non-ASCII, quotes) passes as UTF-8. */
function copyText(value: string): string {
  return value.replace(COPY_SPECIAL, (c) => COPY_ESCAPES[c]);
}

/**
 * `rows` as COPY text lines, in chunks. Numbers are written as node-postgres writes the array
 * parameters of {@link upsertBarsStatement} (`String(x)`, the shortest text that reads back to the
 * same double), so both paths store the same values.
 */
function* copyChunks(rows: readonly Bar[]): Generator<string> {
  for (let start = 0; start < rows.length; start += COPY_CHUNK_ROWS) {
    let chunk = '';
    const end = Math.min(start + COPY_CHUNK_ROWS, rows.length);
    for (let i = start; i < end; i++) {
      const bar = rows[i];
      chunk += `${copyText(bar.provider)}\t${copyText(bar.symbol)}\t${copyText(bar.interval)}\t${tsText(bar)}\t${bar.open}\t${bar.high}\t${bar.low}\t${bar.close}\t${bar.volume}\t${bar.trades}\n`;
    }
    yield chunk;
  }
}

/**
 * Writes `rows` in `trx` through the COPY path, under a savepoint: COPY into the staging table,
 * then one {@link upsertFrom} of it. A permanent error (see {@link isPermanentRowError}) rolls back
 * to the savepoint and hands the batch to {@link attempt}, the INSERT path, whose bisection names
 * the offending bars with the reasons that path gives. A `trx` not on a {@link createDb} pool has
 * no client to COPY through, and takes the INSERT path.
 */
async function copyAttempt(trx: Kysely<Database>, rows: readonly Bar[], written: Written, rejected: RejectedBar[]): Promise<void> {
  const client = await pgClientOf(trx);
  if (client === undefined) return attempt(trx, rows, written, rejected);
  await sql`SAVEPOINT ${COPY_SAVEPOINT}`.execute(trx);
  let counts: Written;
  try {
    await CREATE_STAGING.execute(trx);
    await pipeline(Readable.from(copyChunks(rows)), client.query(copyFrom(COPY_STAGING)));
    counts = (await upsertFrom(TAKE_STAGED, sql`staged`).execute(trx)).rows[0];
  } catch (err) {
    if (!isPermanentRowError(err)) throw err;
    await sql`ROLLBACK TO SAVEPOINT ${COPY_SAVEPOINT}`.execute(trx);
    await sql`RELEASE SAVEPOINT ${COPY_SAVEPOINT}`.execute(trx);
    await attempt(trx, rows, written, rejected);
    return;
  }
  await sql`RELEASE SAVEPOINT ${COPY_SAVEPOINT}`.execute(trx);
  add(written, counts);
}

/**
 * Collapses bars sharing a key, keeping the last occurrence: PostgreSQL rejects an upsert that
 * would touch the same row twice ("ON CONFLICT DO UPDATE command cannot affect row a second time").
 */
function lastPerKey(bars: readonly Bar[]): readonly Bar[] {
  const byKey = new Map<string, Bar>();
  // JSON, not a separator: a bar the store will reject (a NUL in its symbol) must not collide with another.
  for (const bar of bars) byKey.set(JSON.stringify([bar.provider, bar.symbol, bar.interval, bar.tsMs]), bar);
  return byKey.size === bars.length ? bars : [...byKey.values()];
}
