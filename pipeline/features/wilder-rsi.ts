/**
 * Wilder's RSI over `period` close-to-close changes `Δⱼ = cⱼ − cⱼ₋₁`, with gain `max(Δ, 0)` and
 * loss `max(−Δ, 0)`:
 *
 * - after the first `period` changes, `avgGain`/`avgLoss` are their simple means;
 * - after each further change, `avg ← (avg · (period − 1) + current) / period`;
 * - `RSI = 100 − 100 / (1 + avgGain / avgLoss)`, 100 when `avgLoss = 0 < avgGain`, 50 when both
 *   are 0; `null` until `period` changes have been seen (`period + 1` bars).
 */
export class WilderRsi {
  readonly period: number;
  #previousClose = Number.NaN;
  #changes = 0;
  #avgGain = 0;
  #avgLoss = 0;

  constructor(period: number) {
    this.period = period;
  }

  reset(): void {
    this.#previousClose = Number.NaN;
    this.#changes = 0;
    this.#avgGain = 0;
    this.#avgLoss = 0;
  }

  update(close: number): void {
    const previous = this.#previousClose;
    this.#previousClose = close;
    if (Number.isNaN(previous)) return;
    const change = close - previous;
    const gain = change > 0 ? change : 0;
    const loss = change < 0 ? -change : 0;
    const p = this.period;
    this.#changes++;
    if (this.#changes <= p) {
      // Seeding: accumulate, then divide once for the simple mean.
      this.#avgGain += gain;
      this.#avgLoss += loss;
      if (this.#changes === p) {
        this.#avgGain /= p;
        this.#avgLoss /= p;
      }
    } else {
      this.#avgGain = (this.#avgGain * (p - 1) + gain) / p;
      this.#avgLoss = (this.#avgLoss * (p - 1) + loss) / p;
    }
  }

  value(): number | null {
    if (this.#changes < this.period) return null;
    if (this.#avgLoss === 0) return this.#avgGain > 0 ? 100 : 50;
    return 100 - 100 / (1 + this.#avgGain / this.#avgLoss);
  }
}
