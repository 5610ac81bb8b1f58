import type { BarSizeSetting, Contract, IBApi, SecType } from '@stoqey/ib';
import { EventName } from '@stoqey/ib';
import type { IbHistoricalBar } from './historical-bars.js';
import { classifyHistoricalError, HistoricalDataError } from './historical-error.js';
import type { HistoricalChunkRequest } from './historical-request.js';
import type { HistoricalBarsSource, HistoricalContract, HistoricalProgress, HistoricalReply, PastRequest } from './historical-source.js';
import type { HistoricalPermit, HistoricalRequestKey, IbRequestKind } from './pacer.js';

/** The part of `IbSession` a historical source uses (paced sends, request ids, events). */
export interface HistoricalSession {
  whenReady(signal?: AbortSignal): Promise<void>;
  nextRequestId(): number;
  sendHistorical(key: HistoricalRequestKey, write: (ib: IBApi) => void, options?: { signal?: AbortSignal }): Promise<HistoricalPermit | undefined>;
  send(kind: IbRequestKind, write: (ib: IBApi) => void, options?: { signal?: AbortSignal }): Promise<boolean>;
  listen(event: EventName, handler: (...args: never[]) => void): () => void;
  on(event: 'down', handler: (info: { readonly connection: number; readonly reason: string }) => void): unknown;
  on(event: 'message', handler: (message: { readonly kind: string; readonly code: number; readonly reqId: number; readonly message: string }) => void): unknown;
}

export interface PacedHistoricalSourceOptions {
  readonly session: HistoricalSession;
  /** The session's pacer (requests of other processes are recorded on it). */
  readonly pacer: { recordHistorical(key: HistoricalRequestKey, atMs: number): void };
  /** See {@link HistoricalBarsSource.requesterId}. */
  readonly requesterId: string;
  /** Where the session connects, for messages: `127.0.0.1:7497 (client id 18)`. */
  readonly endpoint: string;
  /** Longest wait for IB's answer once a request is sent (it is cancelled then). Default 120 s. */
  readonly replyTimeoutMs?: number;
  /** Longest wait for a connection to TWS before a request fails (retryable). Default 30 s. */
  readonly readyTimeoutMs?: number;
}

const DEFAULT_REPLY_TIMEOUT_MS = 120_000;
const DEFAULT_READY_TIMEOUT_MS = 30_000;
/** Session messages that say why it cannot connect. */
const CONNECTION_TROUBLE = new Set(['connection_failed', 'not_connected', 'client_id_in_use']);

/** A request sent and not answered yet. */
interface Pending {
  /** Set when the request went out (a drop before that only delays it to the next connection). */
  sent: boolean;
  readonly bars: IbHistoricalBar[];
  readonly settle: (outcome: { bars: IbHistoricalBar[]; noData: boolean } | HistoricalDataError) => void;
}

/** A request as IB's pacing rules tell requests apart (identical, same contract/exchange/type). */
export function historicalRequestKey(contract: HistoricalContract, request: HistoricalChunkRequest): HistoricalRequestKey {
  return {
    contract: `${contract.symbol}|${contract.secType}|${contract.currency}|${contract.primaryExch ?? ''}`,
    exchange: contract.exchange,
    whatToShow: request.whatToShow,
    params: [request.endDateTime, request.durationStr, request.barSizeSetting, request.useRTH ? 1 : 0, request.formatDate].join('|'),
  };
}

/** Most ids of recorded past requests remembered (IB's longest rule covers 60 requests). */
const RECORDED_IDS = 1000;

/**
 * Records on `pacer` the past requests whose id `recorded` does not hold yet, and remembers their
 * ids (the oldest are forgotten past {@link RECORDED_IDS}).
 */
export function recordPastRequests(
  pacer: { recordHistorical(key: HistoricalRequestKey, atMs: number): void },
  recorded: Set<string>,
  contract: HistoricalContract,
  requests: readonly PastRequest[],
): void {
  for (const r of requests) {
    if (recorded.has(r.id)) continue;
    recorded.add(r.id);
    pacer.recordHistorical(historicalRequestKey(contract, r.request), r.atMs);
  }
  for (const id of recorded) {
    if (recorded.size <= RECORDED_IDS) break;
    recorded.delete(id);
  }
}

/** The IB `Contract` of a request. */
function ibContract(c: HistoricalContract): Contract {
  return {
    symbol: c.symbol,
    secType: c.secType as SecType,
    exchange: c.exchange,
    currency: c.currency,
    ...(c.primaryExch ? { primaryExch: c.primaryExch } : {}),
  };
}

/**
 * Historical bars through an IB session: each request takes a permit from the session's pacer
 * (waiting, never violating), goes out as one `reqHistoricalData`, and resolves with the reply's
 * bars — or with `noData` when IB answers "HMDS query returned no data". The permit is released
 * when the answer arrives, the request times out (it is cancelled) or the caller aborts (it is
 * cancelled). A request whose turn comes while the connection is down waits for the next one; a
 * connection that drops under a request fails it (`DISCONNECTED`, retryable).
 */
export class PacedHistoricalSource implements HistoricalBarsSource {
  readonly requesterId: string;
  readonly #session: HistoricalSession;
  readonly #pacer: PacedHistoricalSourceOptions['pacer'];
  readonly #endpoint: string;
  readonly #replyTimeoutMs: number;
  readonly #readyTimeoutMs: number;
  readonly #pending = new Map<number, Pending>();
  readonly #recorded = new Set<string>();
  /** The last reason the session gave for not being connected. */
  #trouble: string | undefined;

