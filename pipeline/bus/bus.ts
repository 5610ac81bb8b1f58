import type { DeadLetterCode } from '../contracts/index.js';
import type { BusPayload, EventFormat } from './event-codec.js';

/**
 * One event read from a stream: its id and its encoded payload, JSON text (`payload`) or msgpack
 * bytes (`packed`), as the entry itself says (readers never need the writer's `bus.encoding`).
 * An entry carrying a frame of events (`bus.redis.frame_events`) is read as one `BusEntry` per
 * event, with the id `<entry id>/<index>` (see `frame`).
 */
export interface BusEntry {
  readonly id: string;
  /** The event as JSON text; `undefined` when it is msgpack (`packed`), or the entry was deleted or trimmed while pending. */
  readonly payload: string | undefined;
  /** The event as msgpack bytes (a Redis field `m`, an event of an `F` frame, a Kafka record with `mdp-encoding: msgpack`). */
  readonly packed?: Uint8Array;
  /**
   * The payload, decoded by the bus already (an event of a msgpack frame, which decodes as one
   * records array); `packed` then holds its msgpack bytes, made when read.
   */
  readonly value?: unknown;
  /** For an entry without a payload field: all its fields as a JSON object, so a DLQ keeps them. */
  readonly foreign?: string;
  /** Why the entry's frame could not be split into events (it goes to the DLQ whole, `packed` or `payload` holding it). */
  readonly undecodable?: string;
  /** For an event of a frame entry: that entry's id and the event's index in it. */
  readonly frame?: { readonly entryId: string; readonly index: number };
  /** How many times the group has delivered this entry (known for pending reads; every event of a frame shares its entry's). */
  readonly deliveries?: number;
}

/** Whether an entry carries a payload at all (JSON or msgpack). */
export function hasPayload(entry: BusEntry): boolean {
  return entry.payload !== undefined || entry.value !== undefined || entry.packed !== undefined;
}

/**
 * A message that could not be processed, with why, written to the dead-letter stream: `code` from
 * the closed list for programs, `reason` (derived from it, see `deadLetterReason`) for people.
 */
export interface DeadLetter {
  readonly sourceStream: string;
  readonly sourceId: string;
  /** The entry's payload as read (JSON text or msgpack bytes), or all its fields (`BusEntry.foreign`) when it had no payload. */
  readonly payload: string | Uint8Array | undefined;
  readonly code: DeadLetterCode;
  readonly reason: string;
  readonly deliveries?: number;
}

/**
 * The fields a dead letter is stored with on every bus (a Redis entry's fields, a Kafka record's
 * JSON value): what failed, why, where it came from, and the original payload, as read: msgpack
 * bytes stay bytes (`encoding: msgpack` says so; a Kafka record's JSON carries them as base64).
 */
export function deadLetterFields(letter: DeadLetter, group: string): Record<string, string | Uint8Array> {
  return {
    reason: letter.reason,
    code: letter.code,
    stream: letter.sourceStream,
    id: letter.sourceId,
    group,
    deliveries: String(letter.deliveries ?? 1),
    original: letter.payload ?? '',
    ...(letter.payload instanceof Uint8Array ? { encoding: 'msgpack' } : {}),
  };
}

/**
 * Fields as text, for a JSON object of them (`BusEntry.foreign`, a Kafka dead letter's value): a
 * value that is not UTF-8 text is kept as base64 under `<key>.base64`. See {@link fieldsFromText}.
 */
export function fieldsAsText(fields: Iterable<[string, string | Uint8Array]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of fields) {
    if (typeof value === 'string') out[key] = value;
    else {
      const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      const text = buf.toString('utf8');
      if (Buffer.byteLength(text) === buf.length && Buffer.from(text, 'utf8').equals(buf)) out[key] = text;
      else out[`${key}.base64`] = buf.toString('base64');
    }
  }
  return out;
}

/** The fields {@link fieldsAsText} wrote, bytes restored. */
export function fieldsFromText(fields: Record<string, string>): [string, string | Buffer][] {
  return Object.entries(fields).map(([key, value]) =>
    key.endsWith('.base64') ? [key.slice(0, -'.base64'.length), Buffer.from(value, 'base64')] : [key, value],
  );
}

