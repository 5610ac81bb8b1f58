import type { StreamEventV1 } from '../contracts/index.js';
import type { Metrics } from '../telemetry/index.js';
import type { BacklogGate } from './backlog-gate.js';
import type { Bus } from './bus.js';
import type { BusPayload, EventFormat } from './event-codec.js';
import { DEFAULT_EVENT_FORMAT, encodeEvent } from './event-codec.js';
import { shardOf, shardStream } from './sharding.js';

export interface ShardPublisherOptions {
  readonly bus: Bus;
  readonly metrics: Metrics;
  /** Base event stream; an event goes to `shardStream(stream, shardOf(provider, symbol, shards))`. */
  readonly stream: string;
  readonly shards: number;
  /** Told what was published, so its cached room shrinks accordingly. */
  readonly gate?: BacklogGate;
}

/**
 * The payloads of one shard stream's events, in order, as `format` says: each event encoded
 * (`bus.encoding`), and with `frameEvents` > 1 up to that many consecutive events per frame (a
 * lone event stays an entry of its own). Every producer's events go through here, the bench's too.
 */
export function encodeShardBatch(events: readonly StreamEventV1[], format: EventFormat): BusPayload[] {
  const n = format.frameEvents;
  if (n <= 1) return events.map((event) => encodeEvent(event, format.encoding));
  const out: BusPayload[] = [];
  for (let i = 0; i < events.length; i += n) {
    const piece = events.slice(i, i + n);
    if (piece.length === 1) out.push(encodeEvent(piece[0], format.encoding));
    // msgpack frames carry the events themselves: the bus packs them together (records).
    else out.push(format.encoding === 'msgpack' ? { values: piece } : { frame: piece.map((event) => JSON.stringify(event)) });
  }
  return out;
}

/**
 * How every producer puts events on the bus: each to its shard stream, encoded as the bus's
 * {@link EventFormat} says ({@link encodeShardBatch}), all shards of a batch in one round trip, in
 * the order given within a shard, counted in `stream_events_ingested_total{bus, topic, provider}`.
 * Producers ask their {@link BacklogGate} for room first.
 *
 * @example
 * ```ts
 * const publisher = new ShardPublisher({ bus, metrics, stream: 'mdp.events', shards: 4, gate });
 * if ((await gate.waitForRoom(publisher.streamsOf(events), wait)) > 0) await publisher.publish(events);
 * ```
 */
export class ShardPublisher {
  readonly #o: ShardPublisherOptions;

  constructor(options: ShardPublisherOptions) {
    this.#o = options;
  }

  /** The shard stream an event belongs on. */
  streamOf(event: Pick<StreamEventV1, 'provider' | 'symbol'>): string {
    return shardStream(this.#o.stream, shardOf(event.provider, event.symbol, this.#o.shards));
  }

  /** The shard streams some events belong on (the ones publishing them could overfill). */
  streamsOf(events: Iterable<Pick<StreamEventV1, 'provider' | 'symbol'>>): Set<string> {
    const streams = new Set<string>();
    for (const event of events) streams.add(this.streamOf(event));
    return streams;
  }

  /** Publishes events to their shard streams in one round trip. */
  async publish(events: readonly StreamEventV1[]): Promise<void> {
    if (events.length === 0) return;
    const batches = new Map<string, StreamEventV1[]>();
    const counts = new Map<string, { stream: string; provider: string; n: number }>();
    for (const event of events) {
      const stream = this.streamOf(event);
      let batch = batches.get(stream);
      if (!batch) batches.set(stream, (batch = []));
      batch.push(event);
      const key = `${stream}\0${event.provider}`;
      const count = counts.get(key);
      if (count) count.n++;
      else counts.set(key, { stream, provider: event.provider, n: 1 });
    }
    const { bus, metrics } = this.#o;
    const format = bus.eventFormat ?? DEFAULT_EVENT_FORMAT;
    const payloads = new Map<string, BusPayload[]>();
    for (const [stream, batch] of batches) payloads.set(stream, encodeShardBatch(batch, format));
    await bus.publishMany(payloads);
    this.#o.gate?.taken(events.length);
    for (const { stream, provider, n } of counts.values()) metrics.eventsIngested.inc({ bus: bus.kind, topic: stream, provider }, n);
  }
}
