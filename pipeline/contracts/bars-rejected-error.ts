import type { RejectedBar } from './bar.js';

/**
 * The store refused some bars of a commit for their own values (a permanent error such as a key
 * too long to index) and wrote nothing: the caller sets those bars aside (their events go to the
 * dead-letter stream) and commits the others again. See `ShardStore.commit`.
 */
export class BarsRejectedError extends Error {
  readonly code = 'BARS_REJECTED';
  /** The refused bars, each the very object passed in, with the store's reason. */
  readonly rejected: readonly RejectedBar[];

  constructor(rejected: readonly RejectedBar[], total: number) {
    super(`the store refused ${rejected.length} of ${total} bars for their own values, and wrote nothing: ${rejected[0]?.reason ?? '(no reason)'}`);
    this.name = this.constructor.name;
    this.rejected = rejected;
  }
}
