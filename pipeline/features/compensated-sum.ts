/**
 * A running sum with Neumaier (improved Kahan–Babuška) compensation. Adding `x` and later `-x`
 * leaves an error of order ε·|sum| + ε²·Σ|terms|, so a large value that passes through a rolling
 * window leaves no visible residue behind it (a plain sum would keep ≈ ε·|x| of it).
 */
export class CompensatedSum {
  #sum = 0;
  #compensation = 0;

  /** The compensated total. */
  get value(): number {
    return this.#sum + this.#compensation;
  }

  add(x: number): void {
    const sum = this.#sum;
    const t = sum + x;
    // The rounding error of `sum + x`, recovered exactly from whichever operand is larger.
    this.#compensation += Math.abs(sum) >= Math.abs(x) ? sum - t + x : x - t + sum;
    this.#sum = t;
  }

  clear(): void {
    this.#sum = 0;
    this.#compensation = 0;
  }
}
