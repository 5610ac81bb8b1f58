import type { BusEntry, DeadLetter } from '../bus/index.js';
import type { Bar, RejectedBar } from '../contracts/index.js';
import type { WindowFlush } from '../windowing/index.js';
import { deadLetterOf } from './entry-router.js';

/** The dead letters of bars the store refused. */
export interface RejectedBarLetters {
  /** One `store_rejected` letter per entry of a refused bar (duplicates included), payload kept. */
  readonly dead: DeadLetter[];
  /** Ids of those entries (acknowledged with their letters, not with the window). */
  readonly deadIds: ReadonlySet<string>;
  /** The refused bars themselves (the flushes' own objects). */
  readonly refused: ReadonlySet<Bar>;
}

/**
 * Traces each bar the store refused back to its entries through {@link WindowFlush.barRefs}, so
 * exactly those entries go to the dead-letter stream with the store's reason.
 *
 * @throws Error when a refused bar is not one of the flushes' own (a sink breaking the
 * `RejectedBar.bar` contract): its entries would otherwise be acknowledged as persisted.
 */
export function rejectedBarLetters(flushes: readonly WindowFlush<BusEntry>[], rejected: readonly RejectedBar[], sourceStream: string): RejectedBarLetters {
  const entriesOf = new Map<Bar, readonly BusEntry[]>();
  for (const flush of flushes) flush.bars.forEach((bar, i) => entriesOf.set(bar, flush.barRefs[i]));
  const dead: DeadLetter[] = [];
  const deadIds = new Set<string>();
  const refused = new Set<Bar>();
  for (const { bar, reason } of rejected) {
    const entries = entriesOf.get(bar);
    if (entries === undefined)
      throw new Error(`the store rejected a bar that is not one of the flush's (${bar.provider}/${bar.symbol} ${bar.interval} ${bar.tsMs})`);
    refused.add(bar);
    for (const entry of entries) {
      dead.push(deadLetterOf(entry, sourceStream, { code: 'store_rejected', interval: bar.interval, windowStartMs: bar.tsMs, detail: reason }));
      deadIds.add(entry.id);
    }
  }
  return { dead, deadIds, refused };
}
