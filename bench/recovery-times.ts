#!/usr/bin/env node
/**
 * How long the pipeline takes to consume again after a fault (issue 9): real worker processes, a
 * private Temporal dev server and a private PostgreSQL (so the shared stack is never stopped), the
 * shared Redis under names unique to the run, one micro-batch shard fed at 100 events/s.
 *
 *   node dist/bench/recovery-times.js [--kills 3] [--outage 30s[,35s…]] [--only failover|restart|postgres]
 *
 * - failover: two workers run; the one running the consumer is SIGKILLed (and replaced, so two run
 *   again before the next kill). Measured: SIGKILL → the next attempt's first committed bar.
 * - restart: one worker, SIGKILLed and started again at once. Same measure.
 * - postgres: PostgreSQL stopped for `--outage` (each length in turn), then started. Measured: start →
 *   next committed bar. Where the end of an outage falls in the retry backoff decides the wait, so
 *   a few lengths show its range.
 * Kills follow one another, so the activity's attempt count (and its retry backoff) grows as it would.
 */
import { parseArgs } from 'node:util';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { shardStream } from '../pipeline/bus/index.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { parseDurationMs } from '../pipeline/contracts/index.js';
import { SyntheticProducer } from '../pipeline/producers/index.js';
import type { Database } from '../store/index.js';
import { StoreClient } from '../store/index.js';
import { microBatchWorkflowId } from '../workflows/index.js';
import { PrivatePostgres } from '../test/helpers/private-services.js';
import { connectRedis, connectStore, startTemporal, testConfig, uniqueTag } from '../test/helpers/services.js';
import { waitFor } from '../test/helpers/wait.js';
import { startWorkerProcess, writeConfigFile } from '../test/helpers/worker-process.js';
import type { WorkerProcess } from '../test/helpers/worker-process.js';
import { BENCH_NAMESPACE } from './run-plan.js';

const RATE_PER_SYMBOL = 50;
const STEADY_MS = 3000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Run {
  readonly env: TestWorkflowEnvironment;
  readonly config: StreamingConfig;
  readonly configFile: string;
  readonly db: Kysely<Database>;
  readonly redis: Redis;
  readonly workers: WorkerProcess[];
}

/** Publishes live ticks to the run's shard until `stop` is set. */
function publishLive(run: Run, stop: { done: boolean }): Promise<void> {
  const producer = new SyntheticProducer({
    provider: run.config.producers.synthetic.provider,
    symbols: ['SPY', 'AAPL'],
    seed: 5,
    tickRate: RATE_PER_SYMBOL,
    priceVolatility: 0.3,
  });
  const stream = shardStream(run.config.bus.redis.stream, 0);
  return (async () => {
    while (!stop.done) {
      const events = producer.ticksDue(Date.now() * 1000);
      if (events.length > 0) {
        const pipe = run.redis.pipeline();
        for (const e of events) pipe.xadd(stream, '*', 'd', JSON.stringify(e));
        await pipe.exec();
      }
      await sleep(50);
    }
  })();
}

const bars = (run: Run) => new StoreClient(run.db).countBars(run.config.producers.synthetic.provider);

/** Milliseconds from `since` until a bar is committed after the count read now. */
async function nextCommitMs(run: Run, since: number): Promise<number> {
  const before = await bars(run);
  await waitFor('a committed bar', 300_000, async () => ((await bars(run)) > before ? true : undefined), { everyMs: 100 });
  return Date.now() - since;
}

function startWorker(run: Run, name: string): WorkerProcess {
  const worker = startWorkerProcess(run.configFile, `${name}-${run.workers.length + 1}`);
  run.workers.push(worker);
  return worker;
}

/** The worker process running the consumer's activity (its identity is `pid@host`). */
async function activityWorker(run: Run, workflowId: string): Promise<WorkerProcess> {
  return waitFor(
    'the worker running the consumer',
    60_000,
    async () => {
      const pending = (await run.env.client.workflow.getHandle(workflowId).describe()).raw.pendingActivities?.[0];
      const pid = Number(pending?.lastWorkerIdentity?.split('@')[0]);
      return run.workers.find((w) => w.child.pid === pid && w.child.exitCode === null && w.child.signalCode === null);
    },
    { everyMs: 200 },
  );
}

