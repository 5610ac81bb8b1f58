import type { Bar, MarketEvent } from '../contracts/index.js';
import { intervalLabel } from '../contracts/index.js';
import { windowStartMs } from './window-assigner.js';

/** What {@link MicroBatcher.add} did with an event. */
export type AddResult = 'accepted' | 'duplicate' | 'late';

/** Options of a {@link MicroBatcher}; all durations in milliseconds. */
export interface MicroBatcherOptions {
  /** Tumbling window length, a positive integer (`micro_batch.window_ms`). */
  readonly windowMs: number;
  /** How far the watermark trails the newest event time (`micro_batch.allow_late_ms`). */
  readonly allowLateMs: number;
  /** Wall-clock quiet time after which the watermark follows the wall clock (`micro_batch.flush_timeout_ms`). */
  readonly flushTimeoutMs: number;
  /** Buffered refs at which {@link MicroBatcher.isFull} turns true (`micro_batch.max_buffered_events`). */
  readonly maxBufferedEvents: number;
  /**
   * End of the last window already persisted (from durable storage after a restart). Windows that
   * start before it count as flushed: their events are late.
   */
  readonly frontierMs?: number;
}

/** One closed window: its bars to upsert and the bus refs to ack once they are persisted. */
export interface WindowFlush<Ref> {
  /** Window start, epoch milliseconds; also the `tsMs` of every bar. */
  readonly windowStartMs: number;
  /** Window end (exclusive), epoch milliseconds. */
  readonly windowEndMs: number;
  /** One bar per (provider, symbol) with events in the window, sorted by provider then symbol. */
  readonly bars: Bar[];
  /** Refs of every accepted and duplicate event of the window, in arrival order. */
  readonly refs: Ref[];
  /**
   * The same refs per bar: `barRefs[i]` holds the refs of `bars[i]`'s events (a duplicate's with
   * the bar of its provider and symbol), in arrival order, so a bar the store refuses can be traced
   * back to its entries.
   */
  readonly barRefs: Ref[][];
  /** Distinct events aggregated into the window's bars. */
  readonly events: number;
  /** Events dropped as duplicates of an earlier `eventId` in the window (their refs are in `refs`). */
  readonly duplicates: number;
  /** Wall clock (`nowMs` of {@link MicroBatcher.add}) of the latest event kept in the window. */
  readonly lastArrivalMs: number;
}

/**
 * Plain, JSON-safe numbers for heartbeats and metrics. `null` means not known yet (no event seen,
 * no window flushed and no frontier given).
 */
export interface MicroBatcherSnapshot {
  readonly watermarkMs: number | null;
  readonly frontierMs: number | null;
  readonly openWindows: number;
  readonly bufferedRefs: number;
  readonly accepted: number;
  readonly duplicates: number;
  readonly late: number;
  readonly flushedWindows: number;
  readonly flushedBars: number;
}

/** Running OHLCV of one (provider, symbol) in one window; module-private and mutable for speed. */
class BarAccumulator<Ref> {
  open: number;
  openTsUs: number;
  openSeq: number;
  openId: string;
  close: number;
  closeTsUs: number;
  closeSeq: number;
  closeId: string;
  high: number;
  low: number;
  volume: number;
  trades = 1;
  /** Refs of the bar's events, accepted and duplicate, in arrival order. */
  readonly refs: Ref[];
  /** `eventId` of every distinct event, in arrival order: what {@link idSet} is built from. */
  readonly eventIds: string[];
  /**
   * The same ids as a set, built only once an event arrives that is not after every earlier one
   * in (srcTs, seq) order: only such an event can repeat one. In-order streams never hash an id.
   */
  idSet: Set<string> | undefined;

  constructor(event: MarketEvent, ref: Ref) {
    this.refs = [ref];
    this.eventIds = [event.eventId];
    this.idSet = undefined;
    this.open = event.o;
    this.openTsUs = event.srcTsUs;
    this.openSeq = event.seq;
    this.openId = event.eventId;
    this.close = event.c;
    this.closeTsUs = event.srcTsUs;
    this.closeSeq = event.seq;
    this.closeId = event.eventId;
    this.high = event.h;
    this.low = event.l;
    this.volume = event.v;
  }

