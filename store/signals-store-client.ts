import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { formatMicros, LIVE_SOURCE, parseIsoToMicros } from '../pipeline/contracts/index.js';
import type { SignalEventV1, SignalMeta, UpsertCounts } from '../pipeline/contracts/index.js';
import type { StoreClientOptions, WriteObserver } from './bars-store-client.js';
import type { Database } from './schema.js';

/** Filter for {@link SignalsStoreClient.listSignals}. */
export interface ListSignalsQuery {
  /** Every provider when omitted. */
  readonly provider?: string;
  readonly symbol: string;
  /** Every signal name when omitted. */
  readonly name?: string;
  /** Bars of this length only (ms); every interval when omitted. */
  readonly intervalMs?: number;
  /** `live`, `replay:<workflow id>`, …; every source when omitted. */
  readonly source?: string;
  /** Inclusive lower bound on the signal's `ts`, epoch ms. */
  readonly fromMs?: number;
  /** Exclusive upper bound on the signal's `ts`, epoch ms. */
  readonly toMs?: number;
  /** At most this many signals, the earliest ones. */
  readonly limit?: number;
}

/** Filter for {@link SignalsStoreClient.latestPerName}. */
export interface LatestPerNameQuery {
  /** Every provider when omitted (the newest signal of a name wins whichever provider sent it). */
  readonly provider?: string;
  readonly symbol: string;
  /** Bars of this length only (ms); every interval when omitted. */
  readonly intervalMs?: number;
  /** `live`, `replay:<workflow id>`, …; every source when omitted. */
  readonly source?: string;
}

const SIGNALS_TABLE = 'signals';

/** One stored row as the read queries select it; `ts_us` is int8 text from node-postgres. */
interface SignalRow {
  provider: string;
  symbol: string;
  name: string;
  interval_ms: number;
  source: string;
  ts_us: string;
  value: number;
  score: number;
  meta: Record<string, unknown>;
}

/**
 * Reads and idempotently writes v1 signal events (spec §3.2) in `signals`, keyed by
 * (provider, symbol, name, interval_ms, ts): `meta.interval_ms`, the bars' length, is part of the key. The caller owns `db`; the client holds no connection of its own.
 *
 * Timestamps keep microsecond precision end to end: reads render `ts` without a fraction when it
 * falls on a whole second (`2025-10-24T14:02:02Z`, the contract's form), with milliseconds when it
 * falls on one, with microseconds otherwise.
 *
 * @example
 * const signals = new SignalsStoreClient(db, { onWrite: (s, table) => writeSeconds.observe({ table }, s) });
 * await signals.upsertSignals(events);
 * const latest = await signals.latestPerName({ symbol: 'SPY' });
 */
export class SignalsStoreClient {
  readonly #db: Kysely<Database>;
  readonly #onWrite: WriteObserver | undefined;

  constructor(db: Kysely<Database>, options: StoreClientOptions = {}) {
    this.#db = db;
    this.#onWrite = options.onWrite;
  }

  /**
   * Inserts new signals and rewrites changed ones in one SQL statement whatever the batch size;
   * identical rows are left untouched (re-delivered signals cost no writes). `meta` is stored
   * whole as jsonb, and its `adapter`, `model_version` (or `rule_version`), `interval_ms` and
   * `source` (default `live`) are also copied to their own columns. Signals repeating a key within one call are collapsed, the last one winning.
   *
   * The counts add up to `signals.length`: `inserted` new keys, `updated` keys whose value, score
   * or meta changed, and `unchanged` for the rest (identical rows, and signals superseded within
   * the call).
   *
   * @throws {RangeError} when a signal's `ts` is not an ISO-8601 timestamp or its `meta.interval_ms`
   * not a positive integer; nothing is written.
   */
  async upsertSignals(signals: readonly SignalEventV1[]): Promise<UpsertCounts> {
    if (signals.length === 0) return { inserted: 0, updated: 0, unchanged: 0 };
    const rows = lastPerKey(signals);
    const n = rows.length;
    const provider = new Array<string>(n);
    const symbol = new Array<string>(n);
    const name = new Array<string>(n);
    const ts = new Array<string>(n);
    const value = new Array<number>(n);
    const score = new Array<number>(n);
    const meta = new Array<string>(n);
    const adapter = new Array<string>(n);
    const modelVersion = new Array<string | null>(n);
    const intervalMs = new Array<number>(n);
    const source = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      const { signal, tsMicros } = rows[i];
      provider[i] = signal.provider;
      symbol[i] = signal.symbol;
      name[i] = signal.name;
      // Normalised (UTC, six fraction digits) so the key PostgreSQL stores is the one deduplicated on.
      ts[i] = formatMicros(tsMicros);
      value[i] = signal.value;
      score[i] = signal.score;
      // JSON text, cast to jsonb in SQL: node-postgres would send a JS object inside an array as text anyway.
      meta[i] = JSON.stringify(signal.meta);
      adapter[i] = signal.meta.adapter;
      modelVersion[i] = modelVersionOf(signal.meta);
      intervalMs[i] = rows[i].intervalMs;
      source[i] = typeof signal.meta.source === 'string' ? signal.meta.source : LIVE_SOURCE;
    }

