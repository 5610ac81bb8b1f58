import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { shardStream } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import type { FeatureSnapshot, SignalEventV1 } from '../../pipeline/contracts/index.js';
import type { Database } from '../../store/index.js';
import { SignalsStoreClient } from '../../store/index.js';
import type { LoopStatus } from '../../workflows/index.js';
import { inferenceWorkflowId } from '../../workflows/index.js';
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

const RULES = `
- name: "priced"
  condition: "price > 0.0"
  signal: 1.0
  score: 0.5
  mode: level
- name: "rsi_hot"
  condition: "rsi > 60.0"
  signal: -1.0
  score: 0.7
`;

/** Snapshots for two symbols, one per 2 s bar; rsi walks across 60 so the edge rule fires and resets. */
function snapshots(provider: string): FeatureSnapshot[] {
  const out: FeatureSnapshot[] = [];
  const rsiPath = [null, 55, 65, 70, 50, 62, 40, 61, 66, 30];
  for (const [k, symbol] of ['SPY', 'AAPL'].entries()) {
    for (const [i, rsi] of rsiPath.entries()) {
      const tsMs = Date.UTC(2025, 9, 1, 14, 0, 2 * i);
      out.push({
        ver: 1,
        provider,
        symbol,
        interval: '2s',
        ts: new Date(tsMs).toISOString().replace('.000Z', 'Z'),
        tsMs,
        price: 100 + k * 50 + i,
        values: { price: 100 + k * 50 + i, rsi, vwap: null },
        windows: { rsi: '14 bars' },
      });
    }
  }
  return out;
}

/** The signals the two rules must produce, worked out by hand from the snapshot values. */
function expectedSignals(all: readonly FeatureSnapshot[]): { symbol: string; name: string; ts: string; value: number }[] {
  const out: { symbol: string; name: string; ts: string; value: number }[] = [];
  const wasHot = new Map<string, boolean>();
  for (const s of all) {
    out.push({ symbol: s.symbol, name: 'priced', ts: s.ts, value: 1 });
    const rsi = s.values.rsi;
    const hot = rsi !== null && rsi !== undefined && rsi > 60;
    if (hot && !wasHot.get(s.symbol)) out.push({ symbol: s.symbol, name: 'rsi_hot', ts: s.ts, value: -1 });
    wasHot.set(s.symbol, hot);
  }
  return out.sort((a, b) => a.symbol.localeCompare(b.symbol) || a.ts.localeCompare(b.ts) || a.name.localeCompare(b.name));
}

const key = (s: { symbol: string; name: string; ts: string; value: number }) => ({ symbol: s.symbol, name: s.name, ts: s.ts, value: s.value });
const byKey = (a: { symbol: string; name: string; ts: string }, b: { symbol: string; name: string; ts: string }) =>
  a.symbol.localeCompare(b.symbol) || a.ts.localeCompare(b.ts) || a.name.localeCompare(b.name);

