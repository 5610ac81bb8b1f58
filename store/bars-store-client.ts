import type { Kysely } from 'kysely';
import type { Bar, BarSink, IsolatedUpsert, RejectedBar, UpsertCounts } from '../pipeline/contracts/index.js';
import { upsertBarsIsolated } from './bars-upsert.js';
import type { UpsertBarsOptions } from './bars-upsert.js';
import type { Database } from './schema.js';
import { StoreError } from './store-error.js';

/**
 * Receives the duration of each successful write, for a `store_write_duration_seconds{table}`
 * histogram. Called synchronously after the write; it must not throw.
 */
export type WriteObserver = (durationSeconds: number, table: string) => void;

/** One provider's bars in the store, as {@link StoreClient.barsByProvider} counts them. */
export interface ProviderBars {
  readonly provider: string;
  /** Stored rows, over all symbols and intervals (each upsert counted once). */
  readonly bars: number;
  /** Window start of its newest bar, epoch ms. */
  readonly lastBarMs: number;
  /** When a bar of it was last written (`updated_at`), epoch ms. */
  readonly lastWrittenMs: number;
}

/** Options for {@link StoreClient}; `copyMinRows` as in {@link UpsertBarsOptions}. */
export interface StoreClientOptions extends UpsertBarsOptions {
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
  readonly #upsert: UpsertBarsOptions;

  constructor(db: Kysely<Database>, options: StoreClientOptions = {}) {
    this.#db = db;
    this.#onWrite = options.onWrite;
    this.#upsert = { copyMinRows: options.copyMinRows ?? 0 };
  }

  /**
   * Inserts new bars and rewrites changed ones in one SQL statement (one round trip) whatever the
   * number of bars; rows whose values are identical are left untouched, so re-delivered windows
   * cost no writes. Bars repeating a key within one call are collapsed, the last one winning.
   *
   * The counts always add up to `bars.length`: `inserted` new keys, `updated` keys whose values
   * changed, and `unchanged` for the rest (identical rows, and bars superseded within the call).
   *
   * @throws StoreError `REJECTED_ROWS` when the database refuses some bars for their own values,
   * after writing the others (see {@link upsertBarsIsolated}); a transient error as it came.
   */
  async upsertBars(bars: readonly Bar[]): Promise<UpsertCounts> {
    const { counts, rejected } = await this.upsertBarsIsolated(bars);
    if (rejected.length > 0) throw rejectedRowsError(rejected, bars.length);
    return counts;
  }

  /**
   * Like {@link upsertBars}, but bars the database refuses for their own values are returned with
   * its reason instead of failing the call, and their neighbours are written: see
   * {@link upsertBarsIsolated} (the happy path is the same single statement).
   */
  async upsertBarsIsolated(bars: readonly Bar[]): Promise<IsolatedUpsert> {
    if (bars.length === 0) return upsertBarsIsolated(this.#db, bars);
    const started = performance.now();
    const result = await upsertBarsIsolated(this.#db, bars, this.#upsert);
    this.#onWrite?.((performance.now() - started) / 1000, BARS_TABLE);
    return result;
  }

  /** Bars of one provider matching `query`, ordered by symbol, then window start, then interval. */
  async listBars(query: ListBarsQuery): Promise<Bar[]> {
    let select = this.#db.selectFrom('bars_ohlcv').select(['provider', 'symbol', 'interval', 'ts', 'open', 'high', 'low', 'close', 'volume', 'trades']);
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

  /**
   * Every provider's stored bars with its newest bar and last write, by provider name. One scan of
   * `bars_ohlcv`: `mdp status` shows what every producer and replay landed, not only one provider.
   */
  async barsByProvider(): Promise<ProviderBars[]> {
    const rows = await this.#db
      .selectFrom('bars_ohlcv')
      .select((eb) => ['provider', eb.fn.countAll<string>().as('n'), eb.fn.max('ts').as('last_ts'), eb.fn.max('updated_at').as('last_written')])
      .groupBy('provider')
      .orderBy('provider')
      .execute();
    return rows.map((r) => ({
      provider: r.provider,
      bars: Number(r.n),
      lastBarMs: new Date(r.last_ts).getTime(),
      lastWrittenMs: new Date(r.last_written).getTime(),
    }));
  }
}

/** The error of an {@link StoreClient.upsertBars} call whose bars the database partly refused. */
function rejectedRowsError(rejected: readonly RejectedBar[], total: number): StoreError {
  // Keys are shown JSON-quoted (a NUL stays visible) and cut short (the symbol may be what was refused).
  const shown = rejected.slice(0, 3).map(({ bar, reason }) => {
    const key = [bar.provider, bar.symbol].map((text) =>
      text.length > 40 ? `${JSON.stringify(text.slice(0, 40))}…(${text.length} chars)` : JSON.stringify(text),
    );
    return `${key.join('/')} ${bar.interval} ${new Date(bar.tsMs).toISOString()}: ${reason}`;
  });
  const more = rejected.length > shown.length ? `; and ${rejected.length - shown.length} more` : '';
  return new StoreError('REJECTED_ROWS', `the store rejected ${rejected.length} of ${total} bars (the others were written): ${shown.join('; ')}${more}`);
}
