import type { BarRing } from './bar-ring.js';
import { CompensatedSum } from './compensated-sum.js';

/** What a horizon has to maintain: the volume sums for VWAP, and power sums of returns up to `momentOrder`. */
export interface HorizonNeeds {
  readonly vwap: boolean;
  /** 0 (none), 2 (volatility), 3 (skewness) or 4 (kurtosis). */
  readonly momentOrder: 0 | 2 | 3 | 4;
}

/**
 * A variance below this fraction of the mean square of the returns is indistinguishable from the
 * rounding noise of the sums (std below 10⁻⁶ of the returns' RMS): it counts as exactly zero.
 */
const ZERO_VARIANCE_RATIO = 1e-12;

/**
 * Rebuild (re-centre the shift) once the returns' mean sits more than 4 standard deviations from
 * it, as after a jump leaves the window: the central moments are differences of shifted power
 * sums, and their rounding grows with (mean − shift)/std to the power of the moment.
 */
const RECENTRE_RATIO = 16;

/**
 * The bars of one series whose start lies in `(t − H, t]`, where `t` is the start of the newest
 * bar and `H` the horizon, kept as running sums over a {@link BarRing} shared by all horizons.
 *
 * - VWAP: `Σ vᵢ·(tpᵢ − P)` and `Σ vᵢ` over the window, with typical price `tpᵢ = (hᵢ + lᵢ + cᵢ)/3`
 *   and a reference price `P` (a recent typical price), so the sums carry the price *deviation*
 *   and stay exact to ~1e-16 of the spread even at a price level of 10⁶.
 * - Returns: the 1-bar log returns `rⱼ = ln(cⱼ / cⱼ₋₁)` of the bars in the window except the
 *   oldest (whose return reaches outside), as power sums `Σ (rⱼ − K)ᵖ`, p = 1…4, with a shift `K`
 *   (the mean at the last rebuild) that keeps the central moments free of cancellation.
 *
 * Sums are compensated ({@link CompensatedSum}) and rebuilt from the ring whenever as many bars
 * have been evicted as the window holds, which re-centres `P` and `K` and bounds any drift; the
 * rebuild costs one pass over the window per window's worth of bars, so each bar is amortized
 * O(1). A rebuild also happens when the returns' mean drifts more than 4 std from `K` (after a
 * jump leaves the window) — a shift in the data, not a per-bar cost in practice.
 */
export class HorizonWindow {
  readonly horizonMs: number;
  readonly #needsVwap: boolean;
  readonly #momentOrder: number;
  #head = 0;
  #count = 0;
  #evictionsSinceRebuild = 0;
  // VWAP
  #referencePrice = 0;
  readonly #sumVolume = new CompensatedSum();
  readonly #sumVolumeDeviation = new CompensatedSum();
  #volumeBars = 0;
  // Power sums of shifted 1-bar log returns.
  #shift = 0;
  readonly #s1 = new CompensatedSum();
  readonly #s2 = new CompensatedSum();
  readonly #s3 = new CompensatedSum();
  readonly #s4 = new CompensatedSum();

  constructor(horizonMs: number, needs: HorizonNeeds) {
    this.horizonMs = horizonMs;
    this.#needsVwap = needs.vwap;
    this.#momentOrder = needs.momentOrder;
  }

  /** Sequence number of the oldest bar in the window. */
  get head(): number {
    return this.#head;
  }

  /** Bars in the window. */
  get count(): number {
    return this.#count;
  }

  /** Empties the window; the next bar starts it afresh. */
  reset(): void {
    this.#count = 0;
    this.#clearSums();
  }

