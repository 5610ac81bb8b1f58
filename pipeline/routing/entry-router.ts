import type { BusEntry, DeadLetter } from '../bus/index.js';
import { decodePacked } from '../bus/event-codec.js';
import type { DeadLetterCause, FeatureSnapshot, MarketEvent } from '../contracts/index.js';
import { decodeEvent, decodeSnapshot, deadLetterReason, validateEvent } from '../contracts/index.js';

/** How one kind of payload is decoded, and the dead-letter code of a payload that does not decode. */
export interface PayloadKind<T> {
  readonly invalidCode: 'invalid_event' | 'invalid_snapshot';
  /** A payload as the entry carries it: JSON text, or msgpack bytes. */
  decode(payload: string | Uint8Array): { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };
  /** A payload the bus decoded already ({@link BusEntry.value}); without it, its bytes are decoded. */
  check?(value: unknown): { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };
}

/** v1 stream events (`mdp.events.*`, replay chunk streams), as JSON or msgpack: one contract check for both. */
export const EVENT_PAYLOADS: PayloadKind<MarketEvent> = {
  invalidCode: 'invalid_event',
  decode(payload) {
    let decoded;
    if (typeof payload === 'string') decoded = decodeEvent(payload);
    else {
      const unpacked = decodePacked(payload);
      decoded = unpacked.ok ? validateEvent(unpacked.value) : unpacked;
    }
    return decoded.ok ? { ok: true, value: decoded.event } : decoded;
  },
  check(value) {
    const checked = validateEvent(value);
    return checked.ok ? { ok: true, value: checked.event } : checked;
  },
};

/** v1 feature snapshots (`mdp.features.*`): always JSON (producers of snapshots never write msgpack). */
export const SNAPSHOT_PAYLOADS: PayloadKind<FeatureSnapshot> = {
  invalidCode: 'invalid_snapshot',
  decode(payload) {
    if (typeof payload !== 'string') return { ok: false, reason: 'a feature snapshot must be JSON text (got a msgpack payload)' };
    const decoded = decodeSnapshot(payload);
    return decoded.ok ? { ok: true, value: decoded.snapshot } : decoded;
  },
};

export interface RouteOptions {
  /** The stream the entries were read from (named in their dead letters). */
  readonly sourceStream: string;
  /** An entry delivered more often than this is dead-lettered unread (`bus.max_deliveries`). */
  readonly maxDeliveries: number;
}

export interface DecodedEntry<T> {
  readonly entry: BusEntry;
  readonly value: T;
}

/** Entries split into what decoded (in stream order) and what goes to the dead-letter stream. */
export interface RoutedEntries<T> {
  readonly decoded: DecodedEntry<T>[];
  readonly dead: DeadLetter[];
}

/**
 * The dead letter of one entry: it keeps what was read (the payload, or every field of an entry
 * without one) and the delivery count when known.
 */
export function deadLetterOf(entry: BusEntry, sourceStream: string, cause: DeadLetterCause): DeadLetter {
  return {
    sourceStream,
    sourceId: entry.id,
    payload: entry.payload ?? entry.packed ?? entry.foreign,
    code: cause.code,
    reason: deadLetterReason(cause),
    ...(entry.deliveries === undefined ? {} : { deliveries: entry.deliveries }),
  };
}

/**
 * The one routing rule of every consumer (micro-batch, inference, replay): an entry delivered more
 * than `maxDeliveries` times, an entry without a payload, a frame that cannot be split into events,
 * and a payload that does not decode (JSON or msgpack) go to the dead-letter stream with their code;
 * everything else is decoded, in order.
 */
export function routeEntries<T>(entries: readonly BusEntry[], kind: PayloadKind<T>, options: RouteOptions): RoutedEntries<T> {
  const decoded: DecodedEntry<T>[] = [];
  const dead: DeadLetter[] = [];
  for (const entry of entries) {
    if (entry.deliveries !== undefined && entry.deliveries > options.maxDeliveries) {
      dead.push(deadLetterOf(entry, options.sourceStream, { code: 'max_deliveries', deliveries: entry.deliveries, maxDeliveries: options.maxDeliveries }));
      continue;
    }
    if (entry.undecodable !== undefined) {
      dead.push(deadLetterOf(entry, options.sourceStream, { code: kind.invalidCode, detail: entry.undecodable }));
      continue;
    }
    // An event the bus decoded already (a msgpack frame's) is checked as it is: its bytes are made only for a dead letter.
    let result;
    if (entry.value !== undefined && kind.check) result = kind.check(entry.value);
    else {
      const payload = entry.payload ?? entry.packed;
      if (payload === undefined) {
        dead.push(deadLetterOf(entry, options.sourceStream, { code: 'no_payload' }));
        continue;
      }
      result = kind.decode(payload);
    }
    if (result.ok) decoded.push({ entry, value: result.value });
    else dead.push(deadLetterOf(entry, options.sourceStream, { code: kind.invalidCode, detail: result.reason }));
  }
  return { decoded, dead };
}
