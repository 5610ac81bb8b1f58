/**
 * The retained bars of one series, oldest first, addressed by a sequence number that only ever
 * grows (`seq` of the n-th bar pushed since the ring was made). Holds `[head, tail)`; grows by
 * doubling when a push would overflow, so capacity follows the bars a horizon really holds.
 *
 * Each slot keeps what the windows need: start, close, typical price, volume, and the 1-bar log
 * return from the previous bar.
 */
export class BarRing {
  #mask: number;
  #tsMs: Float64Array;
  #close: Float64Array;
  #typical: Float64Array;
  #volume: Float64Array;
  #logReturn: Float64Array;
  #head = 0;
  #tail = 0;

  /** @param minCapacity - expected bars per largest horizon; rounded up to a power of two. */
  constructor(minCapacity: number) {
    let capacity = 8;
    while (capacity < minCapacity) capacity *= 2;
    this.#mask = capacity - 1;
    this.#tsMs = new Float64Array(capacity);
    this.#close = new Float64Array(capacity);
    this.#typical = new Float64Array(capacity);
    this.#volume = new Float64Array(capacity);
    this.#logReturn = new Float64Array(capacity);
  }

  /** Sequence number of the oldest retained bar. */
  get head(): number {
    return this.#head;
  }

  /** Sequence number the next pushed bar gets (one past the newest). */
  get tail(): number {
    return this.#tail;
  }

  get capacity(): number {
    return this.#mask + 1;
  }

  /** Appends a bar and returns its sequence number. */
  push(tsMs: number, close: number, typical: number, volume: number, logReturn: number): number {
    if (this.#tail - this.#head > this.#mask) this.#grow();
    const seq = this.#tail++;
    const i = seq & this.#mask;
    this.#tsMs[i] = tsMs;
    this.#close[i] = close;
    this.#typical[i] = typical;
    this.#volume[i] = volume;
    this.#logReturn[i] = logReturn;
    return seq;
  }

  tsMs(seq: number): number {
    return this.#tsMs[seq & this.#mask];
  }

  close(seq: number): number {
    return this.#close[seq & this.#mask];
  }

  typical(seq: number): number {
    return this.#typical[seq & this.#mask];
  }

  volume(seq: number): number {
    return this.#volume[seq & this.#mask];
  }

  /** `ln(close[seq] / close[seq - 1])`, `NaN` for the first bar after a reset. */
  logReturn(seq: number): number {
    return this.#logReturn[seq & this.#mask];
  }

  /** Forgets bars before `seq` (no-op for bars already gone). */
  dropBefore(seq: number): void {
    if (seq > this.#head) this.#head = Math.min(seq, this.#tail);
  }

  /** Forgets every bar; sequence numbers keep growing. */
  clear(): void {
    this.#head = this.#tail;
  }

  #grow(): void {
    const oldMask = this.#mask;
    const capacity = (oldMask + 1) * 2;
    const mask = capacity - 1;
    const move = (from: Float64Array): Float64Array => {
      const to = new Float64Array(capacity);
      for (let seq = this.#head; seq < this.#tail; seq++) to[seq & mask] = from[seq & oldMask]!;
      return to;
    };
    this.#tsMs = move(this.#tsMs);
    this.#close = move(this.#close);
    this.#typical = move(this.#typical);
    this.#volume = move(this.#volume);
    this.#logReturn = move(this.#logReturn);
    this.#mask = mask;
  }
}
