import assert from 'node:assert/strict';
import { formatMicros, parseIsoToMicros } from '../../pipeline/contracts/index.js';
import { prng } from '../helpers/prng.js';

// The RegExp + Date implementations that parseIsoToMicros and formatMicros replaced (kept verbatim
// as the oracle): the hand-written ones must give the same result for every input.

const REFERENCE_ISO_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

function referenceParseIsoToMicros(text: string): number | undefined {
  const m = REFERENCE_ISO_RE.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m as unknown as [string, string, string, string, string, string, string, string | undefined, string];
  const year = Number(y),
    month = Number(mo),
    day = Number(d),
    hour = Number(h),
    minute = Number(mi),
    second = Number(s);
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(ms);
  if (
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    check.getUTCHours() !== hour ||
    check.getUTCMinutes() !== minute ||
    check.getUTCSeconds() !== second
  ) {
    return undefined;
  }
  let offsetMin = 0;
  if (zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const offsetHours = Number(zone.slice(1, 3)),
      offsetMinutes = Number(zone.slice(4, 6));
    if (offsetHours > 23 || offsetMinutes > 59) return undefined;
    offsetMin = sign * (offsetHours * 60 + offsetMinutes);
  }
  const micros = frac ? Number((frac + '000000').slice(0, 6)) : 0;
  return (ms - offsetMin * 60_000) * 1000 + micros;
}

function referenceFormatMicros(us: number): string {
  const ms = Math.floor(us / 1000);
  const base = new Date(ms).toISOString();
  const micros = String(us - Math.floor(us / 1_000_000) * 1_000_000).padStart(6, '0');
  return `${base.slice(0, 19)}.${micros}Z`;
}

/** Result or thrown error, so that both implementations can be compared on inputs that throw. */
function outcome<T>(f: () => T): { value: T } | { error: string } {
  try {
    return { value: f() };
  } catch (err) {
    return { error: `${(err as Error).name}: ${(err as Error).message}` };
  }
}

