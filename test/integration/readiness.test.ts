import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import { createMetrics } from '../../pipeline/telemetry/index.js';
import { startMetricsServer } from '../../workers/metrics-server.js';
import type { ReadinessResult } from '../../workers/metrics-server.js';
import { checkReadiness } from '../../workers/readiness.js';
import type { ReadinessReport, ReadinessTargets } from '../../workers/readiness.js';
import { startTemporal, testConfig, uniqueTag } from '../helpers/services.js';
import { startWorkerProcess, writeConfigFile } from '../helpers/worker-process.js';
import type { WorkerProcess } from '../helpers/worker-process.js';
import { waitFor } from '../helpers/wait.js';

/** The metric names of spec §6.1, which every mdp process exposes on /metrics. */
const SPEC_METRICS = [
  'stream_events_ingested_total',
  'stream_consumer_lag_ms',
  'microbatch_flush_total',
  'microbatch_flush_rows',
  'microbatch_window_latency_ms',
  'store_write_duration_seconds',
  'features_update_duration_seconds',
  'inference_eval_duration_seconds',
  'signals_emitted_total',
  'errors_total',
];

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function urlOf(server: Server, path: string): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
}

async function getJson(url: string): Promise<{ status: number; text: string; body: ReadinessReport }> {
  const res = await fetch(url);
  const text = await res.text();
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  return { status: res.status, text, body: JSON.parse(text) as ReadinessReport };
}

