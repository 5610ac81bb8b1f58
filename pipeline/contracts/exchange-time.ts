/**
 * Exchange time of the US equity sessions mdp handles (New York). Computed, not looked up, so the
 * sample-day generator, the workflows (which must stay deterministic) and the activities agree on
 * every machine, whatever its time-zone data.
 */

/** Day of month of the `n`-th Sunday (1-based) of a month. */
function nthSunday(year: number, monthIndex: number, n: number): number {
  const firstDow = new Date(Date.UTC(year, monthIndex, 1)).getUTCDay();
  return 1 + ((7 - firstDow) % 7) + 7 * (n - 1);
}

/**
 * UTC offset of New York at an instant, in hours: −4 from 02:00 local on the second Sunday of March
 * to 02:00 local on the first Sunday of November (US rules since 2007), −5 otherwise.
 */
export function newYorkOffsetAt(ms: number): number {
  const year = new Date(ms).getUTCFullYear();
  const start = Date.UTC(year, 2, nthSunday(year, 2, 2), 7); // 02:00 EST
  const end = Date.UTC(year, 10, nthSunday(year, 10, 1), 6); // 02:00 EDT
  return ms >= start && ms < end ? -4 : -5;
}

/** UTC offset of New York on a date (its regular session, whatever the hour of the switch), in hours. */
export function newYorkOffsetHours(year: number, monthIndex: number, day: number): number {
  return newYorkOffsetAt(Date.UTC(year, monthIndex, day, 12));
}

/** New York wall-clock time of an instant as an ISO-like string without zone: `2025-10-01T09:30:00`. */
function newYorkLocal(ms: number): string {
  return new Date(ms + newYorkOffsetAt(ms) * 3_600_000).toISOString().slice(0, 19);
}

/** The New York date of an instant, `2025-10-01`. */
export function newYorkDate(ms: number): string {
  return newYorkLocal(ms).slice(0, 10);
}

/**
 * A time range `[fromMs, toMs)` in New York time, for people: `09:30–09:45 ET`, with seconds when
 * a bound has them (`09:30:00–09:30:02 ET`), with the dates when asked or when the range crosses
 * midnight (`2025-10-01 09:30 – 10-02 09:30 ET`).
 *
 * @example
 * formatNewYorkRange(Date.UTC(2025, 9, 1, 13, 30), Date.UTC(2025, 9, 1, 13, 45)) // '09:30–09:45 ET'
 */
export function formatNewYorkRange(fromMs: number, toMs: number, options: { readonly dates?: boolean } = {}): string {
  const from = newYorkLocal(fromMs);
  const to = newYorkLocal(toMs);
  const seconds = !from.endsWith(':00') || !to.endsWith(':00');
  const clock = (local: string) => local.slice(11, seconds ? 19 : 16);
  const sameDay = from.slice(0, 10) === to.slice(0, 10);
  if (sameDay && options.dates !== true) return `${clock(from)}–${clock(to)} ET`;
  if (sameDay) return `${from.slice(0, 10)} ${clock(from)}–${clock(to)} ET`;
  const toDate = from.slice(0, 4) === to.slice(0, 4) ? to.slice(5, 10) : to.slice(0, 10);
  return `${from.slice(0, 10)} ${clock(from)} – ${toDate} ${clock(to)} ET`;
}
