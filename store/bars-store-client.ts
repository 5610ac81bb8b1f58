import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Bar, BarSink, UpsertCounts } from '../pipeline/contracts/index.js';
import type { Database } from './schema.js';

/**
 * Receives the duration of each successful write, for a `store_write_duration_seconds{table}`
 * histogram. Called synchronously after the write; it must not throw.
 */
export type WriteObserver = (durationSeconds: number, table: string) => void;

/** Options for {@link StoreClient}. */
export interface StoreClientOptions {
  /** See {@link WriteObserver}. */
  readonly onWrite?: WriteObserver;
}

/** Filter for {@link StoreClient.listBars}. */
export interface ListBarsQuery {
  /** Only this provider's bars; all providers when omitted. */
  readonly provider?: string;
  readonly symbol?: string;
  readonly interval?: string;
  /** Inclusive lower bound on the bar's window start, epoch ms. */
  readonly fromMs?: number;
  /** Exclusive upper bound on the bar's window start, epoch ms. */
  readonly toMs?: number;
}

const BARS_TABLE = 'bars_ohlcv';

/**
 * Reads and idempotently writes OHLCV bars in `bars_ohlcv`. The caller owns `db` (and destroys
 * it); the client holds no connection of its own.
 *
 * @example
 * const store = new StoreClient(db, { onWrite: (s, table) => writeSeconds.observe({ table }, s) });
 * const { inserted, updated, unchanged } = await store.upsertBars(bars);
 */
export class StoreClient implements BarSink {
  readonly #db: Kysely<Database>;
  readonly #onWrite: WriteObserver | undefined;

  constructor(db: Kysely<Database>, options: StoreClientOptions = {}) {
    this.#db = db;
    this.#onWrite = options.onWrite;
  }

  /**
   * Inserts new bars and rewrites changed ones in one SQL statement (one round trip) whatever the
   * number of bars; rows whose values are identical are left untouched, so re-delivered windows
   * cost no writes. Bars repeating a key within one call are collapsed, the last one winning.
   *
   * The counts always add up to `bars.length`: `inserted` new keys, `updated` keys whose values
   * changed, and `unchanged` for the rest (identical rows, and bars superseded within the call).
   */
  async upsertBars(bars: readonly Bar[]): Promise<UpsertCounts> {
    if (bars.length === 0) return { inserted: 0, updated: 0, unchanged: 0 };
    const started = performance.now();
    const counts = await upsertBarRows(this.#db, bars);
    this.#onWrite?.((performance.now() - started) / 1000, BARS_TABLE);
    return counts;
  }

  /** Bars of one provider matching `query`, ordered by symbol, then window start, then interval. */
  async listBars(query: ListBarsQuery): Promise<Bar[]> {
    let select = this.#db
      .selectFrom('bars_ohlcv')
      .select(['provider', 'symbol', 'interval', 'ts', 'open', 'high', 'low', 'close', 'volume', 'trades']);
    if (query.provider !== undefined) select = select.where('provider', '=', query.provider);
    if (query.symbol !== undefined) select = select.where('symbol', '=', query.symbol);
    if (query.interval !== undefined) select = select.where('interval', '=', query.interval);
    if (query.fromMs !== undefined) select = select.where('ts', '>=', new Date(query.fromMs));
    if (query.toMs !== undefined) select = select.where('ts', '<', new Date(query.toMs));
    const rows = await select.orderBy('provider').orderBy('symbol').orderBy('ts').orderBy('interval').execute();
    return rows.map((row) => ({
      provider: row.provider,
      symbol: row.symbol,
      interval: row.interval,
      tsMs: row.ts.getTime(),
      open: row.open,
      high: row.high,
      low: row.low,
      close: row.close,
      volume: row.volume,
      trades: row.trades,
    }));
  }

  /** Number of stored bars for `provider`, over all symbols and intervals. */
  async countBars(provider: string): Promise<number> {
    const row = await this.#db
      .selectFrom('bars_ohlcv')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('provider', '=', provider)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }
}

/**
 * Collapses bars sharing a key, keeping the last occurrence: PostgreSQL rejects an upsert that
 * would touch the same row twice ("ON CONFLICT DO UPDATE command cannot affect row a second time").
 */
function lastPerKey(bars: readonly Bar[]): readonly Bar[] {
  const byKey = new Map<string, Bar>();
  // NUL cannot occur in PostgreSQL text, so it cannot make two different keys collide.
  for (const bar of bars) byKey.set(`${bar.provider}\0${bar.symbol}\0${bar.interval}\0${bar.tsMs}`, bar);
  return byKey.size === bars.length ? bars : [...byKey.values()];
}

/**
 * The upsert of {@link StoreClient.upsertBars} on `db`, which may be a transaction (the shard
 * commit writes bars and position together).
 */
export async function upsertBarRows(db: Kysely<Database>, bars: readonly Bar[]): Promise<UpsertCounts> {
  if (bars.length === 0) return { inserted: 0, updated: 0, unchanged: 0 };
  const rows = lastPerKey(bars);
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
  const { rows: [written] } = await sql<{ inserted: number; updated: number }>`
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
  const { inserted, updated } = written;
  return { inserted, updated, unchanged: bars.length - inserted - updated };
}
