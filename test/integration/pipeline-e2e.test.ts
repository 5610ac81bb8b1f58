import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { shardStream } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import type { FeatureSnapshot } from '../../pipeline/contracts/index.js';
import type { Database } from '../../store/index.js';
import { SignalsStoreClient, StoreClient } from '../../store/index.js';
import type { LoopStatus } from '../../workflows/index.js';
import { inferenceWorkflowId, microBatchWorkflowId, producerWorkflowId } from '../../workflows/index.js';
import {
  cleanupTestRun,
  connectRedis,
  createTestWorker,
  connectStore,
  groupState,
  REPO_ROOT,
  startTemporal,
  testConfig,
  uniqueTag,
} from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const EVENTS = 3000;

describe('end to end: synthetic → bars → features → signals, all under Temporal', function () {
  this.timeout(240_000);
  let env: TestWorkflowEnvironment;
  let db: Kysely<Database>;
  let redis: Redis;
  let config: StreamingConfig;

  before(async function () {
    const tag = uniqueTag();
    const rulesFile = resolve(REPO_ROOT, '.data/test', `${tag}-rules.yaml`);
    // The spec's rules plus one that holds on every bar, so the count of signals is known exactly.
    writeFileSync(
      rulesFile,
      `${await import('node:fs').then((fs) => fs.readFileSync(resolve(REPO_ROOT, 'configs/rules.yaml'), 'utf8'))}
- name: "every_bar"
  condition: "price > 0.0 && volume >= 0.0"
  signal: 0.0
  score: 0.1
  mode: level
`,
    );
    config = testConfig(tag, { inference: { adapters: { rules: { enabled: true, file: rulesFile } } } });
    redis = await connectRedis(config);
    db = await connectStore(config);
    env = await startTemporal();
  });

  after(async function () {
    await cleanupTestRun(config, { redis, db, env });
  });

  it('every bar yields a feature snapshot and the signals its features define', async function () {
    const provider = config.producers.synthetic.provider;
    const worker = await createTestWorker(env, config, db);
    const shards = config.bus.shards;
    const { stream, features_stream: featuresStream, consumer_group: group, inference_group: inferenceGroup } = config.bus.redis;
    const bars = new StoreClient(db);
    const signals = new SignalsStoreClient(db);

    // A second group on the features streams, which only this test reads (at the end): streams are
    // trimmed only below what every group acknowledged, so every snapshot is still there to check.
    for (let shard = 0; shard < shards; shard++) await redis.xgroup('CREATE', shardStream(featuresStream, shard), 'e2e-reader', '0', 'MKSTREAM');

    await worker.runUntil(async () => {
      const handles: WorkflowHandle[] = [];
      for (let shard = 0; shard < shards; shard++) {
        handles.push(
          await env.client.workflow.start('streamConsumerWorkflow', {
            taskQueue: config.temporal.task_queue,
            workflowId: microBatchWorkflowId(stream, shard),
            args: [{ role: 'microbatch', shard }],
          }),
        );
        handles.push(
          await env.client.workflow.start('streamConsumerWorkflow', {
            taskQueue: config.temporal.task_queue,
            workflowId: inferenceWorkflowId(featuresStream, shard),
            args: [{ role: 'inference', shard, adapter: 'rules' }],
          }),
        );
      }
      await env.client.workflow.execute('producerWorkflow', {
        taskQueue: config.temporal.task_queue,
        workflowId: producerWorkflowId(provider),
        args: [{ provider: 'synthetic', count: EVENTS, startTs: '2025-10-01T14:00:00Z', tickRate: 10, priceVolatility: 0.5 }],
      });

      // Everything read and acknowledged on both the event and the features streams.
      await waitFor('bars, features and signals all committed', 60_000, async () => {
        for (let shard = 0; shard < shards; shard++) {
          const events = await groupState(redis, shardStream(stream, shard), group);
          const feats = await groupState(redis, shardStream(featuresStream, shard), inferenceGroup);
          if (!events || events.pending + events.lag > 0) return undefined;
          if ((await redis.exists(shardStream(featuresStream, shard))) && (!feats || feats.pending + feats.lag > 0)) return undefined;
        }
        const barCount = await bars.countBars(provider);
        return barCount > 0 && (await signals.countSignals(provider)) >= barCount ? true : undefined;
      });
      for (const h of handles) await h.signal('drain');
      await Promise.all(handles.map((h) => h.result() as Promise<LoopStatus>));

      const stored = await bars.listBars({ provider });
      const snapshots: FeatureSnapshot[] = [];
      for (let shard = 0; shard < shards; shard++) {
        for (const [, f] of await redis.xrange(shardStream(featuresStream, shard), '-', '+')) snapshots.push(JSON.parse(f[1]) as FeatureSnapshot);
      }
      // One snapshot per bar, for that bar.
      assert.equal(snapshots.length, stored.length);
      const barKeys = new Set(stored.map((b) => `${b.symbol}|${b.tsMs}`));
      for (const s of snapshots) assert.ok(barKeys.has(`${s.symbol}|${s.tsMs}`), `snapshot ${s.symbol} ${s.ts} belongs to a bar`);
      // Features warm up and then carry values (rsi after 14 changes, vwap after a full minute).
      const last = snapshots
        .filter((s) => s.symbol === 'SPY')
        .sort((a, b) => a.tsMs - b.tsMs)
        .at(-1)!;
      assert.equal(typeof last.values.rsi, 'number', JSON.stringify(last));
      assert.equal(typeof last.values.vwap_1m, 'number', JSON.stringify(last));

      // The level rule fired once per bar, at the bar's start; the spec's rules keep their keys.
      for (const symbol of ['SPY', 'AAPL', 'MSFT']) {
        const every = await signals.listSignals({ provider, symbol, name: 'every_bar' });
        const symbolBars = stored.filter((b) => b.symbol === symbol);
        assert.equal(every.length, symbolBars.length);
        assert.deepEqual(
          every.map((s) => Date.parse(s.ts)),
          symbolBars.map((b) => b.tsMs),
        );
        assert.ok(every.every((s) => s.meta.price === symbolBars.find((b) => b.tsMs === Date.parse(s.ts))!.close));
      }
      const streamed = await redis.xlen(config.bus.redis.signals_stream);
      assert.equal(streamed, await signals.countSignals(provider));
    });
  });
});
