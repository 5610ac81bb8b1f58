import { setTimeout as sleep } from 'node:timers/promises';
import type { Contract } from '@stoqey/ib';
import { EventName, TickByTickDataType, WhatToShow } from '@stoqey/ib';
import type { IbkrContractConfig } from '../../config/index.js';
import type { StreamEventV1 } from '../../contracts/index.js';
import type { Logger, Metrics } from '../../telemetry/index.js';
import type { IbMessage, IbSession } from './ib-session.js';
import type { IbkrEventBuilder } from './ibkr-events.js';
import type { IbkrFeedKind } from './ibkr-plan.js';
import { describeContract } from './ibkr-plan.js';

/**
 * Why the live feed had no data for a while: the connection to TWS dropped (or TWS said 1101, data
 * lost), TWS lost IB (1100), the market data farm broke (2103), a new attempt or run took over
 * (`restart`: a worker died, or a run ended), or the publisher fell too far behind the bus.
 */
export const GAP_REASONS = ['disconnected', 'connectivity_lost', 'market_farm_broken', 'restart', 'backpressure'] as const;
export type GapReason = (typeof GAP_REASONS)[number];

/** A stretch of time in which trades may have printed that the feed did not receive. */
export interface GapRecord {
  readonly fromMs: number;
  readonly toMs: number;
  readonly seconds: number;
  readonly reason: GapReason;
}

/** A contract the feed does not serve, and why. */
export interface RefusedContract {
  readonly contract: string;
  readonly reason: string;
}

export interface IbkrFeedOptions {
  readonly session: IbSession;
  /** The contracts to subscribe (already within the line budget). */
  readonly contracts: readonly IbkrContractConfig[];
  readonly feeds: readonly IbkrFeedKind[];
  readonly builder: IbkrEventBuilder;
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** A gap already open when the feed starts: a resumed attempt's, since its predecessor was last alive. */
  readonly openGap?: { readonly sinceMs: number; readonly reason: GapReason };
  /** Events held for the publisher at most; beyond, new ones are dropped and the time reported as a gap. Default 200 000. */
  readonly maxBuffered?: number;
  /** How long a contract-details request may take. Default 10 s. */
  readonly detailsTimeoutMs?: number;
  readonly now?: () => number;
}

/**
 * TWS errors that end a subscription for good: 101 no market data line left, 200 no such security,
 * 321 request invalid, 354 / 10089 / 10090 / 10168 no market data permission, 10190 no tick-by-tick
 * subscription left. Other messages about a subscription are logged as warnings.
 */
const REFUSING_CODES: ReadonlySet<number> = new Set([101, 200, 321, 354, 10089, 10090, 10168, 10190]);

/** Pause before asking again for contract details that did not come (a slow or restarting TWS). */
const RETRY_MS = 5000;

/** Causes that keep a gap open; `starting` is the first subscription of a fresh run (not a gap). */
type Cause = GapReason | 'starting';

interface Subscription {
  readonly symbol: string;
  readonly kind: IbkrFeedKind;
  readonly contract: IbkrContractConfig;
}

/**
 * The live IBKR feed over an {@link IbSession}: resolves each contract (contract details, error
 * 200 refuses it by name), subscribes tick-by-tick AllLast trades and/or 5-second real-time bars,
 * turns what arrives into v1 events ({@link IbkrEventBuilder}) held for the publisher, and
 * re-subscribes on every new connection and after TWS's 1101 ("data lost").
 *
 * Gaps, never silently bridged: a gap opens when the connection drops, TWS loses IB (1100), the
 * market data farm breaks (2103), the publisher falls too far behind, or (for a resumed attempt)
 * at the moment the previous attempt was last alive; it closes when data flows again (subscribed
 * anew, 1102, 2104). Each closed gap is logged, observed in `ibkr_gap_seconds{reason}`, and listed in
 * {@link IbkrFeed.gaps}; `ibkr_connected` is 0 while one is open.
 */
export class IbkrFeed {
  readonly #o: IbkrFeedOptions;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #buffer: StreamEventV1[] = [];
  readonly #subs = new Map<number, Subscription>();
  readonly #conIds = new Map<string, number>();
  readonly #refused = new Map<string, RefusedContract>();
  readonly #pending = new Map<number, { done: (conId: number | undefined) => void; fail: (reason: string) => void; conId?: number }>();
  readonly #causes = new Map<Cause, number>();
  readonly #gaps: GapRecord[] = [];
  #gapSince: { atMs: number; reason: Cause } | undefined;
  #generation = 0;
  #dropped = 0;
  #received = 0;
  #lastLiveMs: number | undefined;
  #closed = false;

