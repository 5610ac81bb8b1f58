import type { MarketEvent, ShardPosition } from '../contracts/index.js';
import { windowStartMs } from '../windowing/index.js';

/** Orders two entry ids of one stream (negative: `a` first). Each bus has its own id format. */
export type EntryIdOrder = (a: string, b: string) => number;

/**
 * What a restarted owner knows from the position stored with its bars, so entries it may see again
 * (its own pending ones, or redelivered ones after the bus lost acknowledgements) are never
 * rebuilt into partial bars, never rewritten, and never miscounted as late:
 * - an entry before the oldest one that was still open at the last commit is settled;
 * - an event of a window at or before the stored frontier, read before that window was committed
 *   (its id at most the read point of the commit that covered the window), is in the stored bar.
 * Everything else is routed as usual; a truly late event still goes to the late stream.
 */
export class ResumeGuard {
  readonly #position: ShardPosition | undefined;
  readonly #windowMs: number;
  readonly #order: EntryIdOrder;

  constructor(position: ShardPosition | undefined, windowMs: number, order: EntryIdOrder) {
    this.#position = position;
    this.#windowMs = windowMs;
    this.#order = order;
  }

  /** The entry was settled before the restart: acknowledge it without reading it. */
  settled(entryId: string): boolean {
    const p = this.#position;
    if (p?.readId === undefined) return false;
    if (p.oldestOpenId !== undefined) return this.#order(entryId, p.oldestOpenId) < 0;
    return this.#order(entryId, p.readId) <= 0;
  }

  /** The event is in a bar stored before the restart: acknowledge it, change nothing. */
  persisted(entryId: string, event: MarketEvent): boolean {
    const p = this.#position;
    if (p?.frontierMs === undefined || p.readId === undefined || this.#order(entryId, p.readId) > 0) return false;
    const windowEndMs = windowStartMs(event.srcTsUs, this.#windowMs) + this.#windowMs;
    if (windowEndMs > p.frontierMs) return false;
    // The commit that flushed the window: the first whose frontier reached the window's end.
    // No mark: that commit's read point is before the oldest open entry, so this (unsettled) entry
    // was read after the window was committed: it was late then, and is late now.
    const mark = p.marks.find((m) => m.frontierMs >= windowEndMs);
    return mark !== undefined && this.#order(entryId, mark.readId) <= 0;
  }
}
