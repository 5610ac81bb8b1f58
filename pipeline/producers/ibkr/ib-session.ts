import { EventName, IBApi } from '@stoqey/ib';
import type { Logger } from '../../telemetry/index.js';
import type { HistoricalPermit, HistoricalRequestKey, IbRequestKind, Pacer, PacerClock } from './pacer.js';
import { isPacingViolation, systemClock } from './pacer.js';

export type IbApi = IBApi;
type IbEventName = EventName;
/** IBApi's `on` is overloaded per event; a listener registered for any event goes through this view. */
interface AnyEmitter {
  on(event: string, handler: (...args: never[]) => void): unknown;
  off(event: string, handler: (...args: never[]) => void): unknown;
}
const emitter = (ib: IbApi): AnyEmitter => ib as unknown as AnyEmitter;

/**
 * What a message from TWS (or from the client library about the connection) means to mdp: a
 * closed list, so callers branch on the kind, never on the text.
 */
export const IB_MESSAGE_KINDS = [
  /** 502: the TCP connection could not be made (TWS not running, API disabled, wrong port). */
  'connection_failed',
  /** 504: the client is not connected (a send on a closed socket). */
  'not_connected',
  /** 326: another connection uses this client id. */
  'client_id_in_use',
  /** 1100: TWS lost its connection to IB; the socket stays up, no data flows. */
  'connectivity_lost',
  /** 1101: connectivity back, market data subscriptions lost: request them again. */
  'restored_data_lost',
  /** 1102: connectivity back, subscriptions kept. */
  'restored_data_kept',
  /** 2103: the market data farm connection broke (data stops until 2104). */
  'market_farm_broken',
  /** 2104: the market data farm connection is OK. */
  'market_farm_ok',
  /** 100, 162 "pacing violation", 322, 420: a pacing limit was exceeded (must never happen). */
  'pacing_violation',
  /** Any other error about one request (reqId ≥ 0): 200 no security, 101 max tickers, 162 no data… */
  'request_error',
  /** Anything else: farm status notices (2106, 2158, …), warnings. */
  'notice',
] as const;
export type IbMessageKind = (typeof IB_MESSAGE_KINDS)[number];

/** Maps TWS's (code, request id, text) to its {@link IbMessageKind}. */
export function classifyIbMessage(code: number, reqId: number, message: string): IbMessageKind {
  if (isPacingViolation(code, message)) return 'pacing_violation';
  switch (code) {
    case 502:
      return 'connection_failed';
    case 504:
      return 'not_connected';
    case 326:
      return 'client_id_in_use';
    case 1100:
      return 'connectivity_lost';
    case 1101:
      return 'restored_data_lost';
    case 1102:
      return 'restored_data_kept';
    case 2103:
      return 'market_farm_broken';
    case 2104:
      return 'market_farm_ok';
  }
  return reqId >= 0 ? 'request_error' : 'notice';
}

/** A message from TWS, classified. */
export interface IbMessage {
  readonly kind: IbMessageKind;
  readonly code: number;
  /** The request it is about, or -1. */
  readonly reqId: number;
  readonly message: string;
}

export interface IbSessionOptions {
  readonly host: string;
  readonly port: number;
  readonly clientId: number;
  /** Every message to TWS goes through it (the connection's START_API too). */
  readonly pacer: Pacer;
  /** First wait before reconnecting; doubles after each failed attempt up to `reconnectMaxMs`. */
  readonly reconnectInitialMs: number;
  readonly reconnectMaxMs: number;
  /** How long one attempt may take from TCP connect to nextValidId. Default 10 s. */
  readonly connectTimeoutMs?: number;
  readonly log: Logger;
  readonly clock?: PacerClock;
}

/** Session states: connecting (or waiting to retry), ready (handshake done, requests may go), closed. */
export type IbSessionState = 'connecting' | 'ready' | 'closed';