/** A pending (delivered, not acknowledged) entry as the group sees it. */
export interface PendingEntry {
  readonly id: string;
  readonly consumer: string;
  readonly idleMs: number;
  readonly deliveries: number;
}

/**
 * How far a group is behind on a stream. `lagMs` is the age of the oldest entry the group has not
 * acknowledged yet (pending or not yet delivered), measured against the entry ids' milliseconds;
 * 0 when the group is fully caught up.
 */
export interface GroupLag {
  readonly lagMs: number;
  readonly pending: number;
  readonly undelivered: number;
  readonly length: number;
}

/**
 * What a stream holds that its consumer groups have not acknowledged, against the retention bound
 * (`bus.redis.maxlen`). `entries` is the slowest group's backlog (pending + never delivered), or the
 * stream's length when no group reads it yet (a group created later starts at its first entry).
 */
export interface StreamBacklog {
  readonly entries: number;
  /** The retention bound: the most entries a stream should hold for its groups. */
  readonly retention: number;
  /** Each group's backlog: its pending entries plus those never delivered to it. */
  readonly groups: ReadonlyMap<string, number>;
  /**
   * On a bus that deletes by age (Kafka's `retention.ms`): how old the slowest group's next record
   * is, and that retention. A backlog is near retention when either share is.
   */
  readonly ageMs?: number;
  readonly retentionMs?: number;
}

/**
 * Entries a group lost without reading them, as {@link Bus.takeUnreadLoss} reports them: each loss
 * once, across runs and processes.
 */
export interface UnreadLoss {
  /** Entries removed from the stream (trimmed, deleted) before the group read them, found since the last report. */
  readonly removed: number;
  /**
   * Set when the stream or the group disappeared since the last report (deleted, evicted,
   * destroyed): what it held that the group had not acknowledged is gone, and how much is not
   * known. The figures are those of the last report (`undelivered` null when it was not known).
   */
  readonly deleted?: { readonly undelivered: number | null; readonly pending: number };
}

/**
 * The durable stream bus. Redis Streams is the default implementation; Kafka sits behind the same
 * interface. Consumers read in a group under a stable consumer name, so a restarted owner first
 * re-reads its own pending entries and then new ones.
 */