  /**
   * Adds an event of this bar: `false` (and only its ref kept) when its `eventId` is already here.
   * An event after the close in (srcTs, seq) cannot repeat one: a repeat has the same `eventId`,
   * hence the same `src_ts` and `seq`.
   */
  add(event: MarketEvent, ref: Ref): boolean {
    this.refs.push(ref);
    const ts = event.srcTsUs;
    const seq = event.seq;
    const eventId = event.eventId;
    if (ts > this.closeTsUs || (ts === this.closeTsUs && seq > this.closeSeq)) {
      this.eventIds.push(eventId);
      this.idSet?.add(eventId);
    } else {
      let idSet = this.idSet;
      if (idSet === undefined) {
        idSet = new Set(this.eventIds);
        this.idSet = idSet;
      }
      const distinctBefore = idSet.size;
      idSet.add(eventId); // one hash lookup instead of has() + add()
      if (idSet.size === distinctBefore) return false;
      this.eventIds.push(eventId);
    }
    // (srcTs, seq) orders events; eventId only breaks exact ties so arrival order never matters.
    if (ts < this.openTsUs || (ts === this.openTsUs && (seq < this.openSeq || (seq === this.openSeq && event.eventId < this.openId)))) {
      this.open = event.o;
      this.openTsUs = ts;
      this.openSeq = seq;
      this.openId = event.eventId;
    }
    if (ts > this.closeTsUs || (ts === this.closeTsUs && (seq > this.closeSeq || (seq === this.closeSeq && event.eventId > this.closeId)))) {
      this.close = event.c;
      this.closeTsUs = ts;
      this.closeSeq = seq;
      this.closeId = event.eventId;
    }
    if (event.h > this.high) this.high = event.h;
    if (event.l < this.low) this.low = event.l;
    this.volume += event.v;
    this.trades++;
    return true;
  }
}

/** State of one open window. */
class OpenWindow<Ref> {
  readonly refs: Ref[] = [];
  /** Distinct events (the duplicates are counted apart). */
  events = 0;
  /** provider → symbol → accumulator; nested maps avoid building a key string per event. */
  readonly accumulators = new Map<string, Map<string, BarAccumulator<Ref>>>();
  duplicates = 0;

  constructor(
    readonly startMs: number,
    readonly endMs: number,
    public lastArrivalMs: number,
  ) {}
}

