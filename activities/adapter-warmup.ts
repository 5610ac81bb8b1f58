/**
 * Rebuilding an adapter's per-symbol state (rule edges, cooldowns) from stored bars, so a fresh
 * adapter continues exactly where one continuous pass would be: the bars of the warm-up span before
 * a series' first snapshot go through a {@link FeatureEngine} and the adapter, and their signals are
 * dropped. Used by replay chunks and by every run of a live inference consumer (a restart, a
 * hand-over to another worker version, a model reload), which starts on a fresh adapter.
 */
import type { Bar, InferenceAdapter } from '../pipeline/contracts/index.js';
import type { FeatureWindowSpec } from '../pipeline/features/index.js';
import type { FeatureEngine } from '../pipeline/features/index.js';
import { featureWarmSpanMs } from '../pipeline/features/index.js';
import type { StoredBarsReader } from './replay-chunk.js';

/**
 * How far before a series' first snapshot its features and rule state are rebuilt: the features'
 * warm-up span ({@link featureWarmSpanMs}) plus the longest rule cooldown (so a firing just before
 * still silences the rule after it, as it would in one pass). A cooldown chain longer than that
 * (firings each inside the previous one's cooldown for the whole span) is the one case not
 * reproduced exactly.
 */
export function warmSpanMs(windows: readonly FeatureWindowSpec[], windowMs: number, maxCooldownMs: number): number {
  return featureWarmSpanMs(windows, windowMs) + Math.max(0, maxCooldownMs);
}

/** Orders bars like the live consumer sees them: by window, then symbol. */
export function byTimeThenSymbol(a: Bar, b: Bar): number {
  return a.tsMs - b.tsMs || (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0);
}

/** A series to warm, and the start of its first bar the adapter will see for real. */
export interface WarmSeries {
  readonly provider: string;
  readonly symbol: string;
  readonly interval: string;
  readonly beforeMs: number;
}

/**
 * Feeds each series' stored bars of `[beforeMs - warmMs, beforeMs)` through `engine` and `adapter`
 * in window order, dropping the signals; one read per (provider, interval). Returns the bars fed.
 */
export async function warmOnStoredBars(options: {
  readonly adapter: InferenceAdapter;
  readonly engine: FeatureEngine;
  readonly readStoredBars: StoredBarsReader;
  readonly series: readonly WarmSeries[];
  readonly warmMs: number;
}): Promise<number> {
  const { series, warmMs } = options;
  if (series.length === 0) return 0;
  const groups = new Map<string, WarmSeries[]>();
  for (const s of series) {
    const key = `${s.provider}\u0000${s.interval}`;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  const warm: Bar[] = [];
  for (const members of groups.values()) {
    const { provider, interval } = members[0];
    const before = new Map(members.map((s) => [s.symbol, s.beforeMs]));
    const fromMs = Math.min(...members.map((s) => s.beforeMs)) - warmMs;
    const toMs = Math.max(...members.map((s) => s.beforeMs));
    for (const bar of await options.readStoredBars({ provider, interval, fromMs, toMs })) {
      const until = before.get(bar.symbol);
      if (until !== undefined && bar.tsMs < until && bar.tsMs >= until - warmMs) warm.push(bar);
    }
  }
  warm.sort(byTimeThenSymbol);
  for (const bar of warm) await options.adapter.evaluate(options.engine.update(bar));
  return warm.length;
}
