import assert from 'node:assert/strict';
import { decodeEvent, EVENT_FIELD_LIMITS, formatMicros, makeEventId, parseIsoToMicros, validateEvent } from '../../pipeline/contracts/index.js';
import type { MarketEvent, StreamEventV1, ValidationResult } from '../../pipeline/contracts/index.js';

const SRC_TS = '2025-10-24T14:02:01.123456Z';
// 2025-10-24T14:02:01Z in µs, plus the fraction above.
const SRC_TS_US = Date.UTC(2025, 9, 24, 14, 2, 1) * 1000 + 123_456;
const INGEST_TS = '2025-10-24T14:02:01.200000Z';

/** A valid v1 tick; `overrides` replace fields, and `event_id` follows unless overridden too. */
function tick(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const event: Record<string, unknown> = {
    ver: 1,
    provider: 'synthetic',
    symbol: 'SPY',
    kind: 'tick',
    src_ts: SRC_TS,
    ingest_ts: INGEST_TS,
    o: 425.1,
    h: 425.1,
    l: 425.1,
    c: 425.1,
    v: 200,
    seq: 7,
    ...overrides,
  };
  event.event_id =
    'event_id' in overrides ? overrides.event_id : makeEventId(String(event.provider), String(event.symbol), String(event.src_ts), Number(event.seq));
  return event;
}

/** A valid v1 one-minute bar from a provider. */
function bar(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return tick({ kind: 'bar', interval: '1m', o: 10.5, h: 12, l: 9.75, c: 11, v: 12_345, ...overrides });
}

/** `payload` without `key`, as a producer that forgot the field would send it. */
function without(payload: Record<string, unknown>, key: string): Record<string, unknown> {
  const copy = { ...payload };
  delete copy[key];
  return copy;
}

function accepted(result: ValidationResult): MarketEvent {
  if (!result.ok) assert.fail(`expected the event to be accepted, got: ${result.reason}`);
  return result.event;
}

function rejectedWith(result: ValidationResult, reason: RegExp): void {
  if (result.ok) assert.fail(`expected a rejection matching ${String(reason)}, but the event was accepted`);
  assert.match(result.reason, reason);
}

/** Both entry points reject: the decoded object and its JSON text as it arrives on the bus. */
function rejects(payload: Record<string, unknown>, reason: RegExp): void {
  rejectedWith(validateEvent(payload), reason);
  rejectedWith(decodeEvent(JSON.stringify(payload)), reason);
}

const micros = (iso: string): number => {
  const us = parseIsoToMicros(iso);
  assert.ok(us !== undefined, `unparseable timestamp ${iso}`);
  return us;
};