/** Orders map entries by key in code-unit order (locale-independent, so bar order is stable). */
function byKey(a: readonly [string, unknown], b: readonly [string, unknown]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

function checkOption(ok: boolean, key: string, rule: string, value: unknown): void {
  if (!ok) throw new RangeError(`MicroBatcher option "${key}" must be ${rule} (got ${String(value)})`);
}

/**
 * Event-time tumbling-window aggregator for one shard (events of many providers and symbols):
 * assigns events to epoch-aligned windows, drops duplicate `eventId`s, builds one OHLCV bar per
 * (provider, symbol) incrementally, and closes windows once the watermark passes their end.
 *
 * - Watermark = newest event time seen − `allowLateMs`; it never goes back. An event whose window
 *   ended at or before the watermark, or starts before the frontier (the end of the last flushed
 *   window), is `'late'` and nothing of it is kept.
 * - When no event has been accepted for `flushTimeoutMs` of wall clock, {@link flush} advances the
 *   watermark with the wall clock, so the last window of a quiet stream still closes.
 * - Pure and deterministic: the wall clock is always passed in as `nowMs`.
 *
 * Events are those of `validateEvent`: an `eventId` names one provider, symbol, `srcTsUs` and
 * `seq` (`event_id = provider|symbol|src_ts|seq`), so a repeat always lands in the bar of the
 * event it repeats, where it is recognised.
 *
 * Volumes are summed in arrival order; with non-integer volumes the last bits of a bar's volume
 * may differ between two arrival orders of the same events.
 *
 * @example
 * ```ts
 * const batcher = new MicroBatcher<string>({ windowMs: 2000, allowLateMs: 500, flushTimeoutMs: 1000, maxBufferedEvents: 5000 });
 * for (const { id, event } of messages) {
 *   if (batcher.add(event, id, Date.now()) === 'late') routeToLateStreamAndAck(event, id);
 * }
 * const closed = batcher.isFull ? [batcher.forceFlushOldest()!] : batcher.flush(Date.now());
 * for (const window of closed) {
 *   await store.upsertBars(window.bars);
 *   await bus.ack(window.refs);
 * }
 * ```
 */
export class MicroBatcher<Ref> {
  readonly #windowMs: number;
  readonly #allowLateMs: number;
  readonly #flushTimeoutMs: number;
  readonly #maxBufferedEvents: number;
  readonly #interval: string;
  /** Open windows in ascending start order; new windows almost always append. */
  readonly #openWindows: OpenWindow<Ref>[] = [];
  readonly #openByStart = new Map<number, OpenWindow<Ref>>();
  /** The window the previous event went to: most events hit it, skipping the map lookup. */
  #currentWindow: OpenWindow<Ref> | undefined;
  #maxSrcTsMs = -Infinity;
  #watermarkMs = -Infinity;
  #frontierMs: number;
  #lastActivityNowMs: number | undefined;
  #bufferedRefs = 0;
  #accepted = 0;
  #duplicates = 0;
  #late = 0;
  #flushedWindows = 0;
  #flushedBars = 0;

  /** @throws RangeError naming the offending option. */
  constructor(options: MicroBatcherOptions) {
    const { windowMs, allowLateMs, flushTimeoutMs, maxBufferedEvents, frontierMs } = options;
    checkOption(Number.isSafeInteger(windowMs) && windowMs > 0, 'windowMs', 'a positive integer', windowMs);
    checkOption(Number.isFinite(allowLateMs) && allowLateMs >= 0, 'allowLateMs', 'a finite number >= 0', allowLateMs);
    checkOption(Number.isFinite(flushTimeoutMs) && flushTimeoutMs >= 0, 'flushTimeoutMs', 'a finite number >= 0', flushTimeoutMs);
    checkOption(Number.isSafeInteger(maxBufferedEvents) && maxBufferedEvents > 0, 'maxBufferedEvents', 'a positive integer', maxBufferedEvents);
    checkOption(frontierMs === undefined || Number.isFinite(frontierMs), 'frontierMs', 'a finite number', frontierMs);
    this.#windowMs = windowMs;
    this.#allowLateMs = allowLateMs;
    this.#flushTimeoutMs = flushTimeoutMs;
    this.#maxBufferedEvents = maxBufferedEvents;
    this.#interval = intervalLabel(windowMs);
    this.#frontierMs = frontierMs ?? -Infinity;
  }

  /**
   * Assigns one event to its window. For `'accepted'` and `'duplicate'` the batcher keeps `ref`
   * and returns it with the window's flush; for `'late'` it keeps nothing and the caller routes
   * the event to the late stream and acks it.
   *
   * @param nowMs - wall clock, epoch milliseconds (drives the idle rule of {@link flush})
   */
  add(event: MarketEvent, ref: Ref, nowMs: number): AddResult {
    // Any event read, late or duplicate included, shows the stream is flowing: the idle rule is
    // for quiet streams only, or a busy shard's watermark would run ahead of its backlog.
    this.#lastActivityNowMs = nowMs;
    const startMs = windowStartMs(event.srcTsUs, this.#windowMs);
    const endMs = startMs + this.#windowMs;
    if (endMs <= this.#watermarkMs || startMs < this.#frontierMs) {
      this.#late++;
      return 'late';
    }
    let window = this.#currentWindow;
    if (window === undefined || window.startMs !== startMs) {
      window = this.#openByStart.get(startMs) ?? this.#openWindow(startMs, endMs, nowMs);
      this.#currentWindow = window;
    }
    if (nowMs > window.lastArrivalMs) window.lastArrivalMs = nowMs;
    window.refs.push(ref);
    this.#bufferedRefs++;
    // Only after the lateness check: the event is judged against the watermark before it.
    const srcTsMs = event.srcTsUs / 1000;
    if (srcTsMs > this.#maxSrcTsMs) {
      this.#maxSrcTsMs = srcTsMs;
      const watermarkMs = srcTsMs - this.#allowLateMs;
      if (watermarkMs > this.#watermarkMs) this.#watermarkMs = watermarkMs;
    }
    // event_id = provider|symbol|src_ts|seq: a repeat always meets the bar of the event it repeats,
    // which keeps the ids of its window's events (see BarAccumulator.add).
    let bySymbol = window.accumulators.get(event.provider);
    if (bySymbol === undefined) {
      bySymbol = new Map();
      window.accumulators.set(event.provider, bySymbol);
    }
    const accumulator = bySymbol.get(event.symbol);
    if (accumulator === undefined) bySymbol.set(event.symbol, new BarAccumulator(event, ref));
    else if (!accumulator.add(event, ref)) {
      window.duplicates++;
      this.#duplicates++;
      return 'duplicate';
    }
    window.events++;
    this.#accepted++;
    return 'accepted';
  }

  /**
   * Records that the stream delivered entries at `nowMs` that never reached {@link add} (invalid
   * ones going to the DLQ): the stream is not idle, so the watermark must not follow the wall clock.
   */
  touch(nowMs: number): void {
    if (this.#lastActivityNowMs === undefined || nowMs > this.#lastActivityNowMs) this.#lastActivityNowMs = nowMs;
  }

  /**
   * Closes and returns every open window whose end is at or before the effective watermark, in
   * ascending window order, and moves the frontier to the last one's end. If no event was
   * read for `flushTimeoutMs` (`nowMs` − the last event's or {@link touch}'s `nowMs`), the watermark
   * first advances to `maxSrcTsMs + (nowMs − lastActivityNowMs) − allowLateMs`; that advance stays.
   *
   * @param nowMs - wall clock, epoch milliseconds
   */
  flush(nowMs: number): WindowFlush<Ref>[] {
    if (this.#lastActivityNowMs !== undefined) {
      const idleMs = nowMs - this.#lastActivityNowMs;
      if (idleMs >= this.#flushTimeoutMs) {
        const idleWatermarkMs = this.#maxSrcTsMs + idleMs - this.#allowLateMs;
        if (idleWatermarkMs > this.#watermarkMs) this.#watermarkMs = idleWatermarkMs;
      }
    }
    const open = this.#openWindows;
    let count = 0;
    while (count < open.length && open[count].endMs <= this.#watermarkMs) count++;
    if (count === 0) return [];
    return open.splice(0, count).map((window) => this.#close(window));
  }

  /**
   * Closes the oldest open window now, whatever the watermark, for backpressure (call it while
   * {@link isFull}). The frontier and the watermark rise to its end, so later events for that
   * window are late. Only for memory protection: a shard holding `maxBufferedEvents` events cuts its oldest window.
   *
   * @returns the window's flush, or `undefined` when no window is open
   */
  forceFlushOldest(): WindowFlush<Ref> | undefined {
    const oldest = this.#openWindows.shift();
    if (oldest === undefined) return undefined;
    if (oldest.endMs > this.#watermarkMs) this.#watermarkMs = oldest.endMs;
    return this.#close(oldest);
  }

  /** Watermark in epoch milliseconds; `undefined` before the first kept event. */
  get watermarkMs(): number | undefined {
    return this.#watermarkMs === -Infinity ? undefined : this.#watermarkMs;
  }

  /**
   * The first ref kept by each open window (refs are kept in arrival order), oldest window first:
   * with refs that grow in arrival order (bus entry ids), the smallest of them is the oldest entry
   * not yet flushed.
   */
  openWindowFirstRefs(): Ref[] {
    return this.#openWindows.map((window) => window.refs[0]).filter((ref) => ref !== undefined);
  }

  /** End of the last flushed window (or the restart frontier); `undefined` when neither exists. */
  get frontierMs(): number | undefined {
    return this.#frontierMs === -Infinity ? undefined : this.#frontierMs;
  }

  /** Number of windows holding events. */
  get openWindowCount(): number {
    return this.#openWindows.length;
  }

  /** Refs held across open windows (accepted and duplicate events), i.e. messages not yet ackable. */
  get bufferedRefs(): number {
    return this.#bufferedRefs;
  }

  /** `bufferedRefs >= maxBufferedEvents`: time to {@link forceFlushOldest}. */
  get isFull(): boolean {
    return this.#bufferedRefs >= this.#maxBufferedEvents;
  }

  /** Current state and counters as JSON-safe numbers. */
  snapshot(): MicroBatcherSnapshot {
    return {
      watermarkMs: this.watermarkMs ?? null,
      frontierMs: this.frontierMs ?? null,
      openWindows: this.#openWindows.length,
      bufferedRefs: this.#bufferedRefs,
      accepted: this.#accepted,
      duplicates: this.#duplicates,
      late: this.#late,
      flushedWindows: this.#flushedWindows,
      flushedBars: this.#flushedBars,
    };
  }

  #openWindow(startMs: number, endMs: number, nowMs: number): OpenWindow<Ref> {
    const window = new OpenWindow<Ref>(startMs, endMs, nowMs);
    this.#openByStart.set(startMs, window);
    const open = this.#openWindows;
    let index = open.length;
    // Windows open in event-time order except for out-of-order events: a short walk back.
    while (index > 0 && open[index - 1].startMs > startMs) index--;
    if (index === open.length) open.push(window);
    else open.splice(index, 0, window);
    return window;
  }

  /** Builds the flush of a window already removed from `#openWindows`. */
  #close(window: OpenWindow<Ref>): WindowFlush<Ref> {
    this.#openByStart.delete(window.startMs);
    if (this.#currentWindow === window) this.#currentWindow = undefined;
    this.#bufferedRefs -= window.refs.length;
    if (window.endMs > this.#frontierMs) this.#frontierMs = window.endMs;
    const bars: Bar[] = [];
    const barRefs: Ref[][] = [];
    for (const [provider, bySymbol] of [...window.accumulators].sort(byKey)) {
      for (const [symbol, acc] of [...bySymbol].sort(byKey)) {
        barRefs.push(acc.refs);
        bars.push({
          provider,
          symbol,
          interval: this.#interval,
          tsMs: window.startMs,
          open: acc.open,
          high: acc.high,
          low: acc.low,
          close: acc.close,
          volume: acc.volume,
          trades: acc.trades,
        });
      }
    }
    this.#flushedWindows++;
    this.#flushedBars += bars.length;
    return {
      windowStartMs: window.startMs,
      windowEndMs: window.endMs,
      bars,
      refs: window.refs,
      barRefs,
      events: window.events,
      duplicates: window.duplicates,
      lastArrivalMs: window.lastArrivalMs,
    };
  }
}
