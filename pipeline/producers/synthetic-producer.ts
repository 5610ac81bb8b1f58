import { formatMicros, makeEventId } from '../contracts/index.js';
import type { StreamEventV1 } from '../contracts/index.js';
import { SeededRandom, hash32 } from './seeded-random.js';
import type { SeededRandomState } from './seeded-random.js';

/**
 * Seconds in one simulated trading year: 252 sessions of 6.5 hours. `priceVolatility` is an
 * annualized sigma over this clock, so event time only "counts" as trading time — a 1-second tick
 * moves the price by about `σ · √(1 / 5_896_800)` ≈ `σ · 4.1e-4` (relative). With the spec's
 * `price_volatility: 0.02` moves are tiny (fractions of a cent on SPY); 0.2–0.5 looks lively.
 */
export const TRADING_SECONDS_PER_YEAR = 252 * 6.5 * 3600;

/** Start prices for well-known symbols; any other symbol gets a stable price from a hash of its name. */
const KNOWN_START_PRICES: Readonly<Record<string, number>> = { SPY: 425, QQQ: 360, AAPL: 190, MSFT: 410 };

const DEFAULT_MAX_BACKLOG_MS = 10_000;
const MIN_PRICE = 0.01;
/** Share of trades that are odd lots (1..99 shares); the rest are round lots of 100..5000. */
const ODD_LOT_SHARE = 0.15;

export interface SyntheticProducerOptions {
  /** Provider name written into every event and its `event_id`. Default `synthetic`. */
  readonly provider?: string;
  /** Symbols to simulate, each with its own price path and `seq`. Non-empty, unique, no `|`. */
  readonly symbols: readonly string[];
  /** Seed for prices, sizes and timestamp jitter; the same seed gives the same events. */
  readonly seed: number;
  /** Ticks per second per symbol for {@link SyntheticProducer.generateFinite} and {@link SyntheticProducer.ticksDue}. */
  readonly tickRate: number;
  /** Annualized sigma of the geometric Brownian motion (see {@link TRADING_SECONDS_PER_YEAR}); ≥ 0. */
  readonly priceVolatility: number;
  /** Start price per symbol; symbols not listed get a deterministic default (SPY 425, AAPL 190, MSFT 410, ...). */
  readonly startPrices?: Readonly<Record<string, number>>;
  /** Live modes emit at most this much event-time backlog per call; older due ticks are skipped. Default 10 000. */
  readonly maxBacklogMs?: number;
}

/** Per-symbol part of {@link SyntheticProducerState}. */
export interface SyntheticSymbolState {
  /** The `seq` the next event of this symbol gets. */
  readonly seq: number;
  /** Unrounded model price after the last event (events carry it rounded to cents). */
  readonly price: number;
  /** `src_ts` of the last event in epoch microseconds, or null before the first. */
  readonly lastSrcTsUs: number | null;
}

/**
 * The event-time grid shared by all generation modes: slot `index` after `originUs` is due at
 * `originUs + index · 1e6 / eventsPerSecond`; `position` counts slots ever emitted or skipped and
 * picks the symbol round-robin.
 */
export interface SyntheticSchedule {
  readonly originUs: number;
  readonly eventsPerSecond: number;
  readonly index: number;
  readonly position: number;
}

/** JSON-serializable snapshot of a {@link SyntheticProducer}; see {@link SyntheticProducer.fromState}. */
export interface SyntheticProducerState {
  readonly ver: 1;
  readonly seed: number;
  readonly rng: SeededRandomState;
  readonly symbols: Readonly<Record<string, SyntheticSymbolState>>;
  readonly schedule: SyntheticSchedule | null;
  /** Due ticks dropped by the live backlog cap so far. */
  readonly skipped: number;
}

/** Options of {@link SyntheticProducer.generateFinite}. */
export interface GenerateFiniteOptions {
  /** Number of events to produce (across all symbols). */
  readonly count: number;
  /**
   * Event time of the first slot of a new schedule. Omit it to continue the current schedule
   * (the one a previous call, or a restored state, left off); required when there is none.
   */
  readonly startUs?: number;
  /** `ingest_ts` stamped on every event; by default each event's ingest time equals its `src_ts`. */
  readonly ingestTsUs?: number;
}

