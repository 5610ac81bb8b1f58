/**
 * Start of the epoch-aligned tumbling window `[start, start + windowMs)` that holds an event,
 * in epoch milliseconds. An event exactly at a window's end belongs to the next window.
 *
 * Works on the event's microseconds so that sub-millisecond timestamps are never rounded across
 * a boundary: `1_999_999 µs` is in window `0` of a 2 s window, `2_000_000 µs` in window `2000`.
 * The arithmetic is exact for every safe-integer `srcTsUs` (`%` on doubles is exact, and the
 * subtraction yields a multiple of the window that is itself a safe integer).
 *
 * @param srcTsUs - event (source) time, epoch microseconds
 * @param windowMs - window length in milliseconds, a positive integer
 *
 * @example
 * ```ts
 * windowStartMs(1_999_999, 2000); // 0
 * windowStartMs(2_000_000, 2000); // 2000
 * ```
 */
export function windowStartMs(srcTsUs: number, windowMs: number): number {
  const windowUs = windowMs * 1000;
  let offsetUs = srcTsUs % windowUs;
  // `%` keeps the dividend's sign; shift so that pre-epoch times floor instead of truncating.
  if (offsetUs < 0) offsetUs += windowUs;
  return (srcTsUs - offsetUs) / 1000;
}
