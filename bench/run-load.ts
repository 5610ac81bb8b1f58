/**
 * The run's load, for `--duration`: the producer workflow in the worker (`--publisher workflow`,
 * paced), a publisher process of the run's own (`--publisher process`: as fast as it can, paced at
 * `--rate N`, or `--backlog N` events), or this process (`--publisher inline`).
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
import type { LoadPublisherOptions, LoadPublisherResult } from './load-publisher.js';
import { PublisherProcess } from './publisher-child.js';
import type { PublisherUsage } from './publisher-process.js';
import { configFreeEnv } from '../test/helpers/worker-process.js';
import { closeSync, openSync } from 'node:fs';
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
  /** Events the bench's publisher had confirmed (undefined with the producer workflow): exact, also when an entry holds several events. */
  readonly publishedEvents: number | undefined;
  /** `--publisher process`: its CPU and peak RSS over its whole life. */
  readonly publisherUsage: PublisherUsage | undefined;
  /** When the publisher started and stopped (wall clock). */
  readonly startedMs: number | undefined;
  readonly stoppedMs: number | undefined;
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
  if (opts.publisher === 'workflow') {
    if (opts.rate === 'max') throw new Error('the producer workflow needs a rate');
    return produceWithWorkflow(opts.rate, opts.durationMs, plan, services.client, sampling, guard, interrupt);
  }
  return opts.publisher === 'process'
    ? publishFromProcess(opts, plan, sampling.startedAtMs, guard, interrupt, cleanup)
    : publishFromBench(opts, plan, services.bus, sampling.startedAtMs, interrupt, cleanup);
}

/** What the publisher does, for the report. */
function publisherText(opts: BenchOptions, plan: RunPlan): string {
  const pace =
    opts.backlog !== undefined
      ? `${fmtInt(opts.backlog)} events as fast as possible`
      : opts.rate === 'max'
        ? 'as fast as possible'
        : `paced at ${fmtInt(opts.rate)} events/s`;
  return `SyntheticProducer events with live timestamps, Bus.publishMany (${PUBLISH_MANY[plan.bus]}) ${opts.publishBatch}/batch × ${opts.inFlight} in flight, ${pace}`;
}

/** What the publisher does, wherever it runs: the run's synthetic events, batches, pace and count. */
function publisherOptions(opts: BenchOptions, plan: RunPlan): Omit<LoadPublisherOptions, 'bus' | 'undelivered'> {
  const { config, tag, symbols, shards } = plan;
  return {
    baseStream: busNames(config).stream,
    shards,
    producer: { provider: tag, symbols, seed: config.producers.synthetic.seed, priceVolatility: config.producers.synthetic.price_volatility },
    batchSize: opts.publishBatch,
    inFlight: opts.inFlight,
    maxBacklog: opts.maxBacklog,
    ...(opts.rate === 'max' ? {} : { rate: opts.rate }),
    ...(opts.backlog === undefined ? {} : { limit: opts.backlog }),
  };
}

/** `--publisher process`: the same publisher in a process of its own (see publisher-process.ts). */
async function publishFromProcess(
  opts: BenchOptions,
  plan: RunPlan,
  startedAtMs: number,
  guard: () => void,
  interrupt: AbortSignal,
  cleanup: Cleanup,
): Promise<LoadResult> {
  const { config, streams } = plan;
  const names = busNames(config);
  const logFd = openSync(plan.logPath.replace(/\.worker\.log$/, '.publisher.log'), 'a');
  cleanup.add('close publisher log', () => Promise.resolve(closeSync(logFd)));
  const publisher = new PublisherProcess(
    {
      configPath: plan.configPath,
      options: publisherOptions(opts, plan),
      streams,
      group: names.consumer_group,
      untilMs: startedAtMs + opts.durationMs,
    },
    configFreeEnv(),
    opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${plan.profileDir}`] : [],
    logFd,
  );
  cleanup.add('stop the publisher process', async () => {
    publisher.stop();
    await publisher.exited();
  });
  const onAbort = () => publisher.stop();
  interrupt.addEventListener('abort', onAbort);
  let result: LoadPublisherResult | undefined;
  try {
    // Guarded, so a worker that dies meanwhile stops the run instead of a publisher filling Redis for nothing.
    const done = publisher.result();
    const check = setInterval(() => {
      try {
        guard();
      } catch {
        publisher.stop();
      }
    }, 500);
    try {
      result = await done;
    } finally {
      clearInterval(check);
    }
    await publisher.exited();
  } finally {
    interrupt.removeEventListener('abort', onAbort);
  }
  return {
    loadSource:
      `publisher process (pid ${String(publisher.pid)}): ${publisherText(opts, plan)}, ` +
      (opts.maxBacklog === undefined ? 'open loop' : `closed loop (paused ${fmtMs(result.throttledMs)} while > ${fmtInt(opts.maxBacklog)} undelivered)`),
    producerDrainMs: undefined,
    publishedEvents: result.published,
    publisherUsage: publisher.usage,
    startedMs: result.startedMs,
    stoppedMs: result.stoppedMs,
  };
}

/** `--publisher inline`: SyntheticProducer events with live timestamps through the pipeline's own `Bus.publishMany`, from the bench process. */
async function publishFromBench(
  opts: BenchOptions,
  plan: RunPlan,
  bus: Bus,
  startedAtMs: number,
  interrupt: AbortSignal,
  cleanup: Cleanup,
): Promise<LoadResult> {
  const { config, streams } = plan;
  const names = busNames(config);
  // A bus of its own: the samplers' reads on the run's bus never wait behind a publishing batch.
  const pubBus = openBus(config);
  cleanup.add('close publisher bus', () => pubBus.close());
  const publisher = new LoadPublisher({
    ...publisherOptions(opts, plan),
    bus: pubBus,
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
  return {
    loadSource:
      `in-bench publisher: ${publisherText(opts, plan)}, ` +
      (opts.maxBacklog === undefined ? 'open loop' : `closed loop (paused ${fmtMs(result.throttledMs)} while > ${fmtInt(opts.maxBacklog)} undelivered)`),
    producerDrainMs: undefined,
    publishedEvents: result.published,
    publisherUsage: undefined,
    startedMs: result.startedMs,
    stoppedMs: result.stoppedMs,
  };
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
    publishedEvents: undefined,
    publisherUsage: undefined,
    startedMs: undefined,
    stoppedMs: undefined,
  };
}
