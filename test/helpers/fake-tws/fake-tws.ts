/**
 * A protocol-faithful fake of Interactive Brokers' Trader Workstation for tests: a TCP server on
 * 127.0.0.1 that the real @stoqey/ib client talks to, unmodified, exactly as it talks to a TWS.
 *
 * What it speaks (server version {@link DEFAULT_FAKE_SERVER_VERSION} unless told otherwise; any of
 * 176..193 can be negotiated): the `API\0` greeting and version negotiation, the server version and
 * connection time, START_API (then managedAccounts, nextValidId and the data-farm status messages
 * 2104/2106/2158), reqIds, reqCurrentTime, reqManagedAccts, reqMarketDataType (accepted, ignored),
 * reqContractDetails → contractDetails + end (error 200 for an unknown contract),
 * reqTickByTickData (Last, AllLast) → tickByTick messages and its cancel, reqRealTimeBars (5 s) →
 * realtimeBar messages and its cancel, reqHistoricalData → one historicalData message (bars + the
 * start/end dates) and its cancel, and errors with IB's codes and texts (see `protocol.ts`).
 *
 * The market: a {@link Tape} replayed in real time, shifted by whole seconds so that its first
 * second is "now" (tick times stay IB's epoch seconds, the per-second grouping of the tape is
 * kept). Every live subscription of a symbol receives that symbol's trades from the moment it
 * subscribes, like IB: nothing is replayed to a new subscription. Historical requests are answered
 * from the tape at its own (unshifted) times, or at its live times (`historicalTimes: 'live'`).
 *
 * Pacing: IB's limits are enforced by an independent {@link PacingReferee} (scalable through
 * `pacing`), and a violation is answered as TWS answers it (100, 162, 322, 420) and recorded in
 * {@link FakeTws.violations}. Market data lines (`marketDataLines`) are enforced with error 101.
 *
 * Faults on command: {@link FakeTws.dropConnections} (every socket destroyed), {@link FakeTws.goDown} /
 * {@link FakeTws.comeBack} (stop listening, then listen again on the same port),
 * {@link FakeTws.connectivityLost} / {@link FakeTws.connectivityRestored} (TWS's 1100, then 1101 or
 * 1102, with the data semantics of each), and {@link FakeTws.sendError} for anything else.
 *
 * Everything it sent and received is recorded ({@link FakeTws.sentTicks}, {@link FakeTws.sentBars},
 * {@link FakeTws.requests}) so a test can compute what a client must have seen.
 */
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { HistoricalBar, WhatToShow } from './historical.js';
import { aggregateBars, BAR_SIZES, maxDurationSec, parseDuration, parseEndDateTime, WHAT_TO_SHOW } from './historical.js';
import type { PacingLimits, PacingRule } from './pacing-referee.js';
import { PacingReferee } from './pacing-referee.js';
import type { Field, WireContract } from './protocol.js';
import {
  CLIENT_MSG,
  ClientFrameReader,
  DEFAULT_FAKE_SERVER_VERSION,
  FieldReader,
  frame,
  MAX_FAKE_SERVER_VERSION,
  MIN_FAKE_SERVER_VERSION,
  ProtocolError,
  readContract,
  SERVER_MSG,
  SERVER_VERSION,
  TWS_MESSAGES,
  twsDateTime,
} from './protocol.js';
import type { Tape, TapeTick } from './tape.js';
import { tapeSymbols } from './tape.js';

/** A contract the fake TWS knows (every tape symbol is one, as a SMART-routed US stock). */
export interface FakeContract {
  readonly conId: number;
  readonly symbol: string;
  readonly secType: string;
  readonly exchange: string;
  readonly primaryExch: string;
  readonly currency: string;
  readonly longName?: string;
}

export interface FakeTwsOptions {
  readonly tape: Tape;
  /** The highest server version offered (the client's maximum wins when lower). Default 187. */
  readonly serverVersion?: number;
  /** Accounts reported by managedAccounts. Default `DU1234567`. */
  readonly accounts?: readonly string[];
  /** Live subscriptions (tick-by-tick and real-time bars each take one) allowed at once. Default 100. */
  readonly marketDataLines?: number;
  /** IB's pacing limits, scaled for tests. */
  readonly pacing?: Partial<PacingLimits>;
  /** Contracts beyond the tape's symbols (known, but without trades). */
  readonly extraContracts?: readonly Omit<FakeContract, 'conId'>[];
  /** Primary exchange of tape symbols (default ARCA for ETFs SPY/QQQ/IWM/DIA, else NASDAQ). */
  readonly primaryExchanges?: Readonly<Record<string, string>>;
  /** When the tape's first second starts, epoch ms on a whole second. Default the second after the next. */
  readonly liveStartMs?: number;
  /** Replay the tape live (default true); false keeps the market silent (historical data only). */
  readonly live?: boolean;
  /** Historical bars from the tape's own times (default) or from its live (shifted) times. */
  readonly historicalTimes?: 'tape' | 'live';
  /** Delay before a historical answer (the request is "open" meanwhile). Default 20 ms. */
  readonly historicalLatencyMs?: number;
  /** Delay after a 5-second boundary before its real-time bars go out. Default 30 ms. */
  readonly realTimeBarDelayMs?: number;
  /** One line per protocol event (connections, messages in and out), e.g. to a log file. */
  readonly log?: (line: string) => void;
}

