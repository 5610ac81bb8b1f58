/**
 * Inputs and results of the IBKR historical backfill (`ibkrBackfillWorkflow` and its activities).
 * Plain JSON, so the workflow can be started from the Temporal CLI or Web UI.
 */

/**
 * Input of `ibkrBackfillWorkflow` — e.g.
 * `{"symbol":"SPY","from":"2025-10-01","to":"2025-10-03","bar":"1s","what":"TRADES"}`.
 */
export interface IbkrBackfillInput {
  /** IB symbol; its contract comes from `producers.ibkr.contracts` (a US stock on SMART when not listed). */
  readonly symbol: string;
  /** Start, inclusive: a date (`2025-10-01`, UTC midnight) or an ISO-8601 timestamp with zone. */
  readonly from: string;
  /** End, exclusive, same forms; not in the future. */
  readonly to: string;
  /** `1s`, `5s` or `1m`. */
  readonly bar: string;
  /** `TRADES` (default) or `MIDPOINT`. */
  readonly what?: string;
  /** Dataset to write (default `ibkr_<symbol>_<bar>_<what>`); registered in the worker's datasets file when new. */
  readonly dataset?: string;
  /** Regular trading hours only (IB's useRTH); default false: every bar IB has. */
  readonly useRth?: boolean;
  /** Seconds per request, at most IB's maximum for the bar size (the default). */
  readonly chunkSeconds?: number;
}

/** The contract a backfill requests, as configured (`producers.ibkr.contracts`). */
export interface IbkrBackfillContract {
  readonly symbol: string;
  readonly secType: string;
  readonly exchange: string;
  readonly currency: string;
  readonly primaryExch?: string;
  /** True when the symbol was not in `producers.ibkr.contracts` and the US-stock default was used. */
  readonly defaulted: boolean;
}

/** What `planIbkrBackfill` settled: the checked request, the dataset and the chunks. */
export interface IbkrBackfillPlan {
  readonly symbol: string;
  readonly bar: '1s' | '5s' | '1m';
  readonly what: 'TRADES' | 'MIDPOINT';
  readonly useRth: boolean;
  readonly contract: IbkrBackfillContract;
  /** Provider on the fetched bars. */
  readonly provider: string;
  readonly dataset: string;
  readonly datasetDir: string;
  /** True when this backfill added the dataset to the datasets file. */
  readonly datasetAdded: boolean;
  readonly datasetsFile: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly chunkMs: number;
  readonly chunksTotal: number;
  /** Chunks already written by an earlier fetch (they are not requested again). */
  readonly chunksPresent: number;
}

/** When a chunk's request went out, and which worker process sent it. */
export interface IbkrSentRequest {
  readonly index: number;
  readonly atMs: number;
  /** The sending process's historical source (`HistoricalBarsSource.requesterId`). */
  readonly requester: string;
}

export interface IbkrChunkInput {
  readonly plan: IbkrBackfillPlan;
  readonly index: number;
  readonly chunk: { readonly fromMs: number; readonly toMs: number };
  readonly jobRunId: number;
  /** Totals of the chunks before, so the audit row's counts stay current. */
  readonly totalsBefore: Readonly<Record<string, number>>;
  /**
   * The backfill's latest requests (at most the last hour): a worker that did not send them tells
   * its pacer, so a backfill moving between workers (or resuming after a crash) keeps IB's limits.
   */
  readonly recentRequests?: readonly IbkrSentRequest[];
}

/** Counts of a backfill (or of one chunk). */
export interface IbkrBackfillCounts {
  /** Chunks requested from IB (a chunk found on disk is not). */
  requests: number;
  /** Chunks found already written (by an earlier fetch, or by an attempt killed after writing it). */
  cached: number;
  /** Chunks IB had no bars for (outside trading hours, holidays): written as empty files. */
  empty: number;
  /** Bars written to the dataset. */
  bars: number;
  /** Bars IB returned outside the chunk or twice in one reply (dropped). */
  dropped: number;
  /** Time requests waited for the pacer. */
  pacingWaitMs: number;
}

export interface IbkrChunkResult {
  readonly index: number;
  /** The request this chunk sent (none when its file was already there). */
  readonly sent?: IbkrSentRequest;
  readonly fromMs: number;
  readonly toMs: number;
  readonly file: string;
  readonly counts: IbkrBackfillCounts;
  /** The activity attempt that completed the chunk (> 1: an attempt before it failed or was killed). */
  readonly attempt: number;
  readonly elapsedMs: number;
}

/** What a chunk attempt heartbeats (the Web UI shows it on the pending activity). */
export interface IbkrChunkHeartbeat {
  readonly index: number;
  readonly chunk: string;
  readonly phase: 'pacing' | 'requesting' | 'writing';
  readonly waitedMs: number;
  readonly chunksDone: number;
  readonly chunksTotal: number;
}
