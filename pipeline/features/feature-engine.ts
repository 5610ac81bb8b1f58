import { parseDurationMs } from '../contracts/index.js';
import type { Bar, FeatureSnapshot } from '../contracts/index.js';
import { FeatureError } from './feature-error.js';
import type { FeatureWindowSpec } from './feature-kind.js';
import { planFeatures } from './feature-plan.js';
import type { FeaturePlan } from './feature-plan.js';
import { SymbolSeries } from './symbol-series.js';

export interface FeatureEngineOptions {
  /** `features.windows` of the streaming config (plus optional `kind`/`period`). */
  readonly windows: readonly FeatureWindowSpec[];
  /** Period in bars of the canonical `rsi` (and of `rsi` windows without `period`). Default 14. */
  readonly rsiPeriod?: number | undefined;
  /**
   * A bar that starts more than this many ms after the previous bar of its series resets the
   * series: every window warms up again. Default: the longest time horizon — a gap that long
   * leaves no earlier bar in any window anyway, and it keeps RSI from bridging e.g. a closed
   * market. Must be at least the bar interval (a gap is measured between bar starts).
   */
  readonly maxGapMs?: number | undefined;
  /**
   * Series (provider, symbol, interval) kept at most; past it, the least recently updated series
   * is dropped and warms up again if it returns. Default 10 000.
   */
  readonly maxSymbols?: number | undefined;
  /**
   * Snapshots kept per series to answer re-delivered bars with what they produced the first time
   * (see {@link FeatureEngine.update}). Default 32: more than the windows one commit leaves
   * unacknowledged, at ~0.4 kB per snapshot.
   */
  readonly redeliveryDepth?: number | undefined;
}

export const DEFAULT_RSI_PERIOD = 14;
const DEFAULT_MAX_SYMBOLS = 10_000;
const DEFAULT_REDELIVERY_DEPTH = 32;

const DAY_MS = 86_400_000;
const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/**
 * ISO-8601 UTC of epoch ms, without a fraction on whole seconds (`2025-10-24T14:02:02Z`), else
 * with ms (`…02.500Z`). `Date#toISOString` cost a third of an update, so the date part is
 * formatted once per day and the time of day by arithmetic.
 */
class IsoFormatter {
  #dayMs = Number.NaN;
  #datePrefix = '';

  format(tsMs: number): string {
    if (!Number.isInteger(tsMs) || tsMs < 0) return this.#slow(tsMs);
    const dayMs = tsMs - (tsMs % DAY_MS);
    if (dayMs !== this.#dayMs) {
      this.#dayMs = dayMs;
      this.#datePrefix = new Date(dayMs).toISOString().slice(0, 11);
    }
    const msOfDay = tsMs - dayMs;
    const seconds = Math.floor(msOfDay / 1000);
    const time = `${this.#datePrefix}${pad2(Math.floor(seconds / 3600))}:${pad2(Math.floor(seconds / 60) % 60)}:${pad2(seconds % 60)}`;
    const millis = msOfDay % 1000;
    return millis === 0 ? `${time}Z` : `${time}.${String(millis).padStart(3, '0')}Z`;
  }

  #slow(tsMs: number): string {
    const iso = new Date(tsMs).toISOString();
    return tsMs % 1000 === 0 ? `${iso.slice(0, 19)}Z` : iso;
  }
}

function optionError(key: string, reason: string, value: unknown): FeatureError {
  return new FeatureError('FEATURE_OPTION_INVALID', `FeatureEngine ${key}: ${reason} (got ${String(value)})`);
}

function barError(bar: Bar, reason: string): FeatureError {
  return new FeatureError('FEATURE_BAR_INVALID', `bar ${bar.provider}|${bar.symbol}|${bar.interval}@${bar.tsMs}: ${reason}`);
}

function validateBar(bar: Bar): void {
  if (!Number.isFinite(bar.tsMs)) throw barError(bar, 'tsMs must be finite');
  if (!(Number.isFinite(bar.close) && bar.close > 0)) throw barError(bar, `close must be a positive number (got ${bar.close})`);
  if (!Number.isFinite(bar.high) || !Number.isFinite(bar.low)) throw barError(bar, 'high and low must be finite');
  if (!(Number.isFinite(bar.volume) && bar.volume >= 0)) throw barError(bar, `volume must be a finite number ≥ 0 (got ${bar.volume})`);
}

