/**
 * Chunk arithmetic of historical backfills. Pure and import-free, so the backfill workflow (which
 * must stay deterministic) and the planning activity share one definition of "chunk".
 */

/** A backfill's range, widened to whole bars, and its chunk span (a multiple of the bar). */
export interface BackfillRange {
  /** Inclusive start, a bar boundary (epoch ms). */
  readonly fromMs: number;
  /** Exclusive end, a bar boundary (epoch ms). */
  readonly toMs: number;
  readonly chunkMs: number;
}

/**
 * Widens `[fromMs, toMs)` to whole bars (a request ends on a whole second and bars start on bar
 * boundaries) and keeps the chunk span, which must be a positive multiple of the bar.
 */
export function backfillRange(fromMs: number, toMs: number, barMs: number, chunkMs: number): BackfillRange {
  if (!(toMs > fromMs)) throw new RangeError(`range is empty: to (${new Date(toMs).toISOString()}) must be after from (${new Date(fromMs).toISOString()})`);
  if (!(barMs > 0) || !(chunkMs > 0) || chunkMs % barMs !== 0)
    throw new RangeError(`chunk span ${chunkMs} ms must be a positive multiple of the bar (${barMs} ms)`);
  return { fromMs: Math.floor(fromMs / barMs) * barMs, toMs: Math.ceil(toMs / barMs) * barMs, chunkMs };
}

/** How many chunks the range has: cells of an epoch-aligned grid of `chunkMs` that it touches. */
export function backfillChunkCount(range: BackfillRange): number {
  return Math.ceil(range.toMs / range.chunkMs) - Math.floor(range.fromMs / range.chunkMs);
}

/**
 * Chunk `index` (0-based) of the range: a cell of the epoch-aligned grid, clipped to the range. The
 * grid does not depend on the range, so two fetches of overlapping ranges share their inner chunks
 * (and the second finds them already written).
 */
export function backfillChunk(range: BackfillRange, index: number): { fromMs: number; toMs: number } {
  const start = (Math.floor(range.fromMs / range.chunkMs) + index) * range.chunkMs;
  return { fromMs: Math.max(range.fromMs, start), toMs: Math.min(range.toMs, start + range.chunkMs) };
}