/** A trade the fake TWS sent to a subscriber. */
export interface SentTick {
  readonly connection: number;
  readonly clientId: number;
  readonly reqId: number;
  readonly symbol: string;
  /** Epoch seconds, as sent. */
  readonly time: number;
  readonly price: number;
  readonly size: number;
  readonly exchange: string;
  readonly conditions: string;
  readonly tickType: 'Last' | 'AllLast';
  readonly atMs: number;
}

/** A real-time bar the fake TWS sent. */
export interface SentBar {
  readonly connection: number;
  readonly clientId: number;
  readonly reqId: number;
  readonly symbol: string;
  readonly whatToShow: string;
  /** Bar start, epoch seconds. */
  readonly time: number;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  readonly volume: number;
  readonly wap: number;
  readonly count: number;
  readonly atMs: number;
}

/** A client message the fake TWS received (after the handshake). */
export interface ReceivedRequest {
  readonly connection: number;
  readonly clientId: number | undefined;
  readonly msgId: number;
  readonly name: string;
  readonly reqId: number | undefined;
  readonly atMs: number;
}

export interface Violation {
  readonly rule: PacingRule;
  readonly code: number;
  readonly connection: number;
  readonly reqId: number;
  readonly atMs: number;
}

export interface ConnectionInfo {
  readonly id: number;
  readonly clientId: number | undefined;
  readonly serverVersion: number | undefined;
  readonly open: boolean;
  readonly subscriptions: number;
}

type SubscriptionKind = 'tick_by_tick' | 'real_time_bars';

interface Subscription {
  readonly kind: SubscriptionKind;
  readonly reqId: number;
  readonly symbol: string;
  /** Tick-by-tick: Last or AllLast; real-time bars: TRADES, MIDPOINT, BID or ASK. */
  readonly type: string;
}

interface Connection {
  readonly id: number;
  readonly socket: Socket;
  readonly reader: ClientFrameReader;
  version: number | undefined;
  clientId: number | undefined;
  ready: boolean;
  open: boolean;
  readonly subscriptions: Map<number, Subscription>;
  readonly messageTimes: number[];
  readonly historical: Map<number, NodeJS.Timeout>;
}

/** A 5-second aggregate of one symbol, built as the market's trades go by. */
interface LiveBar {
  start: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  notional: number;
  count: number;
  midOpen: number;
  midHigh: number;
  midLow: number;
  midClose: number;
}

const NAMES: Record<number, string> = Object.fromEntries(Object.entries(CLIENT_MSG).map(([name, id]) => [id, name]));
const ETFS = new Set(['SPY', 'QQQ', 'IWM', 'DIA']);

export class FakeTws {
  readonly host = '127.0.0.1';
  readonly options: FakeTwsOptions;
  readonly sentTicks: SentTick[] = [];
  readonly sentBars: SentBar[] = [];
  readonly requests: ReceivedRequest[] = [];
  readonly violations: Violation[] = [];
  /** Client messages the fake does not implement (a test can assert there are none). */
  readonly unhandled: ReceivedRequest[] = [];
  readonly referee: PacingReferee;
  /** Wall time (epoch ms) of the tape's first second. */
  readonly liveStartMs: number;
  /** Seconds added to tape times for the live replay. */
  readonly shiftSec: number;
  readonly #server: Server;
  #port = 0;
  readonly #connections = new Map<number, Connection>();
  #nextConnection = 1;
  readonly #contracts: FakeContract[];
  readonly #ticks: readonly TapeTick[];
  readonly #bySymbol = new Map<string, TapeTick[]>();
  #cursor = 0;
  #marketTimer: NodeJS.Timeout | undefined;
  #barTimer: NodeJS.Timeout | undefined;
  /** Per symbol, the 5-second aggregates by start (the one just ended stays until its bar went out). */
  readonly #liveBars = new Map<string, Map<number, LiveBar>>();
  #connectivity = true;
  #listening = false;
  #stopped = false;

