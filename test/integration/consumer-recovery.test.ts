import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { shardStream } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import type { StreamEventV1 } from '../../pipeline/contracts/index.js';
import { SyntheticProducer } from '../../pipeline/producers/index.js';
import type { Database } from '../../store/index.js';
import { JobRunTracker, StoreClient } from '../../store/index.js';
import type { LoopStatus } from '../../workflows/index.js';
import { microBatchWorkflowId } from '../../workflows/index.js';
import { expectedBars } from '../helpers/expected-bars.js';
import { cleanupTestRun, connectRedis, connectStore, groupState, startTemporal, testConfig, uniqueTag } from '../helpers/services.js';
import { startWorkerProcess, writeConfigFile } from '../helpers/worker-process.js';
import type { WorkerProcess } from '../helpers/worker-process.js';
import { waitFor } from '../helpers/wait.js';

const RATE = 300; // events/s across symbols, live timestamps
const PUBLISH_MS = 8000;

describe('consumer recovery (SIGKILL the worker mid-window, start a new one)', function () {
  this.timeout(240_000);
  let env: TestWorkflowEnvironment;
  let db: Kysely<Database>;
  let redis: Redis;
  let config: StreamingConfig;
  const workers: WorkerProcess[] = [];

  before(async function () {
    env = await startTemporal();
    const tag = uniqueTag();
    config = testConfig(tag, { bus: { shards: 1 }, temporal: { address: env.address } });
    redis = await connectRedis(config);
    db = await connectStore(config);
  });

  after(async function () {
    for (const w of workers) w.child.kill('SIGKILL');
    await cleanupTestRun(config, { redis, db, env });
  });

  it('persists every window exactly once, loses no event and leaves nothing pending', async function () {
    const provider = config.producers.synthetic.provider;
    const stream = shardStream(config.bus.redis.stream, 0);
    const group = config.bus.redis.consumer_group;
    const store = new StoreClient(db);
    const configFile = writeConfigFile(config, `recovery-${provider}`);
    const workflowId = microBatchWorkflowId(config.bus.redis.stream, 0);

    const first = startWorkerProcess(configFile, `recovery-${provider}-1`);
    workers.push(first);
    const handle = await env.client.workflow.start('streamConsumerWorkflow', {
      taskQueue: config.temporal.task_queue,
      workflowId,
      args: [{ role: 'microbatch', shard: 0 }],
    });

    // Publish live ticks in the background for PUBLISH_MS, whatever happens to the workers.
    const producer = new SyntheticProducer({ provider, symbols: ['SPY', 'AAPL', 'MSFT'], seed: 7, tickRate: RATE / 3, priceVolatility: 0.3 });
    const published: StreamEventV1[] = [];
    const publishing = (async () => {
      const until = Date.now() + PUBLISH_MS;
      while (Date.now() < until) {
        const events = producer.ticksDue(Date.now() * 1000);
        if (events.length > 0) {
          const pipe = redis.pipeline();
          for (const e of events) pipe.xadd(stream, '*', 'd', JSON.stringify(e));
          await pipe.exec();
          published.push(...events);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    // Kill the first worker once it has committed some windows while others are still open.
    await waitFor('first bars committed by the first worker', 60_000, async () => ((await store.countBars(provider)) > 0 ? true : undefined));
    const beforeKill = await groupState(redis, stream, group);
    assert.ok(beforeKill && beforeKill.pending > 0, 'entries of open windows are pending when the worker dies');
    first.child.kill('SIGKILL');
    assert.equal(await first.exited, null);
    const barsAtKill = await store.countBars(provider);

    await publishing;
    const second = startWorkerProcess(configFile, `recovery-${provider}-2`);
    workers.push(second);

    const expected = expectedBars(published, config.micro_batch.window_ms);
    // The retried attempt starts after the heartbeat timeout, re-reads the dead attempt's pending
    // entries under the same consumer name, then the rest of the stream.
    await waitFor(
      'every window persisted after recovery',
      120_000,
      async () => {
        const g = await groupState(redis, stream, group);
        return g && g.pending === 0 && g.lag === 0 && (await store.countBars(provider)) === expected.length ? true : undefined;
      },
      { everyMs: 500 },
    );

    await handle.signal('drain');
    const status = (await handle.result()) as LoopStatus;
    second.child.kill('SIGTERM');
    await second.exited;

    assert.deepEqual(await store.listBars({ provider }), expected, 'stored bars equal the bars of every published event');
    assert.ok(barsAtKill < expected.length, 'the kill happened before the last window');
    // The recovering attempt never had to change a row: no partial bar was ever written, and no
    // complete bar was overwritten by a partial one.
    assert.equal(status.totals.updated ?? 0, 0);
    assert.equal(await redis.xlen(config.bus.redis.late_stream), 0, 'no event was routed late');
    assert.equal(await redis.xlen(config.bus.redis.dlq_stream), 0, 'no event was dead-lettered');
    const pending = await groupState(redis, stream, group);
    assert.deepEqual(pending, { pending: 0, lag: 0 });

    const runs = await new JobRunTracker(db).listRecent(workflowId, 10);
    assert.deepEqual(runs.map((r) => r.status).sort(), ['abandoned', 'success'], 'the killed attempt is marked abandoned, the recovery succeeded');
  });
});
