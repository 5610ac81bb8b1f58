import type { ColumnType, Generated } from 'kysely';

/**
 * Kysely table types for the store. Column names are the SQL names (snake_case); the mapping to
 * the camelCase contract types happens in the clients, so nothing outside `store/` sees them.
 */

/** Statuses a `job_runs` row can have; `running` is the only non-terminal one. */
export type JobRunStatus = 'running' | 'success' | 'failure' | 'abandoned';

/** `bars_ohlcv`: one row per (provider, symbol, interval, ts); see migration `0001_bars_ohlcv`. */
export interface BarsOhlcvTable {
  provider: string;
  symbol: string;
  interval: string;
  /** Window start. Written as a `Date` or an ISO-8601 string, read back as a `Date`. */
  ts: ColumnType<Date, Date | string, Date | string>;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  trades: number;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

/** `job_runs`: the audit trail of consumer runs, replays and reloads; see `0002_job_runs`. */
export interface JobRunsTable {
  /** `bigserial`; node-postgres returns int8 as a string to avoid losing precision. */
  id: ColumnType<string, never, never>;
  job_name: string;
  kind: string;
  status: JobRunStatus;
  started_at: Generated<Date>;
  heartbeat_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  finished_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  /** `jsonb`, written as JSON text (node-postgres would turn a JS array into a PG array). */
  counts: ColumnType<Record<string, number>, string | undefined, string>;
  error: string | null;
  meta: ColumnType<Record<string, unknown>, string | undefined, string>;
}

/** `signals`: one row per (provider, symbol, name, interval_ms, ts); see migrations `0003_signals`, `0005_signals_interval`. */
export interface SignalsTable {
  provider: string;
  symbol: string;
  name: string;
  /** Length in ms of the bars that fired the signal (`meta.interval_ms`). */
  interval_ms: number;
  /** Start of the bar that fired the signal. Written as a `Date` or an ISO-8601 string. */
  ts: ColumnType<Date, Date | string, Date | string>;
  value: number;
  score: number;
  /** `jsonb`, written as JSON text: the whole signal `meta`, `adapter` and `model_version` included. */
  meta: ColumnType<Record<string, unknown>, string | undefined, string>;
  /** Copy of `meta.adapter`. */
  adapter: string;
  /** Copy of `meta.model_version` (or `meta.rule_version`), `null` when neither is set. */
  model_version: string | null;
  /** Copy of `meta.source`: `live`, `replay:<workflow id>`, or `unknown` for rows older than `0005`. */
  source: string;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

/** The whole database as kysely sees it. */
export interface Database {
  bars_ohlcv: BarsOhlcvTable;
  job_runs: JobRunsTable;
  signals: SignalsTable;
  shard_positions: ShardPositionsTable;
}

/** `shard_positions`: one row per (stream, consumer group); see `0004_shard_positions`. */
export interface ShardPositionsTable {
  stream: string;
  consumer_group: string;
  owner: string;
  /** `bigint`; node-postgres returns int8 as a string. */
  epoch: ColumnType<string, number | string, number | string>;
  frontier_ms: ColumnType<string | null, number | string | null | undefined, number | string | null>;
  read_id: string | null;
  oldest_open_id: string | null;
  /** `jsonb` list of `{ frontierMs, readId }`, written as JSON text. */
  marks: ColumnType<{ frontierMs: number; readId: string }[], string | undefined, string>;
  last_commit_from_ms: ColumnType<string | null, number | string | null | undefined, number | string | null>;
  acquired_at: ColumnType<Date, Date | string | undefined, Date | string>;
  committed_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}
