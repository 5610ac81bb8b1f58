import type { Bar, FeatureSnapshot } from '../contracts/index.js';
import { BarRing } from './bar-ring.js';
import type { FeaturePlan, ValueSlot } from './feature-plan.js';
import { HorizonWindow } from './horizon-window.js';
import { WilderRsi } from './wilder-rsi.js';

/**
 * Feature state of one (provider, symbol, interval): the retained bars, one {@link HorizonWindow}
 * per distinct horizon, one {@link WilderRsi} per distinct period, the time the current run of
 * bars started (`sinceMs`, the first bar after the last reset), and the latest snapshots.
 */
export class SymbolSeries {
  readonly intervalMs: number;
  readonly #maxGapMs: number;
  readonly #ring: BarRing;
  readonly #horizons: readonly HorizonWindow[];
  readonly #rsis: readonly WilderRsi[];
  #sinceMs = Number.NaN;
  #lastTsMs = Number.NEGATIVE_INFINITY;
  /** The last `redeliveryDepth` snapshots, in a circle; `#recorded` counts every one. */
  readonly #recent: (FeatureSnapshot | undefined)[];
  #recorded = 0;

  constructor(plan: FeaturePlan, intervalMs: number, maxGapMs: number, redeliveryDepth: number) {
    this.intervalMs = intervalMs;
    this.#maxGapMs = maxGapMs;
    this.#recent = new Array<FeatureSnapshot | undefined>(redeliveryDepth).fill(undefined);
    this.#horizons = plan.horizons.map((h) => new HorizonWindow(h.horizonMs, h));
    this.#rsis = plan.rsiPeriods.map((p) => new WilderRsi(p));
    // Bars in the longest horizon plus one (for bars that are not epoch-aligned), but no more
    // than 1024 up front: sparse series would never fill the slots, and the ring grows on demand.
    this.#ring = new BarRing(Math.min(Math.ceil(plan.horizons[0].horizonMs / intervalMs) + 1, 1024));
  }

  /** Start of the newest bar taken in, `-Infinity` before the first. */
  get lastTsMs(): number {
    return this.#lastTsMs;
  }

  /**
   * The snapshot produced for the bar starting at `tsMs` if it is among the last
   * `redeliveryDepth`, else the newest snapshot (`undefined` before the first).
   */
  snapshotAt(tsMs: number): FeatureSnapshot | undefined {
    for (const snapshot of this.#recent) if (snapshot?.tsMs === tsMs) return snapshot;
    return this.#recent[(this.#recorded - 1) % this.#recent.length];
  }

  /**
   * Takes in the next bar (`bar.tsMs > lastTsMs`, checked by the caller), first resetting every
   * window if it starts more than `maxGapMs` after the previous bar.
   */
  advance(bar: Bar): void {
    const tsMs = bar.tsMs;
    const close = bar.close;
    if (tsMs - this.#lastTsMs > this.#maxGapMs) this.#reset(tsMs);
    const ring = this.#ring;
    const previousClose = ring.tail > ring.head ? ring.close(ring.tail - 1) : Number.NaN;
    // ln(c / c_prev) as log1p of the relative change: full precision for tiny moves at any price level.
    const logReturn = Math.log1p((close - previousClose) / previousClose);
    const seq = ring.push(tsMs, close, (bar.high + bar.low + close) / 3, bar.volume, logReturn);
    for (const window of this.#horizons) window.advance(ring, seq);
    for (const rsi of this.#rsis) rsi.update(close);
    // The longest horizon holds the oldest bar any window still needs.
    ring.dropBefore(this.#horizons[0].head);
    this.#lastTsMs = tsMs;
  }

  /** Remembers the snapshot of the bar just taken in, for {@link snapshotAt}. */
  record(snapshot: FeatureSnapshot): void {
    this.#recent[this.#recorded++ % this.#recent.length] = snapshot;
  }

  /** The value of `slot` after the bar just taken in; `null` while its window is warming up. */
  value(slot: ValueSlot, bar: Bar): number | null {
    switch (slot.kind) {
      case 'price':
        return bar.close;
      case 'volume':
        return bar.volume;
      case 'rsi':
        return this.#rsis[slot.source].value();
      default:
        break;
    }
    const window = this.#horizons[slot.source];
    // Full: the run of bars since the last reset covers the horizon's first bar slot.
    if (this.#sinceMs > this.#lastTsMs - window.horizonMs + this.intervalMs) return null;
    switch (slot.kind) {
      case 'vwap':
        return window.vwap();
      case 'returns':
        return window.logReturn(this.#ring);
      case 'momentum':
        return window.momentum(this.#ring);
      case 'volatility':
        return window.volatility();
      case 'skewness':
        return window.skewness();
      case 'kurtosis':
        return window.kurtosis();
    }
  }

  #reset(tsMs: number): void {
    this.#ring.clear();
    for (const window of this.#horizons) window.reset();
    for (const rsi of this.#rsis) rsi.reset();
    this.#sinceMs = tsMs;
  }
}
