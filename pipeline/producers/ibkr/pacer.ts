import { setTimeout as sleep } from 'node:timers/promises';
import type { IbkrPacingConfig } from '../../config/index.js';
import type { Metrics } from '../../telemetry/index.js';

/**
 * Time as the pacer sees it: the wall clock in production, a manual one in tests.
 */

/**
 * IB's published pacing limits (TWS API docs, "Historical Data Limitations" and "Market Data
 * Pacing"): the defaults of `producers.ibkr.pacing`.
 */
export const IB_PACING_LIMITS: IbkrPacingConfig = {
  enabled: true,
  messages_per_second: 50,
  historical_max_open: 50,
  historical_identical_ms: 15_000,
  historical_same_contract_max: 5,
  historical_same_contract_ms: 2_000,
  historical_window_max: 60,
  historical_window_ms: 600_000,
};

export interface PacerClock {
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: PacerClock = {
  now: () => Date.now(),
  sleep: (ms, signal) => sleep(ms, undefined, signal ? { signal } : undefined),
};

/** What a client → TWS message is, for `ibkr_requests_total{kind}` and `ibkr_pacing_wait_seconds{kind}`. */
export type IbRequestKind =
  | 'start_api'
  | 'contract_details'
  | 'tick_by_tick'
  | 'cancel_tick_by_tick'
  | 'real_time_bars'
  | 'cancel_real_time_bars'
  | 'historical_data'
  | 'cancel_historical_data'
  | 'current_time'
  | 'other';

/** Identity of a historical data request, as IB's pacing rules tell requests apart. */
export interface HistoricalRequestKey {
  /** The contract (conId, or symbol/secType/currency when there is none). */
  readonly contract: string;
  readonly exchange: string;
  /** TRADES, MIDPOINT, BID, ASK, BID_ASK (IB's "tick type" of the same-contract rule; BID_ASK counts twice). */
  readonly whatToShow: string;
  /** Every other parameter (end, duration, bar size, RTH, date format): equal keys are "identical requests". */
  readonly params: string;
}

/** A historical request in flight: release it when its answer (data, end, error) arrived or it was cancelled. */
export interface HistoricalPermit {
  release(): void;
}

export interface PacerOptions {
  readonly limits: IbkrPacingConfig;
  readonly clock?: PacerClock;
  readonly metrics?: Metrics;
  /**
   * Added to every time window (1 s of messages, 2 s, 15 s, 10 min): the spread between when the
   * pacer lets a message go and when TWS reads it. A few ms on an idle loopback, but an event-loop
   * stall can hold messages back and release them together: with 50 ms, a loaded 2-core box saw 9
   * messages/s violations reported by the fake TWS in one of many runs. Default 250 ms (a saturated
   * message rate of 40/s instead of 50/s): slower bursts, never a violation of IB's limit.
   */
  readonly marginMs?: number;
}

/** IB's error codes that mean "you exceeded a pacing limit": 100 messages/s, 162 historical, 322 open historical, 420 real-time bars. */
export const PACING_VIOLATION_CODES: ReadonlySet<number> = new Set([100, 162, 322, 420]);

/** The 162s that are pacing violations (162 also carries "no data", "time length exceed max", "query cancelled"). */
export function isPacingViolation(code: number, message: string): boolean {
  if (code === 162) return /pacing violation/i.test(message);
  return PACING_VIOLATION_CODES.has(code);
}

class AbortedError extends Error {
  constructor(reason: unknown) {
    super(reason instanceof Error ? reason.message : 'pacer wait aborted');
    this.name = 'AbortError';
  }
}

/** The keys of IB's "identical request" rule and of its same contract, exchange and tick type rule. */
function historicalKeys(key: HistoricalRequestKey): { identity: string; sameKey: string } {
  const sameKey = `${key.contract}|${key.exchange}|${key.whatToShow}`;
  return { identity: `${sameKey}|${key.params}`, sameKey };
}

/** Runs `task`s one at a time, in call order (FIFO), whatever each waits on. */
class Queue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task, task);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

