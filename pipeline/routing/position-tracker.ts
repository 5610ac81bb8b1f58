import type { CommitMark, ShardPosition } from '../contracts/index.js';
import type { EntryIdOrder } from './resume-guard.js';

/**
 * What a shard owner stores with each commit (see {@link ShardPosition}), kept as entries are read:
 * the last id read, and the commit marks a successor may still need. Starts from the position the
 * owner resumed from.
 */
export class PositionTracker {
  readonly #order: EntryIdOrder;
  #readId: string | undefined;
  #marks: readonly CommitMark[];

  constructor(resumedFrom: ShardPosition | undefined, order: EntryIdOrder) {
    this.#order = order;
    this.#readId = resumedFrom?.readId;
    this.#marks = resumedFrom?.marks ?? [];
  }

  /** Entries up to `id` were read (re-reads of older ones change nothing). */
  read(id: string): void {
    if (this.#readId === undefined || this.#order(id, this.#readId) > 0) this.#readId = id;
  }

  /**
   * The position of a commit that leaves the frontier at `frontierMs`, with `openIds` the first
   * entry of each window still open, and `firstWindowMs` the first window it writes.
   */
  next(frontierMs: number | undefined, openIds: readonly string[], firstWindowMs: number): ShardPosition {
    const oldestOpenId = openIds.reduce<string | undefined>((min, id) => (min === undefined || this.#order(id, min) < 0 ? id : min), undefined);
    const mark = frontierMs === undefined || this.#readId === undefined ? [] : [{ frontierMs, readId: this.#readId }];
    // Marks older than the oldest open entry can no longer decide anything.
    this.#marks = oldestOpenId === undefined ? [] : [...this.#marks, ...mark].filter((m) => this.#order(m.readId, oldestOpenId) >= 0);
    return { frontierMs, readId: this.#readId, oldestOpenId, marks: this.#marks, lastCommitFromMs: firstWindowMs };
  }
}