  /**
   * Slides the window to end at bar `seq`, just pushed to `ring`: evicts the bars that start at or
   * before `tsMs(seq) − H`, then takes in bar `seq` (and its return, when the previous bar is
   * still in the window).
   */
  advance(ring: BarRing, seq: number): void {
    const limit = ring.tsMs(seq) - this.horizonMs;
    while (this.#count > 0 && ring.tsMs(this.#head) <= limit) {
      const head = this.#head;
      if (this.#needsVwap) this.#addVolume(ring.typical(head), ring.volume(head), -1);
      // The return from the evicted bar to the next one leaves with it.
      if (this.#momentOrder > 0 && this.#count > 1) this.#addReturn(ring.logReturn(head + 1), -1);
      this.#head = head + 1;
      this.#count--;
      this.#evictionsSinceRebuild++;
    }
    if (this.#count === 0) {
      // Exact zeros rather than the compensated residue of everything that left.
      this.#clearSums();
      this.#head = seq;
      this.#referencePrice = ring.typical(seq);
    } else if (this.#momentOrder > 0) {
      this.#addReturn(ring.logReturn(seq), 1);
    }
    if (this.#needsVwap) this.#addVolume(ring.typical(seq), ring.volume(seq), 1);
    this.#count++;
    if (this.#evictionsSinceRebuild >= this.#count || this.#offCentre()) this.#rebuild(ring);
  }

  /** `Σ tpᵢ·vᵢ / Σ vᵢ` over the window; `null` when every bar in it has zero volume. */
  vwap(): number | null {
    if (this.#volumeBars === 0) return null;
    return this.#referencePrice + this.#sumVolumeDeviation.value / this.#sumVolume.value;
  }

  /** `ln(c_newest / c_oldest)` over the window; `null` with fewer than 2 bars. */
  logReturn(ring: BarRing): number | null {
    if (this.#count < 2) return null;
    const oldest = ring.close(this.#head);
    // log1p of the exact-ish relative change keeps full precision for tiny returns.
    return Math.log1p((ring.close(this.#head + this.#count - 1) - oldest) / oldest);
  }

  /** `c_newest / c_oldest − 1` over the window; `null` with fewer than 2 bars. */
  momentum(ring: BarRing): number | null {
    if (this.#count < 2) return null;
    const oldest = ring.close(this.#head);
    return (ring.close(this.#head + this.#count - 1) - oldest) / oldest;
  }

  /**
   * Sample standard deviation (ddof = 1) of the n = count − 1 returns in the window:
   * `sqrt(Σ (rⱼ − r̄)² / (n − 1))`; `null` for n < 2, exactly 0 for a variance indistinguishable
   * from rounding noise (see {@link ZERO_VARIANCE_RATIO}).
   */
  volatility(): number | null {
    const n = this.#count - 1;
    if (n < 2) return null;
    const a = this.#s1.value / n;
    const q2 = this.#s2.value / n;
    const m2 = q2 - a * a;
    if (this.#isZeroVariance(a, q2, m2)) return 0;
    return Math.sqrt((m2 * n) / (n - 1));
  }

  /**
   * Adjusted Fisher–Pearson skewness of the n returns in the window, as pandas
   * `Series.rolling(n).skew()`: with biased central moments `mₖ = (1/n) Σ (rⱼ − r̄)ᵏ`,
   * `G₁ = sqrt(n(n − 1)) / (n − 2) · m₃ / m₂^{3/2}`; `null` for n < 3 or zero variance.
   */
  skewness(): number | null {
    const n = this.#count - 1;
    if (n < 3) return null;
    const a = this.#s1.value / n;
    const q2 = this.#s2.value / n;
    const q3 = this.#s3.value / n;
    const m2 = q2 - a * a;
    if (this.#isZeroVariance(a, q2, m2)) return null;
    const m3 = q3 - 3 * a * q2 + 2 * a * a * a;
    return ((Math.sqrt(n * (n - 1)) / (n - 2)) * m3) / (m2 * Math.sqrt(m2));
  }

  /**
   * Adjusted excess (Fisher) kurtosis of the n returns in the window, as pandas
   * `Series.rolling(n).kurt()`: `G₂ = (n − 1) / ((n − 2)(n − 3)) · ((n + 1) · m₄ / m₂² − 3(n − 1))`
   * with `mₖ` as for {@link skewness}; `null` for n < 4 or zero variance.
   */
  kurtosis(): number | null {
    const n = this.#count - 1;
    if (n < 4) return null;
    const a = this.#s1.value / n;
    const q2 = this.#s2.value / n;
    const q3 = this.#s3.value / n;
    const q4 = this.#s4.value / n;
    const m2 = q2 - a * a;
    if (this.#isZeroVariance(a, q2, m2)) return null;
    const a2 = a * a;
    const m4 = q4 - 4 * a * q3 + 6 * a2 * q2 - 3 * a2 * a2;
    return ((n - 1) / ((n - 2) * (n - 3))) * (((n + 1) * m4) / (m2 * m2) - 3 * (n - 1));
  }

  /**
   * `m₂ ≤ ratio · E[r²]`, where the shifted moments give `E[r²] = q₂ + 2Ka + K²`; `q₂` (the mean
   * square of the shifted values) also bounds it, since the noise of `m₂` scales with whichever is larger.
   */
  #isZeroVariance(a: number, q2: number, m2: number): boolean {
    const k = this.#shift;
    return m2 <= ZERO_VARIANCE_RATIO * Math.max(q2, q2 + 2 * k * a + k * k);
  }

  /** Whether the shift is far from the mean of a window with a real (non-zero) variance. */
  #offCentre(): boolean {
    const n = this.#count - 1;
    if (this.#momentOrder === 0 || n < 2) return false;
    const a = this.#s1.value / n;
    const q2 = this.#s2.value / n;
    const m2 = q2 - a * a;
    return a * a > RECENTRE_RATIO * m2 && !this.#isZeroVariance(a, q2, m2);
  }

  #addVolume(typical: number, volume: number, sign: 1 | -1): void {
    if (volume === 0) return;
    this.#sumVolume.add(sign * volume);
    this.#sumVolumeDeviation.add(sign * volume * (typical - this.#referencePrice));
    this.#volumeBars += sign;
  }

  #addReturn(logReturn: number, sign: 1 | -1): void {
    // Same arithmetic on the way in and out, so a removal cancels its addition exactly.
    const d = logReturn - this.#shift;
    const d2 = d * d;
    this.#s1.add(sign * d);
    this.#s2.add(sign * d2);
    if (this.#momentOrder >= 3) this.#s3.add(sign * d2 * d);
    if (this.#momentOrder >= 4) this.#s4.add(sign * d2 * d2);
  }

  #clearSums(): void {
    this.#sumVolume.clear();
    this.#sumVolumeDeviation.clear();
    this.#volumeBars = 0;
    this.#s1.clear();
    this.#s2.clear();
    this.#s3.clear();
    this.#s4.clear();
    this.#evictionsSinceRebuild = 0;
  }

  /** Recomputes every sum from the bars in the window, re-centring `P` and `K`. */
  #rebuild(ring: BarRing): void {
    const first = this.#head;
    const end = this.#head + this.#count;
    this.#clearSums();
    if (this.#needsVwap) {
      this.#referencePrice = ring.typical(end - 1);
      for (let seq = first; seq < end; seq++) this.#addVolume(ring.typical(seq), ring.volume(seq), 1);
    }
    if (this.#momentOrder > 0) {
      let sum = 0;
      for (let seq = first + 1; seq < end; seq++) sum += ring.logReturn(seq);
      this.#shift = end - first > 1 ? sum / (end - first - 1) : 0;
      for (let seq = first + 1; seq < end; seq++) this.#addReturn(ring.logReturn(seq), 1);
    }
  }
}
