import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { reloadModel, ModelReloadError } from '../../client/model-command.js';
import { shardStream } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import type { FeatureSnapshot } from '../../pipeline/contracts/index.js';
import type { Database } from '../../store/index.js';
import { JobRunTracker, SignalsStoreClient } from '../../store/index.js';
import type { LoopStatus, ModelReloadInput, ModelReloadResult } from '../../workflows/index.js';
import { inferenceWorkflowId, MdpRole, modelReloadWorkflowId } from '../../workflows/index.js';
import { runNodeScript, startLabelledWorker, waitUntilPolling, writeConfigFile } from '../helpers/worker-process.js';
import {
  cleanupTestRun,
  connectRedis,
  connectStore,
  createTestWorker,
  groupState,
  REPO_ROOT,
  startTemporal,
  testConfig,
  uniqueTag,
} from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const MODEL = resolve(REPO_ROOT, 'models/signal_model.onnx');
const SIDECAR = resolve(REPO_ROOT, 'models/signal_model.json');
const REFERENCE = resolve(REPO_ROOT, 'models/signal_model.reference.json');

const CLI = resolve(REPO_ROOT, 'dist/client/cli.js');

/** Runs `mdp` with `args` (config from the test's file only); resolves with its exit code and output. */
const exec = (args: string[]) => runNodeScript(CLI, args);

interface Reference {
  inputs: number[][];
  labels: number[];
  probabilities: number[][];
}

/** A copy of the shipped model whose sidecar says `version` (same bytes, so the same outputs and reference). */
function modelVersion(dir: string, version: string): string {
  const model = resolve(dir, `signal_model_${version}.onnx`);
  copyFileSync(MODEL, model);
  copyFileSync(REFERENCE, resolve(dir, `signal_model_${version}.reference.json`));
  const sidecar = JSON.parse(readFileSync(SIDECAR, 'utf8')) as Record<string, unknown>;
  writeFileSync(resolve(dir, `signal_model_${version}.json`), JSON.stringify({ ...sidecar, version }, null, 2));
  return model;
}

/** A model file of random bytes with a valid sidecar (no sha256, so it is onnxruntime that refuses it). */
function corruptModel(dir: string): string {
  const model = resolve(dir, 'corrupt_model.onnx');
  writeFileSync(model, randomBytes(4096));
  const { sha256: _sha, ...sidecar } = JSON.parse(readFileSync(SIDECAR, 'utf8')) as Record<string, unknown>;
  writeFileSync(resolve(dir, 'corrupt_model.json'), JSON.stringify(sidecar, null, 2));
  return model;
}

/** Snapshots built from the reference rows (so the model fires up and down signals), on day `day`. */
function snapshots(provider: string, symbol: string, day: number, reference: Reference): FeatureSnapshot[] {
  return reference.inputs.map(([returns, momentum, volatility, rsi, vwapGap], i) => {
    const tsMs = Date.UTC(2025, 9, day, 10, 0, 2 * i);
    const price = 100 * (1 + vwapGap);
    return {
      ver: 1,
      provider,
      symbol,
      interval: '2s',
      ts: new Date(tsMs).toISOString().replace('.000Z', 'Z'),
      tsMs,
      price,
      values: { returns, momentum, volatility, rsi, price, vwap: 100 },
      windows: { returns: '30s' },
    };
  });
}