/**
 * Rolling features of bars, one engine per shard, with independent state per (provider, symbol,
 * interval). Each {@link update} takes the next bar of a series and returns its
 * {@link FeatureSnapshot}.
 *
 * **Windows.** A time window with horizon `H` at a bar starting at `t` holds the bars of the
 * series that start in `(t − H, t]`, the current bar included (with 2 s bars, `60s` holds 30
 * bars). Over those bars, with closes `c`, typical prices `tp = (h + l + c)/3`, volumes `v`, and
 * the n = bars − 1 one-bar log returns `rⱼ = ln(cⱼ / cⱼ₋₁)` between consecutive bars of the window:
 *
 * - `vwap` = `Σ tp·v / Σ v`; null when `Σ v = 0`.
 * - `returns` = `ln(c_newest / c_oldest)`; `momentum` = `c_newest / c_oldest − 1`; null with < 2 bars.
 * - `volatility` = sample std (ddof = 1) of the `rⱼ`, per bar (not annualized); null for n < 2.
 * - `skewness` = `sqrt(n(n−1))/(n−2) · m₃/m₂^{3/2}` and `kurtosis` (excess) =
 *   `(n−1)/((n−2)(n−3)) · ((n+1)·m₄/m₂² − 3(n−1))`, with `mₖ = (1/n) Σ (rⱼ − r̄)ᵏ` — the
 *   adjusted estimators G₁/G₂ of pandas `rolling(n).skew()`/`.kurt()`; null for n < 3 (skewness),
 *   n < 4 (kurtosis), or a zero variance (`m₂ ≤ 1e-12 · mean(r²)`, where volatility reads 0).
 * - `rsi` = Wilder's RSI over `period` close-to-close changes `Δ` (gain `max(Δ, 0)`, loss
 *   `max(−Δ, 0)`): the first averages are the simple means of the first `period` gains/losses,
 *   then `avg ← (avg·(period − 1) + current)/period`; `RSI = 100 − 100/(1 + avgGain/avgLoss)`,
 *   100 when only avgLoss is 0, 50 when both are; null until `period` changes (`period + 1` bars).
 *
 * **Warm-up.** A time window is full once the bars since the series' last reset, starting at
 * `since`, cover its first bar slot: `since ≤ t − H + interval`. Until then its values are
 * null, and so are values short of the counts above.
 *
 * **Values.** Every configured window by name, then the canonical names `vwap`, `returns`,
 * `volatility`, `momentum`, `skewness`, `kurtosis`, `rsi`, `price` (close) and `volume` (the
 * bar's volume). A canonical value is the window named like it, else the first window of its
 * kind; without one, `momentum` takes the horizon of the first `returns` window, `skewness` and
 * `kurtosis` that of the first `volatility` window, and any of them that of the first time
 * window; `rsi` falls back to `rsiPeriod`. `windows` gives each value's horizon label.
 *
 * **Order and re-delivery.** Bars of a series must arrive in ascending `tsMs`. A bar at or
 * before the newest start changes nothing: it gets back the very snapshot its start produced if
 * that is among the series' last `redeliveryDepth` snapshots, else the newest snapshot of the
 * series — recognisable by `snapshot.tsMs !== bar.tsMs`. A changed bar for a start already
 * processed is not applied (features are computed once per bar start). A gap of more than
 * `maxGapMs` resets the series.
 *
 * Cost: amortized O(1) per bar per distinct horizon; memory per series is the bars of the longest
 * horizon (≤ H/interval + 1 when bars are aligned; 5 doubles each) plus `redeliveryDepth` snapshots.
 *
 * @example
 * ```ts
 * const engine = new FeatureEngine({ windows: config.features.windows });
 * const snapshot = engine.update(bar); // snapshot.values.vwap_1m, .momentum, .rsi, ...
 * ```
 */
export class FeatureEngine {
  readonly #plan: FeaturePlan;
  readonly #maxGapMs: number;
  readonly #maxSymbols: number;
  readonly #redeliveryDepth: number;
  /** Insertion order is recency: a series is re-inserted on every update, so the first is the stalest. */
  readonly #series = new Map<string, SymbolSeries>();
  readonly #iso = new IsoFormatter();