async function kill(worker: WorkerProcess): Promise<void> {
  worker.child.kill('SIGKILL');
  await worker.exited;
}

async function measure(
  kind: 'failover' | 'restart' | 'postgres',
  kills: number,
  outagesMs: readonly number[],
  env: TestWorkflowEnvironment,
  pg: PrivatePostgres,
): Promise<number[]> {
  const tag = uniqueTag('rec');
  const config = testConfig(tag, { bus: { shards: 1 }, store: { url: pg.url }, temporal: { address: env.address, namespace: BENCH_NAMESPACE } });
  const run: Run = {
    env,
    config,
    configFile: writeConfigFile(config, `recovery-${tag}`),
    db: await connectStore(config),
    redis: await connectRedis(config),
    workers: [],
  };
  const stop = { done: false };
  const publishing = publishLive(run, stop);
  const workflowId = microBatchWorkflowId(config.bus.redis.stream, 0);
  const times: number[] = [];
  try {
    startWorker(run, `recovery-${kind}`);
    if (kind === 'failover') startWorker(run, `recovery-${kind}`);
    await env.client.workflow.start('streamConsumerWorkflow', { taskQueue: config.temporal.task_queue, workflowId, args: [{ role: 'microbatch', shard: 0 }] });
    await nextCommitMs(run, Date.now());
    for (let i = 0; i < (kind === 'postgres' ? outagesMs.length : kills); i++) {
      await sleep(STEADY_MS);
      await nextCommitMs(run, Date.now()); // consuming before the fault
      let ms: number;
      if (kind === 'postgres') {
        await pg.stop();
        await sleep(outagesMs[i]);
        await pg.start();
        ms = await nextCommitMs(run, Date.now());
      } else {
        const victim = await activityWorker(run, workflowId);
        const killedAt = Date.now();
        await kill(victim);
        startWorker(run, `recovery-${kind}`); // failover: the spare for the next kill; restart: the replacement
        ms = await nextCommitMs(run, killedAt);
      }
      times.push(ms);
      console.log(
        `${kind} #${i + 1}: next committed bar ${(ms / 1000).toFixed(1)} s after the ${kind === 'postgres' ? `end of a ${outagesMs[i] / 1000} s outage` : 'SIGKILL'}`,
      );
    }
    await env.client.workflow.getHandle(workflowId).terminate('recovery bench done');
  } finally {
    stop.done = true;
    await publishing;
    for (const w of run.workers) w.child.kill('SIGKILL');
    const keys = await run.redis.keys(`${tag}.*`);
    if (keys.length > 0) await run.redis.del(...keys);
    await run.redis.quit();
    await run.db.destroy();
  }
  return times;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { kills: { type: 'string', default: '3' }, outage: { type: 'string', default: '30s' }, only: { type: 'string' } } });
  const kills = Number(values.kills);
  const outagesMs = values.outage.split(',').map((d) => parseDurationMs(d));
  if (!Number.isInteger(kills) || kills < 1 || outagesMs.some((ms) => ms === undefined)) {
    throw new Error('usage: recovery-times.js [--kills N] [--outage 30s[,35s…]] [--only failover|restart|postgres]');
  }
  const kinds = (['failover', 'restart', 'postgres'] as const).filter((k) => values.only === undefined || values.only === k);
  const [env, pg] = await Promise.all([startTemporal(BENCH_NAMESPACE), PrivatePostgres.start()]);
  const summary: Record<string, number[]> = {};
  try {
    for (const kind of kinds) summary[kind] = await measure(kind, kills, outagesMs as number[], env, pg);
  } finally {
    await env.teardown();
    await pg.destroy();
  }
  console.log(JSON.stringify({ bench: 'recovery-times', kills, outagesMs, ...summary }));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