describe('worker /healthz and /readyz (Redis, PostgreSQL, Temporal)', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;
  let config: StreamingConfig;
  let targets: ReadinessTargets;
  const servers: Server[] = [];
  const sockets: Socket[] = [];

  const serve = async (readiness?: () => Promise<ReadinessResult>): Promise<Server> => {
    const server = await startMetricsServer(createMetrics().registry, '127.0.0.1', 0, { readiness });
    servers.push(server);
    return server;
  };

  before(async function () {
    env = await startTemporal();
    config = testConfig(uniqueTag(), { temporal: { address: env.address } });
    targets = { redisUri: config.bus.redis.uri, storeUrl: config.store.url, temporalAddress: env.address, timeoutMs: 2000 };
  });

  after(async function () {
    for (const socket of sockets) socket.destroy();
    for (const server of servers) server.close();
    await env?.teardown();
  });

  it('/healthz answers 200 and /metrics carries every metric of spec §6.1', async function () {
    const server = await serve();
    const health = await fetch(urlOf(server, '/healthz'));
    assert.equal(health.status, 200);
    assert.equal(await health.text(), 'ok\n');
    const metrics = await fetch(urlOf(server, '/metrics'));
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type') ?? '', /text\/plain/);
    const text = await metrics.text();
    for (const name of SPEC_METRICS) assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} on /metrics`);
    assert.equal((await fetch(urlOf(server, '/nope'))).status, 404);
  });

  it('/readyz answers 200 with every check ok when all three answer', async function () {
    const server = await serve(() => checkReadiness(targets));
    const { status, body } = await getJson(urlOf(server, '/readyz'));
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.ready, true);
    assert.deepEqual(Object.keys(body.checks).sort(), ['postgres', 'redis', 'temporal']);
    for (const [name, check] of Object.entries(body.checks)) {
      assert.equal(check.ok, true, `${name}: ${check.error}`);
      assert.equal(check.error, undefined);
      assert.ok(check.ms >= 0 && check.ms < 2000, `${name} took ${check.ms} ms`);
    }
    assert.equal(body.checks.temporal.target, env.address);
  });

  it('/readyz answers 503 naming Redis when Redis points at a closed port', async function () {
    const port = await closedPort();
    const server = await serve(() => checkReadiness({ ...targets, redisUri: `redis://:hunter2-redis@127.0.0.1:${port}/0` }));
    const { status, text, body } = await getJson(urlOf(server, '/readyz'));
    assert.equal(status, 503);
    assert.equal(body.ready, false);
    assert.equal(body.checks.redis!.ok, false);
    assert.match(body.checks.redis!.error ?? '', /ECONNREFUSED/);
    assert.equal(body.checks.postgres.ok, true);
    assert.equal(body.checks.temporal.ok, true);
    assert.ok(!text.includes('hunter2-redis'), text);
    assert.equal(body.checks.redis!.target, `redis://:***@127.0.0.1:${port}/0`);
  });

  it('a wrong PostgreSQL password fails the postgres check, and the password appears nowhere', async function () {
    const url = new URL(config.store.url);
    url.password = 'Wr0ng-s3cret-pw';
    const server = await serve(() => checkReadiness({ ...targets, storeUrl: url.toString() }));
    const { status, text, body } = await getJson(urlOf(server, '/readyz'));
    assert.equal(status, 503);
    assert.equal(body.checks.postgres.ok, false);
    assert.match(body.checks.postgres.error ?? '', /password authentication failed/);
    assert.equal(body.checks.redis!.ok, true);
    assert.ok(!text.includes('Wr0ng-s3cret-pw'), text);
  });

  it('a PostgreSQL password with unencoded reserved characters appears nowhere either', async function () {
    const { protocol, username, host, pathname } = new URL(config.store.url);
    const storeUrl = `${protocol}//${username}:Wr0ng/s3#cr@t@${host}${pathname}`;
    const server = await serve(() => checkReadiness({ ...targets, storeUrl }));
    const { status, text, body } = await getJson(urlOf(server, '/readyz'));
    assert.equal(status, 503);
    assert.equal(body.checks.postgres.ok, false);
    assert.equal(body.checks.postgres.target, `${protocol}//${username}:***@${host}${pathname}`);
    for (const part of ['Wr0ng', 's3#cr', 'cr@t']) assert.ok(!text.includes(part), text);
  });

  it('/readyz answers 503 naming Temporal when no frontend listens', async function () {
    const port = await closedPort();
    const server = await serve(() => checkReadiness({ ...targets, temporalAddress: `127.0.0.1:${port}` }));
    const { status, body } = await getJson(urlOf(server, '/readyz'));
    assert.equal(status, 503);
    assert.equal(body.checks.temporal.ok, false);
    assert.match(body.checks.temporal.error ?? '', /UNAVAILABLE|ECONNREFUSED/);
    assert.equal(body.checks.redis!.ok, true);
    assert.equal(body.checks.postgres.ok, true);
  });

  it('a dependency that accepts connections but never answers fails within the timeout', async function () {
    // A listener that accepts and stays silent: the PING, the PostgreSQL startup and the HTTP/2
    // handshake all hang, so only the probe's own deadlines end them.
    const silent = createTcpServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      const started = Date.now();
      const report = await checkReadiness({
        redisUri: `redis://127.0.0.1:${port}/0`,
        storeUrl: `postgres://mdp:s1lent-pw@127.0.0.1:${port}/mdp`,
        temporalAddress: `127.0.0.1:${port}`,
        timeoutMs: 500,
      });
      const took = Date.now() - started;
      assert.equal(report.ready, false);
      for (const [name, check] of Object.entries(report.checks)) assert.equal(check.ok, false, name);
      assert.ok(took < 2000, `probe took ${took} ms with a 500 ms budget`);
      assert.ok(!JSON.stringify(report).includes('s1lent-pw'));
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  it('concurrent /readyz requests share one round of checks', async function () {
    let rounds = 0;
    const server = await serve(async () => {
      rounds++;
      await new Promise((r) => setTimeout(r, 200));
      return { ready: true, checks: {} };
    });
    const answers = await Promise.all(Array.from({ length: 5 }, () => fetch(urlOf(server, '/readyz'))));
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200, 200, 200],
    );
    assert.equal(rounds, 1);
    await fetch(urlOf(server, '/readyz'));
    assert.equal(rounds, 2, 'a later request probes again');
  });

  it('a readiness function that throws yields 503 with its (redacted) reason', async function () {
    const server = await serve(() => Promise.reject(new Error('cannot reach redis://:leaked-pw@10.0.0.1:6379')));
    const { status, text, body } = await getJson(urlOf(server, '/readyz'));
    assert.equal(status, 503);
    assert.equal(body.ready, false);
    assert.ok(!text.includes('leaked-pw'), text);
  });

  describe('the worker process', function () {
    let worker: WorkerProcess | undefined;
    let configFile: string | undefined;
    let passed = false;

    after(async function () {
      if (worker && worker.child.exitCode === null) {
        worker.child.kill('SIGTERM');
        await worker.exited;
      }
      // The config file holds the store password; the log is kept only when the test failed.
      if (configFile) rmSync(configFile, { force: true });
      if (worker && passed) rmSync(worker.logFile, { force: true });
    });

    it('serves /metrics, /healthz and /readyz on its configured port', async function () {
      const port = await closedPort();
      const tag = uniqueTag();
      const processConfig = testConfig(tag, { temporal: { address: env.address }, telemetry: { metrics_port: port } });
      configFile = writeConfigFile(processConfig, `readiness-${tag}`);
      worker = startWorkerProcess(configFile, `readiness-${tag}`);
      const base = `http://127.0.0.1:${port}`;
      const ready = await waitFor('the worker to report ready', 60_000, async () => {
        if (worker!.child.exitCode !== null) throw new Error(`worker exited with ${worker!.child.exitCode}; see ${worker!.logFile}`);
        const res = await fetch(`${base}/readyz`);
        return res.status === 200 ? ((await res.json()) as ReadinessReport) : undefined;
      });
      assert.equal(ready.ready, true);
      assert.deepEqual(Object.keys(ready.checks).sort(), ['postgres', 'redis', 'temporal']);
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      const text = await (await fetch(`${base}/metrics`)).text();
      for (const name of SPEC_METRICS) assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} on the worker's /metrics`);
      assert.match(text, /^# TYPE process_resident_memory_bytes gauge/m, "process metrics beside the pipeline's");
      worker.child.kill('SIGTERM');
      assert.equal(await worker.exited, 0, 'a clean shutdown on SIGTERM');
      passed = true;
    });
  });
});