  constructor(options: PacedHistoricalSourceOptions) {
    this.#session = options.session;
    this.#pacer = options.pacer;
    this.requesterId = options.requesterId;
    this.#endpoint = options.endpoint;
    this.#replyTimeoutMs = options.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS;
    this.#readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    const onBar = (reqId: number, time: string, open: number, high: number, low: number, close: number, volume: number) => {
      const pending = this.#pending.get(reqId);
      if (!pending) return;
      // The library marks the end of a reply with a bar whose time is `finished-<start>-<end>`.
      if (time.startsWith('finished')) pending.settle({ bars: pending.bars, noData: false });
      else pending.bars.push({ time, open, high, low, close, volume });
    };
    this.#session.listen(EventName.historicalData, onBar);
    this.#session.on('message', (m) => {
      if (CONNECTION_TROUBLE.has(m.kind)) this.#trouble = `${m.code} ${m.message}`;
      const pending = this.#pending.get(m.reqId);
      if (!pending || (m.kind !== 'request_error' && m.kind !== 'pacing_violation')) return;
      const outcome = classifyHistoricalError(m.code, m.message);
      if (outcome.kind === 'no_data') pending.settle({ bars: [], noData: true });
      else pending.settle(new HistoricalDataError(outcome.code, `IB error ${m.code}: ${m.message}`, { ibCode: m.code }));
    });
    this.#session.on('down', (info) => {
      this.#trouble = info.reason;
      for (const pending of [...this.#pending.values()].filter((p) => p.sent)) {
        pending.settle(new HistoricalDataError('DISCONNECTED', `the connection to TWS dropped before the reply was complete (${info.reason})`));
      }
    });
  }

  recordPast(contract: HistoricalContract, requests: readonly PastRequest[]): void {
    recordPastRequests(this.#pacer, this.#recorded, contract, requests);
  }

  async request(
    contract: HistoricalContract,
    request: HistoricalChunkRequest,
    options: { readonly signal?: AbortSignal; readonly onProgress?: (progress: HistoricalProgress) => void } = {},
  ): Promise<HistoricalReply> {
    const { signal, onProgress } = options;
    const started = Date.now();
    onProgress?.({ phase: 'pacing', waitedMs: 0 });
    const key = historicalRequestKey(contract, request);
    for (;;) {
      await this.#ready(signal);
      const reqId = this.#session.nextRequestId();
      let settle!: Pending['settle'];
      const answered = new Promise<{ bars: IbHistoricalBar[]; noData: boolean }>((resolve, reject) => {
        settle = (outcome) => {
          this.#pending.delete(reqId);
          if (outcome instanceof HistoricalDataError) reject(outcome);
          else resolve(outcome);
        };
      });
      // Observed by the race below; a request that never goes out settles nothing.
      answered.catch(() => undefined);
      // Registered before the request goes, so an answer however fast finds it.
      const pending: Pending = { sent: false, bars: [], settle };
      this.#pending.set(reqId, pending);
      let permit: HistoricalPermit | undefined;
      try {
        permit = await this.#session.sendHistorical(
          key,
          (ib) => {
            pending.sent = true;
            ib.reqHistoricalData(
              reqId,
              ibContract(contract),
              request.endDateTime,
              request.durationStr,
              request.barSizeSetting as BarSizeSetting,
              request.whatToShow,
              request.useRTH ? 1 : 0,
              request.formatDate,
              false,
            );
          },
          signal ? { signal } : {},
        );
      } finally {
        if (!permit) this.#pending.delete(reqId);
      }
      // The connection went down while the request waited for its turn: wait for the next one.
      if (!permit) continue;
      const pacingWaitMs = Date.now() - started;
      onProgress?.({ phase: 'requesting', waitedMs: pacingWaitMs });
      try {
        const reply = await this.#await(reqId, answered, signal);
        return { ...reply, pacingWaitMs };
      } finally {
        permit.release();
      }
    }
  }

  /** Waits for the session to be connected, at most `readyTimeoutMs`. */
  async #ready(signal: AbortSignal | undefined): Promise<void> {
    const timeout = AbortSignal.timeout(this.#readyTimeoutMs);
    try {
      await this.#session.whenReady(signal ? AbortSignal.any([signal, timeout]) : timeout);
    } catch (err) {
      if (signal?.aborted || !timeout.aborted) throw err;
      throw new HistoricalDataError(
        'DISCONNECTED',
        `TWS / IB Gateway not reachable at ${this.#endpoint} within ${Math.round(this.#readyTimeoutMs / 1000)} s${this.#trouble ? ` (last: ${this.#trouble})` : ''}`,
      );
    }
  }

  /** The answer to `reqId`, or a timeout / abort (both cancel the request at TWS). */
  async #await<T>(reqId: number, answered: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const cancel = () => {
      this.#pending.delete(reqId);
      this.#session.send('cancel_historical_data', (ib) => ib.cancelHistoricalData(reqId)).catch(() => undefined);
    };
    const stopped = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        cancel();
        reject(new HistoricalDataError('TIMEOUT', `no complete reply from TWS within ${Math.round(this.#replyTimeoutMs / 1000)} s (request cancelled)`));
      }, this.#replyTimeoutMs);
      onAbort = () => {
        cancel();
        reject(signal?.reason instanceof Error ? signal.reason : new Error('historical request aborted'));
      };
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([answered, stopped]);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }
}