  /** @throws {@link FeatureError} `FEATURE_WINDOW_INVALID` or `FEATURE_OPTION_INVALID`, naming the window or option. */
  constructor(options: FeatureEngineOptions) {
    const rsiPeriod = options.rsiPeriod ?? DEFAULT_RSI_PERIOD;
    if (!Number.isInteger(rsiPeriod) || rsiPeriod < 1) throw optionError('rsiPeriod', 'must be a positive integer', rsiPeriod);
    this.#plan = planFeatures(options.windows, rsiPeriod);
    const maxGapMs = options.maxGapMs ?? this.#plan.horizons[0].horizonMs;
    if (!(maxGapMs > 0)) throw optionError('maxGapMs', 'must be a positive number of ms', maxGapMs);
    this.#maxGapMs = maxGapMs;
    const maxSymbols = options.maxSymbols ?? DEFAULT_MAX_SYMBOLS;
    if (!Number.isInteger(maxSymbols) || maxSymbols < 1) throw optionError('maxSymbols', 'must be a positive integer', maxSymbols);
    this.#maxSymbols = maxSymbols;
    const redeliveryDepth = options.redeliveryDepth ?? DEFAULT_REDELIVERY_DEPTH;
    if (!Number.isInteger(redeliveryDepth) || redeliveryDepth < 1) throw optionError('redeliveryDepth', 'must be a positive integer', redeliveryDepth);
    this.#redeliveryDepth = redeliveryDepth;
  }

  /** Names of the snapshot values, in output order. */
  get valueNames(): readonly string[] {
    return this.#plan.slots.map((slot) => slot.name);
  }

  /** Horizon label of every value, as in each snapshot's `windows`. */
  get windows(): Readonly<Record<string, string>> {
    return this.#plan.windows;
  }

  /** Series currently held. */
  get size(): number {
    return this.#series.size;
  }

  /**
   * Takes the next bar of its series and returns the features after it (frozen).
   *
   * @throws {@link FeatureError} `FEATURE_BAR_INVALID` for a bar with non-finite fields, close ≤ 0,
   *   negative volume or an unparseable interval; `FEATURE_OPTION_INVALID` when `maxGapMs` is below
   *   the bar interval. Nothing changes when it throws.
   */
  update(bar: Bar): FeatureSnapshot {
    validateBar(bar);
    const key = `${bar.provider}\u0000${bar.symbol}\u0000${bar.interval}`;
    let series = this.#series.get(key);
    if (series === undefined) {
      series = this.#newSeries(bar);
    } else if (bar.tsMs <= series.lastTsMs) {
      return series.snapshotAt(bar.tsMs)!;
    } else {
      this.#series.delete(key);
    }
    this.#series.set(key, series);

    series.advance(bar);
    const values: Record<string, number | null> = {};
    for (const slot of this.#plan.slots) values[slot.name] = series.value(slot, bar);
    const snapshot: FeatureSnapshot = Object.freeze({
      ver: 1,
      provider: bar.provider,
      symbol: bar.symbol,
      interval: bar.interval,
      ts: this.#iso.format(bar.tsMs),
      tsMs: bar.tsMs,
      price: bar.close,
      values: Object.freeze(values),
      windows: this.#plan.windows,
    });
    series.record(snapshot);
    return snapshot;
  }

  #newSeries(bar: Bar): SymbolSeries {
    const intervalMs = parseDurationMs(bar.interval);
    if (intervalMs === undefined || !(intervalMs > 0)) throw barError(bar, `interval must be a positive duration such as 2s (got "${bar.interval}")`);
    if (this.#maxGapMs < intervalMs) {
      throw optionError('maxGapMs', `must be at least the bar interval ${bar.interval}, or every bar would reset the series`, this.#maxGapMs);
    }
    if (this.#series.size >= this.#maxSymbols) {
      const stalest = this.#series.keys().next().value;
      if (stalest !== undefined) this.#series.delete(stalest);
    }
    return new SymbolSeries(this.#plan, intervalMs, this.#maxGapMs, this.#redeliveryDepth);
  }
}
