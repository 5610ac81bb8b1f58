import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { TypedSearchAttributes } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { ensureRecoverySchedule } from '../../client/recover-command.js';
import type { FleetStatus } from '../../client/status-command.js';
import { formatFleetStatus, readFleetStatus, statusCommand } from '../../client/status-command.js';
import { RedisBus, shardStream } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import { SyntheticProducer } from '../../pipeline/producers/index.js';
import type { Database } from '../../store/index.js';
import { StoreClient } from '../../store/index.js';
import { inferenceWorkflowId, MdpRole, microBatchWorkflowId, producerWorkflowId, RECOVERY_SCHEDULE_ID } from '../../workflows/index.js';
import { expectedBars } from '../helpers/expected-bars.js';
import { cleanupTestRun, connectRedis, connectStore, createTestWorker, REPO_ROOT, startTemporal, testConfig, uniqueTag } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

describe('mdp status (the fleet: owners, heartbeats, watermarks, lag, pending)', function () {
  this.timeout(240_000);
  let env: TestWorkflowEnvironment;
  let db: Kysely<Database>;
  let redis: Redis;
  let config: StreamingConfig;
  let tag: string;
  let datasetsFile: string;

  before(async function () {
    env = await startTemporal();
    tag = uniqueTag();
    // A replay catalog whose dataset writes this test's own provider: its bars count as a replay's.
    datasetsFile = resolve(REPO_ROOT, '.data/test', `${tag}-datasets.yaml`);
    writeFileSync(datasetsFile, `version: 1\ndatasets:\n  hist:\n    format: jsonl\n    path: /nonexistent\n    provider: hist-${tag}\n`);
    config = testConfig(tag, {
      bus: { shards: 1 },
      temporal: { address: env.address },
      recovery: { interval: '45s' },
      replay: { datasets_file: datasetsFile },
    });
    redis = await connectRedis(config);
    db = await connectStore(config);
  });

  after(async function () {
    await db
      ?.deleteFrom('bars_ohlcv')
      .where('provider', 'in', [`hist-${tag}`, `file-${tag}`])
      .execute();
    await cleanupTestRun(config, { redis, db, env });
    rmSync(datasetsFile, { force: true });
  });

  /** Bars of another provider than the synthetic one, as a file produce or a replay writes them. */
  const otherBars = (provider: string, n: number) =>
    Array.from({ length: n }, (_, i) => ({
      provider,
      symbol: 'SPY',
      interval: '1s',
      tsMs: Date.UTC(2025, 9, 1, 13, 30, i),
      open: 1,
      high: 2,
      low: 1,
      close: 2,
      volume: 10,
      trades: 1,
    }));

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
        const countBars = () => store.barsByProvider();
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
        assert.equal(fleet.stopped, null, 'a consuming pipeline has no gap');

        // Every provider's bars: a file produce's (live) and a replay's (its own lane), from the table.
        await store.upsertBars(otherBars(`file-${tag}`, 5));
        await store.upsertBars(otherBars(`hist-${tag}`, 1234));
        const all = await readFleetStatus(env.client, bus, countBars, config);
        const mine = all.providers.filter((p) => p.provider.endsWith(tag));
        assert.deepEqual(
          mine.map((p) => [p.provider, p.lane, p.bars]),
          [
            [provider, 'live', expected.length],
            [`file-${tag}`, 'live', 5],
            [`hist-${tag}`, 'replay', 1234],
          ].sort((a, b) => (a[1] === b[1] ? 0 : a[1] === 'live' ? -1 : 1)),
        );
        assert.equal(mine[2].lastBarMs, Date.UTC(2025, 9, 1, 13, 50, 33), 'the newest bar of the replay');
        const allText = formatFleetStatus(all);
        assert.match(allText, new RegExp(`^bars: .*\\b${provider} ${expected.length} \\(newest 2025-10-03T14:00:\\d\\dZ\\)`, 'm'), allText);
        assert.match(allText, new RegExp(`^bars: .*\\bfile-${tag} 5 \\(newest 2025-10-01T13:30:04Z\\)`, 'm'), allText);
        assert.match(allText, new RegExp(`^replay bars: .*\\bhist-${tag} 1,234 \\(newest 2025-10-01T13:50:33Z\\)`, 'm'), allText);
        assert.ok(all.progress.bars >= expected.length + 5, 'bars written counts every live provider');

        const text = formatFleetStatus(fleet);
        const row = text.split('\n').find((line) => line.includes(owner));
        assert.ok(row, text);
        assert.match(row, /^microbatch\s+0\s+\S+\s+RUNNING\s+\d+\.\ds ago\s+\d{2}:\d{2}:\d{2}\.\d{3}\s+\d{2}:\d{2}:\d{2}\.\d{3}\s+0\.0s\s+0\b/);
        assert.match(text, /replays: none running/);
        assert.match(text, /events in 40 \| bars written [\d,]+/, 'the progress line is still there');

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
        let json = '';
        assert.equal(await statusCommand(config, { watch: false, output: 'json', write: (t) => (json += t) }), 0);
        assert.equal(json.split('\n').length, 2, 'one JSON document on one line');
        const doc = JSON.parse(json) as FleetStatus;
        assert.equal(doc.consumers.find((c) => c.workflowId === owner)?.status, 'RUNNING');
        assert.equal(doc.providers.find((p) => p.provider === `hist-${tag}`)?.lane, 'replay');
        assert.equal(doc.progress.eventsIn, events.length);
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
      const drained = await readFleetStatus(env.client, bus, () => store.barsByProvider(), config);
      assert.equal(drained.consumers[1].status, 'COMPLETED');
      assert.equal(drained.consumers[1].lastHeartbeatMs, null);
      // ...drained at its close time, not a stale "running", and the pipeline's gap is named.
      const closedMs = drained.consumers[1].closedMs!;
      assert.ok(closedMs > Date.now() - 60_000 && closedMs <= Date.now(), 'the close time of the drain');
      const drainedText = formatFleetStatus(drained);
      const clock = new Date(closedMs).toISOString().slice(11, 19);
      assert.match(drainedText, new RegExp(`^microbatch\\s+0\\s+\\S+\\s+drained at ${clock}\\s`, 'm'), drainedText);
      assert.equal(drained.stopped?.reason, 'drained');
      const lastBarEnd = Math.max(...expectedBars(events, config.micro_batch.window_ms).map((b) => b.tsMs)) + config.micro_batch.window_ms;
      assert.equal(drained.stopped?.barsEndMs, lastBarEnd, 'the gap starts where the live bars end');
      assert.match(
        drainedText,
        new RegExp(
          `^pipeline stopped \\d+s ago \\(drained at ${clock}; mdp up resumes it\\); the feed's gap 2025-10-03 14:00:\\d\\d → \\d\\d:\\d\\d:\\d\\d \\(\\d+d\\d*h?\\) is not in bars$`,
          'm',
        ),
        drainedText,
      );
    } finally {
      await bus.close();
    }
  });

  it('shows a consumer whose worker stopped cleanly as waiting for a worker, not as failed, with the gap since', async function () {
    const owner = microBatchWorkflowId(config.bus.redis.stream, 0);
    const store = new StoreClient(db);
    const bus = new RedisBus(config.bus.redis.uri, { maxLen: config.bus.redis.maxlen });
    const worker = await createTestWorker(env, config, db, { logLevel: 'ERROR' });
    const handle = await env.client.workflow.start('streamConsumerWorkflow', {
      taskQueue: config.temporal.task_queue,
      workflowId: owner,
      args: [{ role: 'microbatch', shard: 0 }],
    });
    try {
      // Run until the consumer heartbeats, then stop the worker the way Ctrl-C on `mdp up` does.
      await worker.runUntil(
        waitFor(
          'a heartbeat',
          30_000,
          async () => {
            const s = await readFleetStatus(env.client, bus, () => store.barsByProvider(), config);
            return s.consumers[1].lastHeartbeatMs !== null ? true : undefined;
          },
          { everyMs: 300 },
        ),
      );
      const stopped = await waitFor(
        'the activity back to scheduled after the shutdown',
        30_000,
        async () => {
          const s = await readFleetStatus(env.client, bus, () => store.barsByProvider(), config);
          return s.consumers[1].activityState === 'SCHEDULED' && s.consumers[1].workerShutdown ? s : undefined;
        },
        { everyMs: 300 },
      );
      const mb = stopped.consumers[1];
      assert.equal(mb.status, 'RUNNING');
      assert.equal(mb.lastFailure, null, 'a clean worker shutdown is not a failure');
      const text = formatFleetStatus(stopped);
      assert.doesNotMatch(text, /last attempt failed|shutting down/i, text);
      const since = new Date(mb.lastHeartbeatMs!).toISOString().slice(11, 19);
      assert.match(text, new RegExp(`^microbatch\\s+0\\s+\\S+\\s+RUNNING \\(no worker since ${since}\\)`, 'm'), text);
      assert.deepEqual([stopped.stopped?.reason, stopped.stopped?.sinceMs], ['no worker', mb.lastHeartbeatMs]);
      assert.match(text, new RegExp(`^pipeline stopped \\d+s ago \\(no worker since ${since}; mdp up resumes it\\); the feed's gap `, 'm'), text);
    } finally {
      await handle.terminate('test done');
      await bus.close();
    }
  });
});
