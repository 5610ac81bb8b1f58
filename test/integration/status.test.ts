import assert from 'node:assert/strict';
import { TypedSearchAttributes } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { ensureRecoverySchedule } from '../../client/recover-command.js';
import { formatFleetStatus, readFleetStatus, statusCommand } from '../../client/status-command.js';
import { RedisBus, shardStream } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import { SyntheticProducer } from '../../pipeline/producers/index.js';
import type { Database } from '../../store/index.js';
import { StoreClient } from '../../store/index.js';
import { inferenceWorkflowId, MdpRole, microBatchWorkflowId, producerWorkflowId, RECOVERY_SCHEDULE_ID } from '../../workflows/index.js';
import { expectedBars } from '../helpers/expected-bars.js';
import { cleanupTestRun, connectRedis, connectStore, createTestWorker, startTemporal, testConfig, uniqueTag } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

describe('mdp status (the fleet: owners, heartbeats, watermarks, lag, pending)', function () {
  this.timeout(240_000);
  let env: TestWorkflowEnvironment;
  let db: Kysely<Database>;
  let redis: Redis;
  let config: StreamingConfig;

  before(async function () {
    env = await startTemporal();
    config = testConfig(uniqueTag(), { bus: { shards: 1 }, temporal: { address: env.address }, recovery: { interval: '45s' } });
    redis = await connectRedis(config);
    db = await connectStore(config);
  });

  after(async function () {
    await cleanupTestRun(config, { redis, db, env });
  });

  it('lists each consumer workflow with shard, owner, last heartbeat and watermark', async function () {
    const redisCfg = config.bus.redis;
    const provider = config.producers.synthetic.provider;
    const stream = shardStream(redisCfg.stream, 0);
    const owner = microBatchWorkflowId(redisCfg.stream, 0);
    const store = new StoreClient(db);
    const events = new SyntheticProducer({ provider, symbols: ['STA', 'STB'], seed: 3, tickRate: 5, priceVolatility: 1 }).generateFinite({
      count: 40,
      startUs: Date.UTC(2025, 9, 3, 14) * 1000,
    });
    for (const e of events) await redis.xadd(stream, '*', 'd', JSON.stringify(e));

    const worker = await createTestWorker(env, config, db, { logLevel: 'ERROR' });
    const bus = new RedisBus(redisCfg.uri, { maxLen: redisCfg.maxlen });
    try {
      await worker.runUntil(async () => {
        const handle = await env.client.workflow.start('streamConsumerWorkflow', {
          taskQueue: config.temporal.task_queue,
          workflowId: owner,
          args: [{ role: 'microbatch', shard: 0 }],
        });
        const expected = expectedBars(events, config.micro_batch.window_ms);
        await waitFor('bars of every window', 60_000, async () => ((await store.countBars(provider)) === expected.length ? true : undefined));
        const countBars = () => store.countBars(provider);
        // The heartbeat that carries the watermark reaches Temporal within a heartbeat interval.
        const fleet = await waitFor(
          'a heartbeat with a watermark, nothing pending',
          30_000,
          async () => {
            const s = await readFleetStatus(env.client, bus, countBars, config);
            const c = s.consumers.find((x) => x.workflowId === owner);
            return c?.watermarkMs !== null && c?.lastHeartbeatMs !== null && c?.pending === 0 ? s : undefined;
          },
          { everyMs: 500 },
        );

        assert.equal(fleet.temporalError, null);
        assert.deepEqual(
          fleet.consumers.map((c) => [c.role, c.shard, c.workflowId]),
          [
            ['producer', null, producerWorkflowId(provider)],
            ['microbatch', 0, owner],
            ['inference', 0, inferenceWorkflowId(redisCfg.features_stream, 0)],
          ],
        );
        const mb = fleet.consumers[1];
        assert.equal(mb.status, 'RUNNING');
        assert.equal(mb.stream, stream);
        assert.equal(mb.activityState, 'STARTED');
        assert.ok(mb.lastHeartbeatMs! > Date.now() - 30_000 && mb.lastHeartbeatMs! <= Date.now() + 1000, 'a recent heartbeat');
        const lastEventMs = Date.parse(events[events.length - 1].src_ts);
        assert.ok(mb.watermarkMs! >= lastEventMs - config.micro_batch.allow_late_ms, 'the watermark passed the last event (minus the lateness allowance)');
        assert.ok(mb.frontierMs !== null && mb.frontierMs > Date.parse(events[0].src_ts), 'persisted windows move the frontier');
        assert.equal(mb.pending, 0);
        assert.equal(mb.lagMs, 0);
        assert.deepEqual([mb.backlog, mb.retention], [0, redisCfg.maxlen]);
        assert.equal(fleet.consumers[0].status, 'NOT_FOUND');
        assert.equal(fleet.consumers[2].status, 'NOT_FOUND');
        assert.deepEqual(fleet.replays, []);
        assert.equal(fleet.recovery, null);
        assert.equal(fleet.progress.eventsIn, events.length);

        const text = formatFleetStatus(fleet);
        const row = text.split('\n').find((line) => line.includes(owner));
        assert.ok(row, text);
        assert.match(row, /^microbatch\s+0\s+\S+\s+RUNNING\s+\d+\.\ds ago\s+\d{2}:\d{2}:\d{2}\.\d{3}\s+\d{2}:\d{2}:\d{2}\.\d{3}\s+0\.0s\s+0\b/);
        assert.match(text, /replays: none running/);
        assert.match(text, /events in 40 \| bars written \d+/, 'the progress line is still there');

        // The recovery schedule: created once, then updated in place; `mdp status` shows it.
        const created = await ensureRecoverySchedule(env.client, config);
        assert.deepEqual([created.scheduleId, created.created, created.intervalMs], [RECOVERY_SCHEDULE_ID, true, 45_000]);
        const updated = await ensureRecoverySchedule(env.client, config);
        assert.equal(updated.created, false);
        const withSchedule = await readFleetStatus(env.client, bus, countBars, config);
        assert.equal(withSchedule.recovery?.intervalMs, 45_000);
        assert.equal(withSchedule.recovery?.paused, false);
        assert.ok(withSchedule.recovery?.nextRunMs);
        assert.match(formatFleetStatus(withSchedule), /recovery: schedule mdp-recovery every 45s/);
        // The sweeps it starts are found by MdpRole and say what they are.
        const { action } = await env.client.schedule.getHandle(RECOVERY_SCHEDULE_ID).describe();
        assert.ok(action.typedSearchAttributes instanceof TypedSearchAttributes);
        assert.equal(action.typedSearchAttributes.get(MdpRole), 'recovery');
        assert.equal(action.staticSummary, 'recovery sweep · every 45s · redis');
        await env.client.schedule.getHandle(RECOVERY_SCHEDULE_ID).delete();

        // The command itself, once and in watch mode.
        let once = '';
        assert.equal(
          await statusCommand(config, {
            watch: false,
            write: (t) => {
              once += t;
            },
          }),
          0,
        );
        assert.match(once, new RegExp(`microbatch\\s+0\\s+${owner.replace(/[.]/g, '\\.')}\\s+RUNNING`));
        const stop = new AbortController();
        let blocks = 0;
        await statusCommand(config, {
          watch: true,
          intervalMs: 100,
          signal: stop.signal,
          write: (t) => {
            if (t.includes(owner) && ++blocks === 3) stop.abort();
          },
        });
        assert.equal(blocks, 3, 'watch mode refreshes until stopped');

        await handle.signal('drain');
        await handle.result();
      });
      // Once drained, the owner is shown as completed, without heartbeat.
      const drained = await readFleetStatus(env.client, bus, () => store.countBars(provider), config);
      assert.equal(drained.consumers[1].status, 'COMPLETED');
      assert.equal(drained.consumers[1].lastHeartbeatMs, null);
    } finally {
      await bus.close();
    }
  });
});