  constructor(options: IbkrFeedOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => Date.now());
    this.#log = options.log;
    const now = this.#now();
    if (options.openGap) {
      this.#open(options.openGap.reason, options.openGap.sinceMs);
      // Until this attempt is live, its predecessor's last live moment stands.
      this.#lastLiveMs = options.openGap.sinceMs;
    }
    this.#open('starting', now);
  }

  /** Closed gaps of this run, oldest first. */
  get gaps(): readonly GapRecord[] {
    return this.#gaps;
  }

  /** The gap open now (since when, why), or undefined while data flows. */
  get openGap(): { readonly sinceMs: number; readonly reason: string } | undefined {
    return this.#gapSince && this.#gapSince.reason !== 'starting' ? { sinceMs: this.#gapSince.atMs, reason: this.#gapSince.reason } : undefined;
  }

  /** True while every subscription is live and nothing keeps a gap open. */
  get live(): boolean {
    return this.#causes.size === 0;
  }

  /** `starting` until the first subscriptions of a fresh run are live, then `live` or `gap`. */
  get status(): 'starting' | 'live' | 'gap' {
    if (this.#causes.size === 0) return 'live';
    return this.#gapSince?.reason === 'starting' ? 'starting' : 'gap';
  }

  /** The last moment the feed was known live (now while it is). */
  get lastLiveMs(): number | undefined {
    return this.live ? this.#now() : this.#lastLiveMs;
  }

  get refused(): readonly RefusedContract[] {
    return [...this.#refused.values()];
  }

  /** Events received from TWS, and those dropped because the publisher was too far behind. */
  get counts(): { readonly received: number; readonly dropped: number; readonly buffered: number } {
    return { received: this.#received, dropped: this.#dropped, buffered: this.#buffer.length };
  }

  /** Wires the feed to the session (start the session after, or before: a ready session is subscribed at once). */
  start(): void {
    const s = this.#o.session;
    s.listen(EventName.tickByTickAllLast, (reqId: number, _type: number, time: string, price: number, size: number) => this.#onTick(reqId, time, price, size));
    s.listen(
      EventName.realtimeBar,
      (reqId: number, time: number, open: number, high: number, low: number, close: number, volume: number, _wap: number, count: number) =>
        this.#onBar(reqId, time, { open, high, low, close, volume, count }),
    );
    s.listen(EventName.contractDetails, (reqId: number, details: { contract: { conId?: number } }) => {
      const p = this.#pending.get(reqId);
      if (p) p.conId = details.contract.conId;
    });
    s.listen(EventName.contractDetailsEnd, (reqId: number) => {
      const p = this.#pending.get(reqId);
      if (p) p.done(p.conId);
    });
    s.on('ready', () => {
      this.#close('connectivity_lost');
      this.#close('market_farm_broken');
      void this.#subscribeAll();
    });
    s.on('down', () => this.#down());
    s.on('message', (m) => this.#onMessage(m));
    if (s.state === 'ready') void this.#subscribeAll();
  }

  /** Takes up to `max` received events, oldest first. */
  drain(max = Number.POSITIVE_INFINITY): StreamEventV1[] {
    const events = this.#buffer.splice(0, Math.min(max, this.#buffer.length));
    if (this.#causes.has('backpressure') && this.#buffer.length <= this.#maxBuffered / 2) this.#close('backpressure');
    return events;
  }

  /**
   * Cancels the live subscriptions (best effort, within `timeoutMs`), keeps taking what TWS sent
   * before it read the cancels for `settleMs`, then closes the session: the events received up to
   * then stay held for a last {@link IbkrFeed.drain}.
   */
  async close(timeoutMs = 2000, settleMs = 250): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#generation++;
    const s = this.#o.session;
    const cancels = [...this.#subs].map(([reqId, sub]) =>
      sub.kind === 'trades'
        ? s.send('cancel_tick_by_tick', (ib) => ib.cancelTickByTickData(reqId))
        : s.send('cancel_real_time_bars', (ib) => ib.cancelRealTimeBars(reqId)),
    );
    await Promise.race([Promise.allSettled(cancels), sleep(timeoutMs)]);
    if (s.state === 'ready') await sleep(settleMs);
    this.#subs.clear();
    for (const p of this.#pending.values()) p.fail('feed closed');
    await s.close();
  }

  get #maxBuffered(): number {
    return this.#o.maxBuffered ?? 200_000;
  }

  #hold(event: StreamEventV1 | undefined): void {
    this.#received++;
    if (event === undefined) return;
    if (this.#buffer.length >= this.#maxBuffered) {
      this.#dropped++;
      if (!this.#causes.has('backpressure')) {
        this.#log.error('IBKR events dropped: the publisher is too far behind (bus backpressure); the time is reported as a gap', {
          buffered: this.#buffer.length,
        });
        this.#open('backpressure', this.#now());
      }
      return;
    }
    this.#buffer.push(event);
  }

  #onTick(reqId: number, time: string, price: number, size: number): void {
    const sub = this.#subs.get(reqId);
    if (!sub || sub.kind !== 'trades') return;
    this.#hold(this.#o.builder.tick(sub.symbol, Number(time), price, size, this.#now()));
  }

  #onBar(reqId: number, time: number, bar: { open: number; high: number; low: number; close: number; volume: number; count: number }): void {
    const sub = this.#subs.get(reqId);
    if (!sub || sub.kind !== 'bars') return;
    this.#hold(this.#o.builder.bar(sub.symbol, time, bar, this.#now()));
  }

  #onMessage(m: IbMessage): void {
    switch (m.kind) {
      case 'connectivity_lost':
        return this.#open('connectivity_lost', this.#now());
      case 'restored_data_kept':
        return this.#close('connectivity_lost');
      case 'restored_data_lost':
        // IB dropped every subscription: request them again; the gap lasts until they are live.
        this.#open('disconnected', this.#now());
        this.#close('connectivity_lost');
        this.#subs.clear();
        void this.#subscribeAll();
        return;
      case 'market_farm_broken':
        return this.#open('market_farm_broken', this.#now());
      case 'market_farm_ok':
        return this.#close('market_farm_broken');
      case 'request_error': {
        const pending = this.#pending.get(m.reqId);
        if (pending) return pending.fail(`${m.code} ${m.message}`);
        const sub = this.#subs.get(m.reqId);
        if (sub && REFUSING_CODES.has(m.code)) {
          this.#refuse(sub.contract, `TWS refused the ${sub.kind === 'trades' ? 'tick-by-tick' : 'real-time bars'} subscription: ${m.code} ${m.message}`);
        } else if (sub) {
          this.#log.warn('TWS warning about an IBKR subscription', { contract: describeContract(sub.contract), code: m.code, message: m.message });
        }
        return;
      }
      default:
        return;
    }
  }

  #down(): void {
    this.#generation++;
    this.#subs.clear();
    for (const p of this.#pending.values()) p.fail('connection lost');
    this.#open('disconnected', this.#now());
  }

  #refuse(contract: IbkrContractConfig, reason: string): void {
    const name = describeContract(contract);
    if (this.#refused.has(contract.symbol)) return;
    this.#refused.set(contract.symbol, { contract: name, reason });
    this.#log.error('IBKR contract refused', { contract: name, reason });
    for (const [reqId, sub] of this.#subs) if (sub.symbol === contract.symbol) this.#subs.delete(reqId);
  }

  /** Subscribes every contract on the current connection; a newer connection (or close) abandons the round. */
  async #subscribeAll(): Promise<void> {
    const generation = ++this.#generation;
    const s = this.#o.session;
    // A newer round (a new connection, 1101, a retry) or close makes this one stop; rounds skip what is already subscribed.
    const current = () => generation === this.#generation && !this.#closed;
    for (const contract of this.#o.contracts) {
      if (!current()) return;
      if (this.#refused.has(contract.symbol)) continue;
      let conId = this.#conIds.get(contract.symbol);
      if (conId === undefined) {
        try {
          conId = await this.#details(contract);
        } catch (err) {
          if (!current()) return;
          this.#log.warn('IBKR contract details failed; trying again', {
            contract: describeContract(contract),
            reason: (err as Error).message,
            retryInMs: RETRY_MS,
          });
          setTimeout(() => {
            if (current()) void this.#subscribeAll();
          }, RETRY_MS).unref();
          return;
        }
        if (!current()) return;
        if (conId === undefined) continue; // refused
        this.#conIds.set(contract.symbol, conId);
      }
      const ibContract: Contract = {
        conId,
        symbol: contract.symbol,
        secType: contract.sec_type as Contract['secType'],
        exchange: contract.exchange,
        currency: contract.currency,
        ...(contract.primary_exchange ? { primaryExch: contract.primary_exchange } : {}),
      };
      for (const kind of this.#o.feeds) {
        if (!current()) return;
        if ([...this.#subs.values()].some((sub) => sub.symbol === contract.symbol && sub.kind === kind)) continue;
        const reqId = s.nextRequestId();
        // Registered before sending: the first trade may arrive before the send returns.
        this.#subs.set(reqId, { symbol: contract.symbol, kind, contract });
        const sent =
          kind === 'trades'
            ? await s.send('tick_by_tick', (ib) => ib.reqTickByTickData(reqId, ibContract, TickByTickDataType.AllLast, 0, false))
            : await s.sendRealTimeBars((ib) => ib.reqRealTimeBars(reqId, ibContract, 5, WhatToShow.TRADES, false));
        if (!sent) {
          this.#subs.delete(reqId);
          return;
        }
      }
    }
    if (!current()) return;
    if (this.#refused.size === this.#o.contracts.length) {
      this.#log.error('IBKR: every contract was refused; nothing to subscribe', { refused: this.refused });
    }
    this.#close('disconnected');
    this.#close('restart');
    this.#close('starting');
  }

  /** The contract's conId from TWS; undefined (and refused) when TWS has no such security. */
  async #details(contract: IbkrContractConfig): Promise<number | undefined> {
    const s = this.#o.session;
    const reqId = s.nextRequestId();
    const answer = new Promise<number | undefined>((done, fail) => this.#pending.set(reqId, { done, fail: (reason) => fail(new Error(reason)) }));
    const timeoutMs = this.#o.detailsTimeoutMs ?? 10_000;
    const timer = setTimeout(() => this.#pending.get(reqId)?.fail(`no contract details within ${timeoutMs} ms`), timeoutMs);
    try {
      const sent = await s.send('contract_details', (ib) =>
        ib.reqContractDetails(reqId, {
          symbol: contract.symbol,
          secType: contract.sec_type as Contract['secType'],
          exchange: contract.exchange,
          currency: contract.currency,
          ...(contract.primary_exchange ? { primaryExch: contract.primary_exchange } : {}),
        }),
      );
      if (!sent) throw new Error('connection lost before the request went');
      return await answer;
    } catch (err) {
      const reason = (err as Error).message;
      if (/^200 /.test(reason)) {
        this.#refuse(contract, `TWS has no security definition for it (${reason})`);
        return undefined;
      }
      throw err;
    } finally {
      clearTimeout(timer);
      this.#pending.delete(reqId);
      answer.catch(() => undefined);
    }
  }

  #open(cause: Cause, atMs: number): void {
    if (this.#causes.has(cause)) return;
    if (this.#causes.size === 0 && this.#lastLiveMs !== undefined) this.#lastLiveMs = atMs;
    this.#causes.set(cause, atMs);
    if (this.#gapSince === undefined || atMs < this.#gapSince.atMs) {
      this.#gapSince = { atMs, reason: cause };
      if (cause !== 'starting') this.#log.warn('IBKR gap started', { reason: cause, since: new Date(atMs).toISOString() });
    }
    this.#o.metrics?.ibkrConnected.set({ provider: this.#o.builder.provider }, 0);
  }

  #close(cause: Cause): void {
    if (!this.#causes.delete(cause) || this.#causes.size > 0) return;
    const since = this.#gapSince;
    this.#gapSince = undefined;
    const now = this.#now();
    this.#lastLiveMs = now;
    this.#o.metrics?.ibkrConnected.set({ provider: this.#o.builder.provider }, 1);
    if (!since || since.reason === 'starting') {
      this.#log.info('IBKR feed live', { subscriptions: this.#subs.size, refused: this.#refused.size });
      return;
    }
    const gap: GapRecord = { fromMs: since.atMs, toMs: now, seconds: Math.round(now - since.atMs) / 1000, reason: since.reason };
    this.#gaps.push(gap);
    this.#o.metrics?.ibkrGapSeconds.observe({ provider: this.#o.builder.provider, reason: gap.reason }, gap.seconds);
    this.#log.warn('IBKR gap ended: trades printed in it were not received', {
      reason: gap.reason,
      from: new Date(gap.fromMs).toISOString(),
      to: new Date(gap.toMs).toISOString(),
      seconds: gap.seconds,
    });
  }
}
