import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { shardOf, shardStream } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import { SyntheticProducer } from '../../pipeline/producers/index.js';
import type { Database } from '../../store/index.js';
import { SignalsStoreClient, StoreClient } from '../../store/index.js';
import { inferenceWorkflowId, microBatchWorkflowId, producerWorkflowId } from '../../workflows/index.js';
import type { PanelQuery, PrometheusServer } from '../helpers/prometheus.js';
import {
  ALERT_RULES,
  dashboardQueries,
  hasFiniteSample,
  loadAlertRules,
  PROMETHEUS_CONFIG,
  prometheusBinary,
  promtool,
  seriesOf,
  startPrometheus,
  testPrometheusConfig,
} from '../helpers/prometheus.js';
import { REPO_ROOT, cleanupTestRun, connectRedis, connectStore, startTemporal, symbolsCoveringShards, testConfig, uniqueTag } from '../helpers/services.js';
import { startWorkerProcess, writeConfigFile } from '../helpers/worker-process.js';
import type { WorkerProcess } from '../helpers/worker-process.js';
import { freePort, waitFor } from '../helpers/wait.js';

/**
 * Panels allowed to return no data in this run, with the reason. Keep it short: a panel belongs
 * here only when a healthy run cannot produce its series.
 */
const ALLOWED_EMPTY: Record<string, string> = {
  'Inference Engine / Circuit breaker transitions [A]':
    'inference_breaker_transitions_total only gets a series when the sklearn breaker changes state, which a healthy model never makes it do',
};

