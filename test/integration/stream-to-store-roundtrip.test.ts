import assert from 'node:assert/strict';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { shardStream } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import type { StreamEventV1 } from '../../pipeline/contracts/index.js';
import type { Database } from '../../store/index.js';
import { JobRunTracker, StoreClient } from '../../store/index.js';
import type { LoopStatus } from '../../workflows/index.js';
import { microBatchWorkflowId, producerWorkflowId } from '../../workflows/index.js';
import { expectedBars } from '../helpers/expected-bars.js';
import { cleanupTestRun, connectRedis, createTestWorker, groupState, connectStore, startTemporal, testConfig, uniqueTag } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const EVENTS = 3000;

/** Every event currently in the config's shard streams, decoded, with the stream it is in. */
async function publishedEvents(redis: Redis, config: StreamingConfig): Promise<{ stream: string; event: StreamEventV1 }[]> {
  const events: { stream: string; event: StreamEventV1 }[] = [];
  for (let shard = 0; shard < config.bus.shards; shard++) {
    const stream = shardStream(config.bus.redis.stream, shard);
    for (const [, fields] of await redis.xrange(stream, '-', '+')) events.push({ stream, event: JSON.parse(fields[1]) as StreamEventV1 });
  }
  return events;
}

describe('stream to store round trip (synthetic → Redis → micro-batch under Temporal → PostgreSQL)', function () {
  this.timeout(180_000);
  let env: TestWorkflowEnvironment;
  let db: Kysely<Database>;
  let redis: Redis;
  let config: StreamingConfig;

  before(async function () {
    config = testConfig(uniqueTag());
    redis = await connectRedis(config);
    db = await connectStore(config);
    env = await startTemporal();
  });

  after(async function () {
    await cleanupTestRun(config, { redis, db, env });
  });

  it('lands bars equal to an independent computation, idempotently, with a job_runs audit', async function () {
    const worker = await createTestWorker(env, config, db);
    const provider = config.producers.synthetic.provider;
    const store = new StoreClient(db);
    const stream = config.bus.redis.stream;
    const shards = config.bus.shards;

    await worker.runUntil(async () => {
      // 1. Produce a finite, deterministic burst through the producer workflow.
      const produced = (await env.client.workflow.execute('producerWorkflow', {
        taskQueue: config.temporal.task_queue,
        workflowId: producerWorkflowId(provider),
        args: [{ provider: 'synthetic', count: EVENTS, startTs: '2025-10-01T14:00:00Z', tickRate: 50 }],
      })) as LoopStatus;
      assert.equal(produced.totals.published, EVENTS);

      const published = await publishedEvents(redis, config);
      const events = published.map((p) => p.event);
      assert.equal(events.length, EVENTS);
      const expected = expectedBars(events, config.micro_batch.window_ms);
      // The group of step 5 exists from the start, as a replay's would have to: streams are trimmed
      // only below what every group acknowledged, so the events wait for it.
      const replayGroup = `${config.bus.redis.consumer_group}-replay`;
      for (let shard = 0; shard < shards; shard++) await redis.xgroup('CREATE', shardStream(stream, shard), replayGroup, '0', 'MKSTREAM');

      // 2. One micro-batch owner per shard, until every window is persisted and acknowledged.
      const handles: WorkflowHandle[] = [];
      for (let shard = 0; shard < shards; shard++) {
        handles.push(
          await env.client.workflow.start('streamConsumerWorkflow', {
            taskQueue: config.temporal.task_queue,
            workflowId: microBatchWorkflowId(stream, shard),
            args: [{ role: 'microbatch', shard }],
          }),
        );
      }
      await waitFor('all bars persisted and acknowledged', 60_000, async () => {
        const count = await store.countBars(provider);
        let pending = 0;
        for (let shard = 0; shard < shards; shard++) {
          const group = await groupState(redis, shardStream(stream, shard), config.bus.redis.consumer_group);
          pending += group ? group.pending + group.lag : 1;
        }
        return count === expected.length && pending === 0 ? true : undefined;
      });
      for (const h of handles) await h.signal('drain');
      const totals = await Promise.all(handles.map((h) => h.result() as Promise<LoopStatus>));

      // 3. Every o/h/l/c/v equals the independent computation.
      const stored = await store.listBars({ provider });
      assert.deepEqual(stored, expected);
      assert.equal(
        totals.reduce((n, t) => n + (t.totals.accepted ?? 0), 0),
        EVENTS,
      );

      // 4. The run is audited: one job_runs row per shard owner with its counts.
      const jobs = new JobRunTracker(db);
      let auditedBars = 0,
        auditedEvents = 0;
      for (let shard = 0; shard < shards; shard++) {
        const [run] = await jobs.listRecent(microBatchWorkflowId(stream, shard), 1);
        assert.ok(run, `job_runs row for shard ${shard}`);
        assert.equal(run.status, 'success');
        assert.equal(run.kind, 'microbatch');
        auditedBars += (run.counts as Record<string, number>).bars;
        auditedEvents += (run.counts as Record<string, number>).events;
      }
      assert.equal(auditedBars, expected.length);
      assert.equal(auditedEvents, EVENTS);
      const insertedTotal = totals.reduce((n, t) => n + (t.totals.inserted ?? 0), 0);
      assert.equal(insertedTotal, expected.length);

      const snapshotRows = () =>
        db.selectFrom('bars_ohlcv').select(['symbol', 'ts', 'updated_at']).where('provider', '=', provider).orderBy('symbol').orderBy('ts').execute();
      const before = await snapshotRows();

      // 5. A second consumer group (as a replay would) re-aggregates every event: 0 new, 0 changed.
      const replays: WorkflowHandle[] = [];
      for (let shard = 0; shard < shards; shard++) {
        replays.push(
          await env.client.workflow.start('streamConsumerWorkflow', {
            taskQueue: config.temporal.task_queue,
            workflowId: `${microBatchWorkflowId(stream, shard)}-replay`,
            args: [{ role: 'microbatch', shard, group: replayGroup }],
          }),
        );
      }
      // Entries are acknowledged only after their window is committed, so "nothing pending and
      // nothing undelivered" means every window has been written.
      await waitFor('replay group caught up', 60_000, async () => {
        for (let shard = 0; shard < shards; shard++) {
          const group = await groupState(redis, shardStream(stream, shard), replayGroup);
          if (!group || group.pending !== 0 || group.lag !== 0) return undefined;
        }
        const heartbeats = await Promise.all(replays.map(async (h) => (await h.describe()).raw.pendingActivities?.[0]?.heartbeatDetails));
        return heartbeats.every(Boolean) ? true : undefined;
      });
      for (const h of replays) await h.signal('drain');
      const replayTotals = await Promise.all(replays.map((h) => h.result() as Promise<LoopStatus>));
      const sum = (key: string) => replayTotals.reduce((n, t) => n + (t.totals[key] ?? 0), 0);
      assert.equal(sum('accepted'), EVENTS);
      assert.equal(sum('inserted'), 0);
      assert.equal(sum('updated'), 0);
      assert.equal(sum('unchanged'), expected.length);
      assert.deepEqual(await snapshotRows(), before, 'no row was rewritten');

      // 6. Re-publishing the same events into their shards: every shard owner finds them behind
      //    its persisted frontier, so they go to the late stream (counted, not dropped) and
      //    change nothing.
      for (const p of published) await redis.xadd(p.stream, '*', 'd', JSON.stringify(p.event));
      const again: WorkflowHandle[] = [];
      for (let shard = 0; shard < shards; shard++) {
        again.push(
          await env.client.workflow.start('streamConsumerWorkflow', {
            taskQueue: config.temporal.task_queue,
            workflowId: microBatchWorkflowId(stream, shard),
            args: [{ role: 'microbatch', shard }],
          }),
        );
      }
      await waitFor('re-published events routed to the late stream', 30_000, async () =>
        (await redis.xlen(config.bus.redis.late_stream)) === EVENTS ? true : undefined,
      );
      for (const h of again) await h.signal('drain');
      const againTotals = await Promise.all(again.map((h) => h.result() as Promise<LoopStatus>));
      assert.equal(
        againTotals.reduce((n, t) => n + (t.totals.late ?? 0), 0),
        EVENTS,
      );
      assert.equal(
        againTotals.reduce((n, t) => n + (t.totals.accepted ?? 0) + (t.totals.inserted ?? 0), 0),
        0,
      );
      assert.deepEqual(await snapshotRows(), before, 'no row was rewritten');
      assert.deepEqual(await store.listBars({ provider }), expected);
    });
  });
});
