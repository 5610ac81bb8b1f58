/**
 * A clock that only moves when a test says so, for code that takes a {@link PacerClock}: `sleep`
 * registers a timer, {@link ManualClock.advance} fires the timers it passes, in time order, letting
 * the awakened code run (and schedule more) before the next.
 */
import type { PacerClock } from '../../pipeline/producers/ibkr/index.js';

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly done: () => void;
}

/** Lets pending promise callbacks run (a macrotask turn drains every microtask before it). */
export const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

export class ManualClock implements PacerClock {
  #now: number;
  #seq = 0;
  #timers: Timer[] = [];

  constructor(startMs = 1_761_314_400_000) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const timer: Timer = {
        at: this.#now + Math.max(0, ms),
        seq: this.#seq++,
        done: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.#timers = this.#timers.filter((t) => t !== timer);
        reject(signal?.reason as Error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#timers.push(timer);
    });
  }

  /** Timers waiting. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Moves time forward by `ms`, firing every timer due on the way (in order), then settles. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await settle();
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#timers[0];
      if (!next || next.at > target) break;
      this.#timers.shift();
      this.#now = Math.max(this.#now, next.at);
      next.done();
      await settle();
    }
    this.#now = target;
    await settle();
  }
}
