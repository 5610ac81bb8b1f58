import { parseIsoToMicros } from './time.js';

/** Kinds of market event the v1 contract knows. */
export const EVENT_KINDS = ['tick', 'bar'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

/**
 * The v1 stream event exactly as it travels on the bus (spec §3.1). For a `tick`, o=h=l=c is the
 * trade price and v the trade size; for a `bar`, o/h/l/c/v describe the provider's bar.
 */
export interface StreamEventV1 {
  readonly ver: 1;
  readonly provider: string;
  readonly symbol: string;
  readonly kind: EventKind;
  readonly interval?: string;
  readonly src_ts: string;
  readonly ingest_ts: string;
  readonly o: number;
  readonly h: number;
  readonly l: number;
  readonly c: number;
  readonly v: number;
  readonly seq: number;
  readonly event_id: string;
}

/** A validated event with its timestamps parsed, as the windowing code consumes it. */
export interface MarketEvent {
  readonly eventId: string;
  readonly provider: string;
  readonly symbol: string;
  readonly kind: EventKind;
  /** Event (source) time, epoch microseconds. */
  readonly srcTsUs: number;
  /** Time the producer stamped the event, epoch microseconds. */
  readonly ingestTsUs: number;
  readonly seq: number;
  readonly o: number;
  readonly h: number;
  readonly l: number;
  readonly c: number;
  readonly v: number;
}

/** The deterministic idempotency key of an event: `provider|symbol|src_ts|seq`. */
export function makeEventId(provider: string, symbol: string, srcTs: string, seq: number): string {
  return `${provider}|${symbol}|${srcTs}|${seq}`;
}

export type ValidationResult = { readonly ok: true; readonly event: MarketEvent } | { readonly ok: false; readonly reason: string };

const invalid = (reason: string): ValidationResult => ({ ok: false, reason });

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

/**
 * Longest `provider`, `symbol` and `interval` the v1 contract accepts, in UTF-16 code units (a
 * character outside the Basic Multilingual Plane counts twice). They bound every key the store
 * indexes (PostgreSQL rejects a btree row over ~2.7 kB, and with it a whole flush), and with them
 * `event_id`, which must equal `provider|symbol|src_ts|seq`.
 */
export const EVENT_FIELD_LIMITS = { provider: 64, symbol: 64, interval: 16 } as const;

/** NUL (PostgreSQL `text` cannot hold it) or a lone UTF-16 surrogate (not encodable as UTF-8). */
const UNSTORABLE_CHAR = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a text field the store keys on cannot be stored as sent, or `undefined` when it can. */
function unstorableText(key: keyof typeof EVENT_FIELD_LIMITS, value: string): string | undefined {
  const limit = EVENT_FIELD_LIMITS[key];
  if (value.length > limit) return `field "${key}" must be at most ${limit} characters (got ${value.length})`;
  const bad = UNSTORABLE_CHAR.exec(value);
  if (bad) {
    const code = bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    return `field "${key}" must not contain U+${code} (${code === '0000' ? 'NUL' : 'a lone surrogate'}) at index ${bad.index}`;
  }
  return undefined;
}

/**
 * Checks a decoded payload against the v1 contract. The reason names the first offending field,
 * e.g. `field "h" must be >= "l" (h=1, l=2)`, so a DLQ entry says what to fix.
 */
export function validateEvent(payload: unknown): ValidationResult {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    return invalid('payload is not a JSON object');
  }
  const p = payload as Record<string, unknown>;
  if (p.ver !== 1) return invalid(`field "ver" must be 1 (got ${JSON.stringify(p.ver)})`);
  for (const key of ['provider', 'symbol', 'src_ts', 'ingest_ts', 'event_id'] as const) {
    if (!isNonEmptyString(p[key])) return invalid(`field "${key}" must be a non-empty string`);
  }
  const provider = p.provider as string;
  const symbol = p.symbol as string;
  const textProblem = unstorableText('provider', provider) ?? unstorableText('symbol', symbol);
  if (textProblem !== undefined) return invalid(textProblem);
  if (provider.includes('|') || symbol.includes('|')) return invalid('fields "provider" and "symbol" must not contain "|"');
  if (!EVENT_KINDS.includes(p.kind as EventKind)) {
    return invalid(`field "kind" must be one of ${EVENT_KINDS.join(', ')} (got ${JSON.stringify(p.kind)})`);
  }
  if (p.interval !== undefined) {
    if (typeof p.interval !== 'string') return invalid('field "interval" must be a string');
    const intervalProblem = unstorableText('interval', p.interval);
    if (intervalProblem !== undefined) return invalid(intervalProblem);
  }
  for (const key of ['o', 'h', 'l', 'c', 'v'] as const) {
    const value = p[key];
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      const shown = typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value));
      return invalid(`field "${key}" must be a finite number (got ${shown})`);
    }
  }
  const o = p.o as number,
    h = p.h as number,
    l = p.l as number,
    c = p.c as number,
    v = p.v as number;
  if (l <= 0) return invalid(`prices must be > 0 (l=${l})`);
  if (h < l) return invalid(`field "h" must be >= "l" (h=${h}, l=${l})`);
  if (o > h || o < l || c > h || c < l) return invalid(`fields "o" and "c" must lie within [l, h] (o=${o}, c=${c}, l=${l}, h=${h})`);
  if (v < 0) return invalid(`field "v" must be >= 0 (got ${v})`);
  if (typeof p.seq !== 'number' || !Number.isSafeInteger(p.seq) || p.seq < 0) {
    return invalid(`field "seq" must be a non-negative integer (got ${JSON.stringify(p.seq)})`);
  }
  const srcTsUs = parseIsoToMicros(p.src_ts as string);
  if (srcTsUs === undefined) return invalid(`field "src_ts" is not an ISO-8601 timestamp (got ${JSON.stringify(p.src_ts)})`);
  const ingestTsUs = parseIsoToMicros(p.ingest_ts as string);
  if (ingestTsUs === undefined) return invalid(`field "ingest_ts" is not an ISO-8601 timestamp (got ${JSON.stringify(p.ingest_ts)})`);
  const expectedId = makeEventId(provider, symbol, p.src_ts as string, p.seq);
  if (p.event_id !== expectedId) {
    return invalid(`field "event_id" must equal provider|symbol|src_ts|seq (expected ${JSON.stringify(expectedId)})`);
  }
  return {
    ok: true,
    event: { eventId: expectedId, provider, symbol, kind: p.kind as EventKind, srcTsUs, ingestTsUs, seq: p.seq, o, h, l, c, v },
  };
}

/** Decodes one bus payload (JSON text) and validates it; malformed JSON is a validation failure. */
export function decodeEvent(text: string): ValidationResult {
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch (err) {
    return invalid(`malformed JSON: ${(err as Error).message}`);
  }
  return validateEvent(payload);
}