describe('v1 stream event contract', () => {
  describe('accepts', () => {
    it('a correct tick, with its timestamps parsed to epoch microseconds', () => {
      const payload = tick();
      const event = accepted(decodeEvent(JSON.stringify(payload)));
      assert.deepEqual(event, {
        eventId: 'synthetic|SPY|2025-10-24T14:02:01.123456Z|7',
        provider: 'synthetic',
        symbol: 'SPY',
        kind: 'tick',
        srcTsUs: SRC_TS_US,
        ingestTsUs: SRC_TS_US - 123_456 + 200_000,
        seq: 7,
        o: 425.1,
        h: 425.1,
        l: 425.1,
        c: 425.1,
        v: 200,
      });
      assert.deepEqual(accepted(validateEvent(payload)), event);
    });

    it('a correct bar, keeping its o/h/l/c/v', () => {
      const event = accepted(decodeEvent(JSON.stringify(bar())));
      assert.equal(event.kind, 'bar');
      assert.deepEqual([event.o, event.h, event.l, event.c, event.v], [10.5, 12, 9.75, 11, 12_345]);
    });

    it('boundary values: v = 0, seq = 0, o and c on the edges of [l, h]', () => {
      accepted(validateEvent(tick({ v: 0, seq: 0 })));
      accepted(validateEvent(bar({ o: 9.75, c: 12 })));
      accepted(validateEvent(bar({ o: 12, c: 9.75 })));
    });

    it('a StreamEventV1 built by a producer, round-tripped through JSON', () => {
      const srcTs = formatMicros(SRC_TS_US);
      const event: StreamEventV1 = {
        ver: 1,
        provider: 'ibkr',
        symbol: 'AAPL',
        kind: 'tick',
        src_ts: srcTs,
        ingest_ts: srcTs,
        o: 190,
        h: 190,
        l: 190,
        c: 190,
        v: 1,
        seq: 0,
        event_id: makeEventId('ibkr', 'AAPL', srcTs, 0),
      };
      assert.equal(accepted(decodeEvent(JSON.stringify(event))).srcTsUs, SRC_TS_US);
    });
  });

  describe('rejects, with a reason naming the problem', () => {
    it('malformed JSON, including the bare NaN/Infinity some encoders emit', () => {
      for (const text of ['', '{"ver":1,"provider":', 'not json', '{"ver":1,"o":NaN}', '{"h":Infinity}', "{'ver':1}"]) {
        rejectedWith(decodeEvent(text), /^malformed JSON: /);
      }
    });

    it('payloads that are not a JSON object', () => {
      for (const text of ['[1,2,3]', JSON.stringify([tick()]), 'null', '42', '"tick"', 'true']) {
        rejectedWith(decodeEvent(text), /payload is not a JSON object/);
      }
      rejectedWith(validateEvent(undefined), /payload is not a JSON object/);
    });

    it('a version other than 1', () => {
      for (const ver of [2, 0, '1', null]) rejects(tick({ ver }), /field "ver" must be 1/);
      rejects(without(tick(), 'ver'), /field "ver" must be 1/);
    });

    for (const key of ['provider', 'symbol', 'src_ts', 'ingest_ts', 'event_id'] as const) {
      it(`a missing, empty or non-string "${key}"`, () => {
        const reason = new RegExp(`field "${key}" must be a non-empty string`);
        rejects(without(tick(), key), reason);
        rejects(tick({ [key]: '' }), reason);
        rejects(tick({ [key]: 42 }), reason);
        rejects(tick({ [key]: null }), reason);
      });
    }

    it('an unknown or missing kind', () => {
      rejects(tick({ kind: 'quote' }), /field "kind" must be one of tick, bar \(got "quote"\)/);
      rejects(tick({ kind: 'TICK' }), /field "kind"/);
      rejects(without(tick(), 'kind'), /field "kind"/);
    });

    it('a non-string interval', () => {
      rejects(bar({ interval: 60 }), /field "interval" must be a string/);
    });

    for (const key of ['o', 'h', 'l', 'c', 'v'] as const) {
      it(`a non-finite "${key}" as it arrives on the bus: the string "NaN"/"Infinity", null, missing`, () => {
        const reason = new RegExp(`field "${key}" must be a finite number`);
        rejects(tick({ [key]: 'NaN' }), new RegExp(`field "${key}" must be a finite number \\(got "NaN"\\)`));
        rejects(tick({ [key]: 'Infinity' }), reason);
        // JSON.stringify turns NaN and ±Infinity into null.
        rejects(tick({ [key]: Number.NaN }), reason);
        rejects(tick({ [key]: null }), new RegExp(`field "${key}" must be a finite number \\(got null\\)`));
        rejects(without(tick(), key), reason);
        rejects(tick({ [key]: '425.1' }), reason);
        // A JSON number too large for a double parses to Infinity.
        rejectedWith(decodeEvent(JSON.stringify(tick()).replace(`"${key}":`, `"${key}":1e400,"_was":`)), reason);
        // validateEvent also sees values that never went through JSON.
        rejectedWith(validateEvent(tick({ [key]: Number.POSITIVE_INFINITY })), reason);
        rejectedWith(validateEvent(tick({ [key]: Number.NaN })), reason);
      });
    }

    it('a negative volume', () => {
      rejects(tick({ v: -1 }), /field "v" must be >= 0 \(got -1\)/);
      rejects(bar({ v: -0.5 }), /field "v" must be >= 0/);
    });

    it('h below l', () => {
      rejects(bar({ h: 9, l: 10, o: 9.5, c: 9.5 }), /field "h" must be >= "l" \(h=9, l=10\)/);
    });

    it('o or c outside [l, h]', () => {
      const reason = /fields "o" and "c" must lie within \[l, h\]/;
      rejects(bar({ o: 12.01 }), reason);
      rejects(bar({ o: 9.74 }), reason);
      rejects(bar({ c: 12.5 }), reason);
      rejects(bar({ c: 1 }), reason);
      rejects(tick({ o: 425.2 }), reason);
    });

    it('non-positive prices', () => {
      rejects(tick({ o: 0, h: 0, l: 0, c: 0 }), /prices must be > 0 \(l=0\)/);
      rejects(tick({ o: -5, h: -5, l: -5, c: -5 }), /prices must be > 0 \(l=-5\)/);
      rejects(bar({ l: -1 }), /prices must be > 0 \(l=-1\)/);
      // l > 0 and o, c within [l, h] bound every price away from zero.
      rejects(bar({ o: 0 }), /fields "o" and "c" must lie within/);
    });

    it('a seq that is not a non-negative integer', () => {
      for (const seq of [-1, 1.5, '7', null, Number.MAX_SAFE_INTEGER + 1]) {
        rejects(tick({ seq, event_id: `synthetic|SPY|${SRC_TS}|${String(seq)}` }), /field "seq" must be a non-negative integer/);
      }
      rejects(without(tick(), 'seq'), /field "seq" must be a non-negative integer/);
    });

    it('unparseable or impossible timestamps, naming which one', () => {
      const bad = [
        '2025-02-30T00:00:00Z', // no such day: Date.UTC would roll it into March
        '2025-13-01T00:00:00Z',
        '2025-10-24T24:00:00Z',
        '2025-10-24T14:60:00Z',
        '2025-10-24T14:02:60Z',
        '2024-02-30T12:00:00.5Z',
        '2025-10-24 14:02:01Z',
        '2025-10-24T14:02:01', // no zone: ambiguous
        '2025-10-24',
        '1761314521123456',
        'yesterday',
        '2025-10-24T14:02:01.1234567890Z', // more than 9 fraction digits
        '2025-10-24T14:02:01.Z',
      ];
      for (const ts of bad) {
        rejects(tick({ src_ts: ts }), /field "src_ts" is not an ISO-8601 timestamp/);
        rejects(tick({ ingest_ts: ts }), /field "ingest_ts" is not an ISO-8601 timestamp/);
      }
      accepted(validateEvent(tick({ src_ts: '2024-02-29T12:00:00Z' }))); // a leap day is fine
    });

    it('an event_id inconsistent with provider|symbol|src_ts|seq', () => {
      const reason = /field "event_id" must equal provider\|symbol\|src_ts\|seq \(expected "synthetic\|SPY\|2025-10-24T14:02:01\.123456Z\|7"\)/;
      const good = tick();
      rejects({ ...good, event_id: 'synthetic|SPY|2025-10-24T14:02:01.123456Z|8' }, reason);
      rejects({ ...good, event_id: 'synthetic|QQQ|2025-10-24T14:02:01.123456Z|7' }, reason);
      rejects({ ...good, event_id: 'ibkr|SPY|2025-10-24T14:02:01.123456Z|7' }, reason);
      rejects({ ...good, event_id: 'some-uuid' }, reason);
      // The same instant spelled differently is still a different key: ids must be built from the text sent.
      rejects({ ...good, event_id: 'synthetic|SPY|2025-10-24T14:02:01.123456000Z|7' }, reason);
      rejects({ ...good, seq: 8 }, /field "event_id"/);
    });

    it('a "|" inside symbol or provider, which would make event_id ambiguous', () => {
      rejects(tick({ symbol: 'BRK|B' }), /fields "provider" and "symbol" must not contain "\|"/);
      rejects(tick({ provider: 'a|b' }), /fields "provider" and "symbol" must not contain "\|"/);
    });
  });

  // Limits so that nothing valid by contract can be refused by the store (issue 9: a 4,001-character
  // symbol made PostgreSQL reject a whole flush on the primary key's btree row size).
  describe('field limits, so every valid event can be stored', () => {
    it('provider and symbol up to 64 characters, interval up to 16; one more is rejected naming the field and the limit', () => {
      assert.deepEqual({ ...EVENT_FIELD_LIMITS }, { provider: 64, symbol: 64, interval: 16 });
      const longest = accepted(validateEvent(bar({ provider: 'p'.repeat(64), symbol: 'S'.repeat(64), interval: 'i'.repeat(16) })));
      // event_id follows from the bounded parts: at most 64 + 64 + an ISO timestamp + a safe integer.
      assert.ok(longest.eventId.length <= 64 + 64 + 35 + 16 + 3, `event_id of ${longest.eventId.length} characters`);
      rejects(tick({ provider: 'p'.repeat(65) }), /^field "provider" must be at most 64 characters \(got 65\)$/);
      rejects(tick({ symbol: 'S'.repeat(65) }), /^field "symbol" must be at most 64 characters \(got 65\)$/);
      rejects(tick({ symbol: 'S'.repeat(4001) }), /^field "symbol" must be at most 64 characters \(got 4001\)$/);
      rejects(bar({ interval: 'i'.repeat(17) }), /^field "interval" must be at most 16 characters \(got 17\)$/);
    });

    it('a NUL character, which PostgreSQL text cannot hold, in provider, symbol or interval', () => {
      rejects(tick({ symbol: 'SP\u0000Y' }), /^field "symbol" must not contain U\+0000 \(NUL\) at index 2$/);
      rejects(tick({ provider: '\u0000' }), /^field "provider" must not contain U\+0000 \(NUL\) at index 0$/);
      rejects(bar({ interval: '1m\u0000' }), /^field "interval" must not contain U\+0000 \(NUL\) at index 2$/);
      // As it arrives on the bus: the JSON escape decodes to the character.
      rejectedWith(decodeEvent(JSON.stringify(tick()).replace('"symbol":"SPY"', '"symbol":"SPY\\u0000"')), /field "symbol" must not contain U\+0000/);
    });

    it('a lone surrogate (not encodable as UTF-8), but not a well-formed pair', () => {
      rejects(tick({ symbol: 'A\uD83D' }), /^field "symbol" must not contain U\+D83D \(a lone surrogate\) at index 1$/);
      rejects(tick({ symbol: '\uDE00A' }), /^field "symbol" must not contain U\+DE00 \(a lone surrogate\) at index 0$/);
      rejects(tick({ provider: 'x\uDE00\uD83D' }), /field "provider" must not contain U\+DE00/);
      accepted(validateEvent(tick({ symbol: 'ROCKET\uD83D\uDE80' })));
      accepted(decodeEvent(JSON.stringify(tick({ symbol: 'ROCKET\uD83D\uDE80' }))));
    });
  });

  describe('timestamps with a UTC offset', () => {
    it('are converted to UTC epoch microseconds', () => {
      const utcUs = Date.UTC(2025, 9, 24, 14, 2, 1) * 1000 + 500_000;
      assert.equal(micros('2025-10-24T16:02:01.5+02:00'), utcUs);
      assert.equal(micros('2025-10-24T08:32:01.500000-05:30'), utcUs);
      assert.equal(micros('2025-10-24T14:02:01.500000+00:00'), utcUs);
      assert.equal(micros('2025-10-24T14:02:01.500000-00:00'), utcUs);
      // Across a date line: 01:00 at +02:00 is 23:00 UTC the day before.
      assert.equal(micros('2025-03-01T01:00:00+02:00'), Date.UTC(2025, 1, 28, 23) * 1000);
    });

    it('are accepted in an event whose event_id repeats the text as sent', () => {
      const event = accepted(decodeEvent(JSON.stringify(tick({ src_ts: '2025-10-24T16:02:01.123456+02:00', ingest_ts: '2025-10-24T10:02:01.2-04:00' }))));
      assert.equal(event.srcTsUs, SRC_TS_US);
      assert.equal(event.ingestTsUs, SRC_TS_US - 123_456 + 200_000);
      assert.equal(event.eventId, 'synthetic|SPY|2025-10-24T16:02:01.123456+02:00|7');
    });

    it('still reject an impossible local date', () => {
      rejects(tick({ src_ts: '2025-02-30T01:00:00+02:00' }), /field "src_ts" is not an ISO-8601 timestamp/);
    });
  });

  describe('parseIsoToMicros / formatMicros', () => {
    it('round-trip microsecond timestamps exactly', () => {
      for (const iso of [
        '2025-10-24T14:02:01.123456Z',
        '2025-10-24T14:02:01.000000Z',
        '2025-10-24T14:02:01.000001Z',
        '2025-10-24T14:02:01.999999Z',
        '2025-12-31T23:59:59.999999Z',
        '2024-02-29T00:00:00.000500Z',
        '1970-01-01T00:00:00.000000Z',
        '1969-12-31T23:59:59.999999Z',
        '2100-06-15T12:30:45.654321Z',
      ]) {
        assert.equal(formatMicros(micros(iso)), iso);
      }
      for (const us of [0, 1, 999_999, 1_000_000, SRC_TS_US, SRC_TS_US + 876_543, -1, 4_102_444_800_000_000 - 1]) {
        assert.equal(micros(formatMicros(us)), us, `µs ${us}`);
      }
    });

    it('read shorter fractions as fractions of a second', () => {
      const base = Date.UTC(2025, 9, 24, 14, 2, 1) * 1000;
      assert.equal(micros('2025-10-24T14:02:01Z'), base);
      assert.equal(micros('2025-10-24T14:02:01.5Z'), base + 500_000);
      assert.equal(micros('2025-10-24T14:02:01.05Z'), base + 50_000);
      assert.equal(micros('2025-10-24T14:02:01.123Z'), base + 123_000);
      assert.equal(formatMicros(micros('2025-10-24T14:02:01.5Z')), '2025-10-24T14:02:01.500000Z');
    });

    it('truncate (not round) 7 to 9 fraction digits to microseconds', () => {
      const base = Date.UTC(2025, 9, 24, 14, 2, 1) * 1000;
      assert.equal(micros('2025-10-24T14:02:01.123456789Z'), base + 123_456);
      assert.equal(micros('2025-10-24T14:02:01.1234567Z'), base + 123_456);
      assert.equal(micros('2025-10-24T14:02:01.999999999Z'), base + 999_999);
      assert.equal(formatMicros(micros('2025-10-24T14:02:01.999999999Z')), '2025-10-24T14:02:01.999999Z');
      assert.equal(formatMicros(micros('2025-12-31T23:59:59.999999999+00:00')), '2025-12-31T23:59:59.999999Z');
    });

    it('formats with exactly six fraction digits and a Z', () => {
      assert.equal(formatMicros(SRC_TS_US), SRC_TS);
      assert.equal(formatMicros(Date.UTC(2025, 0, 1) * 1000), '2025-01-01T00:00:00.000000Z');
      assert.equal(formatMicros(Date.UTC(2025, 0, 1) * 1000 + 7), '2025-01-01T00:00:00.000007Z');
    });
  });
});
