import type { Bus } from '../pipeline/bus/index.js';
import { shardOf, shardStream } from '../pipeline/bus/index.js';
import type { StreamEventV1 } from '../pipeline/contracts/index.js';
import type { Metrics } from '../pipeline/telemetry/index.js';

/** The shard stream of an event: the one rule every producer publishes by. */
export function eventStream(event: Pick<StreamEventV1, 'provider' | 'symbol'>, baseStream: string, shards: number): string {
  return shardStream(baseStream, shardOf(event.provider, event.symbol, shards));
}

/**
 * Publishes events to their shard streams in one bus call (order kept within each stream) and
 * counts them in `stream_events_ingested_total{bus,topic,provider}`.
 */
export async function publishEvents(
  bus: Bus,
  metrics: Metrics,
  events: readonly StreamEventV1[],
  target: { readonly stream: string; readonly shards: number },
): Promise<void> {
  if (events.length === 0) return;
  const batches = new Map<string, string[]>();
  const counted = new Map<string, { topic: string; provider: string; n: number }>();
  for (const event of events) {
    const stream = eventStream(event, target.stream, target.shards);
    let batch = batches.get(stream);
    if (!batch) batches.set(stream, (batch = []));
    batch.push(JSON.stringify(event));
    const key = `${stream}\0${event.provider}`;
    const count = counted.get(key);
    if (count) count.n++;
    else counted.set(key, { topic: stream, provider: event.provider, n: 1 });
  }
  await bus.publishMany(batches);
  for (const { topic, provider, n } of counted.values()) metrics.eventsIngested.inc({ bus: bus.kind, topic, provider }, n);
}