export interface IbSessionEvents {
  /** Handshake done on a new connection (`reconnect`: not the first); subscriptions must be (re)made. */
  ready: (info: { readonly connection: number; readonly serverVersion: number; readonly reconnect: boolean }) => void;
  /** The connection is gone (socket closed, 504); the session reconnects by itself. */
  down: (info: { readonly connection: number; readonly reason: string }) => void;
  /** Every classified message from TWS (and the library's connection errors). */
  message: (message: IbMessage) => void;
}

/** A failed connection attempt (why, for the log and the backoff). */
class AttemptFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}

/**
 * One Interactive Brokers API session over @stoqey/ib: connects (TCP, the `API\0` version
 * handshake, START_API, nextValidId), classifies what TWS says ({@link classifyIbMessage}),
 * reconnects on its own with exponential backoff (`reconnectInitialMs` doubling to
 * `reconnectMaxMs`, reset by a successful handshake) after a dropped socket, a refused connection,
 * error 504 or 326, and hands out request ids that stay unique across reconnects.
 *
 * Every message goes through the {@link Pacer} (`send`, `sendHistorical`, `sendRealTimeBars`), and
 * only while the session is ready: a request whose turn comes while the connection is down is not
 * sent (the caller repeats it on the next `ready`), because the client library would otherwise
 * queue it and flush it in a burst when the next connection comes up. The library's own rate
 * limiter is switched off (the pacer is the one authority over the rate).
 *
 * Listeners for data events (`listen`) stay attached across reconnects. Each connection uses a
 * fresh `IBApi`, so nothing of a dead connection leaks into the next.
 *
 * @example
 * ```ts
 * const session = new IbSession({ host, port, clientId, pacer, reconnectInitialMs: 1000, reconnectMaxMs: 30000, log });
 * session.listen(EventName.tickByTickAllLast, (reqId, type, time, price, size) => …);
 * session.on('ready', () => void subscribeAll());
 * session.start();
 * await session.whenReady(signal);
 * ```
 */
export class IbSession {
  readonly options: IbSessionOptions;
  readonly #clock: PacerClock;
  readonly #log: Logger;
  readonly #handlers: { [K in keyof IbSessionEvents]: IbSessionEvents[K][] } = { ready: [], down: [], message: [] };
  readonly #listeners: { event: IbEventName; handler: (...args: never[]) => void }[] = [];
  #state: IbSessionState = 'connecting';
  #ib: IbApi | undefined;
  #connection = 0;
  #serverVersion = 0;
  #nextReqId = 1;
  #started = false;
  #loop: Promise<void> | undefined;
  #closed: Promise<void> | undefined;
  readonly #stop = new AbortController();
  /** Resolves when the current connection goes down. */
  #lost: (() => void) | undefined;
  #readyWaiters: (() => void)[] = [];

  constructor(options: IbSessionOptions) {
    this.options = options;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log.child({ ib: `${options.host}:${options.port}`, clientId: options.clientId });
    if (!(options.reconnectInitialMs > 0 && options.reconnectMaxMs >= options.reconnectInitialMs)) {
      throw new RangeError(
        `reconnect backoff must have 0 < reconnect_initial_ms ≤ reconnect_max_ms (got ${options.reconnectInitialMs}, ${options.reconnectMaxMs})`,
      );
    }
  }

  get state(): IbSessionState {
    return this.#state;
  }

  /** Server version negotiated on the current (or last) connection; 0 before the first. */
  get serverVersion(): number {
    return this.#serverVersion;
  }

  /** Connections made so far (1 after the first handshake). */
  get connections(): number {
    return this.#connection;
  }

  on<K extends keyof IbSessionEvents>(event: K, handler: IbSessionEvents[K]): this {
    this.#handlers[event].push(handler);
    return this;
  }

