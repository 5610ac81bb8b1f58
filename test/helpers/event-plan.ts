/**
 * Deterministic events laid out by window, for tests that publish a known set of events and then
 * check every bar: the fault matrix (`FaultRun`, on Redis) and the suite run on both buses (`BusRun`).
 */
import type { StreamEventV1 } from '../../pipeline/contracts/index.js';
import { SyntheticProducer } from '../../pipeline/producers/index.js';

export interface WindowPlanOptions {
  readonly provider: string;
  readonly symbols: readonly string[];
  readonly windowMs: number;
  /** Start of window 0 (epoch ms, aligned to `windowMs`). */
  readonly startMs: number;
  readonly windows: number;
  /** Events per window, across the symbols. */
  readonly perWindow: number;
  readonly seed?: number;
}

/**
 * `windows` consecutive windows of `perWindow` synthetic events each from `startMs`: `plan[i]` are
 * window i's events in src_ts order.
 */
export function planWindows(options: WindowPlanOptions): StreamEventV1[][] {
  const { provider, symbols, windowMs, startMs, windows, perWindow } = options;
  const producer = new SyntheticProducer({
    provider,
    symbols: [...symbols],
    seed: options.seed ?? 7,
    priceVolatility: 0.3,
    tickRate: perWindow / symbols.length / (windowMs / 1000),
  });
  const out: StreamEventV1[][] = Array.from({ length: windows }, () => []);
  for (const e of producer.generateFinite({ count: windows * perWindow, startUs: startMs * 1000 })) {
    out[Math.floor((Date.parse(e.src_ts) - startMs) / windowMs)].push(e);
  }
  return out;
}

/** The first and second half of a list (events in src_ts order: the two halves of a window). */
export function halves<T>(items: readonly T[]): [T[], T[]] {
  const mid = Math.floor(items.length / 2);
  return [items.slice(0, mid), items.slice(mid)];
}

/** What {@link commitThenOpen} needs of a test run. */
export interface WindowedRun {
  readonly shards: number;
  readonly streams: readonly string[];
  /** The shard stream an event belongs on. */
  streamOf(event: StreamEventV1): string;
  publish(events: readonly StreamEventV1[]): Promise<unknown>;
  /** Waits until the bars of these events' windows are stored and equal their aggregate. */
  waitForBars(events: readonly StreamEventV1[], what: string): Promise<unknown>;
  /** Waits until a shard has exactly `pending` entries delivered and unacknowledged, and none unread. */
  waitForPending(shard: number, pending: number, what: string): Promise<void>;
}

/**
 * The state every mid-window fault starts from: windows `0..k-1` of `plan` published and
 * committed, and the first half of window `k` published and pending on every shard (read, its
 * window open). Returns window k's second half, still unpublished.
 */
export async function commitThenOpen(run: WindowedRun, plan: readonly StreamEventV1[][], k: number): Promise<StreamEventV1[]> {
  const [firstHalf, secondHalf] = halves(plan[k]);
  const committed = plan.slice(0, k).flat();
  // Two publishes: with frames, no entry holds both a committed event and one of the open window.
  await run.publish(committed);
  await run.publish(firstHalf);
  await run.waitForBars(committed, `windows 0..${k - 1} committed`);
  for (let shard = 0; shard < run.shards; shard++) {
    const open = firstHalf.filter((e) => run.streamOf(e) === run.streams[shard]).length;
    await run.waitForPending(shard, open, `the first half of window ${k} read and its window open`);
  }
  return secondHalf;
}
