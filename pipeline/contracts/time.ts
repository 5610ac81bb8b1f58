/**
 * Timestamps travel as ISO-8601 strings with up to microsecond precision; internally they are
 * integer microseconds since the epoch (safe: 2^53 µs is about 285 years).
 */

const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/** Parses an ISO-8601 UTC/offset timestamp into epoch microseconds; `undefined` when malformed. */
export function parseIsoToMicros(text: string): number | undefined {
  const m = ISO_RE.exec(text);
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
  // Date.UTC silently rolls 2025-02-30 over into March; a round trip catches it.
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

/** Formats epoch microseconds as `YYYY-MM-DDTHH:MM:SS.ffffffZ`. */
export function formatMicros(us: number): string {
  const ms = Math.floor(us / 1000);
  const base = new Date(ms).toISOString(); // 2025-10-24T14:02:01.234Z
  const micros = String(us - Math.floor(us / 1_000_000) * 1_000_000).padStart(6, '0');
  return `${base.slice(0, 19)}.${micros}Z`;
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
