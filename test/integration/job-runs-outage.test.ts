import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { shardStream } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import { SyntheticProducer } from '../../pipeline/producers/index.js';
import type { Database } from '../../store/index.js';
import { JobRunTracker, StoreClient } from '../../store/index.js';
import { microBatchWorkflowId } from '../../workflows/index.js';
import { PrivatePostgres } from '../helpers/private-services.js';
import { cleanupTestRun, connectRedis, connectStore, createTestWorker, startTemporal, testConfig, uniqueTag } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

describe('job_runs rows after a PostgreSQL outage (a private cluster, stopped and started)', function () {
  this.timeout(240_000);
  let env: TestWorkflowEnvironment;
  let pg: PrivatePostgres;
  let db: Kysely<Database>;
  let redis: Redis;
  let config: StreamingConfig;
  let worker: Worker;
  let running: Promise<void>;
  let publishing = true;
  let publisher: Promise<void>;
  /** Base streams that get live ticks on shard 0 until the end of the file, whatever happens to PostgreSQL. */
  const streams: string[] = [];

  before(async function () {
    [env, pg] = await Promise.all([startTemporal(), PrivatePostgres.start()]);
    config = testConfig(uniqueTag(), { bus: { shards: 1 }, store: { url: pg.url }, temporal: { address: env.address } });
    redis = await connectRedis(config);
    db = await connectStore(config);
    worker = await createTestWorker(env, config, db);
    running = worker.run();
    const producer = new SyntheticProducer({
      provider: config.producers.synthetic.provider,
      symbols: ['SPY', 'AAPL'],
      seed: 3,
      tickRate: 20,
      priceVolatility: 0.3,
    });
    publisher = (async () => {
      while (publishing) {
        const events = producer.ticksDue(Date.now() * 1000);
        if (events.length > 0 && streams.length > 0) {
          const pipe = redis.pipeline();
          for (const stream of streams) for (const e of events) pipe.xadd(shardStream(stream, 0), '*', 'd', JSON.stringify(e));
          await pipe.exec();
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
  });

  after(async function () {
    publishing = false;
    await publisher;
    await pg?.start().catch(() => undefined);
    worker?.shutdown();
    await running?.catch(() => undefined);
    await cleanupTestRun(config, { redis, db, env });
    await pg?.destroy();
  });

  const jobs = () => new JobRunTracker(db);
  const store = () => new StoreClient(db);
  const start = (stream: string) =>
    env.client.workflow.start('streamConsumerWorkflow', {
      taskQueue: config.temporal.task_queue,
      workflowId: microBatchWorkflowId(stream, 0),
      args: [{ role: 'microbatch', shard: 0, stream }],
    });
  /** The attempt number of the consumer's activity, once it is past `attempt` (it failed that many times). */
  const attemptPast = async (workflowId: string, attempt: number) =>
    waitFor(
      `attempt ${attempt + 1} of ${workflowId}`,
      60_000,
      async () => {
        const pending = (await env.client.workflow.getHandle(workflowId).describe()).raw.pendingActivities?.[0];
        return pending && (pending.attempt ?? 0) > attempt ? pending.attempt : undefined;
      },
      { everyMs: 250 },
    );
  const statuses = async (workflowId: string) => (await jobs().listRecent(workflowId, 100)).map((r) => r.status);

  it('a consumer whose PostgreSQL came back closes the row of the attempt that failed during the outage', async function () {
    const stream = config.bus.redis.stream;
    streams.push(stream);
    const handle = await start(stream);
    const provider = config.producers.synthetic.provider;
    await waitFor('bars before the outage', 60_000, async () => ((await store().countBars(provider)) > 0 ? true : undefined));
    const before = await store().countBars(provider);
    await pg.stop();
    await attemptPast(handle.workflowId, 1);
    await pg.start();
    await waitFor('bars after the outage', 60_000, async () => ((await store().countBars(provider)) > before ? true : undefined));
    const rows = await jobs().listRecent(handle.workflowId, 100);
    assert.ok(rows.length >= 2, `an attempt before and after the outage: ${JSON.stringify(rows)}`);
    assert.equal(rows[0]?.status, 'running', 'the live attempt');
    for (const row of rows.slice(1))
      assert.ok(row.status === 'failure' || row.status === 'abandoned', `row ${row.id} (attempt ${String(row.meta.attempt)}) is ${row.status}`);
    await handle.signal('drain');
    await handle.result();
    assert.ok((await statuses(handle.workflowId)).every((s) => s !== 'running'));
  });

  it('an attempt that failed during the outage ends its row even when no attempt follows it', async function () {
    const stream = `${config.bus.redis.stream}2`;
    streams.push(stream);
    const handle = await start(stream);
    await waitFor("the first attempt's row", 60_000, async () => ((await statuses(handle.workflowId)).includes('running') ? true : undefined));
    await pg.stop();
    await attemptPast(handle.workflowId, 1);
    // Drained while PostgreSQL is down: no later attempt will abandon the failed one's row.
    await handle.signal('drain');
    await handle.result();
    await pg.start();
    const rows = await waitFor(
      'every row ended',
      30_000,
      async () => {
        const rows = await jobs().listRecent(handle.workflowId, 100);
        return rows.every((r) => r.status !== 'running') ? rows : undefined;
      },
      { everyMs: 500 },
    );
    assert.deepEqual(
      rows.map((r) => r.status),
      ['failure'],
    );
    assert.ok(rows[0]?.error, 'the failure keeps its reason');
  });
});
