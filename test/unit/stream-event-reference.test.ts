import assert from 'node:assert/strict';
import { EVENT_FIELD_LIMITS, EVENT_KINDS, makeEventId, parseIsoToMicros, validateEvent } from '../../pipeline/contracts/index.js';
import type { EventKind, ValidationResult } from '../../pipeline/contracts/index.js';
import { prng } from '../helpers/prng.js';

// validateEvent before it was made cheaper on the valid path, kept verbatim as the oracle: DLQ
// reasons are user-facing, so the same payload must get the same verdict and the same reason.
// (parseIsoToMicros has its own oracle in time-iso.test.ts.)

const invalid = (reason: string): ValidationResult => ({ ok: false, reason });

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

const UNSTORABLE_CHAR = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

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

function referenceValidateEvent(payload: unknown): ValidationResult {
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

describe('validateEvent against the implementation it replaced', () => {
  const random = prng(0xdead_1e77);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];

  const TEXTS = [
    '',
    'x',
    'synthetic',
    'SPY',
    'a|b',
    '|',
    'NUL\u0000',
    '\uD800',
    'ok\uD83D\uDE80',
    '\uDE80x',
    'p'.repeat(64),
    'p'.repeat(65),
    '1m',
    'i'.repeat(17),
  ];
  const TIMES = [
    '2025-10-24T14:02:01.123456Z',
    '2025-10-24T16:02:01.123456+02:00',
    '2025-10-24T14:02:01Z',
    '2025-10-24T14:02:01.1234567Z',
    '2025-02-30T00:00:00Z',
    '2024-02-29T00:00:00Z',
    '0050-01-01T00:00:00Z',
    '2025-10-24 14:02:01Z',
    'yesterday',
  ];
  const NUMBERS = [0, -0, 1, -1, 7, 1.5, 425.1, 2 ** 53 - 1, 2 ** 53, 1e21, Number.NaN, Infinity, -Infinity, 9_999_999_999_999_999];
  const OTHERS = [null, true, undefined, [], {}, '1', '425.1', 'NaN'];
  const ANY = [...TEXTS, ...TIMES, ...NUMBERS, ...OTHERS];

  /** A valid event, then up to three fields replaced (or deleted) by awkward values. */
  function payload(): unknown {
    if (random() < 0.02) return pick([null, [], 'event', 42, undefined, [{}]]);
    const kind = pick(['tick', 'bar', 'bar']);
    const price = pick([425.1, 10, 0.01]);
    const event: Record<string, unknown> = {
      ver: 1,
      provider: pick(['synthetic', 'ibkr', 'p'.repeat(64)]),
      symbol: pick(['SPY', 'AAPL', 'ROCKET\uD83D\uDE80']),
      kind,
      src_ts: pick(TIMES.slice(0, 3)),
      ingest_ts: pick(TIMES.slice(0, 3)),
      o: price,
      h: price * 1.1,
      l: price * 0.9,
      c: price,
      v: pick([0, 200, 1.5]),
      seq: pick([0, 7, 123_456, 2 ** 53 - 1]),
    };
    if (kind === 'bar' || random() < 0.1) event.interval = pick(['1m', '5s']);
    const keys = ['ver', 'provider', 'symbol', 'kind', 'interval', 'src_ts', 'ingest_ts', 'o', 'h', 'l', 'c', 'v', 'seq'];
    for (let edits = random() < 0.5 ? 0 : 1 + Math.floor(random() * 3); edits > 0; edits--) {
      const key = pick(keys);
      if (random() < 0.15) delete event[key];
      else event[key] = key === 'kind' ? pick(['tick', 'bar', 'Tick', 'quote', 1]) : key === 'ver' ? pick([1, 2, '1', null]) : pick(ANY);
    }
    const id = makeEventId(String(event.provider), String(event.symbol), String(event.src_ts), Number(event.seq));
    const seqText = String(event.seq);
    event.event_id =
      random() < 0.6
        ? id
        : pick([
            `${id}0`,
            id.slice(0, -1),
            id.replace(/\|([^|]*)$/, '|0$1'),
            id.replace(/\|([^|]*)$/, '|+$1'),
            id.replace(/\|([^|]*)$/, '|$1.0'),
            id.replace(/\|([^|]*)$/, '|1$1'),
            id.replace('|', '||'),
            id.replace(seqText, `${seqText}e0`),
            `x${id.slice(1)}`,
            `${String(event.provider)}|${String(event.symbol)}|${String(event.src_ts)}|00`,
            `${String(event.provider)}|${String(event.symbol)}|${String(event.src_ts)}|12345678901234567`,
            `${String(event.provider)}|${String(event.symbol)}|${String(event.src_ts)}|9007199254740993`,
            `${String(event.provider)}|${String(event.symbol)}|${String(event.src_ts)}|`,
            ...ANY,
          ]);
    if (random() < 0.05) delete event.event_id;
    return event;
  }

  it('gives the same verdict, event and reason on 200,000 random valid and invalid payloads', () => {
    let ok = 0;
    const reasons = new Set<string>();
    for (let i = 0; i < 200_000; i++) {
      const input = payload();
      const expected = referenceValidateEvent(input);
      const actual = validateEvent(input);
      if (!actual.ok || !expected.ok) {
        assert.deepEqual(actual, expected, JSON.stringify(input));
        if (!expected.ok) reasons.add(expected.reason.replace(/\(.*$/, ''));
      } else {
        assert.deepEqual(actual.event, expected.event, JSON.stringify(input));
        ok++;
      }
    }
    // Both sides of every rule must be exercised, or the comparison proves little.
    assert.ok(ok > 20_000, `only ${ok} valid payloads`);
    assert.ok(reasons.size >= 20, `only ${reasons.size} distinct reasons: ${[...reasons].join('; ')}`);
  });

  it('accepts an event_id ending in the largest safe seq, and only with its exact digits', () => {
    const base = {
      ver: 1,
      provider: 'p',
      symbol: 'S',
      kind: 'tick',
      src_ts: '2025-10-24T14:02:01Z',
      ingest_ts: '2025-10-24T14:02:01Z',
      o: 1,
      h: 1,
      l: 1,
      c: 1,
      v: 1,
    };
    for (const [seq, eventId] of [
      [2 ** 53 - 1, 'p|S|2025-10-24T14:02:01Z|9007199254740991'],
      [2 ** 53 - 1, 'p|S|2025-10-24T14:02:01Z|9007199254740992'],
      [2 ** 53 - 1, 'p|S|2025-10-24T14:02:01Z|09007199254740991'],
      [0, 'p|S|2025-10-24T14:02:01Z|0'],
      [0, 'p|S|2025-10-24T14:02:01Z|-0'],
      [-0, 'p|S|2025-10-24T14:02:01Z|0'],
      [10, 'p|S|2025-10-24T14:02:01Z|010'],
    ] as const) {
      const input = { ...base, seq, event_id: eventId };
      assert.deepEqual(validateEvent(input), referenceValidateEvent(input), eventId);
    }
  });
});