/**
 * IB's pacing limits, enforced in front of every request to TWS: a request waits (a promise that
 * resolves when it may go) rather than violate. Defaults are IB's published limits
 * (`producers.ibkr.pacing`):
 *
 * - at most `messages_per_second` (50) client → TWS messages in any second (IB: "50 messages per
 *   second"; error 100). A sliding window rather than a token bucket: a bucket of 50 refilled at
 *   50/s lets 100 through in one second after an idle spell;
 * - historical data (IB: "Historical Data Limitations"): at most `historical_max_open` (50) open at
 *   once; no identical request within `historical_identical_ms` (15 s); at most
 *   `historical_same_contract_max` (5) for one contract, exchange and tick type within
 *   `historical_same_contract_ms` (2 s: "six or more" violate); at most `historical_window_max`
 *   (60) in any `historical_window_ms` (10 min), BID_ASK counting twice;
 * - real-time bars share the historical window (IB: "Real time bars subscriptions combine the
 *   limitations of both").
 *
 * Messages are granted in call order; historical requests queue among themselves (a request
 * waiting minutes for the 10-minute window does not hold up a cancel or a subscription). With
 * `enabled: false` (tests only) nothing waits, but requests are still counted.
 *
 * @example
 * ```ts
 * const pacer = new Pacer({ limits: config.producers.ibkr.pacing, metrics });
 * await pacer.acquire('tick_by_tick');
 * ib.reqTickByTickData(reqId, contract, 'AllLast', 0, false);
 * const permit = await pacer.acquireHistorical({ contract: '756733', exchange: 'SMART', whatToShow: 'TRADES', params });
 * ib.reqHistoricalData(...);   // permit.release() on its end marker, its error, or its cancel
 * ```
 */
export class Pacer {
  readonly limits: IbkrPacingConfig;
  readonly #clock: PacerClock;
  readonly #metrics: Metrics | undefined;
  readonly #margin: number;
  readonly #messages = new Queue();
  readonly #historical = new Queue();
  /** Grant times of recent messages (within the message window). */
  readonly #sent: number[] = [];
  readonly #open = new Set<HistoricalPermit>();
  #released: (() => void)[] = [];
  readonly #identical = new Map<string, number>();
  readonly #sameContract = new Map<string, number[]>();
  /** Historical requests and real-time-bar subscriptions in the long window: grant time and weight. */
  readonly #window: { atMs: number; weight: number }[] = [];
  #granted = 0;
  #waitedMs = 0;
  #violations = 0;

  constructor(options: PacerOptions) {
    this.limits = options.limits;
    this.#clock = options.clock ?? systemClock;
    this.#metrics = options.metrics;
    this.#margin = options.marginMs ?? 250;
    const l = options.limits;
    for (const key of ['messages_per_second', 'historical_max_open', 'historical_same_contract_max', 'historical_window_max'] as const) {
      if (!Number.isInteger(l[key]) || l[key] < 1) throw new RangeError(`producers.ibkr.pacing.${key} must be an integer ≥ 1 (got ${l[key]})`);
    }
  }

