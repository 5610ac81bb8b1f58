import type { StreamEventV1 } from '../../contracts/index.js';
import { formatMicros, makeEventId } from '../../contracts/index.js';

/** How long (event time) a symbol's per-second counts are kept after its newest second. */
const KEEP_SECONDS = 300;
/** What a heartbeat carries per symbol: the seconds that can still receive ticks. */
const SNAPSHOT_SECONDS = 60;

/** JSON snapshot of an {@link IbkrEventBuilder}: per symbol, ticks counted in each recent second. */
export interface IbkrEventState {
  readonly ver: 1;
  readonly seconds: Readonly<Record<string, readonly (readonly [second: number, ticks: number])[]>>;
}

/**
 * Turns IB's live data into v1 events with ids that are unique and deterministic.
 *
 * Ticks (tick-by-tick AllLast): `src_ts` is IB's time, epoch seconds (IB sends no finer time), so
 * many trades of a symbol share one `src_ts`; `seq` is the trade's index within its (symbol,
 * second) in the order IB delivers them. Which trades IB re-sends decides what this must survive:
 *
 * - a tick-by-tick subscription made with numberOfTicks 0 (mdp's) sends only trades printed after
 *   it is made; a resubscription (after a reconnect, or 1101 "data lost") re-sends nothing. The
 *   counts carry on across reconnects in this builder, so a second cut by a reconnect continues
 *   its numbering, and nothing collides;
 * - a worker restart resumes the counts from the last heartbeat; the new attempt subscribes after
 *   the heartbeat timeout has passed, so its trades belong to later seconds;
 * - the trades printed while no subscription was live are lost at IB's end: the producer reports
 *   that time as a gap (log, `ibkr_gap_seconds`, `mdp status`), never fills it in.
 *
 * Bars (5-second real-time bars): `src_ts` is the bar's start (IB's time), `seq` 0 — one bar per
 * (symbol, start), so a bar IB sent twice has the same `event_id` and the store keeps one. An
 * empty bar (no trade in the 5 s: count 0) is not an event.
 */
export class IbkrEventBuilder {
  readonly provider: string;
  readonly barsProvider: string;
  readonly #seconds = new Map<string, Map<number, number>>();
  readonly #newest = new Map<string, number>();

  constructor(options: { provider: string; barsProvider: string; state?: IbkrEventState }) {
    this.provider = options.provider;
    this.barsProvider = options.barsProvider;
    if (options.state !== undefined) this.#restore(options.state);
  }

  /** A trade: `timeSec` IB's epoch seconds, `ingestMs` when it was received. */
  tick(symbol: string, timeSec: number, price: number, size: number, ingestMs: number): StreamEventV1 {
    let counts = this.#seconds.get(symbol);
    if (!counts) this.#seconds.set(symbol, (counts = new Map<number, number>()));
    const seq = counts.get(timeSec) ?? 0;
    counts.set(timeSec, seq + 1);
    const newest = Math.max(this.#newest.get(symbol) ?? timeSec, timeSec);
    if (newest !== this.#newest.get(symbol)) {
      this.#newest.set(symbol, newest);
      for (const second of counts.keys()) if (second < newest - KEEP_SECONDS) counts.delete(second);
    }
    const srcTs = formatMicros(timeSec * 1_000_000);
    return {
      ver: 1,
      provider: this.provider,
      symbol,
      kind: 'tick',
      src_ts: srcTs,
      ingest_ts: formatMicros(ingestMs * 1000),
      o: price,
      h: price,
      l: price,
      c: price,
      v: size,
      seq,
      event_id: makeEventId(this.provider, symbol, srcTs, seq),
    };
  }

  /** A 5-second real-time bar starting at `timeSec`; undefined for an empty one (no trade). */
  bar(
    symbol: string,
    timeSec: number,
    bar: { open: number; high: number; low: number; close: number; volume: number; count: number },
    ingestMs: number,
  ): StreamEventV1 | undefined {
    if (!(bar.count > 0) || !(bar.volume > 0)) return undefined;
    const srcTs = formatMicros(timeSec * 1_000_000);
    return {
      ver: 1,
      provider: this.barsProvider,
      symbol,
      kind: 'bar',
      interval: '5s',
      src_ts: srcTs,
      ingest_ts: formatMicros(ingestMs * 1000),
      o: bar.open,
      h: bar.high,
      l: bar.low,
      c: bar.close,
      v: bar.volume,
      seq: 0,
      event_id: makeEventId(this.barsProvider, symbol, srcTs, 0),
    };
  }

  state(): IbkrEventState {
    const seconds: Record<string, (readonly [number, number])[]> = {};
    for (const [symbol, counts] of this.#seconds) {
      const newest = this.#newest.get(symbol) ?? 0;
      seconds[symbol] = [...counts].filter(([second]) => second >= newest - SNAPSHOT_SECONDS).sort((a, b) => a[0] - b[0]);
    }
    return { ver: 1, seconds };
  }

  #restore(state: IbkrEventState): void {
    if (typeof state !== 'object' || state === null || state.ver !== 1 || typeof state.seconds !== 'object' || state.seconds === null) {
      throw new TypeError('IBKR producer state must be an object { ver: 1, seconds }');
    }
    for (const [symbol, list] of Object.entries(state.seconds)) {
      if (!Array.isArray(list)) throw new TypeError(`IBKR producer state of ${symbol} must be a list of [second, ticks]`);
      const counts = new Map<number, number>();
      for (const entry of list) {
        const [second, ticks] = entry as readonly unknown[];
        if (!Number.isSafeInteger(second) || !Number.isSafeInteger(ticks) || (ticks as number) < 0) {
          throw new TypeError(`IBKR producer state of ${symbol} has a malformed entry ${JSON.stringify(entry)}`);
        }
        counts.set(second as number, ticks as number);
      }
      this.#seconds.set(symbol, counts);
      if (counts.size > 0) this.#newest.set(symbol, Math.max(...counts.keys()));
    }
  }
}
