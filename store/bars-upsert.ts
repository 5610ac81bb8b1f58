import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Bar, IsolatedUpsert, RejectedBar } from '../pipeline/contracts/index.js';
import type { Database } from './schema.js';

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
 * @example
 * await db.transaction().execute(async (trx) => {
 *   const { counts, rejected } = await upsertBarsIsolated(trx, bars);
 *   await saveFrontier(trx, frontierMs); // same transaction: bars and frontier commit together
 * });
 */
export async function upsertBarsIsolated(db: Kysely<Database>, bars: readonly Bar[]): Promise<IsolatedUpsert> {
  const rejected: RejectedBar[] = [];
  if (bars.length === 0) return { counts: { inserted: 0, updated: 0, unchanged: 0 }, rejected };
  const rows = lastPerKey(bars);
  const written = { inserted: 0, updated: 0 };
  if (db.isTransaction) {
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

/**
 * Inserts new bars and rewrites changed ones in one SQL statement (one round trip) whatever the
 * number of bars; rows whose values are identical are left untouched, so re-delivered windows cost
 * no writes. `rows` must not repeat a key (PostgreSQL rejects an upsert that would touch the same
 * row twice). Returns how many rows were inserted and updated.
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
    ts[i] = new Date(bar.tsMs).toISOString();
    open[i] = bar.open;
    high[i] = bar.high;
    low[i] = bar.low;
    close[i] = bar.close;
    volume[i] = bar.volume;
    trades[i] = bar.trades;
  }

  // One array parameter per column keeps the bind count at 10 for any batch size (the
  // protocol caps a statement at 65535 parameters). `xmax = 0` marks a freshly inserted row;
  // rows skipped by the WHERE are not returned at all, and count as unchanged.
  const {
    rows: [written],
  } = await sql<Written>`
    WITH written AS (
      INSERT INTO bars_ohlcv AS b (provider, symbol, "interval", ts, open, high, low, close, volume, trades)
      SELECT * FROM unnest(
        ${provider}::text[], ${symbol}::text[], ${interval}::text[], ${ts}::timestamptz[],
        ${open}::float8[], ${high}::float8[], ${low}::float8[], ${close}::float8[],
        ${volume}::float8[], ${trades}::int4[])
      ON CONFLICT (provider, symbol, "interval", ts) DO UPDATE SET
        open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
        volume = excluded.volume, trades = excluded.trades, updated_at = now()
      WHERE (b.open, b.high, b.low, b.close, b.volume, b.trades)
        IS DISTINCT FROM (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume, excluded.trades)
      RETURNING (xmax = 0) AS inserted
    )
    SELECT count(*) FILTER (WHERE inserted)::int4 AS inserted,
           count(*) FILTER (WHERE NOT inserted)::int4 AS updated
    FROM written`.execute(db);
  // An aggregate without GROUP BY always yields exactly one row.
  return written;
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