    // One array parameter per column keeps the bind count at 11 for any batch size. `xmax = 0`
    // marks a freshly inserted row; rows skipped by the WHERE are not returned and count as
    // unchanged. jsonb compares by value, so a meta with its keys in another order is unchanged.
    const started = performance.now();
    const {
      rows: [written],
    } = await sql<{ inserted: number; updated: number }>`
      WITH written AS (
        INSERT INTO signals AS s (provider, symbol, name, interval_ms, ts, value, score, meta, adapter, model_version, source)
        SELECT * FROM unnest(
          ${provider}::text[], ${symbol}::text[], ${name}::text[], ${intervalMs}::int4[], ${ts}::timestamptz[],
          ${value}::float8[], ${score}::float8[], ${meta}::jsonb[], ${adapter}::text[], ${modelVersion}::text[], ${source}::text[])
        ON CONFLICT (provider, symbol, name, interval_ms, ts) DO UPDATE SET
          value = excluded.value, score = excluded.score, meta = excluded.meta,
          adapter = excluded.adapter, model_version = excluded.model_version, source = excluded.source, updated_at = now()
        WHERE (s.value, s.score, s.meta, s.adapter, s.model_version, s.source)
          IS DISTINCT FROM (excluded.value, excluded.score, excluded.meta, excluded.adapter, excluded.model_version, excluded.source)
        RETURNING (xmax = 0) AS inserted
      )
      SELECT count(*) FILTER (WHERE inserted)::int4 AS inserted,
             count(*) FILTER (WHERE NOT inserted)::int4 AS updated
      FROM written`.execute(this.#db);
    this.#onWrite?.((performance.now() - started) / 1000, SIGNALS_TABLE);

    // An aggregate without GROUP BY always yields exactly one row.
    const { inserted, updated } = written;
    return { inserted, updated, unchanged: signals.length - inserted - updated };
  }

  /** Signals of one symbol matching `query`, ordered by `ts`, then name, then provider, then interval. */
  async listSignals(query: ListSignalsQuery): Promise<SignalEventV1[]> {
    let select = this.#db.selectFrom('signals').select(SIGNAL_COLUMNS).where('symbol', '=', query.symbol);
    if (query.provider !== undefined) select = select.where('provider', '=', query.provider);
    if (query.name !== undefined) select = select.where('name', '=', query.name);
    if (query.intervalMs !== undefined) select = select.where('interval_ms', '=', query.intervalMs);
    if (query.source !== undefined) select = select.where('source', '=', query.source);
    if (query.fromMs !== undefined) select = select.where('ts', '>=', new Date(query.fromMs));
    if (query.toMs !== undefined) select = select.where('ts', '<', new Date(query.toMs));
    select = select.orderBy('ts').orderBy('name').orderBy('provider').orderBy('interval_ms');
    if (query.limit !== undefined) select = select.limit(query.limit);
    return (await select.execute()).map(toSignal);
  }