export interface Bus {
  /** Which implementation: what the recovery sweep can do differs (Kafka has no orphaned pending entries). */
  readonly kind: 'redis' | 'kafka';
  /**
   * How `ShardPublisher` encodes events for this bus (`bus.encoding`, `bus.redis.frame_events`);
   * JSON, one event per entry, when absent. Readers ignore it: every entry says its own format.
   */
  readonly eventFormat?: EventFormat;
  /**
   * Appends payloads to a stream in one round trip; returns their ids in order. Appending never
   * removes an entry a consumer group has not acknowledged: a stream some group reads is trimmed
   * only by {@link Bus.trimAcknowledged}, and producers wait on its backlog instead. A stream no
   * group reads (signals, features while inference is off) is capped at the retention bound, since
   * nobody can miss what nobody reads, unless `trim: false` (late, dead-letter and replay streams
   * keep everything). A payload is JSON text, msgpack bytes, or a frame of events (one entry on
   * Redis, one record per event on Kafka); the ids returned are one per event (`<entry id>/<index>`
   * for the events of a frame entry).
   */
  publish(stream: string, payloads: readonly BusPayload[], options?: { readonly trim?: boolean }): Promise<string[]>;
  /** Appends payloads to several streams in one round trip (retention as in {@link Bus.publish}). */
  publishMany(batches: ReadonlyMap<string, readonly BusPayload[]>): Promise<void>;
  /** Creates the consumer group (and the stream) if missing; a no-op otherwise. */
  ensureGroup(stream: string, group: string): Promise<void>;
  /**
   * Reads entries never delivered to the group, blocking up to `blockMs` when there are none. With
   * `epoch` (a shard owner's fencing token) the read is fenced: it raises the (stream, group)
   * fence to `epoch`, and throws `OwnerFencedError` when a newer epoch has read before, so a
   * superseded attempt can never take entries out of the group's delivery sequence.
   */
  readNew(stream: string, group: string, consumer: string, count: number, blockMs: number, epoch?: number): Promise<BusEntry[]>;
  /** Reads this consumer's own pending entries with ids after `afterId` (`0` for all), with delivery counts; fenced like `readNew`. */
  readPending(stream: string, group: string, consumer: string, afterId: string, count: number, epoch?: number): Promise<BusEntry[]>;
  /**
   * Acknowledges entries. The id of an event of a frame entry settles that event only: the entry
   * itself is acknowledged once every event of it delivered to this bus object is; acknowledging
   * twice is harmless.
   */
  ack(stream: string, group: string, ids: readonly string[]): Promise<void>;
  /**
   * The frontier an mdp release before 0.5 kept on the bus (Redis hash `mdp:checkpoints`), if any.
   * Read once, by an owner whose shard has no position in the store yet; never written any more:
   * positions live in the store with the bars.
   */
  readCheckpoint(stream: string, group: string): Promise<number | undefined>;
  /**
   * Writes dead letters to `dlqStream`, then acknowledges their sources: nothing is lost in between.
   * `ack: false` for letters whose source never was an entry (a line of a producer's input file).
   */
  deadLetter(dlqStream: string, group: string, letters: readonly DeadLetter[], options?: { readonly ack?: boolean }): Promise<void>;
  /** Pending entries of the group (optionally one consumer's), oldest first. */
  pendingEntries(stream: string, group: string, count: number, consumer?: string): Promise<PendingEntry[]>;
  /**
   * Transfers ownership of pending entries (entry ids, as {@link Bus.pendingEntries} lists them)
   * idle at least `minIdleMs` to `consumer`; a frame entry comes back as its events.
   */
  claim(stream: string, group: string, consumer: string, minIdleMs: number, ids: readonly string[]): Promise<BusEntry[]>;
  /**
   * Appends a copy of each entry (same fields, new id; an event of a frame as an entry of its own,
   * its bytes intact) and acknowledges the originals, in one transaction: an orphan of a dead
   * consumer becomes a new entry for the group. Returns the new ids.
   */
  requeue(stream: string, group: string, entries: readonly BusEntry[]): Promise<string[]>;
  /** Lag of a group on a stream. */
  lag(stream: string, group: string, nowMs: number): Promise<GroupLag>;
  /**
   * Removes the entries every group of the stream has acknowledged: those below the lowest id any
   * group still needs (its oldest pending entry, or the first after its last delivered one).
   * A stream no group reads is left alone. Returns the number of entries removed.
   */
  trimAcknowledged(stream: string): Promise<number>;
  /** The stream's unacknowledged backlog against the retention bound (see {@link StreamBacklog}). */
  backlog(stream: string): Promise<StreamBacklog>;
  /**
   * Entries of `stream` that `group` lost without reading them, not reported by an earlier call
   * (for any caller, in any process): each loss is reported once. Call it before the group is
   * (re)created too, so a stream deleted while its consumer was down is noticed.
   */
  takeUnreadLoss(stream: string, group: string): Promise<UnreadLoss>;
  /** Entries ever appended to a stream (unaffected by trimming; 0 when missing). */
  added(stream: string): Promise<number>;
  /** Number of entries in a stream (0 when missing). */
  length(stream: string): Promise<number>;
  /** Newest `limit` entries of a stream, newest last. */
  tail(stream: string, limit: number): Promise<BusEntry[]>;
  /**
   * Up to `count` entries appended after `afterId` (from the stream's first entry when undefined),
   * oldest first, read outside any consumer group (`mdp stream tail --follow`); none when missing.
   */
  readAfter(stream: string, afterId: string | undefined, count: number): Promise<BusEntry[]>;
  /** Orders two entry ids of one stream (negative: `a` was appended first). */
  compareIds(a: string, b: string): number;
  /** Deletes a stream with its groups and entries (a finished replay chunk's); a no-op when missing. */
  dropStream(stream: string): Promise<void>;
  /** Closes connections; idempotent, and interrupts a blocking read in progress. */
  close(): Promise<void>;
}
