import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { StreamingConfig } from '../pipeline/config/index.js';
import type { HistoricalBarsSource } from '../pipeline/producers/ibkr/index.js';
import { IbSession, PacedHistoricalSource, Pacer, recordPastRequests } from '../pipeline/producers/ibkr/index.js';
import type { Logger, Metrics } from '../pipeline/telemetry/index.js';

/**
 * The worker process's connections to TWS / IB Gateway. One {@link Pacer} per TWS (host:port) for
 * the whole process, so every connection's requests count against IB's limits together; the
 * historical connection (client id `producers.ibkr.backfill_client_id`) is opened on the first
 * backfill request and closed after a minute without one, so TWS lists it only while it works.
 */
const pacers = new Map<string, Pacer>();
const historical = new Map<string, HistoricalConnectionHolder>();

/** How long an idle historical connection stays open. */
const IDLE_CLOSE_MS = 60_000;

/** The process's pacer for the configured TWS. */
export function ibkrPacer(config: StreamingConfig, metrics: Metrics): Pacer {
  const ibkr = config.producers.ibkr;
  const key = `${ibkr.host}:${ibkr.port}`;
  let pacer = pacers.get(key);
  if (!pacer) {
    pacer = new Pacer({ limits: ibkr.pacing, metrics });
    pacers.set(key, pacer);
  }
  return pacer;
}

/** A session opened on first use and closed when idle, behind one {@link PacedHistoricalSource}. */
class HistoricalConnectionHolder implements HistoricalBarsSource {
  /** The pacer outlives the connections (it is the process's), and so does this id. */
  readonly requesterId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  readonly #pacer: Pacer;
  readonly #open: (requesterId: string) => { session: IbSession; source: PacedHistoricalSource };
  #current: { session: IbSession; source: PacedHistoricalSource } | undefined;
  #inFlight = 0;
  #idle: NodeJS.Timeout | undefined;

  constructor(pacer: Pacer, open: (requesterId: string) => { session: IbSession; source: PacedHistoricalSource }) {
    this.#pacer = pacer;
    this.#open = open;
  }

  readonly #recorded = new Set<string>();

  recordPast(...[contract, requests]: Parameters<HistoricalBarsSource['recordPast']>): void {
    recordPastRequests(this.#pacer, this.#recorded, contract, requests);
  }

  async request(...args: Parameters<HistoricalBarsSource['request']>): ReturnType<HistoricalBarsSource['request']> {
    clearTimeout(this.#idle);
    this.#current ??= this.#open(this.requesterId);
    const current = this.#current;
    this.#inFlight++;
    try {
      return await current.source.request(...args);
    } finally {
      this.#inFlight--;
      if (this.#inFlight === 0) {
        this.#idle = setTimeout(() => void this.close(), IDLE_CLOSE_MS);
        this.#idle.unref();
      }
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.#idle);
    const current = this.#current;
    this.#current = undefined;
    await current?.session.close();
  }
}

/** The process's historical bars source for the configured TWS (connects on first use). */
export function ibkrHistoricalBars(config: StreamingConfig, metrics: Metrics, log: Logger): HistoricalBarsSource {
  const ibkr = config.producers.ibkr;
  const key = `${ibkr.host}:${ibkr.port}:${ibkr.backfill_client_id}`;
  let holder = historical.get(key);
  if (!holder) {
    const pacer = ibkrPacer(config, metrics);
    holder = new HistoricalConnectionHolder(pacer, (requesterId) => {
      const session = new IbSession({
        host: ibkr.host,
        port: ibkr.port,
        clientId: ibkr.backfill_client_id,
        pacer,
        reconnectInitialMs: ibkr.reconnect_initial_ms,
        reconnectMaxMs: ibkr.reconnect_max_ms,
        log: log.child({ component: 'ibkr-historical' }),
      });
      const source = new PacedHistoricalSource({ session, pacer, requesterId, endpoint: `${ibkr.host}:${ibkr.port} (client id ${ibkr.backfill_client_id})` });
      session.start();
      return { session, source };
    });
    historical.set(key, holder);
  }
  return holder;
}

/** Closes every connection to TWS this process opened (worker shutdown). */
export async function closeIbkrConnections(): Promise<void> {
  const holders = [...historical.values()];
  historical.clear();
  await Promise.all(holders.map((h) => h.close()));
}
