import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger, Metrics } from '../telemetry/index.js';
import type { Bus } from './bus.js';
import { BACKLOG_WAIT_RATIO, backlogAgeShare, BacklogWatch } from './backlog-watch.js';

export interface BacklogGateOptions {
  readonly bus: Bus;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** `component` label of `errors_total{reason="backlog_near_retention"}`. */
  readonly component: string;
  /** How often a waiting producer looks again. */
  readonly pollMs?: number;
  /**
   * How long a positive room, less what was published since ({@link BacklogGate.taken}), is
   * trusted without asking Redis again: consumers only make more room, so it errs on the safe side.
   */
  readonly trustMs?: number;
}

export interface WaitOptions {
  /** Stop waiting at this time (epoch ms) and report no room. */
  readonly untilMs: number;
  /** Stop waiting when aborted (e.g. the activity's cancellation signal) and report no room. */
  readonly signal?: AbortSignal;
  /** Called after every look while waiting (e.g. heartbeat, which also delivers cancellation). */
  readonly onWait?: () => void;
}

/**
 * Backpressure for producers: instead of a stream dropping entries nobody has read, a producer asks
 * for room before publishing and waits while the slowest group's backlog is at
 * {@link BACKLOG_WAIT_RATIO} of the retention bound.
 *
 * @example
 * ```ts
 * const room = await gate.waitForRoom(streams, { untilMs: deadline, signal, onWait: heartbeat });
 * if (room > 0) await bus.publishMany(nextEvents(Math.min(room, round)));
 * ```
 */
export class BacklogGate {
  readonly #bus: Bus;
  readonly #watch: BacklogWatch;
  readonly #pollMs: number;
  readonly #trustMs: number;
  /** The last room read from the bus, per set of streams, less what was taken since. */
  #known: { readonly streams: string; room: number; readonly untilMs: number } | undefined;

  constructor(options: BacklogGateOptions) {
    this.#bus = options.bus;
    this.#watch = new BacklogWatch(options.metrics, options.log, options.component);
    this.#pollMs = options.pollMs ?? 250;
    this.#trustMs = options.trustMs ?? 1000;
  }

  /** Entries that can go to every one of `streams` before the fullest reaches the wait mark; 0 for none. */
  async room(streams: Iterable<string>): Promise<number> {
    const list = [...streams];
    const key = list.join('\n');
    const known = this.#known;
    if (known && known.streams === key && known.room > 0 && known.untilMs > Date.now()) return known.room;
    let room = Number.POSITIVE_INFINITY;
    for (const stream of list) {
      const backlog = await this.#bus.backlog(stream);
      this.#watch.observe(stream, backlog);
      room = Math.min(room, Math.floor(backlog.retention * BACKLOG_WAIT_RATIO) - backlog.entries);
      // On a bus that deletes by age, a backlog this old is about to lose records: wait too.
      if (backlogAgeShare(backlog) >= BACKLOG_WAIT_RATIO) room = 0;
    }
    room = Math.max(0, room);
    this.#known = { streams: key, room, untilMs: Date.now() + this.#trustMs };
    return room;
  }

  /** `count` entries were just published (to any of the streams): they use up room in each. */
  taken(count: number): void {
    if (this.#known) this.#known.room -= count;
  }

  /** Waits until {@link BacklogGate.room} is positive and returns it; 0 when `untilMs` passed or `signal` aborted first. */
  async waitForRoom(streams: Iterable<string>, options: WaitOptions): Promise<number> {
    const list = [...streams];
    for (;;) {
      const room = await this.room(list);
      if (room > 0) return room;
      const left = options.untilMs - Date.now();
      if (left <= 0 || options.signal?.aborted) return 0;
      options.onWait?.();
      await sleep(Math.min(this.#pollMs, left), undefined, { signal: options.signal }).catch(() => undefined);
      if (options.signal?.aborted) return 0;
    }
  }

  close(): void {
    this.#watch.close();
  }
}
