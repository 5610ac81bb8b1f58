import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { Bar } from '../pipeline/contracts/index.js';

/** Which bars: one symbol's, of one interval, with `ts` in `[fromMs, toMs)`; every provider's when `provider` is absent. */
export interface BarsRangeQuery {
  readonly symbol: string;
  readonly provider?: string | undefined;
  /** The `interval` label of the bars, e.g. `1s`. */
  readonly interval: string;
  readonly fromMs: number;
  readonly toMs: number;
}

/** A `bars_ohlcv` row as exported: the {@link Bar} with its window start and write time as `Date`s. */
export type BarRow = Omit<Bar, 'tsMs'> & { readonly ts: Date; readonly updated_at: Date };

/** A run of consecutive windows without a bar: `[fromMs, toMs)`, `missing` windows long. */
export interface BarGap {
  readonly fromMs: number;
  readonly toMs: number;
  readonly missing: number;
}

/** Rows fetched per round trip when exporting. */
export const EXPORT_PAGE_ROWS = 2000;

/**
 * Streams the bars of a range in `ts` order (then provider) through a server-side cursor, one page
 * of `pageRows` at a time, so a month of 1 s bars never sits in memory: `onPage` is awaited before
 * the next page is fetched. Runs in one read-only transaction, so the export is one consistent
 * snapshot even while the pipeline writes. Returns the number of rows.
 */
export async function exportBars(
  db: Kysely<Database>,
  query: BarsRangeQuery,
  onPage: (rows: readonly BarRow[]) => void | Promise<void>,
  pageRows = EXPORT_PAGE_ROWS,
): Promise<number> {
  return db.transaction().execute(async (trx) => {
    await sql`SET TRANSACTION READ ONLY`.execute(trx);
    await sql`
      DECLARE mdp_bars_export NO SCROLL CURSOR FOR
      SELECT provider, symbol, "interval", ts, open, high, low, close, volume, trades, updated_at
      FROM bars_ohlcv
      WHERE symbol = ${query.symbol} AND "interval" = ${query.interval}
        AND ts >= ${new Date(query.fromMs)} AND ts < ${new Date(query.toMs)}
        ${query.provider === undefined ? sql`` : sql`AND provider = ${query.provider}`}
      ORDER BY ts, provider`.execute(trx);
    let total = 0;
    for (;;) {
      const { rows } = await sql<BarRow>`FETCH FORWARD ${sql.raw(String(Math.max(1, Math.trunc(pageRows))))} FROM mdp_bars_export`.execute(trx);
      if (rows.length === 0) break;
      total += rows.length;
      await onPage(rows);
      if (rows.length < pageRows) break;
    }
    return total;
  });
}

/**
 * The runs of windows without a bar in `[fromMs, toMs)` for one provider's symbol, computed in
 * SQL with `lag()` over the bars' `ts` (an index range scan, no series of every window): between
 * two consecutive bars more than one `stepMs` apart, and before the first and after the last bar
 * of the range. `fromMs` and `toMs` must be window boundaries. Only gaps of at least `minGapMs`.
 * Without `provider`, a window is missing when no provider has a bar for it.
 */
export async function barGaps(db: Kysely<Database>, query: BarsRangeQuery & { readonly stepMs: number; readonly minGapMs: number }): Promise<BarGap[]> {
  const { stepMs } = query;
  const step = sql`(${stepMs}::double precision * interval '1 millisecond')`;
  const { rows } = await sql<{ from_ms: string; to_ms: string }>`
    WITH marks AS (
      SELECT ts FROM bars_ohlcv
      WHERE symbol = ${query.symbol} AND "interval" = ${query.interval}
        AND ts >= ${new Date(query.fromMs)} AND ts < ${new Date(query.toMs)}
        ${query.provider === undefined ? sql`` : sql`AND provider = ${query.provider}`}
      UNION ALL SELECT ${new Date(query.fromMs)}::timestamptz - ${step}
      UNION ALL SELECT ${new Date(query.toMs)}::timestamptz
    ), spans AS (
      SELECT lag(ts) OVER (ORDER BY ts) + ${step} AS gap_from, ts AS gap_to FROM marks
    )
    SELECT (extract(epoch FROM gap_from) * 1000)::bigint AS from_ms, (extract(epoch FROM gap_to) * 1000)::bigint AS to_ms
    FROM spans
    WHERE gap_from IS NOT NULL AND gap_to > gap_from AND gap_to - gap_from >= ${Math.max(query.minGapMs, stepMs)}::double precision * interval '1 millisecond'
    ORDER BY gap_from`.execute(db);
  return rows.map((r) => {
    const fromMs = Number(r.from_ms);
    const toMs = Number(r.to_ms);
    return { fromMs, toMs, missing: Math.round((toMs - fromMs) / stepMs) };
  });
}
