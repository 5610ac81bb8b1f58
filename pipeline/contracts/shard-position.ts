import type { Bar, UpsertCounts } from './bar.js';

/**
 * One commit of a shard owner, remembered while entries it covers may still be re-read: the
 * frontier it stored and the last entry id read before it. An event of a window at or before
 * `frontierMs` whose entry id is at most `readId` was read before that window was flushed, so it
 * is in the stored bar (or was a duplicate of an event that is).
 */
export interface CommitMark {
  readonly frontierMs: number;
  readonly readId: string;
}

/**
 * What a shard owner stores with its bars, in the same transaction: where a successor resumes.
 * Bus positions are the bus's entry ids (Redis stream ids, Kafka offsets), compared by the bus.
 */
export interface ShardPosition {
  /** End of the last persisted window (epoch ms); undefined before the first commit. */
  readonly frontierMs: number | undefined;
  /** The last entry id read before the commit. */
  readonly readId: string | undefined;
  /**
   * The oldest entry still buffered in an open window after the commit: every entry before it
   * (up to `readId`) is settled — in a stored bar, the late stream or the DLQ. Undefined: none open.
   */
  readonly oldestOpenId: string | undefined;
  /** Commits whose `readId` is at or past `oldestOpenId` (older ones can no longer matter). */
  readonly marks: readonly CommitMark[];
  /**
   * Start of the first window of the last commit: a successor re-publishes the feature snapshots
   * of `[lastCommitFromMs, frontierMs)`, which a crash may have cut off after the commit.
   */
  readonly lastCommitFromMs: number | undefined;
}

/**
 * A shard owner's claim: its consumer name and its fencing token. The token only grows (a later
 * attempt of the owner's activity has a later one), and the store rejects every commit of a token
 * older than the one that last took the shard.
 */
export interface ShardLease {
  /** The shard's stream and group: the key of the stored position. */
  readonly stream: string;
  readonly group: string;
  /** The owner's consumer name (its workflow id). */
  readonly owner: string;
  readonly epoch: number;
}

/**
 * Where a shard owner's bars and position live together (implemented in `store/`): `acquire`
 * takes the shard, `commit` writes bars and position atomically. Both throw {@link OwnerFencedError}
 * when a newer owner holds the shard; `commit` throws `BarsRejectedError`, having written nothing,
 * when the store refuses some bars for their own values (so their events can be dead-lettered
 * before a position covers them, and their neighbours committed again without them).
 */
export interface ShardStore {
  /** Takes the shard for `lease` and returns the stored position (undefined: never committed). */
  acquire(lease: ShardLease): Promise<ShardPosition | undefined>;
  /** Upserts `bars` and stores `position` in one transaction, if `lease` still holds the shard. */
  commit(lease: ShardLease, bars: readonly Bar[], position: ShardPosition): Promise<UpsertCounts>;
}

/** A newer owner holds the shard: this attempt may not write, acknowledge or claim anything more. */
export class OwnerFencedError extends Error {
  readonly code = 'OWNER_FENCED';
  readonly lease: ShardLease;
  /** The epoch and owner that hold the shard now. */
  readonly heldBy: { readonly owner: string; readonly epoch: number };

  constructor(lease: ShardLease, heldBy: { readonly owner: string; readonly epoch: number }) {
    super(`${lease.stream} (${lease.group}) is held by ${heldBy.owner} with epoch ${heldBy.epoch}; this attempt's epoch ${lease.epoch} is fenced off`);
    this.name = this.constructor.name;
    this.lease = lease;
    this.heldBy = heldBy;
  }
}
