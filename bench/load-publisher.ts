/**
 * The `--rate max` load source: publishes synthetic events as fast as this process and Redis allow,
 * through the pipeline's own `Bus.publishMany` (one pipelined `XADD … MAXLEN ~` per entry, the
 * same command the producer activity sends), encoded as producers encode them (`encodeShardBatch`:
 * `bus.encoding`, `bus.redis.frame_events`), with several batches in flight.
 */
import type { Bus, BusPayload } from '../pipeline/bus/index.js';
import { DEFAULT_EVENT_FORMAT, encodeShardBatch, shardOf, shardStream } from '../pipeline/bus/index.js';
import type { StreamEventV1 } from '../pipeline/contracts/index.js';
import { SyntheticProducer } from '../pipeline/producers/index.js';
import type { SyntheticProducerOptions } from '../pipeline/producers/index.js';

export interface LoadPublisherOptions {
  readonly bus: Bus;
  readonly baseStream: string;
  readonly shards: number;
  readonly producer: Omit<SyntheticProducerOptions, 'tickRate'>;
  /** Events per pipelined batch. */
  readonly batchSize: number;
  /** Batches in flight at once; hides the round trip while the next batch is generated. */
  readonly inFlight: number;
  /**
   * Closed loop: pause while more than this many published events are not yet delivered to the
   * consumers (summed over shards), so the rate settles at what the consumers sustain. Open loop
   * (as fast as possible) when undefined.
   */
  readonly maxBacklog?: number;
  /** Entries published but not yet read by the consumer group, over all shards (closed loop only; scaled to events by the frames' fill). */
  readonly undelivered?: () => Promise<number>;
  /** Paced: at most this many events/s over the run (batches of up to `batchSize`); as fast as possible when undefined. */
  readonly rate?: number;
  /** Stop after this many events (`--backlog N`); the duration still bounds the run. */
  readonly limit?: number;
}

export interface LoadPublisherResult {
  readonly published: number;
  readonly startedMs: number;
  readonly stoppedMs: number;
  /** Time spent waiting for the backlog to shrink (closed loop). */
  readonly throttledMs: number;
}

/** Per-symbol tick rate for event generation: high enough that a batch spans well under a millisecond of event time. */
const GENERATION_TICK_RATE = 1_000_000;
/** How often the closed loop looks at the consumers' backlog. */
const BACKLOG_PROBE_MS = 50;
/** Paced mode: longest sleep while the schedule is ahead (small, so batches stay small and even). */
const PACE_STEP_MS = 5;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Event time is live: every batch is generated just before it is sent, its schedule starting at
 * the wall clock, so windows close as they would with a real feed; per symbol `src_ts` strictly
 * increases across batches (the generator guarantees it), so a fast consumer sees no late events.
 */
export class LoadPublisher {
  readonly #options: LoadPublisherOptions;
  readonly #producer: SyntheticProducer;
  #stopping = false;
  #published = 0;
  #generated = 0;
  /** Bus entries confirmed (fewer than events when entries carry frames). */
  #entries = 0;

  constructor(options: LoadPublisherOptions) {
    this.#options = options;
    this.#producer = new SyntheticProducer({ ...options.producer, tickRate: GENERATION_TICK_RATE });
  }

  /** Events whose XADDs Redis has confirmed so far. */
  get published(): number {
    return this.#published;
  }

  /** Stops after the batches in flight (run() then resolves). */
  stop(): void {
    this.#stopping = true;
  }

  /** Publishes until `untilMs` (wall clock) or {@link stop}; resolves once every batch in flight is confirmed. */
  async run(untilMs: number): Promise<LoadPublisherResult> {
    const { bus, baseStream, shards, batchSize, inFlight, maxBacklog, undelivered, rate, limit } = this.#options;
    const streamOf = new Map<string, string>();
    const inflight = new Set<Promise<void>>();
    let failure: Error | undefined;
    let throttledMs = 0;
    let nextProbeMs = 0;
    const startedMs = Date.now();

    while (!this.#stopping && failure === undefined) {
      const nowMs = Date.now();
      if (nowMs >= untilMs) break;
      if (maxBacklog !== undefined && undelivered !== undefined && nowMs >= nextProbeMs) {
        nextProbeMs = nowMs + BACKLOG_PROBE_MS;
        // The bus counts entries; with frames an entry carries several events.
        const eventsPerEntry = this.#entries > 0 ? this.#published / this.#entries : 1;
        if ((await undelivered()) * eventsPerEntry > maxBacklog) {
          await sleep(BACKLOG_PROBE_MS);
          throttledMs += Date.now() - nowMs;
          continue;
        }
      }
      let count = limit === undefined ? batchSize : Math.min(batchSize, limit - this.#generated);
      if (count <= 0) break;
      if (rate !== undefined) {
        // Paced: what the schedule allows by now, so event time stays the wall clock's.
        count = Math.min(count, Math.floor(((nowMs - startedMs) / 1000) * rate) - this.#generated);
        if (count <= 0) {
          await sleep(PACE_STEP_MS);
          continue;
        }
      }
      this.#generated += count;
      const events = this.#producer.generateFinite({ count, startUs: nowMs * 1000 });
      const batches = new Map<string, StreamEventV1[]>();
      for (const event of events) {
        let stream = streamOf.get(event.symbol);
        if (stream === undefined) {
          stream = shardStream(baseStream, shardOf(event.provider, event.symbol, shards));
          streamOf.set(event.symbol, stream);
        }
        let batch = batches.get(stream);
        if (!batch) batches.set(stream, (batch = []));
        batch.push(event);
      }
      const payloads = new Map<string, BusPayload[]>();
      for (const [stream, batch] of batches) payloads.set(stream, encodeShardBatch(batch, bus.eventFormat ?? DEFAULT_EVENT_FORMAT));
      const sent: Promise<void> = bus
        .publishMany(payloads)
        .then(
          () => {
            this.#published += events.length;
            for (const entries of payloads.values()) this.#entries += entries.length;
          },
          (err: unknown) => {
            failure ??= err instanceof Error ? err : new Error('XADD pipeline failed', { cause: err });
          },
        )
        .finally(() => inflight.delete(sent));
      inflight.add(sent);
      if (inflight.size >= inFlight) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    if (failure !== undefined) throw failure;
    return { published: this.#published, startedMs, stoppedMs: Date.now(), throttledMs };
  }
}