interface SymbolTrack {
  readonly symbol: string;
  seq: number;
  price: number;
  lastSrcTsUs: number | null;
}

interface MutableSchedule {
  originUs: number;
  eventsPerSecond: number;
  index: number;
  position: number;
}

function fnv1a(text: string): number {
  let hash = 0x811c_9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x0100_0193);
  return hash >>> 0;
}

/** The start price a symbol gets when `startPrices` does not name it: known list, else 20.00..499.99 from a hash. */
export function defaultStartPrice(symbol: string): number {
  return KNOWN_START_PRICES[symbol] ?? 20 + (fnv1a(symbol) % 48_000) / 100;
}

const roundCents = (price: number): number => Math.max(MIN_PRICE, Math.round(price * 100) / 100);

function assertMicros(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer of microseconds (got ${value})`);
}

function checkName(what: string, name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.includes('|')) {
    throw new RangeError(`${what} must be a non-empty string without "|" (got ${JSON.stringify(name)})`);
  }
  return name;
}

/**
 * Deterministic synthetic tick source: per-symbol geometric Brownian motion prices, realistic
 * trade sizes, and v1 events with `event_id = provider|symbol|src_ts|seq`. Pure — the caller
 * passes every timestamp, so tests and Temporal replays see identical output.
 *
 * Three ways to drive it, all on one event-time grid (so they can be mixed and resumed):
 * - {@link SyntheticProducer.generateFinite}: the next `count` events, e.g. for tests and replays;
 * - {@link SyntheticProducer.ticksDue}: live mode at `tickRate` per symbol, called on a timer;
 * - {@link SyntheticProducer.ticksForRate}: live mode at a total events/s, for load tests.
 *
 * @example
 * ```ts
 * const producer = new SyntheticProducer({ symbols: ['SPY', 'AAPL'], seed: 42, tickRate: 1, priceVolatility: 0.2 });
 * const events = producer.generateFinite({ count: 1000, startUs: Date.UTC(2025, 9, 24, 14) * 1000 });
 * const saved = JSON.stringify(producer.state());          // e.g. in a heartbeat
 * const resumed = SyntheticProducer.fromState(options, JSON.parse(saved));
 * resumed.generateFinite({ count: 1000 });                  // continues exactly where it stopped
 * ```
 */
export class SyntheticProducer {
  readonly #provider: string;
  readonly #seed: number;
  /** 32-bit digest of the whole seed, so seeds that differ only above bit 31 jitter differently. */
  readonly #jitterKey: number;
  readonly #tickRate: number;
  readonly #sigma: number;
  readonly #maxBacklogUs: number;
  readonly #tracks: readonly SymbolTrack[];
  readonly #bySymbol: ReadonlyMap<string, SymbolTrack>;
  /** Replaced only by {@link SyntheticProducer.fromState}. */
  #rng: SeededRandom;
  #schedule: MutableSchedule | null = null;
  #skipped = 0;
  #ingestCacheUs = -1;
  #ingestCacheText = '';

  constructor(options: SyntheticProducerOptions) {
    this.#provider = checkName('provider', options.provider ?? 'synthetic');
    if (!Number.isSafeInteger(options.seed)) throw new RangeError(`seed must be a safe integer (got ${options.seed})`);
    this.#seed = options.seed;
    this.#jitterKey = hash32(0x5bd1_e995, options.seed);
    if (!(Number.isFinite(options.tickRate) && options.tickRate > 0)) {
      throw new RangeError(`tickRate must be a finite number > 0 (got ${options.tickRate})`);
    }
    this.#tickRate = options.tickRate;
    if (!(Number.isFinite(options.priceVolatility) && options.priceVolatility >= 0)) {
      throw new RangeError(`priceVolatility must be a finite number >= 0 (got ${options.priceVolatility})`);
    }
    this.#sigma = options.priceVolatility;
    const backlogMs = options.maxBacklogMs ?? DEFAULT_MAX_BACKLOG_MS;
    if (!(Number.isFinite(backlogMs) && backlogMs > 0)) throw new RangeError(`maxBacklogMs must be > 0 (got ${backlogMs})`);
    this.#maxBacklogUs = backlogMs * 1000;

    if (!Array.isArray(options.symbols) || options.symbols.length === 0) throw new RangeError('symbols must be a non-empty array');
    const tracks: SymbolTrack[] = [];
    const bySymbol = new Map<string, SymbolTrack>();
    for (const raw of options.symbols) {
      const symbol = checkName('symbol', raw);
      if (bySymbol.has(symbol)) throw new RangeError(`symbol ${JSON.stringify(symbol)} is listed twice`);
      const price = options.startPrices?.[symbol] ?? defaultStartPrice(symbol);
      if (!(Number.isFinite(price) && price > 0)) throw new RangeError(`start price of ${symbol} must be > 0 (got ${price})`);
      const track: SymbolTrack = { symbol, seq: 0, price, lastSrcTsUs: null };
      tracks.push(track);
      bySymbol.set(symbol, track);
    }
    this.#tracks = tracks;
    this.#bySymbol = bySymbol;
    this.#rng = SeededRandom.fromSeed(options.seed);
  }

  /**
   * Rebuilds a producer from {@link SyntheticProducer.state} so it continues exactly where the
   * snapshot was taken. Symbols new in `options` start fresh; symbols absent from `options` are
   * dropped. Throws `RangeError` if the state was made with another seed, `TypeError` if malformed.
   */
  static fromState(options: SyntheticProducerOptions, state: SyntheticProducerState): SyntheticProducer {
    const producer = new SyntheticProducer(options);
    producer.#restore(state);
    return producer;
  }

  /** The provider name stamped on events. */
  get provider(): string {
    return this.#provider;
  }

  /** The simulated symbols, in round-robin order. */
  get symbols(): readonly string[] {
    return this.#tracks.map((t) => t.symbol);
  }

  /** Due ticks dropped by the live backlog cap so far (carried across snapshots). */
  get skippedTicks(): number {
    return this.#skipped;
  }

  /** A JSON-serializable snapshot; {@link SyntheticProducer.fromState} resumes from it. */
  state(): SyntheticProducerState {
    const symbols: Record<string, SyntheticSymbolState> = {};
    for (const t of this.#tracks) symbols[t.symbol] = { seq: t.seq, price: t.price, lastSrcTsUs: t.lastSrcTsUs };
    return {
      ver: 1,
      seed: this.#seed,
      rng: this.#rng.state(),
      symbols,
      schedule: this.#schedule === null ? null : { ...this.#schedule },
      skipped: this.#skipped,
    };
  }

  /**
   * Produces the next tick of `symbol` at event time `srcTsUs` (epoch µs, strictly after the
   * symbol's previous tick), moving its price by one GBM step over the elapsed event time:
   * `price *= exp((-σ²/2)·dt + σ·√dt·Z)` with `dt` in trading years. A symbol's first tick
   * carries its start price.
   */
  nextTick(symbol: string, srcTsUs: number, ingestTsUs: number): StreamEventV1 {
    const track = this.#bySymbol.get(symbol);
    if (track === undefined) throw new RangeError(`unknown symbol ${JSON.stringify(symbol)}`);
    assertMicros('srcTsUs', srcTsUs);
    assertMicros('ingestTsUs', ingestTsUs);
    if (track.lastSrcTsUs !== null && srcTsUs <= track.lastSrcTsUs) {
      throw new RangeError(`srcTsUs of ${symbol} must increase (got ${srcTsUs} after ${track.lastSrcTsUs})`);
    }
    return this.#emit(track, srcTsUs, ingestTsUs);
  }

  /**
   * The next `count` events, round-robin over the symbols, `1 / tickRate` apart per symbol.
   * Within a round the symbols are spread evenly and each timestamp gets a deterministic jitter
   * of less than half a slot, so the returned array is in strictly increasing `src_ts` order.
   */
  generateFinite(options: GenerateFiniteOptions): StreamEventV1[] {
    const { count, startUs, ingestTsUs } = options;
    if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer (got ${count})`);
    if (ingestTsUs !== undefined) assertMicros('ingestTsUs', ingestTsUs);
    const rate = this.#tickRate * this.#tracks.length;
    let schedule: MutableSchedule;
    if (startUs !== undefined) {
      assertMicros('startUs', startUs);
      schedule = { originUs: startUs, eventsPerSecond: rate, index: 0, position: this.#schedule?.position ?? 0 };
      this.#schedule = schedule;
    } else if (this.#schedule !== null) {
      schedule = this.#scheduleAtRate(rate);
    } else {
      throw new RangeError('generateFinite needs startUs when there is no schedule to continue');
    }
    const events: StreamEventV1[] = new Array<StreamEventV1>(count);
    for (let i = 0; i < count; i++) {
      const { track, srcTsUs } = this.#slot(schedule);
      events[i] = this.#emit(track, srcTsUs, ingestTsUs ?? srcTsUs);
      schedule.index++;
      schedule.position++;
    }
    return events;
  }

  /**
   * Live mode: every tick whose event time lies after the previous call and at or before `nowUs`,
   * at `tickRate` per symbol, stamped `ingest_ts = nowUs`. The first call (with no schedule to
   * continue) starts the grid at `nowUs`. After a pause, ticks older than `maxBacklogMs`
   * are skipped (counted in {@link SyntheticProducer.skippedTicks}) so one call stays bounded.
   */
  ticksDue(nowUs: number): StreamEventV1[] {
    return this.#due(this.#tickRate * this.#tracks.length, nowUs);
  }

  /**
   * Like {@link SyntheticProducer.ticksDue} but at `eventsPerSecond` in total across all symbols
   * (round-robin), for load tests. Changing the rate between calls keeps event time continuous.
   */
  ticksForRate(eventsPerSecond: number, nowUs: number): StreamEventV1[] {
    if (!(Number.isFinite(eventsPerSecond) && eventsPerSecond > 0)) {
      throw new RangeError(`eventsPerSecond must be a finite number > 0 (got ${eventsPerSecond})`);
    }
    return this.#due(eventsPerSecond, nowUs);
  }

  #due(eventsPerSecond: number, nowUs: number): StreamEventV1[] {
    assertMicros('nowUs', nowUs);
    if (this.#schedule === null) {
      this.#schedule = { originUs: nowUs, eventsPerSecond, index: 0, position: 0 };
    }
    const schedule = this.#scheduleAtRate(eventsPerSecond);
    const slotUs = 1e6 / eventsPerSecond;
    // Backlog cap: jump the grid forward to the first slot inside the window, dropping the rest.
    const oldestUs = nowUs - this.#maxBacklogUs;
    if (schedule.originUs + schedule.index * slotUs < oldestUs) {
      const firstKept = Math.ceil((oldestUs - schedule.originUs) / slotUs);
      const dropped = firstKept - schedule.index;
      schedule.index = firstKept;
      schedule.position += dropped;
      this.#skipped += dropped;
    }
    const events: StreamEventV1[] = [];
    for (;;) {
      const { track, srcTsUs } = this.#slot(schedule);
      if (srcTsUs > nowUs) break;
      events.push(this.#emit(track, srcTsUs, nowUs));
      schedule.index++;
      schedule.position++;
    }
    return events;
  }

  /** The current schedule, re-anchored at its next slot if it ran at another rate. */
  #scheduleAtRate(eventsPerSecond: number): MutableSchedule {
    const schedule = this.#schedule!;
    if (schedule.eventsPerSecond !== eventsPerSecond) {
      schedule.originUs += (schedule.index * 1e6) / schedule.eventsPerSecond;
      schedule.index = 0;
      schedule.eventsPerSecond = eventsPerSecond;
    }
    return schedule;
  }

  /** Symbol and jittered event time of the schedule's next slot (no state change). */
  #slot(schedule: MutableSchedule): { track: SymbolTrack; srcTsUs: number } {
    const tracks = this.#tracks;
    const track = tracks[schedule.position % tracks.length];
    const slotUs = 1e6 / schedule.eventsPerSecond;
    // Jitter depends only on (seed, position), so deciding whether a slot is due draws nothing.
    const jitterUs = (hash32(this.#jitterKey, schedule.position) / 4_294_967_296) * slotUs * 0.5;
    let srcTsUs = Math.floor(schedule.originUs + schedule.index * slotUs + jitterUs);
    // At sub-microsecond slots (or after a re-anchor) the grid may collide; keep src_ts increasing.
    if (track.lastSrcTsUs !== null && srcTsUs <= track.lastSrcTsUs) srcTsUs = track.lastSrcTsUs + 1;
    return { track, srcTsUs };
  }

  #emit(track: SymbolTrack, srcTsUs: number, ingestTsUs: number): StreamEventV1 {
    const rng = this.#rng;
    const z = rng.nextNormal();
    if (track.lastSrcTsUs !== null) {
      const dtYears = (srcTsUs - track.lastSrcTsUs) / 1e6 / TRADING_SECONDS_PER_YEAR;
      const sigma = this.#sigma;
      track.price = Math.max(MIN_PRICE, track.price * Math.exp(-0.5 * sigma * sigma * dtYears + sigma * Math.sqrt(dtYears) * z));
    }
    const size = this.#tradeSize();
    const price = roundCents(track.price);
    const seq = track.seq++;
    track.lastSrcTsUs = srcTsUs;
    const srcTs = formatMicros(srcTsUs);
    // Batches share one ingest time; formatting it once per batch saves a third of the work.
    if (ingestTsUs !== this.#ingestCacheUs) {
      this.#ingestCacheUs = ingestTsUs;
      this.#ingestCacheText = ingestTsUs === srcTsUs ? srcTs : formatMicros(ingestTsUs);
    }
    return {
      ver: 1,
      provider: this.#provider,
      symbol: track.symbol,
      kind: 'tick',
      src_ts: srcTs,
      ingest_ts: this.#ingestCacheText,
      o: price,
      h: price,
      l: price,
      c: price,
      v: size,
      seq,
      event_id: makeEventId(this.#provider, track.symbol, srcTs, seq),
    };
  }

  /** Odd lots (1..99) some of the time; otherwise round lots, log-normal around 200 shares, capped at 5000. */
  #tradeSize(): number {
    const rng = this.#rng;
    if (rng.next() < ODD_LOT_SHARE) return 1 + Math.floor(rng.next() * 99);
    const lots = Math.round(Math.exp(Math.log(2) + 0.9 * rng.nextNormal()));
    return 100 * Math.min(50, Math.max(1, lots));
  }

  #restore(state: SyntheticProducerState): void {
    if (typeof state !== 'object' || state === null || state.ver !== 1) throw new TypeError('producer state must be an object with ver 1');
    if (state.seed !== this.#seed) {
      throw new RangeError(`producer state was made with seed ${state.seed}, options say ${this.#seed}`);
    }
    const rng = SeededRandom.fromState(state.rng);
    const symbols = state.symbols as Readonly<Record<string, SyntheticSymbolState | undefined>> | null;
    if (typeof symbols !== 'object' || symbols === null) throw new TypeError('producer state.symbols must be an object');
    for (const track of this.#tracks) {
      const saved = Object.hasOwn(symbols, track.symbol) ? symbols[track.symbol] : undefined;
      if (saved === undefined) continue;
      const { seq, price, lastSrcTsUs } = saved;
      if (
        !Number.isSafeInteger(seq) ||
        seq < 0 ||
        !(Number.isFinite(price) && price > 0) ||
        (lastSrcTsUs !== null && (!Number.isSafeInteger(lastSrcTsUs) || lastSrcTsUs < 0))
      ) {
        throw new TypeError(`producer state of ${track.symbol} is malformed`);
      }
      track.seq = seq;
      track.price = price;
      track.lastSrcTsUs = lastSrcTsUs;
    }
    const schedule = state.schedule;
    if (schedule !== null) {
      const { originUs, eventsPerSecond, index, position } = schedule;
      if (
        !Number.isFinite(originUs) ||
        !(Number.isFinite(eventsPerSecond) && eventsPerSecond > 0) ||
        !Number.isSafeInteger(index) ||
        index < 0 ||
        !Number.isSafeInteger(position) ||
        position < 0
      ) {
        throw new TypeError('producer state.schedule is malformed');
      }
      this.#schedule = { originUs, eventsPerSecond, index, position };
    }
    if (!Number.isSafeInteger(state.skipped) || state.skipped < 0) throw new TypeError('producer state.skipped is malformed');
    this.#skipped = state.skipped;
    this.#rng = rng;
  }
}
