import { busNames } from '../pipeline/config/index.js';
import type { Bus } from '../pipeline/bus/index.js';
import { shardStream } from '../pipeline/bus/index.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { formatClock } from '../pipeline/contracts/index.js';

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
}

export async function readProgress(bus: Bus, countBars: () => Promise<number>, config: StreamingConfig): Promise<PipelineProgress> {
  const redis = busNames(config);
  let eventsIn = 0,
    maxLagMs = 0,
    pending = 0;
  const now = Date.now();
  for (let shard = 0; shard < config.bus.shards; shard++) {
    const stream = shardStream(redis.stream, shard);
    eventsIn += await bus.added(stream);
    const lag = await bus.lag(stream, redis.consumer_group, now);
    maxLagMs = Math.max(maxLagMs, lag.lagMs);
    pending += lag.pending;
  }
  return {
    atMs: now,
    eventsIn,
    bars: await countBars(),
    maxLagMs,
    pending,
    late: await bus.length(redis.late_stream),
    dlq: await bus.length(redis.dlq_stream),
    signals: await bus.added(redis.signals_stream),
  };
}

/** One status line; `previous` gives the rates. */
export function formatProgress(p: PipelineProgress, previous?: PipelineProgress): string {
  const secs = previous ? Math.max(0.001, (p.atMs - previous.atMs) / 1000) : 0;
  const rate = (now: number, before: number | undefined) => (previous && before !== undefined ? ` (${Math.round((now - before) / secs)}/s)` : '');
  return [
    formatClock(p.atMs),
    `events in ${p.eventsIn}${rate(p.eventsIn, previous?.eventsIn)}`,
    `bars written ${p.bars}${rate(p.bars, previous?.bars)}`,
    `lag ${(p.maxLagMs / 1000).toFixed(1)}s`,
    `pending ${p.pending}`,
    `signals ${p.signals}`,
    `late ${p.late}`,
    `dlq ${p.dlq}`,
  ].join(' | ');
}