describe('model reload (modelReloadWorkflow → inference consumers under Temporal)', function () {
  this.timeout(240_000);
  let env: TestWorkflowEnvironment;
  let db: Kysely<Database>;
  let redis: Redis;
  let config: StreamingConfig;
  let dir: string;

  before(async function () {
    const tag = uniqueTag();
    config = testConfig(tag, { bus: { shards: 2 } });
    redis = await connectRedis(config);
    db = await connectStore(config);
    dir = resolve(REPO_ROOT, '.data/test', `${tag}-models`);
    mkdirSync(dir, { recursive: true });
    env = await startTemporal();
  });

  after(async function () {
    await cleanupTestRun(config, { redis, db, env });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('switches every consumer to a validated model, and keeps the old one when a model is rejected', async function () {
    const provider = config.producers.synthetic.provider;
    const reference = JSON.parse(readFileSync(REFERENCE, 'utf8')) as Reference;
    const v1 = JSON.parse(readFileSync(SIDECAR, 'utf8')) as { version: string };
    const v2Path = modelVersion(dir, '1.1.0');
    const badPath = corruptModel(dir);
    const features = config.bus.redis.features_stream;
    const group = config.bus.redis.inference_group;
    const store = new SignalsStoreClient(db);
    const symbols = ['RLA', 'RLB'];
    const publish = async (day: number) => {
      for (const [shard, symbol] of symbols.entries()) {
        for (const s of snapshots(provider, symbol, day, reference)) await redis.xadd(shardStream(features, shard), '*', 'd', JSON.stringify(s));
      }
    };
    const caughtUp = () =>
      waitFor('inference consumers caught up', 60_000, async () => {
        for (let shard = 0; shard < symbols.length; shard++) {
          const g = await groupState(redis, shardStream(features, shard), group);
          if (!g || g.pending !== 0 || g.lag !== 0) return undefined;
        }
        return true;
      });
    /** model_version of the signals of `day`, per symbol (all of a day's signals share one). */
    const versionsOf = async (day: number) => {
      const out: Record<string, string[]> = {};
      const prefix = `2025-10-${String(day).padStart(2, '0')}`;
      for (const symbol of symbols) {
        const rows = (await store.listSignals({ provider, symbol })).filter((s) => s.ts.startsWith(prefix));
        assert.ok(rows.length > 5, `${symbol} has signals on day ${day}`);
        for (const s of rows) assert.equal(s.meta.adapter, 'sklearn');
        out[symbol] = [...new Set(rows.map((s) => String(s.meta.model_version)))];
      }
      return out;
    };
    const both = (version: string) => Object.fromEntries(symbols.map((s) => [s, [version]]));

    const worker = await createTestWorker(env, config, db);
    await worker.runUntil(async () => {
      const handles = await Promise.all(
        symbols.map((_, shard) =>
          env.client.workflow.start('streamConsumerWorkflow', {
            taskQueue: config.temporal.task_queue,
            workflowId: inferenceWorkflowId(features, shard),
            args: [{ role: 'inference', shard, adapter: 'sklearn', modelPath: MODEL }],
          }),
        ),
      );

      // Before: the shipped model.
      await publish(1);
      await caughtUp();
      assert.deepEqual(await versionsOf(1), both(v1.version));

      // Reload to 1.1.0: both consumers confirm, and what they emit afterwards carries 1.1.0.
      const result = await reloadModel(env.client, config, { modelPath: v2Path });
      assert.equal(result.version, '1.1.0');
      assert.equal(result.validation.referencePath, v2Path.replace(/\.onnx$/, '.reference.json'));
      assert.ok(result.validation.maxAbsDiff !== null && result.validation.maxAbsDiff <= 1e-5);
      assert.deepEqual(
        result.consumers.map((c) => [c.workflowId, c.status, c.version, c.previousVersion]).sort(),
        symbols.map((_, shard) => [inferenceWorkflowId(features, shard), 'reloaded', '1.1.0', undefined]),
      );
      for (const h of handles) {
        const status = await h.query<LoopStatus>('status');
        assert.deepEqual(status.model, { adapter: 'sklearn', path: v2Path, version: '1.1.0', generation: 1 });
      }
      // The reload is legible: its role, its summary, and where it ended in its current details.
      const reload = env.client.workflow.getHandle(modelReloadWorkflowId(features));
      const described = await reload.describe();
      assert.equal(described.typedSearchAttributes.get(MdpRole), 'model-reload');
      assert.equal(await described.staticSummary(), `model reload → ${v2Path}`);
      const { currentDetails } = await reload.query<{ currentDetails: string }>('__temporal_workflow_metadata');
      assert.equal(currentDetails, `finished: the reload to 1.1.0 took effect  \n${v2Path} validated as 1.1.0  \n2 reloaded`);
      // A consumer's details name the model its next runs use.
      await waitFor('the consumer’s details naming 1.1.0', 10_000, async () => {
        const { currentDetails: details } = await handles[0].query<{ currentDetails: string }>('__temporal_workflow_metadata');
        return /^run \d+ since .* UTC {2}\nmodel 1\.1\.0 {2}\n/.test(details) ? true : undefined;
      });
      await publish(2);
      await caughtUp();
      assert.deepEqual(await versionsOf(2), both('1.1.0'));

      // A corrupt model is rejected with the reason, naming the file; nothing changes.
      const rejected = await reloadModel(env.client, config, { modelPath: badPath }).then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(rejected instanceof ModelReloadError, `rejected: ${String(rejected)}`);
      assert.match(rejected.message, /model rejected, nothing changed/);
      assert.ok(rejected.message.includes(badPath), rejected.message);
      for (const h of handles) assert.equal((await h.query<LoopStatus>('status')).model?.version, '1.1.0');
      await publish(3);
      await caughtUp();
      assert.deepEqual(await versionsOf(3), both('1.1.0'));

      for (const h of handles) await h.signal('drain');
      for (const h of handles) {
        const status = (await h.result()) as LoopStatus;
        assert.equal(status.totals.snapshots, 3 * reference.inputs.length);
      }
    });

    // One audit row per reload: the success with its counts, the rejection with its reason.
    const rows = await new JobRunTracker(db).listRecent(modelReloadWorkflowId(features), 10);
    assert.deepEqual(
      rows.map((r) => [r.kind, r.status]),
      [
        ['model_reload', 'failure'],
        ['model_reload', 'success'],
      ],
    );
    const [failure, success] = rows;
    assert.ok(failure.error?.includes(badPath), String(failure.error));
    assert.equal(failure.meta.modelPath, badPath);
    assert.deepEqual(success.counts, { consumers: 2, reloaded: 2 });
    assert.equal(success.meta.version, '1.1.0');
    assert.ok(success.finishedAt);
  });

  it('rolls back the consumers that switched when another consumer refuses the model', async function () {
    const provider = config.producers.synthetic.provider;
    const reference = JSON.parse(readFileSync(REFERENCE, 'utf8')) as Reference;
    const features = `${config.bus.redis.features_stream}-rb`;
    const group = config.bus.redis.inference_group;
    const queueB = `${config.temporal.task_queue}-rb`;
    // Consumer 1's worker builds its fallback rules from this file; breaking it after the consumer
    // started makes that worker refuse any model (the running adapter keeps serving).
    const rulesFile = resolve(dir, 'rb-rules.yaml');
    copyFileSync(resolve(REPO_ROOT, 'configs/rules.yaml'), rulesFile);
    const configB = { ...config, inference: { adapters: { ...config.inference.adapters, rules: { enabled: true, file: rulesFile } } } } as StreamingConfig;
    const v2Path = modelVersion(dir, '1.3.0');
    const symbol = 'RLC';
    const workerA = await createTestWorker(env, config, db);
    const workerB = await createTestWorker(env, configB, db, { taskQueue: queueB });
    const ids = [inferenceWorkflowId(features, 0), inferenceWorkflowId(features, 1)];
    await Promise.all([
      workerB.runUntil(
        workerA.runUntil(async () => {
          const handles = await Promise.all(
            ids.map((workflowId, shard) =>
              env.client.workflow.start('streamConsumerWorkflow', {
                taskQueue: shard === 0 ? config.temporal.task_queue : queueB,
                workflowId,
                args: [{ role: 'inference', shard, adapter: 'sklearn', stream: features, modelPath: MODEL }],
              }),
            ),
          );
          await waitFor('consumer 1 running', 30_000, async () => ((await groupState(redis, shardStream(features, 1), group)) ? true : undefined));
          writeFileSync(rulesFile, '- name: "broken"\n  condition: "rsi >> 70"\n  signal: 1.0\n  score: 0.5\n');

          const failed = await reloadModel(env.client, config, { modelPath: v2Path, consumers: ids, workflowId: `${modelReloadWorkflowId(features)}` }).then(
            () => undefined,
            (err: unknown) => err,
          );
          assert.ok(failed instanceof ModelReloadError, `failed: ${String(failed)}`);
          assert.match(failed.message, new RegExp(`rolled back: ${ids[1]}: .*rb-rules\\.yaml`));
          assert.deepEqual(
            failed.consumers.map((c) => [c.workflowId, c.status]),
            [
              [ids[0], 'rolled back'],
              [ids[1], 'failed'],
            ],
          );
          const status0 = await handles[0].query<LoopStatus>('status');
          assert.deepEqual(status0.model, { adapter: 'sklearn', path: MODEL, version: '1.0.0', generation: 2 });

          // Consumer 0 serves the old model again.
          for (const s of snapshots(provider, symbol, 4, reference)) await redis.xadd(shardStream(features, 0), '*', 'd', JSON.stringify(s));
          await waitFor('consumer 0 caught up', 60_000, async () => {
            const g = await groupState(redis, shardStream(features, 0), group);
            return g && g.pending === 0 && g.lag === 0 ? true : undefined;
          });
          const rows = await new SignalsStoreClient(db).listSignals({ provider, symbol });
          assert.ok(rows.length > 5);
          assert.deepEqual([...new Set(rows.map((r) => r.meta.model_version))], ['1.0.0']);
          for (const h of handles) await h.signal('drain');
          for (const h of handles) await h.result();
        }),
      ),
    ]);
    const [row] = await new JobRunTracker(db).listRecent(modelReloadWorkflowId(features), 1);
    assert.equal(row.status, 'failure');
    assert.deepEqual(row.counts, { consumers: 2, rolled_back: 1, failed: 1 });
    assert.ok(row.error?.includes(ids[1]), String(row.error));
  });

  it('rejects a model that misses its reference rows, and skips rules consumers', async function () {
    const features = `${config.bus.redis.features_stream}-rules`;
    const queue = `${config.temporal.task_queue}-rules`;
    // A reference file that disagrees with the model: labels flipped.
    const v3Path = modelVersion(dir, '1.2.0');
    const refPath = v3Path.replace(/\.onnx$/, '.reference.json');
    const ref = JSON.parse(readFileSync(refPath, 'utf8')) as Reference;
    writeFileSync(refPath, JSON.stringify({ ...ref, labels: ref.labels.map((l) => -l) }));
    const worker = await createTestWorker(env, config, db, { taskQueue: queue });
    await worker.runUntil(async () => {
      const rules = await env.client.workflow.start('streamConsumerWorkflow', {
        taskQueue: queue,
        workflowId: inferenceWorkflowId(features, 0),
        args: [{ role: 'inference', shard: 0, adapter: 'rules', stream: features }],
      });
      const opts = { workflowId: `${modelReloadWorkflowId(features)}`, consumers: [inferenceWorkflowId(features, 0), inferenceWorkflowId(features, 1)] };
      const client = { ...config, temporal: { ...config.temporal, task_queue: queue } } as StreamingConfig;

      const bad = await reloadModel(env.client, client, { modelPath: v3Path, ...opts }).then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(bad instanceof ModelReloadError);
      assert.match(bad.message, /differs from .*reference\.json/);

      // The same model against the shipped (matching) reference: the rules consumer is skipped, shard 1 is not running.
      const ok = await env.client.workflow.execute<(input: ModelReloadInput) => Promise<ModelReloadResult>>('modelReloadWorkflow', {
        taskQueue: queue,
        workflowId: `${opts.workflowId}-2`,
        args: [{ modelPath: v3Path, referencePath: REFERENCE, consumers: opts.consumers }],
      });
      assert.deepEqual(ok.consumers.map((c) => [c.workflowId, c.status]).sort(), [
        [opts.consumers[0], 'skipped'],
        [opts.consumers[1], 'not running'],
      ]);
      await rules.signal('drain');
      await rules.result();
    });
  });
  it('mdp model reload prints the new version, and exits 1 with the reason for a rejected model or when no consumer runs a model', async function () {
    const features = `${config.bus.redis.features_stream}-cli`;
    const cliConfig = {
      ...config,
      temporal: { ...config.temporal, address: env.address },
      bus: { ...config.bus, shards: 1, redis: { ...config.bus.redis, features_stream: features } },
    } as StreamingConfig;
    const file = writeConfigFile(cliConfig, `${features}-cli`);
    const consumer = inferenceWorkflowId(features, 0);
    const worker = await createTestWorker(env, cliConfig, db);
    await worker
      .runUntil(async () => {
        // No consumer runs a model: a valid model changes nothing, and says so (exit 1).
        const idle = await exec(['model', 'reload', '--config', file, '--path', modelVersion(dir, '1.3.0')]);
        assert.equal(idle.code, 1, idle.stdout + idle.stderr);
        assert.match(idle.stdout, new RegExp(`^${consumer}: not running$`, 'm'));
        assert.equal(
          idle.stderr.trim(),
          'mdp: model reload failed: no inference consumer runs a model (start one with mdp stream infer --adapter sklearn --model …); nothing changed',
        );

        const handle = await env.client.workflow.start('streamConsumerWorkflow', {
          taskQueue: cliConfig.temporal.task_queue,
          workflowId: consumer,
          args: [{ role: 'inference', shard: 0, adapter: 'sklearn', modelPath: MODEL }],
        });
        const good = await exec(['model', 'reload', '--config', file, '--path', modelVersion(dir, '1.4.0')]);
        assert.equal(good.code, 0, good.stderr);
        assert.match(
          good.stdout,
          /version 1\.4\.0 validated \(50 reference rows, max \|Δp\| (< 0\.000001|0\.\d{6})\); 1 of 1 consumers switched in \d+(\.\d)? (s|ms|min); job run \d+$/m,
        );
        assert.match(good.stdout, new RegExp(`^${consumer}: reloaded 1\\.4\\.0$`, 'm'));
        const json = await exec(['model', 'reload', '--config', file, '--path', modelVersion(dir, '1.5.0'), '--json']);
        assert.equal(json.code, 0, json.stderr);
        const doc = JSON.parse(json.stdout) as ModelReloadResult & { elapsedMs: number };
        assert.equal(doc.version, '1.5.0');
        assert.deepEqual(
          doc.consumers.map((c) => [c.workflowId, c.status, c.version]),
          [[consumer, 'reloaded', '1.5.0']],
        );
        assert.ok(Number.isInteger(doc.elapsedMs) && doc.elapsedMs > 0);

        // A missing model is named, not its (also missing) sidecar.
        const missing = resolve(dir, 'missing.onnx');
        const bad = await exec(['model', 'reload', '--config', file, '--path', missing]);
        assert.equal(bad.code, 1);
        assert.match(
          bad.stderr,
          new RegExp(`^mdp: model reload failed: model rejected, nothing changed: ${missing.replace(/[.]/g, '\\.')}: no such model file$`, 'm'),
        );
        assert.doesNotMatch(bad.stderr, /missing\.json/);
        const badJson = await exec(['model', 'reload', '--config', file, '--path', missing, '--json']);
        assert.equal(badJson.code, 1);
        const failure = JSON.parse(badJson.stdout) as { error: string; code: string; modelPath: string };
        assert.deepEqual([failure.code, failure.modelPath], ['rejected', missing]);
        assert.match(failure.error, /no such model file/);
        const usage = await exec(['model', 'reload', '--config', file]);
        assert.equal(usage.code, 2);
        await handle.signal('drain');
        await handle.result();
      })
      .finally(() => rmSync(file, { force: true }));
  });

  it('a rejected model is one warning in the worker log, naming the model and the reason (no failed activity or workflow)', async function () {
    const features = `${config.bus.redis.features_stream}-log`;
    const workerConfig = {
      ...config,
      temporal: { ...config.temporal, address: env.address, task_queue: `${config.temporal.task_queue}-log` },
      telemetry: { ...config.telemetry, log_level: 'INFO', log_format: 'json' },
    } as StreamingConfig;
    const file = writeConfigFile(workerConfig, `${features}-worker`);
    const worker = startLabelledWorker(file, `${features}-worker`, 'worker');
    try {
      await waitUntilPolling(env.client, workerConfig.temporal.task_queue, worker);
      const badPath = corruptModel(dir);
      const rejected = await reloadModel(env.client, workerConfig, { modelPath: badPath, workflowId: modelReloadWorkflowId(features), consumers: [] }).then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(rejected instanceof ModelReloadError, `rejected: ${String(rejected)}`);
      assert.match(rejected.message, /model rejected, nothing changed: .*corrupt_model\.onnx/);
    } finally {
      worker.child.kill('SIGTERM');
      await worker.exited;
      rmSync(file, { force: true });
    }
    const text = readFileSync(worker.logFile, 'utf8');
    const lines = text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const l of lines) assert.deepEqual(Object.keys(l).slice(0, 4), ['ts', 'level', 'component', 'msg'], JSON.stringify(l));
    const about = lines.filter((l) => JSON.stringify(l).includes('corrupt_model') || /rejected|failed/i.test(String(l.msg)));
    assert.equal(about.length, 1, `one line about the rejection, got:\n${about.map((l) => JSON.stringify(l)).join('\n')}`);
    assert.equal(about[0].level, 'warning');
    assert.equal(about[0].msg, 'model rejected');
    assert.ok(String(about[0].modelPath).endsWith('corrupt_model.onnx'), JSON.stringify(about[0]));
    assert.match(String(about[0].reason), /cannot load ONNX model/);
    // A stop is one line too: no block of SDK state changes.
    assert.deepEqual(
      lines.filter((l) => /stop|shut|state changed/i.test(String(l.msg))).map((l) => l.msg),
      ['worker stopped'],
    );
  });
});
