/**
 * Time-range and chunk arithmetic of replays. Pure and import-free, so the replay workflow (which
 * must stay deterministic) and the activities share one definition of "chunk".
 */

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;

/**
 * Parses a replay bound: a date (`2025-10-01`, UTC midnight) or an ISO-8601 timestamp with a zone
 * (`2025-10-01T13:30:00Z`, `2025-10-01T09:30:00-04:00`). Returns epoch ms, or `undefined`.
 */
export function parseReplayBound(text: string): number | undefined {
  if (typeof text !== 'string') return undefined;
  const date = DATE_ONLY.exec(text.trim());
  if (date) {
    const [y, m, d] = [Number(date[1]), Number(date[2]), Number(date[3])];
    const ms = Date.UTC(y, m - 1, d);
    const check = new Date(ms);
    return check.getUTCFullYear() === y && check.getUTCMonth() === m - 1 && check.getUTCDate() === d ? ms : undefined;
  }
  if (!ISO.test(text.trim())) return undefined;
  const ms = Date.parse(text.trim());
  return Number.isFinite(ms) ? ms : undefined;
}

export const alignDown = (ms: number, step: number): number => Math.floor(ms / step) * step;
export const alignUp = (ms: number, step: number): number => Math.ceil(ms / step) * step;

/** A replay's effective plan: the range widened to whole windows, and the chunk span. */
export interface ReplayRange {
  /** Inclusive start, a window boundary (epoch ms). */
  readonly fromMs: number;
  /** Exclusive end, a window boundary (epoch ms). */
  readonly toMs: number;
  readonly windowMs: number;
  /** A positive multiple of `windowMs`, so no window straddles two chunks. */
  readonly chunkSpanMs: number;
}

/**
 * Widens `[fromMs, toMs)` to whole windows (a partial window at an edge would overwrite a full
 * live bar with a partial one) and rounds the chunk span up to a multiple of the window.
 */
export function replayRange(fromMs: number, toMs: number, windowMs: number, chunkSpanMs: number): ReplayRange {
  if (!(toMs > fromMs))
    throw new RangeError(`replay range is empty: to (${new Date(toMs).toISOString()}) must be after from (${new Date(fromMs).toISOString()})`);
  return {
    fromMs: alignDown(fromMs, windowMs),
    toMs: alignUp(toMs, windowMs),
    windowMs,
    chunkSpanMs: Math.max(windowMs, alignUp(chunkSpanMs, windowMs)),
  };
}

/**
 * The chunk that contains `cursorMs`: chunks are aligned to the epoch in `chunkSpanMs` steps and
 * clipped to the range, so their boundaries are window boundaries.
 */
export function chunkAt(range: ReplayRange, cursorMs: number): { fromMs: number; toMs: number } {
  const fromMs = Math.max(range.fromMs, alignDown(cursorMs, range.chunkSpanMs));
  return { fromMs, toMs: Math.min(range.toMs, alignDown(cursorMs, range.chunkSpanMs) + range.chunkSpanMs) };
}

/** Where the chunk after `chunkToMs` starts, skipping straight to the chunk holding `nextDataMs` (no data in between). */
export function nextCursor(range: ReplayRange, chunkToMs: number, nextDataMs: number | null): number {
  if (nextDataMs === null) return range.toMs;
  return Math.max(chunkToMs, Math.min(range.toMs, alignDown(nextDataMs, range.chunkSpanMs)));
}
