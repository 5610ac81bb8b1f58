/**
 * One OHLCV bar for one (provider, symbol, interval) at window start `tsMs`. Shared between the
 * pipeline (which computes bars) and the store (which persists them); the key is
 * (provider, symbol, interval, tsMs).
 */
export interface Bar {
  readonly provider: string;
  readonly symbol: string;
  /** Window length label, e.g. `2s`. */
  readonly interval: string;
  /** Window start, epoch milliseconds (aligned to the epoch). */
  readonly tsMs: number;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  readonly volume: number;
  /** Number of distinct events aggregated into the bar. */
  readonly trades: number;
}

/** Counts returned by an idempotent upsert. */
export interface UpsertCounts {
  readonly inserted: number;
  readonly updated: number;
  readonly unchanged: number;
}

/** A bar the store refused for its own values (a permanent error), with the store's words. */
export interface RejectedBar {
  /** The bar as passed in (the same object). */
  readonly bar: Bar;
  /** The store's error code (a PostgreSQL SQLSTATE such as `54000`). */
  readonly code: string;
  /** The store's message, e.g. `index row size 4016 exceeds btree version 4 maximum 2704 … (SQLSTATE 54000)`. */
  readonly reason: string;
}

/** An upsert that wrote every bar it could (`upsertBarsIsolated` in `store/`): inserted + updated + unchanged + rejected = bars passed in. */
export interface IsolatedUpsert {
  readonly counts: UpsertCounts;
  readonly rejected: readonly RejectedBar[];
}

/** What the pipeline needs from a bar store; implemented in `store/` (the only place with SQL). */
export interface BarSink {
  /**
   * Writes the bars; throws on a transient error (nothing written), and when the store refuses
   * some bars for their own values, after writing the others.
   */
  upsertBars(bars: readonly Bar[]): Promise<UpsertCounts>;
  /** Stored bars of one interval from `fromMs` on, all providers, ordered by provider, symbol, ts. */
  listBars(query: { interval: string; fromMs: number }): Promise<Bar[]>;
}

/** Audit of one job (a consumer run, a replay, a reload) in `job_runs`. */
export interface JobRunSink {
  start(input: { jobName: string; kind: string; meta?: Record<string, unknown> }): Promise<number>;
  heartbeat(id: number, counts: Record<string, number>): Promise<void>;
  finish(id: number, status: 'success' | 'failure', counts: Record<string, number>, error?: string): Promise<void>;
  /** Marks the job's rows still `running` (a crashed attempt's) as `abandoned`; returns how many. */
  markAbandoned(jobName: string): Promise<number>;
}