describe('observability: Prometheus config and alert rules, dashboards queried against a live pipeline', function () {
  this.timeout(240_000);
  let env: TestWorkflowEnvironment;
  let db: Kysely<Database>;
  let redis: Redis;
  let config: StreamingConfig;
  let worker: WorkerProcess | undefined;
  let prometheus: PrometheusServer | undefined;
  const files: string[] = [];
  let failed = false;

  before(async function () {
    // Fail first, with the install hint, when the Debian prometheus package is missing.
    prometheusBinary('prometheus');
    prometheusBinary('promtool');
    const tag = uniqueTag();
    // The spec's rules plus one that holds on every bar, so signals flow from the first bar on.
    const rulesFile = resolve(REPO_ROOT, '.data/test', `${tag}-rules.yaml`);
    writeFileSync(
      rulesFile,
      `${readFileSync(resolve(REPO_ROOT, 'configs/rules.yaml'), 'utf8')}
- name: "every_bar"
  condition: "price > 0.0"
  signal: 0.0
  score: 0.1
  mode: level
`,
    );
    files.push(rulesFile);
    env = await startTemporal();
    const metricsPort = await freePort();
    config = testConfig(tag, {
      bus: { shards: 2 },
      // The window the shipped alert rules assume (mdp:microbatch_window_ms), so they apply as in production.
      micro_batch: { window_ms: 2000, allow_late_ms: 500, flush_timeout_ms: 1000 },
      temporal: { address: env.address },
      telemetry: { metrics_port: metricsPort, log_level: 'WARNING' },
      inference: {
        adapters: {
          rules: { enabled: true, file: rulesFile },
          sklearn: { enabled: true, model_path: resolve(REPO_ROOT, 'models/signal_model.onnx') },
        },
      },
    });
    redis = await connectRedis(config);
    db = await connectStore(config);
    const configFile = writeConfigFile(config, `observability-${tag}`);
    files.push(configFile);
    worker = startWorkerProcess(configFile, `observability-${tag}`);
    prometheus = await startPrometheus([`127.0.0.1:${metricsPort}`]);
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async function () {
    await prometheus?.stop();
    if (worker && worker.child.exitCode === null && worker.child.signalCode === null) {
      worker.child.kill('SIGTERM');
      const timer = setTimeout(() => worker?.child.kill('SIGKILL'), 15_000);
      await worker.exited;
      clearTimeout(timer);
    }
    await cleanupTestRun(config, { redis, db, env });
    // The worker's log stays for a failed run.
    for (const file of failed || !worker ? files : [...files, worker.logFile]) rmSync(file, { force: true });
  });

  it('promtool accepts the shipped config (with its rule file) and the alert rules, and their unit tests pass', function () {
    const checkConfig = promtool(['check', 'config', PROMETHEUS_CONFIG]);
    assert.equal(checkConfig.status, 0, checkConfig.output);
    assert.match(checkConfig.output, /1 rule files found/);
    const checkRules = promtool(['check', 'rules', ALERT_RULES]);
    assert.equal(checkRules.status, 0, checkRules.output);
    // The rules' own unit tests: each SLA breach fires after its `for`, its look-alikes never do.
    const testRules = promtool(['test', 'rules', resolve(ALERT_RULES, '../alerts.test.yml')]);
    assert.equal(testRules.status, 0, testRules.output);

    // The config as the tests run it: other targets, 1 s intervals, rule files by absolute path.
    const testCopy = resolve(prometheus!.dir, 'promtool-check.yml');
    writeFileSync(testCopy, testPrometheusConfig(['127.0.0.1:9101']));
    const checkCopy = promtool(['check', 'config', testCopy]);
    assert.equal(checkCopy.status, 0, checkCopy.output);
  });

  it('every dashboard query returns data and every alert rule evaluates, against a live pipeline', async function () {
    const server = prometheus!;
    const provider = config.producers.synthetic.provider;
    const shards = config.bus.shards;
    const { stream, features_stream: featuresStream } = config.bus.redis;
    const queue = config.temporal.task_queue;
    const symbols = symbolsCoveringShards(provider, shards);

    // The pipeline under Temporal, in the worker process Prometheus scrapes: a micro-batcher per
    // shard, inference by the rules on shard 0 and by the ONNX model (with its breaker) on shard 1,
    // and a live producer (event time = wall clock).
    const handles: WorkflowHandle[] = [];
    for (let shard = 0; shard < shards; shard++) {
      handles.push(
        await env.client.workflow.start('streamConsumerWorkflow', {
          taskQueue: queue,
          workflowId: microBatchWorkflowId(stream, shard),
          args: [{ role: 'microbatch', shard }],
        }),
      );
      handles.push(
        await env.client.workflow.start('streamConsumerWorkflow', {
          taskQueue: queue,
          workflowId: inferenceWorkflowId(featuresStream, shard),
          args: [{ role: 'inference', shard, adapter: shard === 0 ? 'rules' : 'sklearn' }],
        }),
      );
    }
    handles.push(
      await env.client.workflow.start('producerWorkflow', {
        taskQueue: queue,
        workflowId: producerWorkflowId(provider),
        args: [{ provider: 'synthetic', symbols, tickRate: 5, priceVolatility: 0.5 }],
      }),
    );
    // A producer whose input its activity rejects: failed attempts that Temporal retries.
    const failing = await env.client.workflow.start('producerWorkflow', {
      taskQueue: queue,
      workflowId: `${producerWorkflowId(provider)}-failing`,
      args: [{ provider: 'synthetic', count: 1, startTs: 'not-a-timestamp' }],
    });

    // Bars and signals committed on every shard.
    const bars = new StoreClient(db);
    const signals = new SignalsStoreClient(db);
    await waitFor(
      'bars on every shard and signals in the store',
      120_000,
      async () => {
        const stored = await bars.listBars({ provider });
        const shardsWithBars = new Set(stored.map((b) => shardOf(provider, b.symbol, shards)));
        return shardsWithBars.size === shards && (await signals.countSignals(provider)) > 0 ? true : undefined;
      },
      { everyMs: 500 },
    );

    // Bad input, in two rounds a few scrapes apart, so rates see it grow (a labelled counter
    // appears at its first increment, which rate() cannot see): invalid events (DLQ), events for
    // windows already flushed (late stream), an invalid feature snapshot (inference DLQ).
    const spyStream = shardStream(stream, shardOf(provider, 'SPY', shards));
    const old = new SyntheticProducer({ provider, symbols: ['SPY'], seed: 3, tickRate: 1, priceVolatility: 0.1 });
    const injectBadInput = async () => {
      await redis.xadd(spyStream, '*', 'd', 'this is not JSON');
      await redis.xadd(spyStream, '*', 'd', JSON.stringify({ ver: 1, provider, symbol: 'SPY', kind: 'tick' }));
      for (const event of old.generateFinite({ count: 2, startUs: (Date.now() - 60_000) * 1000 })) await redis.xadd(spyStream, '*', 'd', JSON.stringify(event));
      await redis.xadd(shardStream(featuresStream, 0), '*', 'd', '{"not":"a snapshot"}');
    };
    await injectBadInput();
    await waitFor(
      'the first bad input scraped',
      30_000,
      async () => {
        const answer = await server.query('count_over_time(errors_total{reason="invalid_snapshot"}[1m]) >= 2');
        return seriesOf(answer).length > 0 ? true : undefined;
      },
      { everyMs: 500 },
    );
    await injectBadInput();

    // Retried attempts of the failing producer: at least two, so the failure counter grows.
    await waitFor(
      'failed producer attempts counted',
      60_000,
      async () => {
        const answer = await server.query('errors_total{component="producer",reason="activity_failure"} >= 2');
        return seriesOf(answer).length > 0 ? true : undefined;
      },
      { everyMs: 1000 },
    );
    await failing.terminate('observability test: enough failed attempts');

    // The error panels see the injected errors as rates above zero.
    const errorPanels = dashboardQueries().filter(
      (q) => q.dashboard === 'Error Monitoring' && ['Error rate (excl. late)', 'DLQ share (5m)', 'Late share (5m)', 'Inference errors'].includes(q.panel),
    );
    assert.equal(errorPanels.length, 4);
    await waitFor(
      'error rates above zero',
      60_000,
      async () => {
        for (const q of errorPanels) {
          const answer = await server.query(`(${q.expr}) > 0`);
          if (!hasFiniteSample(answer)) throw new Error(`${q.where} is not above zero`);
        }
        return true;
      },
      { everyMs: 1000 },
    );

    // Every panel query answers with data once the scrapes have seen it all.
    const queries = dashboardQueries();
    assert.ok(queries.length > 40, `dashboards have their queries (${queries.length})`);
    const withoutData = async (list: readonly PanelQuery[]) => {
      const missing: string[] = [];
      for (const q of list) {
        const answer = await server.query(q.expr);
        if (answer.status !== 'success') missing.push(`${q.where}: ${answer.errorType}: ${answer.error}`);
        else if (!(q.where in ALLOWED_EMPTY) && !hasFiniteSample(answer)) missing.push(`${q.where}: no data for ${q.expr}`);
      }
      return missing;
    };
    await waitFor(
      'every dashboard query to return data',
      90_000,
      async () => {
        const missing = await withoutData(queries);
        if (missing.length > 0) throw new Error(`${missing.length} queries without data:\n  ${missing.join('\n  ')}`);
        return true;
      },
      { everyMs: 2000 },
    );
    for (const where of Object.keys(ALLOWED_EMPTY)) {
      assert.ok(
        queries.some((q) => q.where === where),
        `allowed-empty panel "${where}" exists`,
      );
    }

    // Every alert and recording rule evaluates without error, through the API and in Prometheus's own rule loop.
    const rules = loadAlertRules().flatMap((g) => g.rules);
    for (const rule of rules) {
      const answer = await server.query(rule.expr);
      assert.equal(answer.status, 'success', `${rule.alert ?? rule.record}: ${answer.errorType}: ${answer.error}`);
    }
    const window = await server.query('mdp:microbatch_window_ms');
    assert.equal(seriesOf(window)[0]?.value?.[1], '2000', 'the recording rule of the window is evaluated');
    const evaluated = await server.rules();
    assert.deepEqual(
      evaluated.map((g) => g.group),
      ['mdp-sla'],
    );
    assert.deepEqual(
      evaluated[0].rules.map((r) => r.name),
      rules.map((r) => r.alert ?? r.record),
    );
    for (const rule of evaluated[0].rules) {
      assert.equal(rule.health, 'ok', `rule ${rule.name} evaluates: ${rule.lastError ?? ''}`);
    }
    const targets = await server.targets();
    assert.deepEqual(
      targets.map((t) => t.health),
      ['up'],
      JSON.stringify(targets),
    );

    for (const h of handles) await h.signal('drain');
    await Promise.all(handles.map((h) => h.result()));
  });
});
