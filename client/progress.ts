import { busNames } from '../pipeline/config/index.js';
import type { Bus } from '../pipeline/bus/index.js';
import { shardStream } from '../pipeline/bus/index.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { formatClock, formatCount } from '../pipeline/contracts/index.js';

/** One shard of the event stream: events appended so far, and its consumer group's lag and pending entries. */
export interface ShardProgress {
  readonly shard: number;
  readonly eventsIn: number;
  readonly lagMs: number;
  readonly pending: number;
}

/** A signal as the live panel lists it, from the newest entries of the signals stream. */
export interface FiredSignal {
  /** Bar start the signal is for, ISO-8601. */
  readonly ts: string;
  readonly provider: string;
  readonly symbol: string;
  readonly name: string;
  readonly score: number;
}

/** A point-in-time view of the live pipeline, read from Redis and the store. */
export interface PipelineProgress {
  readonly atMs: number;
  readonly eventsIn: number;
  readonly bars: number;
  readonly maxLagMs: number;
  readonly pending: number;
  readonly late: number;
  readonly dlq: number;
  readonly signals: number;
  /** Per shard of the event stream, in shard order. */
  readonly shards: readonly ShardProgress[];
}

export async function readProgress(bus: Bus, countBars: () => Promise<number>, config: StreamingConfig): Promise<PipelineProgress> {
  const redis = busNames(config);
  const now = Date.now();
  const shards: ShardProgress[] = [];
  for (let shard = 0; shard < config.bus.shards; shard++) {
    const stream = shardStream(redis.stream, shard);
    const eventsIn = await bus.added(stream);
    const lag = await bus.lag(stream, redis.consumer_group, now);
    shards.push({ shard, eventsIn, lagMs: lag.lagMs, pending: lag.pending });
  }
  return {
    atMs: now,
    eventsIn: shards.reduce((n, s) => n + s.eventsIn, 0),
    bars: await countBars(),
    maxLagMs: Math.max(0, ...shards.map((s) => s.lagMs)),
    pending: shards.reduce((n, s) => n + s.pending, 0),
    shards,
    late: await bus.length(redis.late_stream),
    dlq: await bus.length(redis.dlq_stream),
    signals: await bus.added(redis.signals_stream),
  };
}

/**
 * The newest `limit` signals of the live signals stream (newest last); entries that are not a
 * signal are skipped, so a bad entry cannot blank the panel.
 */
export async function readRecentSignals(bus: Bus, config: StreamingConfig, limit: number): Promise<FiredSignal[]> {
  const signals: FiredSignal[] = [];
  for (const entry of await bus.tail(busNames(config).signals_stream, limit)) {
    try {
      const s = JSON.parse(entry.payload ?? '') as Partial<FiredSignal>;
      if (typeof s.name !== 'string' || typeof s.symbol !== 'string') continue;
      signals.push({ ts: String(s.ts ?? ''), provider: String(s.provider ?? ''), symbol: s.symbol, name: s.name, score: Number(s.score ?? NaN) });
    } catch {
      continue;
    }
  }
  return signals;
}

/** One status line; `previous` gives the rates. */
export function formatProgress(p: PipelineProgress, previous?: PipelineProgress): string {
  const secs = previous ? Math.max(0.001, (p.atMs - previous.atMs) / 1000) : 0;
  const rate = (now: number, before: number | undefined) => (previous && before !== undefined ? ` (${formatCount(Math.round((now - before) / secs))}/s)` : '');
  return [
    formatClock(p.atMs),
    `events in ${formatCount(p.eventsIn)}${rate(p.eventsIn, previous?.eventsIn)}`,
    `bars written ${formatCount(p.bars)}${rate(p.bars, previous?.bars)}`,
    `lag ${(p.maxLagMs / 1000).toFixed(1)}s`,
    `pending ${formatCount(p.pending)}`,
    `signals ${formatCount(p.signals)}`,
    `late ${formatCount(p.late)}`,
    `dlq ${formatCount(p.dlq)}`,
  ].join(' | ');
}
