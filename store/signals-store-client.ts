import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { formatMicros, parseIsoToMicros } from '../pipeline/contracts/index.js';
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
}

const SIGNALS_TABLE = 'signals';

/** One stored row as the read queries select it; `ts_us` is int8 text from node-postgres. */
interface SignalRow {
  provider: string;
  symbol: string;
  name: string;
  ts_us: string;
  value: number;
  score: number;
  meta: Record<string, unknown>;
}

/**
 * Reads and idempotently writes v1 signal events (spec §3.2) in `signals`, keyed by
 * (provider, symbol, name, ts). The caller owns `db`; the client holds no connection of its own.
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
   * whole as jsonb, and its `adapter` and `model_version` (or `rule_version`) are also copied to
   * their own columns. Signals repeating a key within one call are collapsed, the last one winning.
   *
   * The counts add up to `signals.length`: `inserted` new keys, `updated` keys whose value, score
   * or meta changed, and `unchanged` for the rest (identical rows, and signals superseded within
   * the call).
   *
   * @throws {RangeError} when a signal's `ts` is not an ISO-8601 timestamp; nothing is written.
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
    }

    // One array parameter per column keeps the bind count at 9 for any batch size. `xmax = 0`
    // marks a freshly inserted row; rows skipped by the WHERE are not returned and count as
    // unchanged. jsonb compares by value, so a meta with its keys in another order is unchanged.
    const started = performance.now();
    const {
      rows: [written],
    } = await sql<{ inserted: number; updated: number }>`
      WITH written AS (
        INSERT INTO signals AS s (provider, symbol, name, ts, value, score, meta, adapter, model_version)
        SELECT * FROM unnest(
          ${provider}::text[], ${symbol}::text[], ${name}::text[], ${ts}::timestamptz[],
          ${value}::float8[], ${score}::float8[], ${meta}::jsonb[], ${adapter}::text[], ${modelVersion}::text[])
        ON CONFLICT (provider, symbol, name, ts) DO UPDATE SET
          value = excluded.value, score = excluded.score, meta = excluded.meta,
          adapter = excluded.adapter, model_version = excluded.model_version, updated_at = now()
        WHERE (s.value, s.score, s.meta, s.adapter, s.model_version)
          IS DISTINCT FROM (excluded.value, excluded.score, excluded.meta, excluded.adapter, excluded.model_version)
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

  /** Signals of one symbol matching `query`, ordered by `ts`, then name, then provider. */
  async listSignals(query: ListSignalsQuery): Promise<SignalEventV1[]> {
    let select = this.#db
      .selectFrom('signals')
      .select(['provider', 'symbol', 'name', tsMicrosColumn, 'value', 'score', 'meta'])
      .where('symbol', '=', query.symbol);
    if (query.provider !== undefined) select = select.where('provider', '=', query.provider);
    if (query.name !== undefined) select = select.where('name', '=', query.name);
    if (query.fromMs !== undefined) select = select.where('ts', '>=', new Date(query.fromMs));
    if (query.toMs !== undefined) select = select.where('ts', '<', new Date(query.toMs));
    select = select.orderBy('ts').orderBy('name').orderBy('provider');
    if (query.limit !== undefined) select = select.limit(query.limit);
    return (await select.execute()).map(toSignal);
  }

  /**
   * The newest signal of each name for one symbol (of one provider, or of all), ordered by name.
   * Ties on `ts` across providers go to the provider that sorts first.
   */
  async latestPerName(query: LatestPerNameQuery): Promise<SignalEventV1[]> {
    let select = this.#db
      .selectFrom('signals')
      .distinctOn('name')
      .select(['provider', 'symbol', 'name', tsMicrosColumn, 'value', 'score', 'meta'])
      .where('symbol', '=', query.symbol);
    if (query.provider !== undefined) select = select.where('provider', '=', query.provider);
    const rows = await select.orderBy('name').orderBy('ts', 'desc').orderBy('provider').execute();
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
    meta: row.meta as SignalMeta,
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
function lastPerKey(signals: readonly SignalEventV1[]): ReadonlyArray<{ signal: SignalEventV1; tsMicros: number }> {
  const byKey = new Map<string, { signal: SignalEventV1; tsMicros: number }>();
  for (const [index, signal] of signals.entries()) {
    const tsMicros = parseIsoToMicros(signal.ts);
    if (tsMicros === undefined) {
      throw new RangeError(`signal ${index} (${signal.provider}/${signal.symbol}/${signal.name}) has an invalid ts: ${JSON.stringify(signal.ts)}`);
    }
    // NUL cannot occur in PostgreSQL text, so it cannot make two different keys collide.
    byKey.set(`${signal.provider}\0${signal.symbol}\0${signal.name}\0${tsMicros}`, { signal, tsMicros });
  }
  return [...byKey.values()];
}