  private constructor(options: FakeTwsOptions) {
    this.options = options;
    const version = options.serverVersion ?? DEFAULT_FAKE_SERVER_VERSION;
    if (version < MIN_FAKE_SERVER_VERSION || version > MAX_FAKE_SERVER_VERSION) {
      throw new RangeError(`fake TWS serverVersion must be ${MIN_FAKE_SERVER_VERSION}..${MAX_FAKE_SERVER_VERSION} (got ${version})`);
    }
    this.referee = new PacingReferee(options.pacing);
    this.#ticks = options.tape.ticks;
    for (const t of this.#ticks) {
      const list = this.#bySymbol.get(t.symbol);
      if (list) list.push(t);
      else this.#bySymbol.set(t.symbol, [t]);
    }
    const symbols = [...tapeSymbols(options.tape), ...(options.extraContracts ?? []).map((c) => c.symbol)];
    this.#contracts = symbols.map((symbol, i) => {
      const extra = options.extraContracts?.find((c) => c.symbol === symbol);
      return {
        conId: 756_733 + i * 1_009,
        symbol,
        secType: extra?.secType ?? 'STK',
        exchange: extra?.exchange ?? 'SMART',
        primaryExch: extra?.primaryExch ?? options.primaryExchanges?.[symbol] ?? (ETFS.has(symbol) ? 'ARCA' : 'NASDAQ'),
        currency: extra?.currency ?? 'USD',
        longName: extra?.longName ?? `${symbol} (fake TWS)`,
      };
    });
    const firstSec = this.#ticks[0]?.time ?? Math.floor(Date.now() / 1000);
    this.liveStartMs = options.liveStartMs ?? (Math.floor(Date.now() / 1000) + 2) * 1000;
    if (this.liveStartMs % 1000 !== 0) throw new RangeError(`liveStartMs must be on a whole second (got ${this.liveStartMs})`);
    this.shiftSec = this.liveStartMs / 1000 - firstSec;
    this.#server = createServer((socket) => this.#accept(socket));
  }

  /** Starts a fake TWS on 127.0.0.1 (`port` 0: the OS picks one; read {@link FakeTws.port}). */
  static async start(options: FakeTwsOptions, port = 0): Promise<FakeTws> {
    const tws = new FakeTws(options);
    await tws.#listen(port);
    if (options.live !== false) tws.#scheduleMarket();
    return tws;
  }

  get port(): number {
    return this.#port;
  }

  /** The contracts it knows, with their conIds. */
  get contracts(): readonly FakeContract[] {
    return this.#contracts;
  }

  get connections(): ConnectionInfo[] {
    return [...this.#connections.values()].map((c) => ({
      id: c.id,
      clientId: c.clientId,
      serverVersion: c.version,
      open: c.open,
      subscriptions: c.subscriptions.size,
    }));
  }

  /** Live subscriptions across open connections. */
  get activeSubscriptions(): { connection: number; kind: SubscriptionKind; reqId: number; symbol: string }[] {
    return [...this.#connections.values()].flatMap((c) =>
      [...c.subscriptions.values()].map((s) => ({ connection: c.id, kind: s.kind, reqId: s.reqId, symbol: s.symbol })),
    );
  }

  /** Violations of IB's pacing limits (everything but market data lines). */
  get pacingViolations(): number {
    return this.violations.filter((v) => v.rule !== 'market_data_lines').length;
  }

  /** Wall time (epoch ms) at which the tape's live replay ends. */
  get liveEndMs(): number {
    const last = this.#ticks.at(-1);
    return last ? (last.time + this.shiftSec) * 1000 + last.ms : this.liveStartMs;
  }

  /** The tape tick as replayed live: its time shifted to now. */
  liveTime(tick: TapeTick): number {
    return tick.time + this.shiftSec;
  }

  // ------------------------------------------------------------------------------------------
  // Faults on command

  /** Destroys every client socket, as a TWS that crashes or a network that breaks. Keeps listening. */
  dropConnections(): void {
    for (const c of this.#connections.values()) if (c.open) c.socket.destroy();
    this.#log('dropped every connection');
  }

  /** Stops listening (new connections are refused) and drops every connection. */
  async goDown(): Promise<void> {
    this.dropConnections();
    if (!this.#listening) return;
    this.#listening = false;
    await new Promise<void>((done) => this.#server.close(() => done()));
    this.#log('down');
  }

  /** Listens again on the same port. */
  async comeBack(): Promise<void> {
    if (this.#listening) return;
    await this.#listen(this.#port);
    this.#log('back');
  }

  /** TWS lost its connection to IB: error 1100 to every client; no market data flows until restored. */
  connectivityLost(): void {
    this.#connectivity = false;
    for (const c of this.#readyConnections()) this.#error(c, -1, TWS_MESSAGES.CONNECTIVITY_LOST);
  }

  /**
   * Connectivity back: 1102 (data maintained: subscriptions resume) or, with `dataLost`, 1101
   * (every live subscription is gone; the client must request it again).
   */
  connectivityRestored(options: { dataLost: boolean }): void {
    this.#connectivity = true;
    for (const c of this.#readyConnections()) {
      if (options.dataLost) c.subscriptions.clear();
      this.#error(c, -1, options.dataLost ? TWS_MESSAGES.RESTORED_DATA_LOST : TWS_MESSAGES.RESTORED_DATA_KEPT);
    }
  }

  /** Sends an error (or system message, `reqId` -1) to every ready client. */
  sendError(code: number, text: string, reqId = -1): void {
    for (const c of this.#readyConnections()) this.#error(c, reqId, { code, text });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#marketTimer);
    clearTimeout(this.#barTimer);
    for (const c of this.#connections.values()) for (const t of c.historical.values()) clearTimeout(t);
    await this.goDown();
  }

  // ------------------------------------------------------------------------------------------
  // Connections

  async #listen(port: number): Promise<void> {
    await new Promise<void>((done, fail) => {
      this.#server.once('error', fail);
      this.#server.listen(port, this.host, () => {
        this.#server.off('error', fail);
        done();
      });
    });
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('the fake TWS has no TCP address');
    this.#port = address.port;
    this.#listening = true;
  }

  #readyConnections(): Connection[] {
    return [...this.#connections.values()].filter((c) => c.open && c.ready);
  }

  #accept(socket: Socket): void {
    const c: Connection = {
      id: this.#nextConnection++,
      socket,
      reader: new ClientFrameReader(),
      version: undefined,
      clientId: undefined,
      ready: false,
      open: true,
      subscriptions: new Map(),
      messageTimes: [],
      historical: new Map(),
    };
    this.#connections.set(c.id, c);
    this.#log(`#${c.id} connected from ${socket.remoteAddress}:${socket.remotePort}`);
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.#onData(c, chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      c.open = false;
      c.ready = false;
      c.subscriptions.clear();
      for (const t of c.historical.values()) clearTimeout(t);
      c.historical.clear();
      this.#log(`#${c.id} closed`);
    });
  }

  #onData(c: Connection, chunk: Buffer): void {
    c.reader.push(chunk);
    try {
      for (let f = c.reader.next(); f !== undefined && c.open; f = c.reader.next()) {
        if (f.type === 'hello') this.#hello(c, f.minVersion, f.maxVersion);
        else this.#message(c, f.fields);
      }
    } catch (err) {
      this.#log(`#${c.id} protocol error, closing: ${(err as Error).message}`);
      c.socket.destroy();
    }
  }

  #send(c: Connection, fields: readonly Field[]): void {
    if (!c.open || c.socket.destroyed) return;
    c.socket.write(frame(fields));
  }

  #error(c: Connection, reqId: number, message: { code: number; text: string }, suffix = ''): void {
    this.#log(`#${c.id} → error ${message.code} (req ${reqId}) ${message.text}${suffix}`);
    // ERR_MSG version 2: id, code, text, and (server version ≥ 166) the advanced-order-reject JSON.
    this.#send(c, [SERVER_MSG.ERR_MSG, 2, reqId, message.code, `${message.text}${suffix}`, '']);
  }

  #hello(c: Connection, minVersion: number, maxVersion: number): void {
    const offered = this.options.serverVersion ?? DEFAULT_FAKE_SERVER_VERSION;
    const version = Math.min(maxVersion, offered);
    if (version < minVersion || version < MIN_FAKE_SERVER_VERSION) {
      this.#log(`#${c.id} client wants v${minVersion}..${maxVersion}; this fake speaks ${MIN_FAKE_SERVER_VERSION}..${offered}: closing`);
      c.socket.destroy();
      return;
    }
    c.version = version;
    this.#log(`#${c.id} negotiated server version ${version}`);
    this.#send(c, [version, `${twsDateTime(Date.now())} UTC`]);
  }

  #message(c: Connection, fields: string[]): void {
    const r = new FieldReader(fields);
    const msgId = r.int();
    const atMs = Date.now();
    const name = NAMES[msgId] ?? `MSG_${msgId}`;
    if (c.version === undefined) throw new ProtocolError(`message ${name} before the version handshake`);
    if (!c.ready && msgId !== CLIENT_MSG.START_API) throw new ProtocolError(`message ${name} before START_API`);
    const reqId = peekReqId(msgId, fields);
    const received: ReceivedRequest = { connection: c.id, clientId: c.clientId, msgId, name, reqId, atMs };
    this.requests.push(received);
    this.#log(`#${c.id} ← ${name}${reqId !== undefined ? ` req ${reqId}` : ''} [${fields.slice(1).join('|')}]`);
    if (this.referee.messageTooFast(c.messageTimes, atMs)) {
      this.#violation(c, 'message_rate', -1, TWS_MESSAGES.MAX_RATE);
    }
    switch (msgId) {
      case CLIENT_MSG.START_API:
        return this.#startApi(c, r);
      case CLIENT_MSG.REQ_IDS:
        r.int(); // version
        r.int(); // numIds
        return this.#send(c, [SERVER_MSG.NEXT_VALID_ID, 1, 1]);
      case CLIENT_MSG.REQ_CURRENT_TIME:
        return this.#send(c, [SERVER_MSG.CURRENT_TIME, 1, Math.floor(Date.now() / 1000)]);
      case CLIENT_MSG.REQ_MANAGED_ACCTS:
        return this.#send(c, [SERVER_MSG.MANAGED_ACCTS, 1, this.#accounts()]);
      case CLIENT_MSG.REQ_MARKET_DATA_TYPE:
        return;
      case CLIENT_MSG.REQ_CONTRACT_DATA:
        return this.#contractDetails(c, r);
      case CLIENT_MSG.REQ_TICK_BY_TICK_DATA:
        return this.#tickByTick(c, r);
      case CLIENT_MSG.CANCEL_TICK_BY_TICK_DATA:
        return this.#cancel(c, r.int(), 'tick_by_tick');
      case CLIENT_MSG.REQ_REAL_TIME_BARS:
        return this.#realTimeBars(c, r, atMs);
      case CLIENT_MSG.CANCEL_REAL_TIME_BARS:
        r.int(); // version
        return this.#cancel(c, r.int(), 'real_time_bars');
      case CLIENT_MSG.REQ_HISTORICAL_DATA:
        return this.#historical(c, r, atMs);
      case CLIENT_MSG.CANCEL_HISTORICAL_DATA:
        r.int(); // version
        return this.#cancelHistorical(c, r.int());
      default:
        this.unhandled.push(received);
    }
  }

  #accounts(): string {
    return (this.options.accounts ?? ['DU1234567']).join(',');
  }

  #startApi(c: Connection, r: FieldReader): void {
    r.int(); // version 2
    const clientId = r.int();
    if (r.remaining > 0) r.str(); // optional capabilities
    c.clientId = clientId;
    const taken = [...this.#connections.values()].some((o) => o !== c && o.open && o.ready && o.clientId === clientId);
    if (taken) {
      this.#error(c, -1, TWS_MESSAGES.CLIENT_ID_IN_USE);
      c.socket.end();
      return;
    }
    c.ready = true;
    this.#send(c, [SERVER_MSG.MANAGED_ACCTS, 1, this.#accounts()]);
    this.#send(c, [SERVER_MSG.NEXT_VALID_ID, 1, 1]);
    for (const farm of [TWS_MESSAGES.MARKET_FARM_OK, TWS_MESSAGES.HMDS_FARM_OK, TWS_MESSAGES.SECDEF_FARM_OK]) this.#error(c, -1, farm);
    if (!this.#connectivity) this.#error(c, -1, TWS_MESSAGES.CONNECTIVITY_LOST);
  }

  #violation(c: Connection, rule: PacingRule, reqId: number, message: { code: number; text: string }): void {
    this.violations.push({ rule, code: message.code, connection: c.id, reqId, atMs: Date.now() });
    this.#error(c, reqId, message);
  }

  // ------------------------------------------------------------------------------------------
  // Contracts

  /** The known contract a request names: by conId, else by symbol (and secType, currency, exchange when given). */
  #find(w: Pick<WireContract, 'conId' | 'symbol' | 'secType' | 'exchange' | 'primaryExch' | 'currency'>): FakeContract | undefined {
    if (w.conId > 0) return this.#contracts.find((k) => k.conId === w.conId);
    return this.#contracts.find(
      (k) =>
        k.symbol === w.symbol &&
        (w.secType === '' || w.secType === k.secType) &&
        (w.currency === '' || w.currency === k.currency) &&
        (w.exchange === '' || w.exchange === k.exchange || w.exchange === k.primaryExch) &&
        (w.primaryExch === '' || w.primaryExch === k.primaryExch),
    );
  }

  #contractDetails(c: Connection, r: FieldReader): void {
    r.int(); // version 8
    const reqId = r.int();
    const w = {
      conId: r.int(),
      symbol: r.str(),
      secType: r.str(),
      lastTradeDateOrContractMonth: r.str(),
      strike: r.num(),
      right: r.str(),
      multiplier: r.str(),
      exchange: r.str(),
      primaryExch: r.str(),
      currency: r.str(),
      localSymbol: r.str(),
      tradingClass: r.str(),
    };
    r.bool(); // includeExpired
    r.str(); // secIdType
    r.str(); // secId
    if (c.version! >= SERVER_VERSION.BOND_ISSUERID) r.str(); // issuerId
    const k = this.#find(w);
    if (!k) return this.#error(c, reqId, TWS_MESSAGES.NO_SECURITY);
    const v = c.version!;
    // CONTRACT_DATA from server version ≥ 164 (SIZE_RULES): no message version field.
    const fields: Field[] = [SERVER_MSG.CONTRACT_DATA, reqId, k.symbol, k.secType, ''];
    if (v >= SERVER_VERSION.LAST_TRADE_DATE) fields.push('');
    fields.push(
      0, // strike
      '', // right
      k.exchange,
      k.currency,
      k.symbol, // localSymbol
      'NMS', // marketName
      k.symbol, // tradingClass
      k.conId,
      0.01, // minTick
      '', // multiplier
      'ACTIVETIM,AD,ALERT,ALLOC,AVGCOST,BASKET,DAY,LIT,LMT,MKT,STP', // orderTypes
      `SMART,${k.primaryExch},ARCA,NASDAQ,NYSE,BATS,IEX,EDGX`, // validExchanges
      1, // priceMagnifier
      0, // underConId
      k.longName ?? k.symbol,
      k.primaryExch,
      '', // contractMonth
      'Funds', // industry
      'Equity Fund', // category
      'Index Fund', // subcategory
      'US/Eastern', // timeZoneId
      '20251024:0400-20251024:2000', // tradingHours
      '20251024:0930-20251024:1600', // liquidHours
      '', // evRule
      0, // evMultiplier
      0, // secIdList count
      1, // aggGroup
      '', // underSymbol
      '', // underSecType
      '26,26,26,26,26,26,26,26', // marketRuleIds
      '', // realExpirationDate
      k.secType === 'STK' ? 'ETF' : '', // stockType
      0.0001, // minSize
      0.0001, // sizeIncrement
      100, // suggestedSizeIncrement
    );
    // FUND_* fields (≥ 179) only for secType FUND, which the fake does not list.
    if (v >= SERVER_VERSION.INELIGIBILITY_REASONS) fields.push(0);
    this.#send(c, fields);
    this.#send(c, [SERVER_MSG.CONTRACT_DATA_END, 1, reqId]);
  }

  // ------------------------------------------------------------------------------------------
  // Live data

  /** Checks a new live subscription: duplicate id (102), unknown contract (200), no line left (101). */
  #admit(c: Connection, reqId: number, w: WireContract): FakeContract | undefined {
    if (c.subscriptions.has(reqId)) {
      this.#error(c, reqId, TWS_MESSAGES.DUPLICATE_TICKER);
      return undefined;
    }
    const k = this.#find(w);
    if (!k) {
      this.#error(c, reqId, TWS_MESSAGES.NO_SECURITY);
      return undefined;
    }
    const lines = this.options.marketDataLines ?? 100;
    const used = [...this.#connections.values()].reduce((n, o) => n + (o.open ? o.subscriptions.size : 0), 0);
    if (used >= lines) {
      this.#violation(c, 'market_data_lines', reqId, TWS_MESSAGES.MAX_TICKERS);
      return undefined;
    }
    return k;
  }

  #tickByTick(c: Connection, r: FieldReader): void {
    const reqId = r.int();
    const w = readContract(r);
    const tickType = r.str();
    const numberOfTicks = r.int();
    r.bool(); // ignoreSize
    if (tickType !== 'Last' && tickType !== 'AllLast') {
      return this.#error(c, reqId, TWS_MESSAGES.INVALID_REQUEST, ` The fake TWS replays trades only (tickType Last or AllLast, got ${tickType}).`);
    }
    if (numberOfTicks !== 0) {
      return this.#error(
        c,
        reqId,
        TWS_MESSAGES.INVALID_REQUEST,
        ` The fake TWS does not send historical ticks before a subscription (numberOfTicks ${numberOfTicks}).`,
      );
    }
    const k = this.#admit(c, reqId, w);
    if (!k) return;
    c.subscriptions.set(reqId, { kind: 'tick_by_tick', reqId, symbol: k.symbol, type: tickType });
  }

  #realTimeBars(c: Connection, r: FieldReader, atMs: number): void {
    r.int(); // version 3
    const reqId = r.int();
    const w = readContract(r);
    const barSize = r.int();
    const whatToShow = r.str();
    r.bool(); // useRTH
    r.str(); // options
    if (barSize !== 5) return this.#error(c, reqId, TWS_MESSAGES.INVALID_REQUEST, ` Real time bars are 5 seconds only (got ${barSize}).`);
    if (!['TRADES', 'MIDPOINT', 'BID', 'ASK'].includes(whatToShow)) {
      return this.#error(c, reqId, TWS_MESSAGES.INVALID_REQUEST, ` whatToShow must be TRADES, MIDPOINT, BID or ASK (got ${whatToShow}).`);
    }
    if (c.subscriptions.has(reqId) || !this.#find(w)) {
      this.#admit(c, reqId, w);
      return;
    }
    const rule = this.referee.realTimeBars(atMs);
    if (rule) return this.#violation(c, rule, reqId, TWS_MESSAGES.REALTIME_PACING);
    const k = this.#admit(c, reqId, w);
    if (!k) return;
    c.subscriptions.set(reqId, { kind: 'real_time_bars', reqId, symbol: k.symbol, type: whatToShow });
  }

  #cancel(c: Connection, reqId: number, kind: SubscriptionKind): void {
    const sub = c.subscriptions.get(reqId);
    if (!sub || sub.kind !== kind) return this.#error(c, reqId, TWS_MESSAGES.UNKNOWN_TICKER, ` ${reqId}`);
    c.subscriptions.delete(reqId);
  }

  #scheduleMarket(): void {
    if (this.#stopped) return;
    const next = this.#ticks[this.#cursor];
    if (next) {
      const dueMs = (next.time + this.shiftSec) * 1000 + next.ms;
      this.#marketTimer = setTimeout(
        () => {
          this.#dispatchDue(Date.now());
          this.#scheduleMarket();
        },
        Math.max(0, dueMs - Date.now()),
      );
    }
    if (this.#barTimer === undefined) this.#scheduleBars();
  }

  /** Plays every tape tick due by `nowMs` to the market (and its subscribers). */
  #dispatchDue(nowMs: number): void {
    for (;;) {
      const t = this.#ticks[this.#cursor];
      if (!t || (t.time + this.shiftSec) * 1000 + t.ms > nowMs) return;
      this.#cursor++;
      this.#trade(t, nowMs);
    }
  }

  #trade(t: TapeTick, nowMs: number): void {
    const time = t.time + this.shiftSec;
    const start = Math.floor(time / 5) * 5;
    const mid = Math.round(((t.bid + t.ask) / 2) * 1000) / 1000;
    let bars = this.#liveBars.get(t.symbol);
    if (!bars) this.#liveBars.set(t.symbol, (bars = new Map<number, LiveBar>()));
    const bar = bars.get(start);
    if (!bar) {
      for (const old of bars.keys()) if (old < start - 60) bars.delete(old);
      bars.set(start, {
        start,
        open: t.price,
        high: t.price,
        low: t.price,
        close: t.price,
        volume: t.size,
        notional: t.price * t.size,
        count: 1,
        midOpen: mid,
        midHigh: mid,
        midLow: mid,
        midClose: mid,
      });
    } else {
      bar.high = Math.max(bar.high, t.price);
      bar.low = Math.min(bar.low, t.price);
      bar.close = t.price;
      bar.volume += t.size;
      bar.notional += t.price * t.size;
      bar.count++;
      bar.midHigh = Math.max(bar.midHigh, mid);
      bar.midLow = Math.min(bar.midLow, mid);
      bar.midClose = mid;
    }
    if (!this.#connectivity) return;
    for (const c of this.#readyConnections()) {
      for (const s of c.subscriptions.values()) {
        if (s.kind !== 'tick_by_tick' || s.symbol !== t.symbol) continue;
        // Last leaves out trades IB does not report as "last" (odd lots here); AllLast has them all.
        if (s.type === 'Last' && t.conditions.includes('I')) continue;
        // TICK_BY_TICK: reqId, tickType (1 Last, 2 AllLast), time, price, size, attribute mask, exchange, conditions.
        this.#send(c, [SERVER_MSG.TICK_BY_TICK, s.reqId, s.type === 'Last' ? 1 : 2, time, t.price, t.size, 0, t.exchange, t.conditions]);
        this.sentTicks.push({
          connection: c.id,
          clientId: c.clientId!,
          reqId: s.reqId,
          symbol: t.symbol,
          time,
          price: t.price,
          size: t.size,
          exchange: t.exchange,
          conditions: t.conditions,
          tickType: s.type as 'Last' | 'AllLast',
          atMs: nowMs,
        });
      }
    }
  }

  /** The close (and mid) of the last bar of `symbol` that started before `start`, for an empty bar's flat prices. */
  #closeBefore(symbol: string, start: number): { close: number; mid: number } | undefined {
    const bars = this.#liveBars.get(symbol);
    let best: LiveBar | undefined;
    for (const [at, bar] of bars ?? []) if (at < start && (!best || at > best.start)) best = bar;
    return best ? { close: best.close, mid: best.midClose } : undefined;
  }

  /** Real-time bars go out just after every 5-second boundary. */
  #scheduleBars(): void {
    if (this.#stopped) return;
    const now = Date.now();
    const boundaryMs = (Math.floor(now / 5000) + 1) * 5000;
    this.#barTimer = setTimeout(
      () => {
        this.#dispatchDue(Date.now());
        this.#sendBars(boundaryMs / 1000 - 5);
        this.#scheduleBars();
      },
      boundaryMs + (this.options.realTimeBarDelayMs ?? 30) - now,
    );
  }

  /** The bars of [start, start+5 s) to every real-time-bar subscriber; a symbol without trades in it gets a flat, empty bar at its last price. */
  #sendBars(start: number): void {
    if (!this.#connectivity) return;
    const atMs = Date.now();
    for (const c of this.#readyConnections()) {
      for (const s of c.subscriptions.values()) {
        if (s.kind !== 'real_time_bars') continue;
        const bar = this.#liveBars.get(s.symbol)?.get(start);
        const last = this.#closeBefore(s.symbol, start);
        let values: Omit<SentBar, 'connection' | 'clientId' | 'reqId' | 'symbol' | 'whatToShow' | 'atMs'>;
        const trades = s.type === 'TRADES';
        if (bar) {
          values = trades
            ? {
                time: start,
                open: bar.open,
                high: bar.high,
                low: bar.low,
                close: bar.close,
                volume: bar.volume,
                wap: Math.round((bar.notional / bar.volume) * 10_000) / 10_000,
                count: bar.count,
              }
            : { time: start, open: bar.midOpen, high: bar.midHigh, low: bar.midLow, close: bar.midClose, volume: -1, wap: -1, count: -1 };
        } else if (last) {
          const p = trades ? last.close : last.mid;
          values = { time: start, open: p, high: p, low: p, close: p, volume: trades ? 0 : -1, wap: trades ? p : -1, count: trades ? 0 : -1 };
        } else {
          continue;
        }
        // REAL_TIME_BARS version 3: reqId, time, o, h, l, c, volume, wap, count.
        this.#send(c, [
          SERVER_MSG.REAL_TIME_BARS,
          3,
          s.reqId,
          values.time,
          values.open,
          values.high,
          values.low,
          values.close,
          values.volume,
          values.wap,
          values.count,
        ]);
        this.sentBars.push({ connection: c.id, clientId: c.clientId!, reqId: s.reqId, symbol: s.symbol, whatToShow: s.type, atMs, ...values });
      }
    }
  }

  // ------------------------------------------------------------------------------------------
  // Historical data

  #historical(c: Connection, r: FieldReader, atMs: number): void {
    const reqId = r.int();
    const w = readContract(r);
    r.bool(); // includeExpired
    const endDateTime = r.str();
    const barSize = r.str();
    const duration = r.str();
    const useRTH = r.bool();
    const whatToShow = r.str();
    const formatDate = r.int();
    if (w.secType === 'BAG') {
      const legs = r.int();
      for (let i = 0; i < legs; i++) (r.str(), r.str(), r.str(), r.str());
    }
    const keepUpToDate = r.bool();
    r.str(); // chartOptions
    const k = this.#find(w);
    if (!k) return this.#error(c, reqId, TWS_MESSAGES.NO_SECURITY);
    const open = [...this.#connections.values()].reduce((n, o) => n + o.historical.size, 0);
    const rule = this.referee.historical(
      {
        identity: [k.conId, w.exchange, endDateTime, barSize, duration, useRTH, whatToShow, formatDate, keepUpToDate].join('|'),
        contractKey: [k.conId, w.exchange, whatToShow].join('|'),
        weight: whatToShow === 'BID_ASK' ? 2 : 1,
      },
      open,
      atMs,
    );
    if (rule) return this.#violation(c, rule, reqId, rule === 'historical_max_open' ? TWS_MESSAGES.HISTORICAL_MAX_OPEN : TWS_MESSAGES.HISTORICAL_PACING);
    const invalid = (why: string) => this.#error(c, reqId, TWS_MESSAGES.INVALID_REQUEST, ` ${why}`);
    if (keepUpToDate) return invalid('The fake TWS does not keep historical bars up to date (keepUpToDate).');
    if (!(WHAT_TO_SHOW as readonly string[]).includes(whatToShow))
      return invalid(`whatToShow must be one of ${WHAT_TO_SHOW.join(', ')} (got "${whatToShow}").`);
    const barSec = BAR_SIZES[barSize];
    if (barSec === undefined) return invalid(`barSizeSetting must be one of ${Object.keys(BAR_SIZES).join(', ')} (got "${barSize}").`);
    const durationSec = parseDuration(duration);
    if (durationSec === undefined) return invalid(`durationStr must be "<integer> <S|D|W|M|Y>" (got "${duration}").`);
    const endMs = parseEndDateTime(endDateTime, Date.now());
    if (typeof endMs === 'string') return invalid(endMs);
    if (formatDate !== 1 && formatDate !== 2) return invalid(`formatDate must be 1 or 2 (got ${formatDate}).`);
    if (durationSec > maxDurationSec(barSec)) return this.#error(c, reqId, TWS_MESSAGES.HISTORICAL_TOO_LONG);
    const endSec = Math.floor(endMs / 1000);
    const shift = this.options.historicalTimes === 'live' ? this.shiftSec : 0;
    const ticks = shift === 0 ? (this.#bySymbol.get(k.symbol) ?? []) : (this.#bySymbol.get(k.symbol) ?? []).map((t) => ({ ...t, time: t.time + shift }));
    const bars = aggregateBars(ticks, {
      symbol: k.symbol,
      fromSec: endSec - durationSec,
      toSec: endSec,
      barSec,
      what: whatToShow as WhatToShow,
      regularHoursOnly: useRTH,
    });
    const timer = setTimeout(() => {
      c.historical.delete(reqId);
      if (bars.length === 0) return this.#error(c, reqId, TWS_MESSAGES.HISTORICAL_NO_DATA, `: ${k.symbol}@${w.exchange || k.exchange} ${whatToShow}`);
      this.#sendHistorical(c, reqId, bars, { fromSec: endSec - durationSec, toSec: endSec, barSec, formatDate });
    }, this.options.historicalLatencyMs ?? 20);
    c.historical.set(reqId, timer);
  }

  #sendHistorical(
    c: Connection,
    reqId: number,
    bars: readonly HistoricalBar[],
    o: { fromSec: number; toSec: number; barSec: number; formatDate: number },
  ): void {
    const date = (sec: number) =>
      o.barSec >= 86_400 ? twsDateTime(sec * 1000).slice(0, 8) : o.formatDate === 2 ? String(sec) : `${twsDateTime(sec * 1000)} UTC`;
    // HISTORICAL_DATA (server version ≥ 124, no message version): reqId, start, end, count, then
    // per bar date, open, high, low, close, volume, WAP, bar count.
    const fields: Field[] = [SERVER_MSG.HISTORICAL_DATA, reqId, `${twsDateTime(o.fromSec * 1000)} UTC`, `${twsDateTime(o.toSec * 1000)} UTC`, bars.length];
    for (const b of bars) fields.push(date(b.time), b.open, b.high, b.low, b.close, b.volume, b.wap, b.count);
    this.#send(c, fields);
  }

  #cancelHistorical(c: Connection, reqId: number): void {
    const timer = c.historical.get(reqId);
    if (timer === undefined) return;
    clearTimeout(timer);
    c.historical.delete(reqId);
    this.#error(c, reqId, TWS_MESSAGES.HISTORICAL_CANCELLED);
  }

  #log(line: string): void {
    this.options.log?.(`${new Date().toISOString()} fake-tws:${this.#port} ${line}`);
  }
}

/** The request id of a message that carries one (for the request log). */
function peekReqId(msgId: number, fields: readonly string[]): number | undefined {
  // Position of the request id after the message id: directly, or after a version field.
  const at: Record<number, number> = {
    [CLIENT_MSG.REQ_CONTRACT_DATA]: 2,
    [CLIENT_MSG.REQ_TICK_BY_TICK_DATA]: 1,
    [CLIENT_MSG.CANCEL_TICK_BY_TICK_DATA]: 1,
    [CLIENT_MSG.REQ_REAL_TIME_BARS]: 2,
    [CLIENT_MSG.CANCEL_REAL_TIME_BARS]: 2,
    [CLIENT_MSG.REQ_HISTORICAL_DATA]: 1,
    [CLIENT_MSG.CANCEL_HISTORICAL_DATA]: 2,
  };
  const i = at[msgId];
  return i === undefined ? undefined : Number(fields[i]);
}
