import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { ensureRecoverySchedule, formatRecoveryReport, runRecovery, SCHEDULED_RECOVERY_INPUT } from '../../client/recover-command.js';
import { RECOVERY_CONSUMER } from '../../activities/recovery-activity.js';
import { shardOwnerId } from '../../pipeline/contracts/index.js';
import { shardStream } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import { SyntheticProducer } from '../../pipeline/producers/index.js';
import type { Database } from '../../store/index.js';
import { StoreClient } from '../../store/index.js';
import type { LoopStatus, RecoveryWorkflowInput, RecoveryWorkflowResult } from '../../workflows/index.js';
import { inferenceWorkflowId, microBatchWorkflowId, RECOVERY_SCHEDULE_ID } from '../../workflows/index.js';
import { expectedBars } from '../helpers/expected-bars.js';
import {
  cleanupTestRun,
  connectRedis,
  connectStore,
  createTestWorker,
  groupState,
  removeTestRun,
  startTemporal,
  testConfig,
  uniqueTag,
} from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const MAX_DELIVERIES = 4;

type PendingRow = [id: string, consumer: string, idleMs: number, deliveries: number];

async function pendingOf(redis: Redis, stream: string, group: string): Promise<Map<string, { consumer: string; deliveries: number }>> {
  const rows = (await redis.xpending(stream, group, '-', '+', 1000)) as PendingRow[];
  return new Map(rows.map(([id, consumer, , deliveries]) => [id, { consumer, deliveries }]));
}

/** Reads `count` new entries as `consumer` without acknowledging them: they stay pending under that name. */
async function readAs(redis: Redis, stream: string, group: string, consumer: string, count: number): Promise<string[]> {
  const reply = (await redis.xreadgroup('GROUP', group, consumer, 'COUNT', count, 'STREAMS', stream, '>')) as [string, [string, string[]][]][] | null;
  return reply?.[0]?.[1].map(([id]) => id) ?? [];
}

async function dlqLetters(redis: Redis, dlq: string): Promise<Record<string, string>[]> {
  return (await redis.xrange(dlq, '-', '+')).map(([, fields]) => {
    const o: Record<string, string> = {};
    for (let i = 0; i < fields.length; i += 2) o[fields[i]] = fields[i + 1];
    return o;
  });
}

