/**
 * The run's load, for `--duration`: with `--rate N` the producer workflow in the worker, with
 * `--rate max` this process publishing as fast as it can.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { startProducer } from '../client/stream-commands.js';
import { openBus } from '../pipeline/bus/index.js';
import type { Bus } from '../pipeline/bus/index.js';
import { busNames } from '../pipeline/config/index.js';
import type { LoopStatus } from '../workflows/index.js';
import { waitFor } from '../test/helpers/wait.js';
import type { BenchOptions } from './bench-options.js';
import type { Cleanup } from './run-cleanup.js';
import { fmtInt, fmtMs } from './bench-report.js';
import { LoadPublisher } from './load-publisher.js';
import type { RunPlan } from './run-plan.js';
import type { RunSampler } from './run-sampler.js';
import type { RunServices } from './run-services.js';
import { withTimeout } from './run-workflows.js';

/**
 * Rate mode: the drain signal goes out this long before the producer activity's own `maxRunMs`
 * deadline. Cancellation reaches an activity only with a heartbeat response (heartbeats are
 * throttled by the SDK), and the producer workflow starts a new run whenever one returns, so a
 * drain sent at the deadline could let a second run publish for a while; sent just before, the
 * running attempt either sees it or returns at its deadline, and no second run starts. The
 * producing time reported is measured from the stream ids, not assumed.
 */
const DRAIN_LEAD_MS = 1500;

export interface LoadResult {
  /** What produced the load, for the report. */
  readonly loadSource: string;
  /** Rate mode: from the drain signal to the producer workflow's result. */
  readonly producerDrainMs: number | undefined;
}

/** How `Bus.publishMany` sends a batch, for the report. */
const PUBLISH_MANY = { redis: 'pipelined XADD', kafka: 'one produce request, acks=all, idempotent' } as const;

/** Produces until the sampler's start + `--duration` (rate mode: for `--duration` from the first published event); Ctrl-C stops early. */
export async function produceLoad(
  opts: BenchOptions,
  plan: RunPlan,
  services: RunServices,
  sampling: RunSampler,
  guard: () => void,
  interrupt: AbortSignal,
  cleanup: Cleanup,
): Promise<LoadResult> {
  return opts.rate === 'max'
    ? { loadSource: await publishFromBench(opts, plan, services.bus, sampling.startedAtMs, interrupt, cleanup), producerDrainMs: undefined }
    : produceWithWorkflow(opts.rate, opts.durationMs, plan, services.client, sampling, guard, interrupt);
}

/** `--rate max`: SyntheticProducer events with live timestamps through the pipeline's own `Bus.publishMany`. */
async function publishFromBench(opts: BenchOptions, plan: RunPlan, bus: Bus, startedAtMs: number, interrupt: AbortSignal, cleanup: Cleanup): Promise<string> {
  const { config, tag, symbols, shards, streams } = plan;
  const names = busNames(config);
  // A bus of its own: the samplers' reads on the run's bus never wait behind a publishing batch.
  const pubBus = openBus(config);
  cleanup.add('close publisher bus', () => pubBus.close());
  const publisher = new LoadPublisher({
    bus: pubBus,
    baseStream: names.stream,
    shards,
    producer: { provider: tag, symbols, seed: config.producers.synthetic.seed, priceVolatility: config.producers.synthetic.price_volatility },
    batchSize: opts.publishBatch,
    inFlight: opts.inFlight,
    maxBacklog: opts.maxBacklog,
    undelivered: async () => {
      let sum = 0;
      for (const stream of streams) sum += (await bus.lag(stream, names.consumer_group, Date.now())).undelivered;
      return sum;
    },
  });
  const onAbort = () => publisher.stop();
  interrupt.addEventListener('abort', onAbort);
  const result = await publisher.run(startedAtMs + opts.durationMs);
  interrupt.removeEventListener('abort', onAbort);
  return (
    `in-bench publisher: SyntheticProducer events with live timestamps, Bus.publishMany (${PUBLISH_MANY[plan.bus]}) ${opts.publishBatch}/batch × ${opts.inFlight} in flight, ` +
    (opts.maxBacklog === undefined
      ? 'open loop (as fast as possible)'
      : `closed loop (paused ${fmtMs(result.throttledMs)} while > ${fmtInt(opts.maxBacklog)} undelivered)`)
  );
}

/** `--rate N`: the producer workflow in rate mode (as `mdp stream produce`), drained {@link DRAIN_LEAD_MS} before its deadline. */
async function produceWithWorkflow(
  rate: number,
  durationMs: number,
  plan: RunPlan,
  client: Client,
  sampling: RunSampler,
  guard: () => void,
  interrupt: AbortSignal,
): Promise<LoadResult> {
  const started = await startProducer(client, plan.config, { provider: 'synthetic', rate, maxRunMs: durationMs });
  const handle = client.workflow.getHandle(started.workflowId);
  const firstMs = await waitFor('the first published event', 60_000, () => Promise.resolve(sampling.firstEntryMs), { guard });
  await delay(Math.max(0, firstMs + durationMs - DRAIN_LEAD_MS - Date.now()), undefined, { signal: interrupt });
  const drainAt = Date.now();
  await handle.signal('drain');
  await withTimeout(handle.result() as Promise<LoopStatus>, 60_000, 'the producer workflow to finish');
  return {
    producerDrainMs: Date.now() - drainAt,
    loadSource: `producer workflow ${started.workflowId} in the worker, rate mode (${rate}/s, maxRunMs ${durationMs})`,
  };
}