  /** Messages granted, time spent waiting, and violations the server reported so far. */
  get stats(): { readonly granted: number; readonly waitedMs: number; readonly violations: number } {
    return { granted: this.#granted, waitedMs: this.#waitedMs, violations: this.#violations };
  }

  /** Historical requests open (granted, not released). */
  get openHistorical(): number {
    return this.#open.size;
  }

  /** Waits until one message of `kind` may go to TWS now; send it right after this resolves. */
  acquire(kind: IbRequestKind, options: { signal?: AbortSignal } = {}): Promise<void> {
    const startedMs = this.#clock.now();
    return this.#messages.run(async () => {
      await this.#messageSlot(options.signal);
      this.#grant(kind, startedMs);
    });
  }

  /**
   * Waits until a historical data request may go (every historical rule and a message slot), and
   * returns its permit. Release the permit when the request is answered, failed or cancelled:
   * until then it counts as open.
   */
  acquireHistorical(key: HistoricalRequestKey, options: { signal?: AbortSignal } = {}): Promise<HistoricalPermit> {
    const startedMs = this.#clock.now();
    const weight = key.whatToShow === 'BID_ASK' ? 2 : 1;
    if (weight > this.limits.historical_window_max) {
      return Promise.reject(
        new RangeError(`a BID_ASK request counts 2, more than producers.ibkr.pacing.historical_window_max (${this.limits.historical_window_max})`),
      );
    }
    const { identity, sameKey } = historicalKeys(key);
    return this.#historical.run(async () => {
      for (;;) {
        const signal = options.signal;
        if (signal?.aborted) throw new AbortedError(signal.reason);
        if (this.limits.enabled && this.#open.size >= this.limits.historical_max_open) {
          await this.#nextRelease(signal);
          continue;
        }
        const waitMs = this.limits.enabled ? this.#historicalWait(identity, sameKey, weight) : 0;
        if (waitMs <= 0) break;
        await this.#clock.sleep(waitMs, signal).catch((err: unknown) => {
          throw new AbortedError(err);
        });
      }
      // The message slot last: the historical times are recorded when the request really goes.
      await this.#messages.run(() => this.#messageSlot(options.signal));
      const now = this.#clock.now();
      this.#identical.set(identity, now);
      this.#sameContract.set(sameKey, [...(this.#sameContract.get(sameKey) ?? []), now]);
      this.#window.push({ atMs: now, weight });
      this.#grant('historical_data', startedMs);
      let done = false;
      const permit: HistoricalPermit = {
        release: () => {
          if (done) return;
          done = true;
          this.#open.delete(permit);
          const waiters = this.#released;
          this.#released = [];
          for (const wake of waiters) wake();
        },
      };
      this.#open.add(permit);
      return permit;
    });
  }

  /** Waits until a real-time-bars subscription may go: the long historical window, then a message slot. */
  acquireRealTimeBars(options: { signal?: AbortSignal } = {}): Promise<void> {
    const startedMs = this.#clock.now();
    return this.#historical.run(async () => {
      for (;;) {
        const waitMs = this.limits.enabled ? this.#windowWait(1) : 0;
        if (waitMs <= 0) break;
        await this.#clock.sleep(waitMs, options.signal).catch((err: unknown) => {
          throw new AbortedError(err);
        });
      }
      await this.#messages.run(() => this.#messageSlot(options.signal));
      this.#window.push({ atMs: this.#clock.now(), weight: 1 });
      this.#grant('real_time_bars', startedMs);
    });
  }

  /**
   * Counts a historical request that another process sent at `atMs` (a worker killed mid-backfill,
   * another worker of the same backfill), so this pacer keeps IB's limits together with it. Nothing
   * is sent, granted or metered: it only joins the identical, same-contract and window rules.
   */
  recordHistorical(key: HistoricalRequestKey, atMs: number): void {
    const { identity, sameKey } = historicalKeys(key);
    this.#identical.set(identity, Math.max(this.#identical.get(identity) ?? atMs, atMs));
    this.#sameContract.set(
      sameKey,
      [...(this.#sameContract.get(sameKey) ?? []), atMs].sort((a, b) => a - b),
    );
    // The window is in time order (expired entries leave from the front).
    const at = this.#window.findIndex((r) => r.atMs > atMs);
    this.#window.splice(at === -1 ? this.#window.length : at, 0, { atMs, weight: key.whatToShow === 'BID_ASK' ? 2 : 1 });
  }

  /** TWS reported a pacing violation (see {@link isPacingViolation}): counted, it must stay 0. */
  reportViolation(code: number): void {
    this.#violations++;
    this.#metrics?.ibkrPacingViolations.inc({ code: String(code) });
  }

  #grant(kind: IbRequestKind, startedMs: number): void {
    const waited = Math.max(0, this.#clock.now() - startedMs);
    this.#granted++;
    this.#waitedMs += waited;
    this.#metrics?.ibkrRequests.inc({ kind });
    this.#metrics?.ibkrPacingWaitSeconds.observe({ kind }, waited / 1000);
  }

  /** Waits for room in the message window, then takes it. */
  async #messageSlot(signal: AbortSignal | undefined): Promise<void> {
    const windowMs = 1000 + this.#margin;
    const limit = this.limits.messages_per_second;
    for (;;) {
      if (signal?.aborted) throw new AbortedError(signal.reason);
      const now = this.#clock.now();
      while (this.#sent.length > 0 && this.#sent[0] <= now - windowMs) this.#sent.shift();
      if (!this.limits.enabled || this.#sent.length < limit) {
        this.#sent.push(now);
        if (this.#sent.length > limit) this.#sent.shift();
        return;
      }
      // The message `limit` places back leaves the window at its time + windowMs.
      await this.#clock.sleep(this.#sent[this.#sent.length - limit] + windowMs - now, signal).catch((err: unknown) => {
        throw new AbortedError(err);
      });
    }
  }

  /** Ms until the identical, same-contract and window rules all allow a request; ≤ 0 when they do now. */
  #historicalWait(identity: string, sameKey: string, weight: number): number {
    const l = this.limits;
    const now = this.#clock.now();
    let ready = now;
    const last = this.#identical.get(identity);
    if (last !== undefined) ready = Math.max(ready, last + l.historical_identical_ms + this.#margin);
    const sameMs = l.historical_same_contract_ms + this.#margin;
    const recent = (this.#sameContract.get(sameKey) ?? []).filter((t) => t > now - sameMs);
    this.#sameContract.set(sameKey, recent);
    if (recent.length >= l.historical_same_contract_max) ready = Math.max(ready, recent[recent.length - l.historical_same_contract_max] + sameMs);
    ready = Math.max(ready, now + this.#windowWait(weight));
    // Forget identical requests older than the rule (the map would otherwise grow with every request).
    for (const [key, at] of this.#identical) if (at <= now - l.historical_identical_ms - this.#margin) this.#identical.delete(key);
    return ready - now;
  }

  /** Ms until `weight` more fits in the long window; ≤ 0 when it does now. */
  #windowWait(weight: number): number {
    const windowMs = this.limits.historical_window_ms + this.#margin;
    const now = this.#clock.now();
    while (this.#window.length > 0 && this.#window[0].atMs <= now - windowMs) this.#window.shift();
    let used = this.#window.reduce((n, r) => n + r.weight, 0);
    let i = 0;
    let until = now;
    while (used + weight > this.limits.historical_window_max && i < this.#window.length) {
      used -= this.#window[i].weight;
      until = this.#window[i].atMs + windowMs;
      i++;
    }
    return until - now;
  }

  #nextRelease(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((done, fail) => {
      const onAbort = () => fail(new AbortedError(signal?.reason));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#released.push(() => {
        signal?.removeEventListener('abort', onAbort);
        done();
      });
    });
  }
}

/** How the market data line budget was spent: what was subscribed and what refused. */
export interface LineAllocation<T> {
  readonly granted: readonly T[];
  readonly refused: readonly T[];
  /** Lines the granted contracts take. */
  readonly used: number;
}

/**
 * Spends `budget` market data lines on `contracts` in order, `linesEach` per contract (one per
 * live subscription: tick-by-tick and real-time bars each hold one); the ones that do not fit are
 * refused, whole (a contract never gets half its subscriptions).
 */
export function allocateLines<T>(contracts: readonly T[], linesEach: number, budget: number): LineAllocation<T> {
  if (!Number.isInteger(linesEach) || linesEach < 1) throw new RangeError(`lines per contract must be an integer ≥ 1 (got ${linesEach})`);
  const fit = Math.max(0, Math.floor(budget / linesEach));
  const granted = contracts.slice(0, fit);
  return { granted, refused: contracts.slice(fit), used: granted.length * linesEach };
}
