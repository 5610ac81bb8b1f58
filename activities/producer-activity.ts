import { ApplicationFailure, CancelledFailure, Context, sleep } from '@temporalio/activity';
import type { Bus } from '../pipeline/bus/index.js';
import { BacklogGate, ShardPublisher } from '../pipeline/bus/index.js';
import type { StreamEventV1 } from '../pipeline/contracts/index.js';
import { parseIsoToMicros } from '../pipeline/contracts/index.js';
import { SyntheticProducer } from '../pipeline/producers/index.js';
import type { Logger, Metrics } from '../pipeline/telemetry/index.js';
import { reportFailure } from './shard-consumer.js';
import { activityFailure } from './expected-failure.js';
import type { ProducerHeartbeat, ProducerInput, ProducerResume, ProducerRunResult } from './types.js';

export interface ProducerDefaults {
  readonly stream: string;
  readonly shards: number;
  readonly provider: string;
  readonly symbols: readonly string[];
  readonly seed: number;
  readonly tickRate: number;
  readonly priceVolatility: number;
  readonly maxRunMs: number;
}

export interface ProducerDeps {
  readonly openBus: () => Bus;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly producer: ProducerDefaults;
}

/** Live pacing: how often due ticks are published. */
const TICK_EVERY_MS = 100;
/** Finite mode publishes in rounds of this many events (a heartbeat after each). */
const FINITE_ROUND = 5000;

/**
 * The synthetic producer: deterministic ticks (seeded GBM per symbol) published to the shard
 * streams. A retried attempt resumes from its last heartbeat, a new run from the previous run's
 * result, so the sequence (and every event_id) continues exactly.
 *
 * Backpressure: before each publish it asks its shard streams for room ({@link BacklogGate}) and
 * waits, heartbeating, while a consumer group's backlog is at 90% of the retention bound, so the
 * streams never have to drop what no consumer has read. Finite rounds are cut to the room left. A
 * wait ends at the run's deadline (live: the run returns as usual) or after `maxRunMs` (finite:
 * the attempt fails and is retried from its heartbeat); while it waits, live ticks older than the
 * synthetic source's backlog bound are skipped at the source, as a live feed would.
 */
export function createProducerActivity(deps: ProducerDeps) {
  return async function runProducer(input: ProducerInput): Promise<ProducerRunResult> {
    const ctx = Context.current();
    const d = deps.producer;
    // `input.provider` picks the kind of producer; events carry the configured provider name.
    const provider = d.provider;
    const baseStream = input.stream ?? d.stream;
    const shards = input.shards ?? d.shards;
    const options = {
      provider,
      symbols: [...(input.symbols ?? d.symbols)],
      seed: input.seed ?? d.seed,
      tickRate: input.tickRate ?? d.tickRate,
      priceVolatility: input.priceVolatility ?? d.priceVolatility,
    };
    const log = deps.log.child({ activity: 'runProducer', provider, attempt: ctx.info.attempt });
    const resume = (ctx.info.heartbeatDetails as ProducerHeartbeat | undefined) ?? input.resume;
    const producer = resume ? SyntheticProducer.fromState(options, resume.state as never) : new SyntheticProducer(options);
    const startPublished = input.resume?.published ?? 0;
    let total = resume?.published ?? 0;
    const bus = deps.openBus();
    const gate = new BacklogGate({ bus, metrics: deps.metrics, log, component: 'producer' });
    const publisher = new ShardPublisher({ bus, metrics: deps.metrics, stream: baseStream, shards, gate });
    // The shard streams this producer's symbols hash to: the ones it could overfill.
    const streams = publisher.streamsOf(options.symbols.map((symbol) => ({ provider, symbol })));

    const publish = async (events: readonly StreamEventV1[]) => {
      await publisher.publish(events);
      total += events.length;
    };
    const snapshot = (): ProducerResume => ({ published: total, state: producer.state() });
    const waitForRoom = (untilMs: number) =>
      gate.waitForRoom(streams, {
        untilMs,
        signal: ctx.cancellationSignal,
        onWait: () => ctx.heartbeat(snapshot() satisfies ProducerHeartbeat),
      });

    try {
      // A retry after a failure says nothing new (the failure, or the outage, was the line): debug.
      const started = { resumedAt: resume?.published, mode: input.count ? 'finite' : input.rate ? 'rate' : 'live' };
      if (ctx.info.attempt > 1) log.debug('producer started', started);
      else log.info('producer started', started);
      if (input.count !== undefined) {
        const startUs = input.startTs !== undefined ? parseIsoToMicros(input.startTs) : Date.now() * 1000;
        if (startUs === undefined) throw new Error(`producer input "startTs" is not an ISO-8601 timestamp: ${input.startTs}`);
        // The first round starts the schedule at startTs; later rounds, and resumed attempts (whose
        // schedule is in the restored state), continue it.
        let first = resume === undefined;
        // Cancelled (drained, handed over): the state so far goes with the failure, for the next run.
        const cancelled = () => new CancelledFailure('producer cancelled', [{ published: total - startPublished, finished: false, resume: snapshot() }]);
        while (total < input.count) {
          if (ctx.cancellationSignal.aborted) throw cancelled();
          const maxWaitMs = input.maxRunMs ?? d.maxRunMs;
          const room = await waitForRoom(Date.now() + maxWaitMs);
          if (ctx.cancellationSignal.aborted) throw cancelled();
          if (room === 0) {
            throw ApplicationFailure.retryable(
              `the consumers' backlog of ${[...streams].join(', ')} stayed at 90% of retention (bus.redis.maxlen or bus.kafka.max_backlog) for ${maxWaitMs} ms`,
              'BacklogAtRetention',
            );
          }
          const count = Math.min(FINITE_ROUND, input.count - total, room);
          await publish(producer.generateFinite({ count, ...(first ? { startUs } : {}), ingestTsUs: Date.now() * 1000 }));
          first = false;
          ctx.heartbeat(snapshot() satisfies ProducerHeartbeat);
        }
        log.info('finite production done', { published: total });
        return { published: total - startPublished, finished: true, resume: snapshot() };
      }
      const deadline = Date.now() + (input.maxRunMs ?? d.maxRunMs);
      while (Date.now() < deadline) {
        if (ctx.cancellationSignal.aborted)
          throw new CancelledFailure('producer cancelled', [{ published: total - startPublished, finished: false, resume: snapshot() }]);
        // No room until the deadline (or cancelled): the loop's own checks end the run.
        if ((await waitForRoom(deadline)) === 0) continue;
        const nowUs = Date.now() * 1000;
        const events = input.rate ? producer.ticksForRate(input.rate, nowUs) : producer.ticksDue(nowUs);
        if (events.length > 0) await publish(events);
        ctx.heartbeat(snapshot() satisfies ProducerHeartbeat);
        await sleep(TICK_EVERY_MS).catch(() => undefined);
      }
      return { published: total - startPublished, finished: false, resume: snapshot() };
    } catch (err) {
      reportFailure(deps.metrics, log, 'producer', 'producer failed', err);
      throw activityFailure(err);
    } finally {
      gate.close();
      await bus.close();
    }
  };
}
