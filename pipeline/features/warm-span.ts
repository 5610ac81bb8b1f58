import { parseDurationMs } from '../contracts/index.js';
import { DEFAULT_RSI_PERIOD } from './feature-engine.js';
import type { FeatureWindowSpec } from './feature-kind.js';
import { featureKindOf } from './feature-kind.js';

/**
 * Warm-up bars per RSI period. Wilder's RSI never forgets (each bar keeps (p−1)/p of the previous
 * average), so a series warmed from a cut-off differs from one computed since the data began by
 * ((p−1)/p)^bars of the seeding error: 40 periods (560 bars at p = 14) bring that to ~1e-18, below
 * the rounding of a double.
 */
const RSI_SETTLE_PERIODS = 40;

/**
 * How much stored history rebuilds a {@link FeatureEngine}'s windows to the values one continuous
 * pass would have: the longest feature horizon (at least 16 windows), two windows of margin, and
 * the RSI settling span. Used by the live consumer on start and by replays before each chunk.
 */
export function featureWarmSpanMs(windows: readonly FeatureWindowSpec[], windowMs: number): number {
  const longest = Math.max(0, ...windows.map((w) => (w.horizon === undefined ? 0 : (parseDurationMs(w.horizon) ?? 0))));
  const rsiPeriods = [DEFAULT_RSI_PERIOD, ...windows.filter((w) => featureKindOf(w) === 'rsi').map((w) => w.period ?? DEFAULT_RSI_PERIOD)];
  return Math.max(longest, 16 * windowMs) + 2 * windowMs + RSI_SETTLE_PERIODS * Math.max(...rsiPeriods) * windowMs;
}
