/** How fast a recorded source is published: `speed` times its recorded pace, or as fast as possible. */
export type PublishSpeed = number | 'max';

/**
 * Replays a recording's pace: the first event anchors event time to the wall clock, and each later
 * event is due when `speed` times as much wall time has passed as event time (by `src_ts`) since
 * the anchor. An event earlier than one already published (an unsorted file) is due at once.
 *
 * @example
 * ```ts
 * const pace = new EventPace(10);
 * pace.dueMs(srcTsUs, Date.now()); // first call: now; an event 10 s later in the file: 1 s later
 * ```
 */
export class EventPace {
  readonly #speed: PublishSpeed;
  #anchor: { readonly srcUs: number; readonly wallMs: number } | undefined;

  constructor(speed: PublishSpeed) {
    if (speed !== 'max' && !(Number.isFinite(speed) && speed > 0)) throw new Error(`speed must be a positive number or "max" (got ${String(speed)})`);
    this.#speed = speed;
  }

  /** Wall-clock time (epoch ms) at which an event at `srcTsUs` is due; `nowMs` anchors the first. */
  dueMs(srcTsUs: number, nowMs: number): number {
    if (this.#speed === 'max') return nowMs;
    this.#anchor ??= { srcUs: srcTsUs, wallMs: nowMs };
    return this.#anchor.wallMs + (srcTsUs - this.#anchor.srcUs) / 1000 / this.#speed;
  }
}

/** `--speed 1|10|max`: a positive number or `max`; `undefined` when it is neither. */
export function parsePublishSpeed(text: string): PublishSpeed | undefined {
  if (text.trim().toLowerCase() === 'max') return 'max';
  const speed = Number(text);
  return text.trim() !== '' && Number.isFinite(speed) && speed > 0 ? speed : undefined;
}
