/**
 * `--warm-features`: history bars stored before the consumers start, so their feature windows are
 * warm from the first live bar.
 */
import type { Kysely } from 'kysely';
import { intervalLabel, parseDurationMs, parseIsoToMicros } from '../pipeline/contracts/index.js';
import type { Bar } from '../pipeline/contracts/index.js';
import { SyntheticProducer } from '../pipeline/producers/index.js';
import { StoreClient } from '../store/index.js';
import type { Database } from '../store/index.js';
import { progress } from './bench-progress.js';
import type { BenchSummary } from './bench-report.js';
import { fmtMs } from './bench-report.js';
import type { RunPlan } from './run-plan.js';

/**
 * Bars of the run's provider for every symbol, one per window, covering
 * `[endMs − spanMs, endMs)`, aggregated from a SyntheticProducer's ticks (1 per symbol per second,
 * the config's volatility, start prices as the live feed's, so prices join up). The micro-batch
 * activity replays stored bars of its shard into its feature engine when it starts
 * (`warmFeatures`), so the first live bar already sees full windows.
 */
function warmUpBars(
  provider: string,
  symbols: readonly string[],
  seed: number,
  priceVolatility: number,
  windowMs: number,
  spanMs: number,
  endMs: number,
): Bar[] {
  const startMs = endMs - spanMs;
  const producer = new SyntheticProducer({ provider, symbols, seed: seed + 1, tickRate: 1, priceVolatility });
  const events = producer.generateFinite({ count: Math.ceil(spanMs / 1000) * symbols.length, startUs: startMs * 1000 });
  const interval = intervalLabel(windowMs);
  const bars = new Map<string, { -readonly [K in keyof Bar]: Bar[K] }>();
  for (const e of events) {
    const tsMs = Math.floor(parseIsoToMicros(e.src_ts)! / 1000 / windowMs) * windowMs;
    if (tsMs < startMs || tsMs >= endMs) continue;
    const key = `${e.symbol}|${tsMs}`;
    const bar = bars.get(key);
    if (bar === undefined) {
      bars.set(key, { provider, symbol: e.symbol, interval, tsMs, open: e.o, high: e.h, low: e.l, close: e.c, volume: e.v, trades: 1 });
    } else {
      bar.high = Math.max(bar.high, e.h);
      bar.low = Math.min(bar.low, e.l);
      bar.close = e.c;
      bar.volume += e.v;
      bar.trades++;
    }
  }
  return [...bars.values()].sort((a, b) => a.tsMs - b.tsMs);
}

/** Stores the history bars; live bars start at the returned `toMs` (window starts in `[fromMs, toMs)` are history). */
export async function storeWarmUpBars(plan: RunPlan, db: Kysely<Database>): Promise<NonNullable<BenchSummary['run']['warmUp']>> {
  const { config, tag, symbols, windowMs } = plan;
  // What the micro-batch activity replays at its start: the longest horizon (or 16 windows for RSI) and a margin.
  const longestMs = Math.max(16 * windowMs, ...config.features.windows.map((w) => parseDurationMs(w.horizon) ?? 0));
  const spanMs = Math.ceil(longestMs / windowMs) * windowMs + 4 * windowMs;
  // Only windows that ended before now: live events land in this window or later ones.
  const endMs = Math.floor(Date.now() / windowMs) * windowMs;
  const bars = warmUpBars(tag, symbols, config.producers.synthetic.seed, config.producers.synthetic.price_volatility, windowMs, spanMs, endMs);
  await new StoreClient(db).upsertBars(bars);
  progress(`warm-up: stored ${bars.length} history bars of ${tag} over ${fmtMs(spanMs)} before ${new Date(endMs).toISOString()}`);
  return { bars: bars.length, fromMs: endMs - spanMs, toMs: endMs };
}
