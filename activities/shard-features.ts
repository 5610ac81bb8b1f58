import type { Bus } from '../pipeline/bus/index.js';
import { shardOf } from '../pipeline/bus/index.js';
import type { Bar, BarSink, ShardPosition } from '../pipeline/contracts/index.js';
import { intervalLabel } from '../pipeline/contracts/index.js';
import type { FeatureWindowSpec } from '../pipeline/features/index.js';
import { FeatureEngine, featureWarmSpanMs } from '../pipeline/features/index.js';
import type { Metrics } from '../pipeline/telemetry/index.js';

/** Most windows whose snapshots a restarted owner re-publishes (the feature engine answers re-delivered bars this far back). */
const REPUBLISH_WINDOWS = 32;

/** Which bars are this shard's: its stream carries only the instruments that hash to it. */
export interface ShardOfBars {
  readonly shard: number;
  readonly shards: number;
  readonly windowMs: number;
}

/**
 * A micro-batch owner's feature windows and their snapshot stream: warmed from stored bars on
 * start, a snapshot per committed bar after each commit.
 */
export class ShardFeatures {
  readonly #engine: FeatureEngine;
  readonly #windows: readonly FeatureWindowSpec[];

  constructor(
    readonly bus: Bus,
    readonly stream: string,
    windows: readonly FeatureWindowSpec[],
    readonly metrics: Metrics,
  ) {
    this.#engine = new FeatureEngine({ windows });
    this.#windows = windows;
  }

  /**
   * Rebuilds the windows from stored bars, so a restarted consumer's features (and the signals
   * derived from them) do not start warming up from scratch. Returns the bars replayed.
   */
  async warm(bars: BarSink, of: ShardOfBars): Promise<number> {
    const fromMs = Date.now() - featureWarmSpanMs(this.#windows, of.windowMs);
    let replayed = 0;
    for (const bar of await bars.listBars({ interval: intervalLabel(of.windowMs), fromMs })) {
      if (shardOf(bar.provider, bar.symbol, of.shards) !== of.shard) continue;
      this.#engine.update(bar);
      replayed++;
    }
    return replayed;
  }

  /**
   * Publishes the last commit's snapshots again: a crash between that commit and their
   * publication would otherwise lose them (re-published ones are the same snapshots: at least once).
   */
  async republish(bars: BarSink, stored: ShardPosition | undefined, of: ShardOfBars): Promise<number> {
    const frontierMs = stored?.frontierMs;
    if (stored?.lastCommitFromMs === undefined || frontierMs === undefined) return 0;
    const fromMs = Math.max(stored.lastCommitFromMs, frontierMs - REPUBLISH_WINDOWS * of.windowMs);
    const last = (await bars.listBars({ interval: intervalLabel(of.windowMs), fromMs })).filter(
      (bar) => bar.tsMs < frontierMs && shardOf(bar.provider, bar.symbol, of.shards) === of.shard,
    );
    return this.publish(last, false);
  }

  /**
   * Snapshots of `bars` (in commit order) to the features stream. The engine asked again for a
   * bar it has seen returns that bar's original snapshot. Returns how many were published. A
   * re-publication is not timed as a feature update (nothing is computed).
   */
  async publish(bars: readonly Bar[], timed = true): Promise<number> {
    const snapshots: string[] = [];
    for (const bar of bars) {
      const began = performance.now();
      const snapshot = this.#engine.update(bar);
      if (timed) this.metrics.featuresUpdateSeconds.observe({ symbol: bar.symbol, window: bar.interval }, (performance.now() - began) / 1000);
      snapshots.push(JSON.stringify(snapshot));
    }
    await this.bus.publish(this.stream, snapshots);
    return snapshots.length;
  }
}