describe('parseIsoToMicros / formatMicros against the RegExp + Date reference', () => {
  const random = prng(0x150_8601);
  const int = (lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo + 1));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const pad = (n: number, width: number): string => String(n).padStart(width, '0');

  /** A timestamp-shaped string whose fields often sit at or past their limits. */
  function isoLike(): string {
    const year = pick([int(0, 9999), int(0, 120), int(1899, 2101), int(2024, 2026), pick([1600, 1700, 1900, 2000, 2100, 2400, 9999])]);
    const month = random() < 0.9 ? int(1, 12) : int(0, 19);
    const day = random() < 0.8 ? int(1, 28) : int(0, 32);
    const hour = random() < 0.9 ? int(0, 23) : int(0, 29);
    const minute = random() < 0.9 ? int(0, 59) : int(0, 69);
    const second = random() < 0.9 ? int(0, 59) : int(0, 69);
    const digits = random() < 0.3 ? 0 : int(0, 11);
    const fraction = digits === 0 ? (random() < 0.05 ? '.' : '') : `.${Array.from({ length: digits }, () => int(0, 9)).join('')}`;
    const zone =
      random() < 0.5
        ? 'Z'
        : `${pick(['+', '-', '+', '-', '−', '±'])}${pad(random() < 0.9 ? int(0, 23) : int(0, 99), 2)}${pick([':', ':', ':', ''])}${pad(random() < 0.9 ? int(0, 59) : int(0, 99), 2)}`;
    return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}${fraction}${zone}`;
  }

  const NOISE = ['0', '9', '5', '-', ':', '.', 'T', 't', 'Z', 'z', '+', ' ', '\n', '\u0000', '٣', '１', '/', 'a', ''];

  /** One to three edits of a timestamp: replace, insert or delete a character, or cut the end. */
  function mutated(text: string): string {
    let out = text;
    for (let edits = int(1, 3); edits > 0; edits--) {
      const at = int(0, out.length);
      const kind = int(0, 3);
      if (kind === 0) out = out.slice(0, at) + pick(NOISE) + out.slice(at + 1);
      else if (kind === 1) out = out.slice(0, at) + pick(NOISE) + out.slice(at);
      else if (kind === 2) out = out.slice(0, at) + out.slice(at + 1);
      else out = out.slice(0, at);
    }
    return out;
  }

  it('parses 400,000 random valid, impossible and malformed timestamps exactly as the reference does', () => {
    let accepted = 0,
      rejected = 0;
    for (let i = 0; i < 400_000; i++) {
      const base = isoLike();
      const text = i % 3 === 2 ? mutated(base) : base;
      const expected = referenceParseIsoToMicros(text);
      const actual = parseIsoToMicros(text);
      if (actual !== expected && !(Number.isNaN(actual) && Number.isNaN(expected))) {
        assert.fail(`parseIsoToMicros(${JSON.stringify(text)}) = ${actual}, reference ${expected}`);
      }
      if (expected === undefined) rejected++;
      else accepted++;
    }
    // The generator must exercise both sides, or the comparison proves little.
    assert.ok(accepted > 100_000 && rejected > 100_000, `accepted ${accepted}, rejected ${rejected}`);
  });

  it('agrees on the edges: leap days, impossible dates, years 0000–0099, offsets, fraction lengths', () => {
    const cases = [
      '2024-02-29T00:00:00Z',
      '2025-02-29T00:00:00Z',
      '2025-02-30T12:00:00Z',
      '2000-02-29T23:59:59.999999999Z',
      '1900-02-29T00:00:00Z',
      '2100-02-29T00:00:00Z',
      '2400-02-29T00:00:00Z',
      '0000-01-01T00:00:00Z',
      '0099-12-31T23:59:59Z',
      '0100-01-01T00:00:00Z',
      '1969-12-31T23:59:59.999999Z',
      '1970-01-01T00:00:00-00:00',
      '9999-12-31T23:59:59.999999+23:59',
      '9999-12-31T23:59:59.999999-23:59',
      '2025-10-24T24:00:00Z',
      '2025-10-24T23:60:00Z',
      '2025-10-24T23:59:60Z',
      '2025-04-31T00:00:00Z',
      '2025-13-01T00:00:00Z',
      '2025-00-01T00:00:00Z',
      '2025-10-00T00:00:00Z',
      '2025-10-24T14:02:01+24:00',
      '2025-10-24T14:02:01+23:60',
      '2025-10-24T14:02:01.Z',
      '2025-10-24T14:02:01.1234567890Z',
      '2025-10-24T14:02:01.123456789Z',
      '2025-10-24T14:02:01.1Z',
      '2025-10-24T14:02:01z',
      '2025-10-24t14:02:01Z',
      '2025-10-24T14:02:01Z\n',
      ' 2025-10-24T14:02:01Z',
      '2025-10-24T14:02:01+0200',
      '2025-10-24T14:02:01',
      '',
      '+02025-10-24T14:02:01Z',
    ];
    for (const text of cases) assert.equal(parseIsoToMicros(text), referenceParseIsoToMicros(text), JSON.stringify(text));
  });

  it('formats 400,000 random epoch microseconds exactly as the reference does (or throws the same error)', () => {
    const NOW_US = Date.UTC(2025, 9, 24, 14) * 1000;
    const generators: (() => number)[] = [
      () => int(0, 2 ** 31) * 2 ** 22 + int(0, 2 ** 22 - 1), // [0, 2^53)
      () => -(int(0, 2 ** 31) * 2 ** 22 + int(0, 2 ** 22 - 1)),
      () => NOW_US + int(-1e12, 1e12),
      () => int(0, 1e6) * 1e6 + pick([0, 1, 999_999, int(0, 999_999)]),
      () => pick([-62_167_219_200_000_000, 253_402_300_800_000_000, -62_167_219_200_000_001, 253_402_300_799_999_999, 0]) + int(-2000, 2000),
      () => (random() - 0.5) * 2 ** 64, // far outside the Date range
      () => NOW_US + random() * 1e9, // fractional microseconds
      () => pick([0, -0, 1, -1, 999, 1000, 999_999, 1_000_000, Number.NaN, Infinity, -Infinity, 8.64e18, -8.64e18, 8.64e18 + 1e6]),
    ];
    for (let i = 0; i < 400_000; i++) {
      const us = generators[i % generators.length]();
      assert.deepEqual(
        outcome(() => formatMicros(us)),
        outcome(() => referenceFormatMicros(us)),
        `formatMicros(${us})`,
      );
    }
  });

  it('round-trips every microsecond it formats through parseIsoToMicros (years 0100–2200, below 2^53 µs)', () => {
    for (let i = 0; i < 100_000; i++) {
      const us = int(Date.UTC(100, 0, 1) / 1000, Date.UTC(2200, 11, 31) / 1000) * 1e6 + int(0, 999_999);
      assert.equal(parseIsoToMicros(formatMicros(us)), us, `µs ${us}`);
    }
  });
});