describe('signals round trip (features → rules inference under Temporal → mdp.signals + signals table)', function () {
  this.timeout(180_000);
  let env: TestWorkflowEnvironment;
  let db: Kysely<Database>;
  let redis: Redis;
  let config: StreamingConfig;

  before(async function () {
    const tag = uniqueTag();
    const rulesFile = resolve(REPO_ROOT, '.data/test', `${tag}-rules.yaml`);
    config = testConfig(tag, { bus: { shards: 1 }, inference: { adapters: { rules: { enabled: true, file: rulesFile } } } });
    redis = await connectRedis(config);
    db = await connectStore(config);
    writeFileSync(rulesFile, RULES);
    env = await startTemporal();
  });

  after(async function () {
    await cleanupTestRun(config, { redis, db, env });
  });

  it('stores and publishes exactly the signals the rules define, and a replay adds no row', async function () {
    const provider = config.producers.synthetic.provider;
    const worker = await createTestWorker(env, config, db);
    const features = shardStream(config.bus.redis.features_stream, 0);
    const group = config.bus.redis.inference_group;
    const store = new SignalsStoreClient(db);
    const input = snapshots(provider);
    const expected = expectedSignals(input);
    const publish = async () => {
      for (const s of input) await redis.xadd(features, '*', 'd', JSON.stringify(s));
    };
    const caughtUp = () =>
      waitFor('inference consumer caught up', 30_000, async () => {
        const g = await groupState(redis, features, group);
        return g && g.pending === 0 && g.lag === 0 ? true : undefined;
      });

    await worker.runUntil(async () => {
      await publish();
      const handle = await env.client.workflow.start('streamConsumerWorkflow', {
        taskQueue: config.temporal.task_queue,
        workflowId: inferenceWorkflowId(config.bus.redis.features_stream, 0),
        args: [{ role: 'inference', shard: 0, adapter: 'rules' }],
      });
      await caughtUp();

      // The table holds exactly the expected signals, in the v1 shape.
      const stored = [...(await store.listSignals({ provider, symbol: 'SPY' })), ...(await store.listSignals({ provider, symbol: 'AAPL' }))];
      assert.deepEqual(stored.map(key).sort(byKey), expected);
      for (const s of stored) {
        assert.equal(s.ver, 1);
        assert.equal(s.meta.adapter, 'rules');
        assert.equal(typeof s.meta.price, 'number');
        assert.ok(s.meta.inputs && typeof s.meta.inputs === 'object');
      }
      assert.equal(stored.find((s) => s.name === 'rsi_hot')!.score, 0.7);

      // The signals stream carries the same signals.
      const streamed = (await redis.xrange(config.bus.redis.signals_stream, '-', '+')).map(([, f]) => JSON.parse(f[1]) as SignalEventV1);
      assert.deepEqual(streamed.map(key).sort(byKey), expected);

      // Replaying the same snapshots: the level rule fires again on the same keys, the edge rule
      // stays quiet (its condition never turned false→true again) — no new or changed row.
      await publish();
      await caughtUp();
      assert.equal(await store.countSignals(provider), expected.length);
      await handle.signal('drain');
      const status = (await handle.result()) as LoopStatus;
      assert.equal(status.totals.snapshots, 2 * input.length);
      assert.equal(status.totals.inserted, expected.length);
      assert.equal(status.totals.updated, 0);
    });
  });

  it("runs the ONNX (sklearn) adapter under Temporal: signals match the model's reference outputs", async function () {
    const provider = config.producers.synthetic.provider;
    const reference = JSON.parse(readFileSync(resolve(REPO_ROOT, 'models/signal_model.reference.json'), 'utf8')) as {
      inputs: number[][];
      labels: number[];
      probabilities: number[][];
    };
    const sidecar = JSON.parse(readFileSync(resolve(REPO_ROOT, 'models/signal_model.json'), 'utf8')) as {
      threshold: number;
      classes: number[];
      signal_names: Record<string, string>;
      version: string;
    };
    const symbol = 'ONNX';
    const snapshots: FeatureSnapshot[] = reference.inputs.map(([returns, momentum, volatility, rsi, vwapGap], i) => {
      const tsMs = Date.UTC(2025, 9, 2, 10, 0, 2 * i);
      const price = 100 * (1 + vwapGap);
      return {
        ver: 1,
        provider,
        symbol,
        interval: '2s',
        ts: new Date(tsMs).toISOString().replace('.000Z', 'Z'),
        tsMs,
        price,
        values: { returns: returns, momentum: momentum, volatility: volatility, rsi: rsi, price, vwap: 100 },
        windows: { returns: '30s' },
      };
    });
    // What sklearn's own outputs say the adapter must emit (rows near the threshold left out of the
    // comparison, since float32 inference may land on either side of it).
    const expected = new Map<string, { name: string; value: number; score: number }>();
    const borderline = new Set<string>();
    reference.labels.forEach((label, i) => {
      const p = reference.probabilities[i][sidecar.classes.indexOf(label)];
      if (Math.abs(p - sidecar.threshold) < 1e-3) borderline.add(snapshots[i].ts);
      else if (label !== 0 && p >= sidecar.threshold) expected.set(snapshots[i].ts, { name: sidecar.signal_names[String(label)], value: label, score: p });
    });
    assert.ok(expected.size > 5, 'the reference rows include up and down signals');

    const queue = `${config.temporal.task_queue}-onnx`;
    const stream = `${config.bus.redis.features_stream}-onnx`;
    const worker = await createTestWorker(env, config, db, { taskQueue: queue });
    for (const snap of snapshots) await redis.xadd(shardStream(stream, 0), '*', 'd', JSON.stringify(snap));
    await worker.runUntil(async () => {
      const handle = await env.client.workflow.start('streamConsumerWorkflow', {
        taskQueue: queue,
        workflowId: `${inferenceWorkflowId(stream, 0)}`,
        args: [{ role: 'inference', shard: 0, adapter: 'sklearn', stream, modelPath: resolve(REPO_ROOT, 'models/signal_model.onnx') }],
      });
      await waitFor('ONNX inference caught up', 30_000, async () => {
        const g = await groupState(redis, shardStream(stream, 0), config.bus.redis.inference_group);
        return g && g.pending === 0 && g.lag === 0 ? true : undefined;
      });
      await handle.signal('drain');
      const status = (await handle.result()) as LoopStatus;
      assert.equal(status.totals.snapshots, snapshots.length);
    });
    const stored = (await new SignalsStoreClient(db).listSignals({ provider, symbol })).filter((s) => !borderline.has(s.ts));
    assert.deepEqual(
      stored.map((s) => [s.ts, s.name, s.value]),
      [...expected].map(([ts, e]) => [ts, e.name, e.value]),
    );
    for (const s of stored) {
      assert.ok(Math.abs(s.score - expected.get(s.ts)!.score) < 1e-4, `score of ${s.ts}`);
      assert.equal(s.meta.adapter, 'sklearn');
      assert.equal(s.meta.model_version, sidecar.version);
    }
  });

  it('rejects a rules file with a syntax error, naming the rule, file and position, without retrying', async function () {
    const badFile = resolve(REPO_ROOT, '.data/test', `${config.bus.redis.stream}-bad-rules.yaml`);
    writeFileSync(badFile, '- name: "broken"\n  condition: "rsi >> 70"\n  signal: 1.0\n  score: 0.5\n');
    const badConfig = { ...config, inference: { adapters: { ...config.inference.adapters, rules: { enabled: true, file: badFile } } } } as StreamingConfig;
    const worker = await createTestWorker(env, badConfig, db, { taskQueue: `${config.temporal.task_queue}-bad`, logLevel: 'ERROR' });
    await worker.runUntil(async () => {
      const failure = await env.client.workflow
        .execute('streamConsumerWorkflow', {
          taskQueue: `${config.temporal.task_queue}-bad`,
          workflowId: `${inferenceWorkflowId(config.bus.redis.features_stream, 0)}-bad`,
          args: [{ role: 'inference', shard: 0, adapter: 'rules' }],
        })
        .then(
          () => undefined,
          (err: Error) => err,
        );
      assert.ok(failure, 'the workflow fails');
      const message = String((failure as { cause?: { cause?: Error } }).cause?.cause?.message ?? failure.message);
      assert.match(message, /bad-rules\.yaml: rule "broken": condition "rsi >> 70": syntax error/);
    });
  });
});
