import type { BusEntry, DeadLetter } from '../bus/index.js';
import type { MicroBatcher } from '../windowing/index.js';
import type { RouteOptions } from './entry-router.js';
import { deadLetterOf, EVENT_PAYLOADS, routeEntries } from './entry-router.js';
import type { ResumeGuard } from './resume-guard.js';

/** Where each event entry of a read went. */
export interface RoutedEvents {
  /** Entries for the dead-letter stream, with their codes. */
  readonly dead: DeadLetter[];
  /** Valid events whose window the batcher has already flushed: for the late stream, payload kept. */
  readonly late: BusEntry[];
  /** Entries settled before a restart (see {@link ResumeGuard}): acknowledge them, nothing else. */
  readonly redelivered: BusEntry[];
  readonly accepted: number;
  readonly duplicates: number;
}

export interface EventRouteOptions extends RouteOptions {
  /** What the position stored with the bars says about entries read before a restart. */
  readonly resume?: ResumeGuard;
  /**
   * A valid event whose `src_ts` is more than this far ahead of `nowMs` is dead-lettered as
   * `future_event` (`micro_batch.max_future_ms`): it would drag the watermark, and with it every
   * later event of the shard into the late stream. `Infinity` turns the check off (replays, whose
   * event time is not the wall clock's).
   */
  readonly maxFutureMs: number;
}

/**
 * Routes event entries into a shard's (or a replay chunk's) {@link MicroBatcher}, whose refs are
 * the entries themselves (a window's entries are acknowledged by their ids, and a bar the store
 * refuses is dead-lettered with its entries' payloads): entries a restarted owner had already
 * settled are set apart first (see {@link ResumeGuard}), then dead letters per {@link routeEntries};
 * events too far in the future (`future_event`) never reach the batcher, so they move no watermark
 * and no frontier; each other valid event is accepted, a duplicate, or late. A dead letter counts
 * as activity for the idle-flush rule, like any other entry read.
 */
export function routeEvents(entries: readonly BusEntry[], batcher: MicroBatcher<BusEntry>, options: EventRouteOptions, nowMs: number): RoutedEvents {
  const resume = options.resume;
  const redelivered: BusEntry[] = [];
  const unsettled: BusEntry[] = [];
  for (const entry of entries) (resume?.settled(entry.id) ? redelivered : unsettled).push(entry);
  const { decoded, dead } = routeEntries(unsettled, EVENT_PAYLOADS, options);
  const late: BusEntry[] = [];
  let accepted = 0,
    duplicates = 0;
  const { maxFutureMs } = options;
  // In microseconds like src_ts, so the boundary is exact: `maxFutureMs` ahead is still accepted.
  const horizonUs = (nowMs + maxFutureMs) * 1000;
  for (const { entry, value } of decoded) {
    if (resume?.persisted(entry.id, value)) {
      redelivered.push(entry);
      continue;
    }
    if (value.srcTsUs > horizonUs) {
      dead.push(deadLetterOf(entry, options.sourceStream, { code: 'future_event', srcTsUs: value.srcTsUs, nowMs, maxFutureMs }));
      continue;
    }
    const outcome = batcher.add(value, entry, nowMs);
    if (outcome === 'accepted') accepted++;
    else if (outcome === 'duplicate') duplicates++;
    else late.push(entry);
  }
  if (dead.length > 0 || redelivered.length > 0) batcher.touch(nowMs);
  return { dead, late, redelivered, accepted, duplicates };
}
