import { Packr } from 'msgpackr';

/** How producers encode events on the bus (`bus.encoding`); readers handle both whatever it says. */
export const BUS_ENCODINGS = ['json', 'msgpack'] as const;
export type BusEncoding = (typeof BUS_ENCODINGS)[number];

/**
 * How a producer writes events (`bus.encoding`, `bus.redis.frame_events`): readers never need it,
 * every entry says its own format.
 */
export interface EventFormat {
  readonly encoding: BusEncoding;
  /** Most consecutive events of one shard stream carried by one Redis entry (1: one per entry). */
  readonly frameEvents: number;
}

export const DEFAULT_EVENT_FORMAT: EventFormat = { encoding: 'json', frameEvents: 1 };

/**
 * Several consecutive events of one stream carried by one entry, each already encoded: all JSON
 * texts or all msgpack bytes. A bus that has no frames (Kafka) writes one record per event.
 */
export interface EventFrame {
  readonly frame: readonly string[] | readonly Uint8Array[];
}

/** What `Bus.publish` takes: one JSON text, one msgpack-encoded value, or a frame of events. */
export type BusPayload = string | Uint8Array | EventFrame;

export function isFrame(payload: BusPayload): payload is EventFrame {
  return typeof payload === 'object' && !(payload instanceof Uint8Array);
}

/**
 * One msgpack codec for every entry: floats stay float64, maps decode as plain objects, and no
 * record structures are shared, so every entry decodes on its own.
 */
const PACKR = new Packr({ useRecords: false, mapsAsObjects: true, useFloat32: 0, moreTypes: false, int64AsType: 'number' });

/** An event (or any JSON-like value) as the configured encoding carries it. */
export function encodeEvent(event: unknown, encoding: BusEncoding): string | Uint8Array {
  return encoding === 'msgpack' ? PACKR.pack(event) : JSON.stringify(event);
}

export type Decoded = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reason: string };

/** Decodes one msgpack-encoded value; a reason starting `malformed msgpack: ` when it is not one. */
export function decodePacked(bytes: Uint8Array): Decoded {
  try {
    // Throws on truncated data and on bytes after the value alike.
    return { ok: true, value: PACKR.unpack(bytes) as unknown };
  } catch (err) {
    return { ok: false, reason: `malformed msgpack: ${(err as Error).message}` };
  }
}

/** A frame of msgpack-encoded events: a msgpack array of `bin` items, each one event's own bytes. */
export function packFrame(events: readonly Uint8Array[]): Uint8Array {
  return PACKR.pack(events.map((e) => (Buffer.isBuffer(e) ? e : Buffer.from(e.buffer, e.byteOffset, e.byteLength))));
}

/**
 * The events' bytes of a msgpack frame (see {@link packFrame}), or why it cannot be split (the
 * whole frame then goes to the DLQ).
 */
export function splitPackedFrame(bytes: Uint8Array): { readonly ok: true; readonly events: Uint8Array[] } | { readonly ok: false; readonly reason: string } {
  const decoded = decodePacked(bytes);
  if (!decoded.ok) return { ok: false, reason: decoded.reason.replace(/^malformed msgpack/, 'malformed msgpack frame') };
  const items = decoded.value;
  if (!Array.isArray(items) || items.length === 0 || !items.every((i) => i instanceof Uint8Array)) {
    return { ok: false, reason: 'malformed msgpack frame: not a non-empty array of binary events' };
  }
  return { ok: true, events: items };
}

/** A frame of JSON events: their texts joined by `\n` (JSON.stringify never writes a raw newline). */
export function joinJsonFrame(events: readonly string[]): string {
  return events.join('\n');
}

export function splitJsonFrame(text: string): string[] {
  return text.split('\n');
}

/**
 * JSON text of a msgpack-encoded payload, for people (`mdp stream tail`, `mdp dlq show`) and for
 * consumers of JSON; `undefined` when the bytes do not decode.
 */
export function packedAsJson(bytes: Uint8Array): string | undefined {
  const decoded = decodePacked(bytes);
  return decoded.ok ? JSON.stringify(decoded.value) : undefined;
}
