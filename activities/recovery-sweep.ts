import type { Bus, BusEntry, DeadLetter, PendingEntry } from '../pipeline/bus/index.js';
import { hasPayload } from '../pipeline/bus/index.js';
import { deadLetterOf } from '../pipeline/routing/index.js';
import type { Logger } from '../pipeline/telemetry/index.js';
import type { RecoveryStreamReport, RecoveryTarget } from './types.js';

// One stream's pending-entry sweep (see `createRecoveryActivity`, which runs it for every shard).

/**
 * Consumer name the sweep claims over-delivered entries under while it writes their dead letters.
 * An entry still pending under this name was claimed by a sweep that stopped before acknowledging
 * it; the next sweep finishes the move (without writing a second letter when the first one landed).
 */
export const RECOVERY_CONSUMER = 'mdp-recovery';

/**
 * Consumer name the sweep takes orphaned entries under before it re-appends them for the owner.
 * Re-appending and acknowledging are one transaction, so an entry still pending under this name
 * was taken by a sweep that stopped before it: the next sweep re-appends it.
 */
export const RECOVERY_REQUEUE_CONSUMER = 'mdp-recovery-requeue';

/** Dead letters searched for a crashed sweep's letter before a second one is written. */
const DLQ_LOOKBACK = 1000;

function isMissingGroup(err: unknown): boolean {
  return /NOGROUP|no such key/i.test((err as Error).message ?? '');
}

export interface StreamRef {
  readonly role: RecoveryTarget['role'];
  readonly shard: number;
  readonly stream: string;
  readonly group: string;
  readonly owner: string;
}

export interface SweepLimits {
  readonly minIdleMs: number;
  readonly maxDeliveries: number;
  readonly maxEntries: number;
  readonly dlqStream: string;
}

export async function sweepStream(bus: Bus, ref: StreamRef, limits: SweepLimits, log: Logger): Promise<RecoveryStreamReport> {
  const { stream, group, owner } = ref;
  const base = { ...ref, pending: 0, requeued: 0, deadLettered: 0, skippedOwned: 0, skippedRecent: 0, missing: false, truncated: false };
  if (bus.kind === 'kafka') {
    // A Kafka partition has one owner, which re-reads its own unacknowledged records when it
    // restarts: nothing is orphaned and nothing is moved. The sweep reports where the group is.
    const lag = await bus.lag(stream, group, Date.now());
    return { ...base, pending: lag.pending, skippedOwned: lag.pending, lagMs: lag.lagMs, undelivered: lag.undelivered };
  }
  let pending: PendingEntry[];
  try {
    pending = await bus.pendingEntries(stream, group, limits.maxEntries);
  } catch (err) {
    if (isMissingGroup(err)) return { ...base, missing: true };
    throw err;
  }
  let skippedOwned = 0,
    skippedRecent = 0,
    deadLettered = 0;
  const toRequeue: string[] = [];
  const toDeadLetter = new Map<string, PendingEntry>();
  for (const entry of pending) {
    if (entry.consumer === owner) skippedOwned++;
    else if (entry.idleMs < limits.minIdleMs) skippedRecent++;
    else if (entry.consumer === RECOVERY_REQUEUE_CONSUMER) toRequeue.push(entry.id);
    else if (entry.deliveries > limits.maxDeliveries || entry.consumer === RECOVERY_CONSUMER) toDeadLetter.set(entry.id, entry);
    else toRequeue.push(entry.id);
  }

  if (toDeadLetter.size > 0) {
    // Claiming first makes the sweep the entries' holder (XCLAIM re-checks the idle time, so a
    // consumer that touched an entry meanwhile keeps it) and returns their payloads.
    const taken = await bus.claim(stream, group, RECOVERY_CONSUMER, limits.minIdleMs, [...toDeadLetter.keys()]);
    // An event of a frame entry is known by its entry's id (what XPENDING lists).
    const pendingOf = (e: BusEntry) => toDeadLetter.get(e.frame?.entryId ?? e.id);
    const resumed = taken.filter((e) => pendingOf(e)?.consumer === RECOVERY_CONSUMER);
    const alreadyWritten = resumed.length > 0 ? await lettersInDlq(bus, limits.dlqStream, stream, group) : new Set<string>();
    const letters: DeadLetter[] = [];
    const ackOnly: string[] = [];
    for (const entry of taken) {
      if (alreadyWritten.has(entry.id)) {
        ackOnly.push(entry.id);
        continue;
      }
      const seen = pendingOf(entry)!;
      letters.push(
        deadLetterOf({ id: entry.id, payload: entry.payload, packed: entry.packed, foreign: entry.foreign, deliveries: seen.deliveries }, stream, {
          code: 'max_deliveries',
          deliveries: seen.deliveries,
          maxDeliveries: limits.maxDeliveries,
        }),
      );
    }
    // Writes the letters, then acknowledges their sources.
    await bus.deadLetter(limits.dlqStream, group, letters);
    await bus.ack(stream, group, ackOnly);
    deadLettered += letters.length;
    if (letters.length > 0 || ackOnly.length > 0) {
      log.warn('over-delivered pending entries moved to the DLQ', {
        stream,
        group,
        dlq: limits.dlqStream,
        count: letters.length,
        finishedEarlierSweep: ackOnly.length,
        first: letters[0]?.reason,
      });
    }
  }

  let requeued = 0;
  if (toRequeue.length > 0) {
    // Never handed to the owner as they are: the owner's stored position covers entries by id, and
    // these ids were read by another consumer. Copies appended now are new entries to the owner:
    // their window takes them if it is still open, the late stream if it is not; nothing is lost.
    const taken = await bus.claim(stream, group, RECOVERY_REQUEUE_CONSUMER, limits.minIdleMs, toRequeue);
    const gone = taken.filter((e) => !hasPayload(e) && e.foreign === undefined);
    await bus.deadLetter(
      limits.dlqStream,
      group,
      gone.map((e) => deadLetterOf(e, stream, { code: 'no_payload' })),
    );
    const moved = await bus.requeue(
      stream,
      group,
      taken.filter((e) => !gone.includes(e)),
    );
    requeued = moved.length;
    deadLettered += gone.length;
    if (requeued > 0)
      log.warn('orphaned pending entries re-appended for the shard owner', {
        stream,
        group,
        owner,
        count: requeued,
        from: [...new Set(pending.filter((p) => toRequeue.includes(p.id)).map((p) => p.consumer))],
      });
  }
  return { ...base, pending: pending.length, requeued, deadLettered, skippedOwned, skippedRecent, truncated: pending.length >= limits.maxEntries };
}

/** Source ids (of `stream` in `group`) among the newest dead letters. */
async function lettersInDlq(bus: Bus, dlqStream: string, stream: string, group: string): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const letter of await bus.tail(dlqStream, DLQ_LOOKBACK)) {
    if (letter.foreign === undefined) continue;
    try {
      const fields = JSON.parse(letter.foreign) as Record<string, string | undefined>;
      if (fields.stream === stream && fields.group === group && fields.id) ids.add(fields.id);
    } catch {
      // not a dead letter written by the bus
    }
  }
  return ids;
}