  /**
   * The newest signal of each name for one symbol (of one provider, or of all; of one interval, or
   * of all), ordered by name. Ties on `ts` go to the provider that sorts first, then the shorter interval.
   */
  async latestPerName(query: LatestPerNameQuery): Promise<SignalEventV1[]> {
    let select = this.#db.selectFrom('signals').distinctOn('name').select(SIGNAL_COLUMNS).where('symbol', '=', query.symbol);
    if (query.provider !== undefined) select = select.where('provider', '=', query.provider);
    if (query.intervalMs !== undefined) select = select.where('interval_ms', '=', query.intervalMs);
    if (query.source !== undefined) select = select.where('source', '=', query.source);
    const rows = await select.orderBy('name').orderBy('ts', 'desc').orderBy('provider').orderBy('interval_ms').execute();
    return rows.map(toSignal);
  }

  /** Number of stored signals for `provider`, over all symbols and names. */
  async countSignals(provider: string): Promise<number> {
    const row = await this.#db
      .selectFrom('signals')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('provider', '=', provider)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }
}

/**
 * `ts` as integer epoch microseconds: node-postgres would parse the timestamptz into a `Date` and
 * drop the microseconds. `extract(epoch …)` is numeric (exact) since PostgreSQL 14.
 */
const tsMicrosColumn = sql<string>`(extract(epoch from ts) * 1000000)::int8`.as('ts_us');

/** What the reads select: the key, the values, and the columns that {@link toSignal} puts back into `meta`. */
const SIGNAL_COLUMNS = ['provider', 'symbol', 'name', 'interval_ms', 'source', tsMicrosColumn, 'value', 'score', 'meta'] as const;

function toSignal(row: SignalRow): SignalEventV1 {
  return {
    ver: 1,
    provider: row.provider,
    symbol: row.symbol,
    ts: formatSignalTs(Number(row.ts_us)),
    name: row.name,
    value: row.value,
    score: row.score,
    // Written from a SignalMeta by upsertSignals; the table is only written through this client.
    // The key's interval and the source are the columns' (rows older than 0005 lack them in meta).
    meta: { ...(row.meta as SignalMeta), interval_ms: row.interval_ms, source: row.source },
  };
}

/** `2025-10-24T14:02:02Z`, `…02.250Z` or `…02.250125Z`: the shortest exact form of `us`. */
function formatSignalTs(us: number): string {
  const full = formatMicros(us); // YYYY-MM-DDTHH:MM:SS.ffffffZ
  const fraction = full.slice(20, 26);
  if (fraction === '000000') return `${full.slice(0, 19)}Z`;
  if (fraction.endsWith('000')) return `${full.slice(0, 23)}Z`;
  return full;
}

function modelVersionOf(meta: SignalMeta): string | null {
  if (typeof meta.model_version === 'string') return meta.model_version;
  // The rules adapter versions its rules file rather than a model.
  return typeof meta.rule_version === 'string' ? meta.rule_version : null;
}

/**
 * Parses each `ts` and collapses signals sharing a key, keeping the last occurrence: PostgreSQL
 * rejects an upsert that would touch the same row twice. The key uses the parsed instant, so
 * `…02Z` and `…02.000Z` are one key, as they are one row.
 */
function lastPerKey(signals: readonly SignalEventV1[]): ReadonlyArray<{ signal: SignalEventV1; tsMicros: number; intervalMs: number }> {
  const byKey = new Map<string, { signal: SignalEventV1; tsMicros: number; intervalMs: number }>();
  for (const [index, signal] of signals.entries()) {
    const tsMicros = parseIsoToMicros(signal.ts);
    if (tsMicros === undefined) {
      throw new RangeError(`signal ${index} (${signal.provider}/${signal.symbol}/${signal.name}) has an invalid ts: ${JSON.stringify(signal.ts)}`);
    }
    const intervalMs = signal.meta.interval_ms;
    if (typeof intervalMs !== 'number' || !Number.isSafeInteger(intervalMs) || intervalMs <= 0 || intervalMs > 2 ** 31 - 1) {
      throw new RangeError(
        `signal ${index} (${signal.provider}/${signal.symbol}/${signal.name}) has no valid meta.interval_ms, the bar length in ms its key needs (got ${JSON.stringify(intervalMs)})`,
      );
    }
    // NUL cannot occur in PostgreSQL text, so it cannot make two different keys collide.
    byKey.set(`${signal.provider}\0${signal.symbol}\0${signal.name}\0${intervalMs}\0${tsMicros}`, { signal, tsMicros, intervalMs });
  }
  return [...byKey.values()];
}