describe('recovery sweep (consumerRecoveryWorkflow: XPENDING idle → re-appended for the owner, or DLQ)', function () {
  this.timeout(240_000);
  let env: TestWorkflowEnvironment;
  let db: Kysely<Database>;
  let redis: Redis;
  let config: StreamingConfig;

  before(async function () {
    env = await startTemporal();
    config = testConfig(uniqueTag(), { bus: { shards: 2, max_deliveries: MAX_DELIVERIES }, temporal: { address: env.address } });
    redis = await connectRedis(config);
    db = await connectStore(config);
  });

  after(async function () {
    await cleanupTestRun(config, { redis, db, env });
  });

  it('names owners exactly as the consumer workflows do, with ids that stay stable across releases', function () {
    assert.equal(shardOwnerId('microbatch', 'mdp.events', 3), 'mdp-microbatch-mdp.events-3');
    assert.equal(shardOwnerId('inference', 'mdp.features', 2), 'mdp-inference-mdp.features-2');
    assert.equal(microBatchWorkflowId('mdp.events', 3), 'mdp-microbatch-mdp.events-3');
    assert.equal(inferenceWorkflowId('mdp.features', 2), 'mdp-inference-mdp.features-2');
  });

  it("re-appends orphaned entries for the owner, dead-letters a poison entry exactly once, and leaves the owner's own entries alone", async function () {
    const redisCfg = config.bus.redis;
    const stream = shardStream(redisCfg.stream, 0);
    const group = redisCfg.consumer_group;
    const owner = microBatchWorkflowId(redisCfg.stream, 0);
    const features = shardStream(redisCfg.features_stream, 0);
    const inferenceOwner = inferenceWorkflowId(redisCfg.features_stream, 0);
    const dlq = redisCfg.dlq_stream;
    const payload = (i: number) => JSON.stringify({ note: `entry ${i}` });
    // Bundling the workflows takes seconds: done before the entries' idle times start to matter.
    const worker = await createTestWorker(env, config, db, { logLevel: 'ERROR' });

    await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
    await redis.xgroup('CREATE', features, redisCfg.inference_group, '0', 'MKSTREAM');
    // The live owner holds two entries (open windows): legitimately pending.
    for (let i = 0; i < 2; i++) await redis.xadd(stream, '*', 'd', payload(i));
    const owned = await readAs(redis, stream, group, owner, 2);
    // A dead consumer holds three, and another one holds a poison entry delivered too often.
    for (let i = 2; i < 5; i++) await redis.xadd(stream, '*', 'd', payload(i));
    const orphaned = await readAs(redis, stream, group, 'ghost', 3);
    const poisonPayload = payload(99);
    await redis.xadd(stream, '*', 'd', poisonPayload);
    const [poison] = await readAs(redis, stream, group, 'ghost-2', 1);
    await redis.call('XCLAIM', stream, group, 'ghost-2', '0', poison, 'RETRYCOUNT', '9');
    const poisonDeliveries = (await pendingOf(redis, stream, group)).get(poison)!.deliveries;
    assert.ok(poisonDeliveries > MAX_DELIVERIES, `poison delivered ${poisonDeliveries} times`);
    // An inference consumer's orphan on the features stream.
    await redis.xadd(features, '*', 'd', payload(50));
    const orphanedFeature = await readAs(redis, features, redisCfg.inference_group, 'ghost-inference', 1);
    assert.equal(owned.length + orphaned.length + orphanedFeature.length, 6);

    const minIdleMs = 3000;
    await new Promise((r) => setTimeout(r, minIdleMs + 300));
    // Delivered just now to a consumer that may well be alive: too recent to take.
    await redis.xadd(stream, '*', 'd', payload(7));
    const [recent] = await readAs(redis, stream, group, 'ghost', 1);
    const ownedBefore = await pendingOf(redis, stream, group);

    const sweep = (input: RecoveryWorkflowInput, id: string) =>
      env.client.workflow.execute('consumerRecoveryWorkflow', {
        taskQueue: config.temporal.task_queue,
        workflowId: id,
        args: [input],
      }) as Promise<RecoveryWorkflowResult>;

    await worker.runUntil(async () => {
      const first = await sweep({ minIdleMs }, 'recovery-1');
      assert.deepEqual(first.totals, { requeued: 4, deadLettered: 1, skippedOwned: 2, skippedRecent: 1 });
      assert.equal(first.maxDeliveries, MAX_DELIVERIES, 'bus.max_deliveries from the worker config');
      const events0 = first.streams.find((s) => s.stream === stream)!;
      assert.deepEqual(
        {
          owner: events0.owner,
          role: events0.role,
          pending: events0.pending,
          requeued: events0.requeued,
          deadLettered: events0.deadLettered,
          missing: events0.missing,
          truncated: events0.truncated,
        },
        { owner, role: 'microbatch', pending: 7, requeued: 3, deadLettered: 1, missing: false, truncated: false },
      );
      const features0 = first.streams.find((s) => s.stream === features)!;
      assert.equal(features0.owner, inferenceOwner);
      assert.equal(features0.requeued, 1);
      // Shard 1 has no consumer group yet: nothing to do there.
      assert.ok(first.streams.filter((s) => s.shard === 1).every((s) => s.missing));

      // Each orphan is acknowledged and appended again as a new entry, which the owner reads as new.
      const after = await pendingOf(redis, stream, group);
      for (const id of orphaned) assert.equal(after.has(id), false, `orphan ${id} is acknowledged`);
      const appended = (await redis.xrange(stream, `(${recent}`, '+')).map(([, fields]) => fields);
      assert.deepEqual(
        appended,
        [2, 3, 4].map((i) => ['d', payload(i)]),
        'copies of the orphans, in order, after everything else',
      );
      for (const id of owned) assert.deepEqual(after.get(id), ownedBefore.get(id), `the owner's own ${id} is untouched`);
      assert.equal(after.get(recent)?.consumer, 'ghost', 'a recently delivered entry stays with its consumer');
      // ... which was alive after all, and acknowledges it.
      await redis.xack(stream, group, recent);
      after.delete(recent);
      assert.equal(after.has(poison), false, 'the poison entry is acknowledged');
      assert.equal((await pendingOf(redis, features, redisCfg.inference_group)).has(orphanedFeature[0]), false);
      assert.deepEqual(
        (await redis.xrange(features, `(${orphanedFeature[0]}`, '+')).map(([, fields]) => fields),
        [['d', payload(50)]],
      );

      const letters = await dlqLetters(redis, dlq);
      assert.equal(letters.length, 1);
      assert.deepEqual(letters[0], {
        reason: `delivered ${poisonDeliveries} times (max_deliveries ${MAX_DELIVERIES})`,
        code: 'max_deliveries',
        stream,
        id: poison,
        group,
        deliveries: String(poisonDeliveries),
        original: poisonPayload,
      });

      // A second sweep changes nothing: the orphans are new entries now, the poison is gone.
      // (through the client function `mdp stream recover` uses)
      const { result: second } = await runRecovery(env.client, config, { minIdleMs });
      assert.match(formatRecoveryReport(second).join('\n'), /re-appended 0, dead-lettered 0 to .*\.dlq, left with their owner 2/);
      assert.deepEqual(second.totals, { requeued: 0, deadLettered: 0, skippedOwned: 2, skippedRecent: 0 });
      assert.deepEqual(await pendingOf(redis, stream, group), after);
      assert.equal(await redis.xlen(dlq), 1, 'no second dead letter');

      // A sweep that died between writing a dead letter and acknowledging it: the next one
      // acknowledges without writing the letter again; one that died before writing writes it.
      await redis.xadd(stream, '*', 'd', payload(100));
      const [halfDone] = await readAs(redis, stream, group, RECOVERY_CONSUMER, 1);
      await redis.xadd(
        dlq,
        '*',
        'reason',
        'delivered 5 times (max_deliveries 4)',
        'stream',
        stream,
        'id',
        halfDone,
        'group',
        group,
        'deliveries',
        '5',
        'original',
        payload(100),
      );
      await redis.xadd(stream, '*', 'd', payload(101));
      const [notWritten] = await readAs(redis, stream, group, RECOVERY_CONSUMER, 1);
      const third = await sweep({ minIdleMs: 0 }, 'recovery-3');
      assert.equal(third.totals.deadLettered, 1);
      const pendingNow = await pendingOf(redis, stream, group);
      assert.equal(pendingNow.has(halfDone), false);
      assert.equal(pendingNow.has(notWritten), false);
      const ids = (await dlqLetters(redis, dlq)).map((l) => l.id);
      assert.deepEqual(ids, [poison, halfDone, notWritten], 'one letter per entry');
    });
  });

  it('the live owner lands the bars of entries re-appended for it, without a restart', async function () {
    const redisCfg = config.bus.redis;
    const stream = shardStream(redisCfg.stream, 1);
    const group = redisCfg.consumer_group;
    const owner = microBatchWorkflowId(redisCfg.stream, 1);
    const provider = config.producers.synthetic.provider;
    const store = new StoreClient(db);
    const events = new SyntheticProducer({ provider, symbols: ['RCV', 'RCW'], seed: 11, tickRate: 4, priceVolatility: 2 }).generateFinite({
      count: 24,
      startUs: Date.UTC(2025, 9, 2, 15) * 1000,
    });
    const expected = expectedBars(events, config.micro_batch.window_ms);

    const worker = await createTestWorker(env, config, db, { logLevel: 'ERROR' });
    await worker.runUntil(async () => {
      const handle = await env.client.workflow.start('streamConsumerWorkflow', {
        taskQueue: config.temporal.task_queue,
        workflowId: owner,
        args: [{ role: 'microbatch', shard: 1 }],
      });
      await waitFor('the owner to create its group', 30_000, async () => ((await groupState(redis, stream, group)) ? true : undefined));
      // A consumer that died holding these events: added and read in one transaction, so the live
      // owner (blocked on new entries) never sees them as new.
      const tx = redis.multi();
      for (const e of events) tx.xadd(stream, '*', 'd', JSON.stringify(e));
      tx.xreadgroup('GROUP', group, 'ghost', 'COUNT', events.length, 'STREAMS', stream, '>');
      await tx.exec();
      const before = await pendingOf(redis, stream, group);
      assert.equal(before.size, events.length);
      assert.ok([...before.values()].every((p) => p.consumer === 'ghost'));
      assert.equal(await store.countBars(provider), 0);

      const result = (await env.client.workflow.execute('consumerRecoveryWorkflow', {
        taskQueue: config.temporal.task_queue,
        workflowId: 'recovery-live',
        args: [{ minIdleMs: 0, targets: [{ role: 'microbatch', shard: 1 }] }],
      })) as RecoveryWorkflowResult;
      assert.equal(result.totals.requeued, events.length);

      await waitFor(
        'the owner to land the re-appended events',
        60_000,
        async () => {
          const g = await groupState(redis, stream, group);
          return g?.pending === 0 && (await store.countBars(provider)) === expected.length ? true : undefined;
        },
        { everyMs: 300 },
      );
      await handle.signal('drain');
      const status = (await handle.result()) as LoopStatus;
      assert.equal(status.totals.accepted, events.length, 'every re-appended event was accepted (none late, none dead-lettered)');
    });
    assert.deepEqual(await store.listBars({ provider }), expected);
    assert.equal(await redis.xlen(redisCfg.dlq_stream), 3, "only the first test's letters");
  });

  it('a scheduled sweep returns at once, skipped, while no consumer of the pipeline runs, and sweeps once one does', async function () {
    // A pipeline of its own (one shard), so the file's other consumers do not count.
    const own = testConfig(uniqueTag(), { bus: { shards: 1 }, temporal: { address: env.address } });
    const redisCfg = own.bus.redis;
    const stream = shardStream(redisCfg.stream, 0);
    const group = redisCfg.consumer_group;
    const owner = microBatchWorkflowId(redisCfg.stream, 0);
    const [event] = new SyntheticProducer({
      provider: own.producers.synthetic.provider,
      symbols: ['SKP'],
      seed: 5,
      tickRate: 1,
      priceVolatility: 1,
    }).generateFinite({
      count: 1,
      startUs: Date.UTC(2025, 9, 6, 14) * 1000,
    });
    const worker = await createTestWorker(env, own, db, { logLevel: 'ERROR' });
    try {
      await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
      await redis.xadd(stream, '*', 'd', JSON.stringify(event));
      const [orphan] = await readAs(redis, stream, group, 'ghost', 1);

      await worker.runUntil(async () => {
        // What the schedule starts: its action carries the skip flag; triggered now, it skips.
        await ensureRecoverySchedule(env.client, own);
        const scheduled = await env.client.schedule.getHandle(RECOVERY_SCHEDULE_ID).describe();
        assert.deepEqual(scheduled.action.type === 'startWorkflow' ? scheduled.action.args : undefined, [SCHEDULED_RECOVERY_INPUT]);
        await env.client.schedule.getHandle(RECOVERY_SCHEDULE_ID).trigger();
        const triggered = await waitFor('the triggered sweep', 30_000, async () => {
          const d = await env.client.schedule.getHandle(RECOVERY_SCHEDULE_ID).describe();
          return d.info.recentActions[0]?.action.workflow.workflowId;
        });
        const fromSchedule = (await env.client.workflow.getHandle(triggered).result()) as RecoveryWorkflowResult;
        await env.client.schedule.getHandle(RECOVERY_SCHEDULE_ID).delete();
        assert.equal(fromSchedule.skipped, 'no consumers running');

        const startedAt = Date.now();
        const { result: skipped } = await runRecovery(env.client, own, { ...SCHEDULED_RECOVERY_INPUT, minIdleMs: 0 });
        assert.ok(Date.now() - startedAt < 10_000, `skipped quickly (${Date.now() - startedAt} ms)`);
        assert.deepEqual(
          { skipped: skipped.skipped, ownersRunning: skipped.ownersRunning, streams: skipped.streams, totals: skipped.totals },
          { skipped: 'no consumers running', ownersRunning: [], streams: [], totals: { requeued: 0, deadLettered: 0, skippedOwned: 0, skippedRecent: 0 } },
        );
        assert.deepEqual(formatRecoveryReport(skipped), ['recovery sweep skipped: no consumers running']);
        assert.equal((await pendingOf(redis, stream, group)).get(orphan)?.consumer, 'ghost', 'nothing was touched');
        // On demand (`mdp stream recover`, no flag) the sweep runs whether or not consumers do.
        const { result: onDemand } = await runRecovery(env.client, own, { minIdleMs: 0, targets: [{ role: 'inference', shard: 0 }] });
        assert.equal(onDemand.skipped, undefined);

        // With the shard's owner running, the scheduled sweep does its work.
        const handle = await env.client.workflow.start('streamConsumerWorkflow', {
          taskQueue: own.temporal.task_queue,
          workflowId: owner,
          args: [{ role: 'microbatch', shard: 0 }],
        });
        const { result: swept } = await runRecovery(env.client, own, { ...SCHEDULED_RECOVERY_INPUT, minIdleMs: 0 });
        assert.equal(swept.skipped, undefined);
        assert.deepEqual(swept.ownersRunning, [owner]);
        assert.equal(swept.totals.requeued, 1, 'the orphan went back to the running owner');
        await handle.signal('drain');
        await handle.result();
      });
    } finally {
      await removeTestRun(own, { redis, db });
    }
  });
});
