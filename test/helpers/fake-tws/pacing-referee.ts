/**
 * The fake TWS's own enforcement of IB's pacing limits, written independently of mdp's pacer
 * (pipeline/producers/ibkr/pacer.ts) so a mistake in one is caught by the other. It only judges;
 * the server answers what it says with the error TWS sends.
 *
 * Sources: TWS API docs, "Historical Data Limitations" (identical requests within 15 s; six or more
 * requests for the same contract, exchange and tick type within 2 s; more than 60 requests in any
 * 10 minutes, BID_ASK counting twice; at most 50 simultaneous open requests), "5 Second Real Time
 * Bars" (real-time bar requests share those limits) and the 50 messages per second a client may
 * send (error 100).
 */

export interface PacingLimits {
  /** Messages per second one client connection may send (IB: 50). */
  readonly messagesPerSecond: number;
  /** Historical requests open (answer not yet sent) at once (IB: 50). */
  readonly historicalMaxOpen: number;
  /** An identical historical request within this many ms is a violation (IB: 15 000). */
  readonly identicalMs: number;
  /** This many requests for one contract, exchange and tick type are allowed within `sameContractMs`; one more is a violation (IB: 5, i.e. "six or more"). */
  readonly sameContractMax: number;
  readonly sameContractMs: number;
  /** Historical and real-time-bar requests allowed in any `windowMs` (IB: 60 in 10 minutes; BID_ASK counts 2). */
  readonly windowMax: number;
  readonly windowMs: number;
}

export const IB_PACING_LIMITS: PacingLimits = {
  messagesPerSecond: 50,
  historicalMaxOpen: 50,
  identicalMs: 15_000,
  sameContractMax: 5,
  sameContractMs: 2_000,
  windowMax: 60,
  windowMs: 600_000,
};

/** Which rule a request broke. */
export type PacingRule =
  'message_rate' | 'historical_max_open' | 'historical_identical' | 'historical_same_contract' | 'historical_window' | 'realtime_window' | 'market_data_lines';

export interface HistoricalAsk {
  /** Every parameter but the request id: equal keys are "identical requests". */
  readonly identity: string;
  /** Contract, exchange and tick type (whatToShow). */
  readonly contractKey: string;
  /** 2 for BID_ASK, else 1. */
  readonly weight: number;
}

/** Sliding-window bookkeeping for one TWS (all its connections share the historical limits). */
export class PacingReferee {
  readonly limits: PacingLimits;
  /** Accepted historical and real-time-bar requests: time and weight. */
  readonly #window: { atMs: number; weight: number }[] = [];
  readonly #identical = new Map<string, number>();
  readonly #sameContract = new Map<string, number[]>();

  constructor(limits: Partial<PacingLimits> = {}) {
    this.limits = { ...IB_PACING_LIMITS, ...limits };
  }

  /**
   * Records a client message at `atMs` in `times` (that connection's recent messages) and tells
   * whether it is one too many for the last second.
   */
  messageTooFast(times: number[], atMs: number): boolean {
    times.push(atMs);
    while (times.length > 0 && times[0] <= atMs - 1000) times.shift();
    return times.length > this.limits.messagesPerSecond;
  }

  /** Judges a historical request (open = requests of the TWS not answered yet); records it when accepted. */
  historical(ask: HistoricalAsk, open: number, atMs: number): PacingRule | undefined {
    const l = this.limits;
    if (open >= l.historicalMaxOpen) return 'historical_max_open';
    const last = this.#identical.get(ask.identity);
    if (last !== undefined && atMs - last < l.identicalMs) return 'historical_identical';
    const recent = (this.#sameContract.get(ask.contractKey) ?? []).filter((t) => t > atMs - l.sameContractMs);
    if (recent.length >= l.sameContractMax) return 'historical_same_contract';
    if (this.#windowUse(atMs) + ask.weight > l.windowMax) return 'historical_window';
    this.#identical.set(ask.identity, atMs);
    this.#sameContract.set(ask.contractKey, [...recent, atMs]);
    this.#window.push({ atMs, weight: ask.weight });
    return undefined;
  }

  /** Judges a real-time-bars request against the shared window; records it when accepted. */
  realTimeBars(atMs: number): PacingRule | undefined {
    if (this.#windowUse(atMs) + 1 > this.limits.windowMax) return 'realtime_window';
    this.#window.push({ atMs, weight: 1 });
    return undefined;
  }

  #windowUse(atMs: number): number {
    while (this.#window.length > 0 && this.#window[0].atMs <= atMs - this.limits.windowMs) this.#window.shift();
    return this.#window.reduce((n, r) => n + r.weight, 0);
  }
}
