/**
 * Timestamps travel as ISO-8601 strings with up to microsecond precision; internally they are
 * integer microseconds since the epoch (safe: 2^53 µs is about 285 years).
 */

const CHAR_0 = 48;
const CHAR_DASH = 45;
const CHAR_PLUS = 43;
const CHAR_COLON = 58;
const CHAR_DOT = 46;
const CHAR_T = 84;
const CHAR_Z = 90;
const MS_PER_DAY = 86_400_000;
/** Shortest (`YYYY-MM-DDTHH:MM:SSZ`) and longest (9 fraction digits and an offset) accepted text. */
const ISO_MIN_LENGTH = 20;
const ISO_MAX_LENGTH = 35;

/** The two ASCII digits at `index` as a number, or -1 (also past the end: NaN fails both tests). */
function twoDigits(text: string, index: number): number {
  const tens = text.charCodeAt(index) - CHAR_0;
  const ones = text.charCodeAt(index + 1) - CHAR_0;
  return tens >= 0 && tens <= 9 && ones >= 0 && ones <= 9 ? tens * 10 + ones : -1;
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function daysInMonth(year: number, month: number): number {
  return month === 2 ? (isLeapYear(year) ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`), as `Date.UTC` counts them. */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/**
 * Parses an ISO-8601 UTC/offset timestamp into epoch microseconds; `undefined` when malformed.
 *
 * The grammar is exactly `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)` with ASCII digits; fractions
 * beyond microseconds are cut, not rounded. Rejected although well-formed: impossible dates and
 * times (2025-02-30, hour 24, second 60), offsets past 23:59, and years 0000–0099 (the calendar
 * `Date.UTC` reads as 1900–1999, so they were never accepted). Hand-parsed by char code: it runs
 * twice per event on the consumer's hot path, where a RegExp and a `Date` round trip cost ~0.7 µs.
 */
export function parseIsoToMicros(text: string): number | undefined {
  const length = text.length;
  if (length < ISO_MIN_LENGTH || length > ISO_MAX_LENGTH) return undefined;
  const century = twoDigits(text, 0),
    yearOfCentury = twoDigits(text, 2),
    month = twoDigits(text, 5),
    day = twoDigits(text, 8),
    hour = twoDigits(text, 11),
    minute = twoDigits(text, 14),
    second = twoDigits(text, 17);
  if (
    (century | yearOfCentury | month | day | hour | minute | second) < 0 ||
    text.charCodeAt(4) !== CHAR_DASH ||
    text.charCodeAt(7) !== CHAR_DASH ||
    text.charCodeAt(10) !== CHAR_T ||
    text.charCodeAt(13) !== CHAR_COLON ||
    text.charCodeAt(16) !== CHAR_COLON
  ) {
    return undefined;
  }
  const year = century * 100 + yearOfCentury;
  if (year < 100 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 59) {
    return undefined;
  }
  let index = 19;
  let micros = 0;
  if (text.charCodeAt(index) === CHAR_DOT) {
    index++;
    const fractionStart = index;
    for (let digit = text.charCodeAt(index) - CHAR_0; digit >= 0 && digit <= 9; digit = text.charCodeAt(index) - CHAR_0) {
      if (index - fractionStart < 6) micros = micros * 10 + digit;
      index++;
    }
    const digits = index - fractionStart;
    if (digits === 0 || digits > 9) return undefined;
    for (let scale = digits; scale < 6; scale++) micros *= 10;
  }
  let offsetMin = 0;
  const zone = text.charCodeAt(index);
  if (zone === CHAR_Z) {
    if (index + 1 !== length) return undefined;
  } else if (zone === CHAR_PLUS || zone === CHAR_DASH) {
    const offsetHours = twoDigits(text, index + 1),
      offsetMinutes = twoDigits(text, index + 4);
    if (index + 6 !== length || offsetHours < 0 || offsetMinutes < 0 || text.charCodeAt(index + 3) !== CHAR_COLON) return undefined;
    if (offsetHours > 23 || offsetMinutes > 59) return undefined;
    offsetMin = (zone === CHAR_DASH ? -1 : 1) * (offsetHours * 60 + offsetMinutes);
  } else {
    return undefined;
  }
  const ms = daysFromCivil(year, month, day) * MS_PER_DAY + hour * 3_600_000 + minute * 60_000 + second * 1000;
  // The same expression as ever, so even beyond 2^53 µs (year 2255+) the rounding is the same.
  return (ms - offsetMin * 60_000) * 1000 + micros;
}

/** `'00'`…`'99'` and `'000'`…`'999'`: digits by table lookup instead of String() + padStart per field. */
const TWO_DIGITS = Array.from({ length: 100 }, (_, n) => String(n).padStart(2, '0'));
const THREE_DIGITS = Array.from({ length: 1000 }, (_, n) => String(n).padStart(3, '0'));

/** Epoch ms range whose ISO year has four digits (0000–9999); outside it `toISOString` writes ±YYYYYY. */
const FOUR_DIGIT_YEAR_MIN_MS = -62_167_219_200_000;
const FOUR_DIGIT_YEAR_END_MS = 253_402_300_800_000;

/**
 * `YYYY-MM-DDTHH:MM:SS.` of the second formatted last: a producer stamps thousands of events per
 * second, so most calls only append the microseconds.
 */
let cachedSecond = Number.NaN;
let cachedSecondPrefix = '';

/** `YYYY-MM-DDTHH:MM:SS.` of an epoch second of a four-digit year (H. Hinnant's `civil_from_days`). */
function secondPrefix(epochSecond: number): string {
  const days = Math.floor(epochSecond / 86_400);
  const secondOfDay = epochSecond - days * 86_400;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthIndex = Math.floor((5 * dayOfYear + 2) / 153); // March = 0
  const day = dayOfYear - Math.floor((153 * monthIndex + 2) / 5) + 1;
  const month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const hour = Math.floor(secondOfDay / 3600);
  const minute = Math.floor((secondOfDay - hour * 3600) / 60);
  const second = secondOfDay - hour * 3600 - minute * 60;
  const yearHigh = Math.floor(year / 100);
  return `${TWO_DIGITS[yearHigh]}${TWO_DIGITS[year - yearHigh * 100]}-${TWO_DIGITS[month]}-${TWO_DIGITS[day]}T${TWO_DIGITS[hour]}:${TWO_DIGITS[minute]}:${TWO_DIGITS[second]}.`;
}

/** The general formatter, for what the fast path of {@link formatMicros} does not cover. */
function formatMicrosViaDate(us: number): string {
  const ms = Math.floor(us / 1000);
  const base = new Date(ms).toISOString(); // 2025-10-24T14:02:01.234Z
  const micros = String(us - Math.floor(us / 1_000_000) * 1_000_000).padStart(6, '0');
  return `${base.slice(0, 19)}.${micros}Z`;
}

/**
 * Formats epoch microseconds as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
 *
 * Calendar arithmetic and digit tables instead of a `Date` and `toISOString` per call (the bench
 * publisher formats every event); the second is the same floor of `us / 1000` and the
 * microseconds the same `us - floor(us / 1e6) · 1e6` as ever, so results match bit for bit, and
 * inputs outside years 0000–9999 or with odd microseconds take the general path.
 */
export function formatMicros(us: number): string {
  const ms = Math.floor(us / 1000);
  const micros = us - Math.floor(us / 1_000_000) * 1_000_000;
  if (!(ms >= FOUR_DIGIT_YEAR_MIN_MS && ms < FOUR_DIGIT_YEAR_END_MS) || !(micros >= 0 && micros < 1_000_000) || !Number.isInteger(micros)) {
    return formatMicrosViaDate(us);
  }
  const epochSecond = Math.floor(ms / 1000);
  if (epochSecond !== cachedSecond) {
    cachedSecondPrefix = secondPrefix(epochSecond);
    cachedSecond = epochSecond;
  }
  const millis = Math.floor(micros / 1000);
  // Short strings concatenate flat; the tail joins the prefix as one piece.
  const tail = THREE_DIGITS[millis] + THREE_DIGITS[micros - millis * 1000] + 'Z';
  return cachedSecondPrefix + tail;
}

/**
 * Formats epoch milliseconds as a UTC clock time, `HH:MM:SS`, or `HH:MM:SS.mmm` with `millis`,
 * for status and progress lines where the date is implied.
 *
 * @example
 * formatClock(Date.UTC(2025, 9, 24, 14, 2, 1, 234))                   // '14:02:01'
 * formatClock(Date.UTC(2025, 9, 24, 14, 2, 1, 234), { millis: true }) // '14:02:01.234'
 */
export function formatClock(ms: number, options: { readonly millis?: boolean } = {}): string {
  return new Date(ms).toISOString().slice(11, options.millis === true ? 23 : 19);
}

const DURATION_FACTORS_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses durations such as `500ms`, `2s`, `5m`, `1h`, `1d` (a bare number is milliseconds) into
 * milliseconds; `undefined` when malformed or negative. Zero is a valid duration: callers that
 * need a positive span check `> 0` themselves.
 *
 * @example
 * parseDurationMs('15m') // 900000
 * parseDurationMs('0s')  // 0
 * parseDurationMs('-1s') // undefined
 */
export function parseDurationMs(text: string | number): number | undefined {
  if (typeof text === 'number') return Number.isFinite(text) && text >= 0 ? text : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * DURATION_FACTORS_MS[m[2] ?? 'ms'];
}

/** Bounds of a micro-batch window (`micro_batch.window_ms`, `--window` of `stream micro-batch` and `stream replay`). */
export const WINDOW_MIN_MS = 500;
export const WINDOW_MAX_MS = 5000;

/** A `--window` value (`2s`, `500ms`, `1500`) as whole ms within {@link WINDOW_MIN_MS}..{@link WINDOW_MAX_MS}, else undefined. */
export function parseWindowMs(text: string): number | undefined {
  const ms = parseDurationMs(text);
  return ms !== undefined && Number.isInteger(ms) && ms >= WINDOW_MIN_MS && ms <= WINDOW_MAX_MS ? ms : undefined;
}

/** Renders a window length as the bar `interval` label: 2000 → `2s`, 500 → `500ms`, 60000 → `1m`. */
export function intervalLabel(windowMs: number): string {
  if (windowMs % 60_000 === 0) return `${windowMs / 60_000}m`;
  if (windowMs % 1000 === 0) return `${windowMs / 1000}s`;
  return `${windowMs}ms`;
}
