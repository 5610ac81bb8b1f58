#!/usr/bin/env node
/**
 * End-to-end throughput and latency benchmark of the pipeline on the local stack (spec §6.2,
 * §10.3): a real worker process, real Temporal workflows, Redis Streams or Kafka, and PostgreSQL,
 * under names unique to the run, so the live pipeline's streams, bars and workflows are never touched.
 * See bench/README.md for what is measured and how.
 *
 *   node dist/bench/throughput.js [--bus redis|kafka] [--rate N|max] [--duration 60s] [--window 2s] [--shards 4] [--inference rules|sklearn|off]
 *
 * Exit codes: 0 the run completed (SLA misses are reported, not failed), 1 the bench could not
 * run, 2 usage, 3 events were lost or the pipeline did not settle (with --inference: also a
 * snapshot not evaluated, or the inference group not settled).
 */
import { existsSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import { busNames, ConfigError } from '../pipeline/config/index.js';
import type { BenchOptions } from './bench-options.js';
import { USAGE, UsageError, parseOptions } from './bench-options.js';
import { progress } from './bench-progress.js';
import { Cleanup } from './run-cleanup.js';
import type { BenchSummary } from './bench-report.js';
import { formatReport } from './bench-report.js';
import { BenchWorker } from './bench-worker.js';
import { readMemory } from './proc-stats.js';
import { measureKafkaCeiling } from './kafka-baseline.js';
import { measureRedisCeiling } from './redis-baseline.js';
import { WORKER_PATH } from './repo-paths.js';
import { produceLoad } from './run-load.js';
import type { LoadResult } from './run-load.js';
import type { BacklogDrain } from './run-summary.js';
import type { RunPlan } from './run-plan.js';
import { planRun, writeRunConfig } from './run-plan.js';
import { publishedSpan, readBack } from './run-readback.js';
import { RunSampler } from './run-sampler.js';
import type { SettleOutcome } from './run-sampler.js';
import { connectServices, deleteRunDataAtEnd } from './run-services.js';
import { summarize } from './run-summary.js';
import { drainWorkflows, startInferenceConsumers, startMicroBatchConsumers, terminateLeftoverWorkflowsAtEnd } from './run-workflows.js';
import { storeWarmUpBars } from './warm-up-bars.js';

/** One run, top to bottom; every resource it opens is registered with `cleanup`, which the caller runs whatever happens. */
async function measure(opts: BenchOptions, interrupt: AbortSignal, cleanup: Cleanup): Promise<BenchSummary> {
  if (!existsSync(WORKER_PATH)) throw new Error(`${WORKER_PATH} is missing: build first (npm run build)`);
  // 1. The run's names and its config file: the base config resolved; the worker reads only that file.
  const plan = await planRun(opts);
  const workerEnv = writeRunConfig(plan, opts);

  // 2. Services, and the ceiling with one of our events as the payload: redis-benchmark's pipelined
  //    XADD, or Kafka's ProducerPerformance with acks=all and idempotence.
  const services = await connectServices(plan, cleanup);
  if (!opts.keep) deleteRunDataAtEnd(plan, services, cleanup);
  const baseline = plan.bus === 'kafka' ? await measureKafkaCeiling(opts.baseline, plan) : await measureRedisCeiling(opts.baseline, plan, services.bus);

  // 3. A worker process of the run's own, on its own task queue and metrics port.
  const profArgs = opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${plan.profileDir}`] : [];
  const worker = BenchWorker.start(plan, workerEnv, cleanup, profArgs);
  const guard = () => {
    if (interrupt.aborted) throw new Error('interrupted');
    worker.throwIfExited();
  };
  terminateLeftoverWorkflowsAtEnd(plan, services.client, cleanup);
  await worker.whenHealthy(guard);

  // 4. Optionally warm history bars, then the consumer workflows; wait until every consumer loop heartbeats.
  const warmUp = opts.warmFeatures ? await storeWarmUpBars(plan, services.db) : null;
  const startConsumers = async () => {
    await startMicroBatchConsumers(plan, services.client, worker, guard);
    if (opts.inference !== 'off') await startInferenceConsumers(opts.inference, plan, services.client, worker, guard);
  };
  const consumersText = `${plan.shards} consumers${plan.inferenceOn ? ` and ${plan.shards} ${opts.inference} inference consumers` : ''}`;
  let drain: BacklogDrain | undefined;
  let load: LoadResult;
  let sampling: RunSampler;
  if (opts.backlog === undefined) {
    await startConsumers();
    progress(`worker pid ${worker.pid} ready, ${consumersText} running; producing...`);
    // 5. Produce for the duration, sampling every second; then wait until everything is acknowledged.
    sampling = await RunSampler.start(plan, services, worker, cleanup);
    load = await produceLoad(opts, plan, services, sampling, guard, interrupt, cleanup);
  } else {
    // 5'. --backlog N: the groups first (so no append trims what they will read), the load with no
    //     consumer, then the consumers: what they drain per second is the consumer capacity.
    const names = busNames(plan.config);
    for (const stream of plan.streams) await services.bus.ensureGroup(stream, names.consumer_group);
    progress(`worker pid ${worker.pid} ready; pre-loading ${opts.backlog.toLocaleString('en-US')} events with the consumers stopped...`);
    sampling = await RunSampler.start(plan, services, worker, cleanup);
    load = await produceLoad(opts, plan, services, sampling, guard, interrupt, cleanup);
    const cpuAtStart = await sampling.cpuAt();
    progress(`pre-loaded; starting ${consumersText}, draining...`);
    await startConsumers();
    drain = { startedMs: cpuAtStart.atMs, cpuAtStart };
  }
  const settle = await sampling.waitUntilSettled(opts.settleTimeoutMs, guard);
  const cpuEnd = await sampling.cpuAt();
  const finalMetrics = (await worker.scrape()) ?? [];
  await sampling.stop();
  if (sampling.sampleError) progress(`note: a sample failed: ${sampling.sampleError}`);
  const span = await publishedSpan(services.server, plan.streams, sampling.firstEntryMs);

  // 6. What reached PostgreSQL and the features streams, then drain the workflows and stop the worker.
  const readback = await readBack(opts.inference, plan, services, warmUp?.toMs ?? 0);
  const shutdown = await drainAndStop(plan, settle, services.client, worker);
  const names = busNames(plan.config);
  const lateStream = await services.bus.length(names.late_stream);
  const dlqStream = await services.bus.length(names.dlq_stream);

  // 7. Accounting, rates, latency, lag, backlog.
  return summarize(opts, plan, {
    baseline,
    warmUp,
    sampling,
    load,
    drain,
    settle,
    cpuEnd,
    finalMetrics,
    ...span,
    readback,
    ...shutdown,
    lateStream,
    dlqStream,
  });
}

/** Drains the consumer and inference workflows in parallel (their results carry the totals), then stops the worker. */
async function drainAndStop(plan: RunPlan, settle: SettleOutcome, client: Client, worker: BenchWorker) {
  const { shards, inferenceOn } = plan;
  progress(
    `settled=${settle.settled}${inferenceOn ? ` inference settled=${settle.inferenceSettled}` : ''}; draining ${shards} consumer workflows${inferenceOn ? ` and ${shards} inference workflows` : ''}...`,
  );
  const [drained, drainedInference] = await Promise.all([drainWorkflows(client, plan.consumerIds), drainWorkflows(client, plan.inferenceIds)]);
  const workerPeakRssBytes = readMemory(worker.pid)?.peakRssBytes;
  const workerExitMs = await worker.stop();
  progress(`worker stopped (${String(worker.exit)})`);
  return { drained, drainedInference, workerPeakRssBytes, workerExitMs };
}

async function runBench(opts: BenchOptions, interrupt: AbortSignal): Promise<BenchSummary> {
  const cleanup = new Cleanup();
  try {
    return await measure(opts, interrupt, cleanup);
  } finally {
    await cleanup.run();
  }
}

async function run(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const interrupt = new AbortController();
  process.once('SIGINT', () => {
    progress('interrupted: cleaning up (Ctrl-C again to quit at once)');
    interrupt.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  const summary = await runBench(opts, interrupt.signal);
  process.stdout.write(`${formatReport(summary)}\n\n`);
  process.stdout.write(`${JSON.stringify({ bench: 'throughput', ...summary })}\n`);
  const inf = summary.inference;
  if (!summary.settled || summary.events.lost !== 0 || (inf !== null && (!inf.settled || inf.lost !== 0))) process.exitCode = 3;
}

run().catch((err: unknown) => {
  if (err instanceof UsageError || err instanceof ConfigError || (err as { code?: string } | undefined)?.code?.startsWith('ERR_PARSE_ARGS')) {
    console.error(`bench: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