  /** Attaches `handler` to an @stoqey/ib event on this and every later connection; returns a detach function. */
  listen(event: IbEventName, handler: (...args: never[]) => void): () => void {
    const entry = { event, handler };
    this.#listeners.push(entry);
    if (this.#ib) emitter(this.#ib).on(event, handler);
    return () => {
      const i = this.#listeners.indexOf(entry);
      if (i >= 0) this.#listeners.splice(i, 1);
      if (this.#ib) emitter(this.#ib).off(event, handler);
    };
  }

  /** A request id no other request of this session has used (ids are not reused after a reconnect). */
  nextRequestId(): number {
    return this.#nextReqId++;
  }

  /** Starts connecting in the background (and reconnecting whenever the connection drops). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#loop = this.#run();
  }

  /** Resolves when the session is ready (now, or after the next handshake); rejects when `signal` aborts or the session closes. */
  whenReady(signal?: AbortSignal): Promise<void> {
    if (this.#state === 'ready') return Promise.resolve();
    if (this.#state === 'closed') return Promise.reject(new Error('the IB session is closed'));
    return new Promise<void>((done, fail) => {
      const onAbort = () => fail(signal?.reason instanceof Error ? signal.reason : new Error('aborted while waiting for TWS'));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#readyWaiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        if (this.#state === 'ready') done();
        else fail(new Error('the IB session is closed'));
      });
    });
  }

  /**
   * Sends one message when the pacer allows it: `write` is called with the live client and must
   * send exactly one message. False (and nothing sent) when the session was not ready at its turn.
   */
  async send(kind: IbRequestKind, write: (ib: IbApi) => void, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    await this.options.pacer.acquire(kind, options);
    return this.#write(write);
  }

  /**
   * Sends a historical data request when every historical pacing rule allows it. Returns its
   * permit (release it on the request's answer, error or cancel), or undefined when the session
   * was not ready at its turn (nothing sent; the permit is already released).
   */
  async sendHistorical(key: HistoricalRequestKey, write: (ib: IbApi) => void, options: { signal?: AbortSignal } = {}): Promise<HistoricalPermit | undefined> {
    const permit = await this.options.pacer.acquireHistorical(key, options);
    if (this.#write(write)) return permit;
    permit.release();
    return undefined;
  }

  /** Sends a real-time bars subscription when the long pacing window allows it; false when not ready. */
  async sendRealTimeBars(write: (ib: IbApi) => void, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    await this.options.pacer.acquireRealTimeBars(options);
    return this.#write(write);
  }

  /** Disconnects and stops reconnecting; idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#state = 'closed';
      this.#stop.abort(new Error('IB session closed'));
      this.#lost?.();
      this.#teardown();
      for (const wake of this.#readyWaiters.splice(0)) wake();
      await this.#loop?.catch(() => undefined);
    })();
    return this.#closed;
  }

  #write(write: (ib: IbApi) => void): boolean {
    const ib = this.#ib;
    if (this.#state !== 'ready' || ib === undefined) return false;
    write(ib);
    return true;
  }

  #emit<K extends keyof IbSessionEvents>(event: K, ...args: Parameters<IbSessionEvents[K]>): void {
    for (const handler of this.#handlers[event]) {
      try {
        (handler as (...a: Parameters<IbSessionEvents[K]>) => void)(...args);
      } catch (err) {
        this.#log.error('IB session event handler failed', { event, err });
      }
    }
  }

  /** Connect, stay until the connection drops, back off, again — until closed. */
  async #run(): Promise<void> {
    let backoffMs = this.options.reconnectInitialMs;
    let attempt = 0;
    while (!this.#stop.signal.aborted) {
      attempt++;
      try {
        const { lost } = await this.#connect();
        backoffMs = this.options.reconnectInitialMs;
        attempt = 0;
        await lost;
        if (this.#stop.signal.aborted) return;
      } catch (err) {
        if (this.#stop.signal.aborted) return;
        this.#log.warn('IB connection attempt failed', { attempt, retryInMs: backoffMs, reason: (err as Error).message });
        await this.#clock.sleep(backoffMs, this.#stop.signal).catch(() => undefined);
        backoffMs = Math.min(backoffMs * 2, this.options.reconnectMaxMs);
        continue;
      }
      // The connection was up and went down: the first retry waits the initial backoff.
      await this.#clock.sleep(backoffMs, this.#stop.signal).catch(() => undefined);
      backoffMs = Math.min(backoffMs * 2, this.options.reconnectMaxMs);
    }
  }

  /**
   * One connection attempt: resolves once TWS sent nextValidId, with `lost` (resolves when this
   * connection goes down); rejects when the attempt fails or times out.
   */
  async #connect(): Promise<{ lost: Promise<void> }> {
    this.#state = 'connecting';
    // START_API is one of the client's messages to TWS, sent by the library itself: pace it too.
    await this.options.pacer.acquire('start_api', { signal: this.#stop.signal });
    const connection = this.#connection + 1;
    const ib = new IBApi({ host: this.options.host, port: this.options.port, clientId: this.options.clientId, maxReqPerSec: 1_000_000 });
    this.#ib = ib;
    let settle: { ok: () => void; fail: (reason: string) => void } | undefined;
    let wasReady = false;
    let downReason: string | undefined;
    const lost = new Promise<void>((done) => (this.#lost = done));
    const goneDown = (reason: string) => {
      if (this.#ib !== ib) return;
      if (!wasReady) {
        settle?.fail(reason);
        return;
      }
      if (downReason !== undefined) return;
      downReason = reason;
      this.#state = 'connecting';
      this.#log.warn('IB connection lost', { connection, reason });
      this.#teardown();
      this.#emit('down', { connection, reason });
      this.#lost?.();
    };
    const onMessage = (code: number, reqId: number, message: string) => {
      const kind = classifyIbMessage(code, reqId, message);
      if (kind === 'pacing_violation') {
        this.options.pacer.reportViolation(code);
        this.#log.error('TWS reported a pacing violation', { code, reqId, message });
      } else if (kind === 'connection_failed' || kind === 'not_connected' || kind === 'client_id_in_use') {
        goneDown(`${code} ${message}`);
      } else if (kind === 'notice') {
        this.#log.debug('TWS notice', { code, message });
      } else {
        this.#log.info('TWS message', { kind, code, reqId, message });
      }
      this.#emit('message', { kind, code, reqId, message });
    };
    ib.on(EventName.error, (err: Error, code: number, reqId: number) => onMessage(code, reqId ?? -1, err.message));
    ib.on(EventName.info, (message: string, code: number) => onMessage(code, -1, message));
    ib.on(EventName.disconnected, () => goneDown('socket closed'));
    for (const { event, handler } of this.#listeners) emitter(ib).on(event, handler);

    const ready = new Promise<void>((ok, fail) => {
      settle = { ok, fail: (reason) => fail(new AttemptFailed(reason)) };
      ib.once(EventName.nextValidId, () => ok());
    });
    const timeoutMs = this.options.connectTimeoutMs ?? 10_000;
    const timer = setTimeout(() => settle?.fail(`no handshake within ${timeoutMs} ms`), timeoutMs);
    const onStop = () => settle?.fail('closed');
    this.#stop.signal.addEventListener('abort', onStop, { once: true });
    ib.connect();
    try {
      await ready;
    } catch (err) {
      this.#teardown();
      throw err;
    } finally {
      clearTimeout(timer);
      this.#stop.signal.removeEventListener('abort', onStop);
    }
    wasReady = true;
    this.#connection = connection;
    this.#serverVersion = ib.serverVersion;
    this.#state = 'ready';
    this.#log.info('IB connection ready', { connection, serverVersion: ib.serverVersion });
    this.#emit('ready', { connection, serverVersion: ib.serverVersion, reconnect: connection > 1 });
    for (const wake of this.#readyWaiters.splice(0)) wake();
    return { lost };
  }

  /** Drops the current client: no more events from it, its socket closed. */
  #teardown(): void {
    const ib = this.#ib;
    if (!ib) return;
    this.#ib = undefined;
    ib.removeAllListeners();
    // A late error from the dead socket must not be an unhandled 'error' event.
    ib.on(EventName.error, () => undefined);
    try {
      ib.disconnect();
    } catch {
      // already closed
    }
  }
}
