/**
 * Helpers that give integration tests real services: Redis, PostgreSQL (started by
 * `bash scripts/stack-start.sh`) and a Temporal dev server started per test file from the
 * Temporal CLI built by `scripts/install.sh`. Names are unique per test so tests never collide.
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import type { WorkerDeploymentOptions, WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import { loadStreamingConfig } from '../../pipeline/config/index.js';
import { createDb, migrateToLatest } from '../../store/index.js';
import type { Database } from '../../store/index.js';
import type { Kysely } from 'kysely';
import { WORKFLOWS_PATH } from '../../workers/workflows-path.js';
import { createActivities } from '../../activities/index.js';
import { createLogger, createMetrics } from '../../pipeline/telemetry/index.js';
import type { LogLevel, Metrics } from '../../pipeline/telemetry/index.js';
import { WORKER_TUNING } from '../../workers/worker-options.js';
import { shardOf } from '../../pipeline/bus/index.js';
import { activityDeps } from '../../workers/wiring.js';
import { MDP_SEARCH_ATTRIBUTES } from '../../workflows/index.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../../..');
const HINT = 'start the local stack first: bash scripts/stack-start.sh (or run the tests with bash scripts/test.sh)';

/**
 * The Temporal namespace of every test: never the user's `default`, whose workflow list a test
 * run would otherwise fill (and whose live pipeline a test could touch on the shared stack).
 */
export const TEST_NAMESPACE = 'mdp-test';

/** Retention of the namespaces tests and the bench create: their runs are worth a day at most. */
export const SCRATCH_NAMESPACE_RETENTION = '1d';

/** A short unique tag for stream, provider and workflow names. */
export function uniqueTag(prefix = 't'): string {
  return `${prefix}${randomUUID().slice(0, 8)}`;
}

/** Every stream and group name of `bus.redis` (and `bus.kafka`), unique to a run's tag (tests and the bench). */
export function taggedBusNames(tag: string) {
  return {
    stream: `${tag}.events`,
    signals_stream: `${tag}.signals`,
    consumer_group: `${tag}-group`,
    dlq_stream: `${tag}.dlq`,
    late_stream: `${tag}.events.late`,
    features_stream: `${tag}.features`,
    inference_group: `${tag}-inference`,
  };
}

/** The shipped config with per-test names for every stream, group and queue. */
export function testConfig(tag: string, overrides: Record<string, unknown> = {}): StreamingConfig {
  const base = {
    bus: {
      shards: 2,
      redis: {
        uri: process.env.REDIS_URI ?? 'redis://127.0.0.1:6379/0',
        ...taggedBusNames(tag),
      },
      kafka: { ...taggedBusNames(tag) },
    },
    producers: { synthetic: { provider: `synth-${tag}` } },
    micro_batch: { window_ms: 1000, allow_late_ms: 300, flush_timeout_ms: 500 },
    temporal: { namespace: TEST_NAMESPACE, task_queue: `${tag}-queue` },
    telemetry: { metrics_port: 0 },
  };
  return loadStreamingConfig({ file: resolve(REPO_ROOT, 'configs/streaming.yaml'), env: process.env, overrides: deepMerge(base, overrides) });
}

/** `b` merged into `a`, nested objects key by key (arrays and other values replaced). */
export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev)
        ? deepMerge(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** A Redis client for assertions; fails with a hint when Redis is not running. */
export async function connectRedis(config: StreamingConfig): Promise<Redis> {
  const redis = new Redis(config.bus.redis.uri, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new Error(`Redis is not reachable at ${config.bus.redis.uri}: ${(err as Error).message}; ${HINT}`);
  }
  return redis;
}

/** A migrated database handle; fails with a hint when PostgreSQL is not running. */
export async function connectStore(config: StreamingConfig): Promise<Kysely<Database>> {
  const db = createDb(config.store.url);
  try {
    await migrateToLatest(db);
  } catch (err) {
    await db.destroy();
    throw new Error(`PostgreSQL is not usable at the configured store.url: ${(err as Error).message}; ${HINT}`);
  }
  return db;
}

/** Path of the Temporal CLI built by scripts/install.sh. */
export function temporalCliPath(): string {
  const path = process.env.MDP_TEMPORAL_BIN ?? resolve(REPO_ROOT, '.cache/bin/temporal');
  if (!existsSync(path)) throw new Error(`Temporal CLI not found at ${path}; run bash scripts/install.sh`);
  return path;
}

/**
 * The Temporal CLI behind `scripts/temporal-quiet.sh`, which appends the dev server's output (its
 * start-up banner and log lines) to `.data/test/logs/temporal-cli.log` instead of the test output.
 */
export function quietTemporalCliPath(): string {
  process.env.MDP_TEMPORAL_REAL_BIN = temporalCliPath();
  const logs = resolve(REPO_ROOT, '.data/test/logs');
  mkdirSync(logs, { recursive: true });
  process.env.MDP_TEMPORAL_CLI_LOG = resolve(logs, 'temporal-cli.log');
  return resolve(REPO_ROOT, 'scripts/temporal-quiet.sh');
}

/**
 * A Temporal dev server of our own on loopback for this test file, with `namespace` (the tests'
 * {@link TEST_NAMESPACE}) created at start-up and mdp's search attributes registered; `env.client`
 * works in it. `uiPort` serves the Web UI too.
 */
export function startTemporal(namespace = TEST_NAMESPACE, options: { uiPort?: number } = {}): Promise<TestWorkflowEnvironment> {
  const ui = options.uiPort === undefined ? { ui: false } : { ui: true, uiPort: options.uiPort };
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: quietTemporalCliPath() },
      ip: '127.0.0.1',
      ...ui,
      namespace,
      searchAttributes: [...MDP_SEARCH_ATTRIBUTES],
    },
  });
}

const bundles = new Map<string, Promise<WorkflowBundleWithSourceMap>>();
/** The workflow bundle of this checkout (or of another workflows module), built once per test process. */
export function workflowBundle(workflowsPath = WORKFLOWS_PATH): Promise<WorkflowBundleWithSourceMap> {
  const built = bundles.get(workflowsPath);
  if (built) return built;
  const bundle = bundleWorkflowCode({
    workflowsPath,
    logger: {
      log: () => undefined,
      trace: () => undefined,
      debug: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      error: (m) => console.error(m),
    },
  });
  bundles.set(workflowsPath, bundle);
  return bundle;
}

/** A consumer group's pending count and `lag` (entries not yet delivered) from XINFO GROUPS. */
export async function groupState(redis: Redis, stream: string, group: string): Promise<{ pending: number; lag: number } | undefined> {
  const rows = (await redis.xinfo('GROUPS', stream)) as (string | number | null)[][];
  for (const row of rows) {
    const info = new Map<string, string | number | null>();
    for (let i = 0; i < row.length; i += 2) info.set(String(row[i]), row[i + 1] ?? null);
    if (info.get('name') === group) return { pending: Number(info.get('pending')), lag: Number(info.get('lag') ?? 0) };
  }
  return undefined;
}

/** The tag every name of a test run starts with (see {@link testConfig}). */
function runTag(config: StreamingConfig): string {
  return config.bus.redis.stream.split('.')[0];
}

/**
 * An in-process worker with the real activities wired to this test's config and clients, on the
 * config's task queue (or `taskQueue`). Logs at WARNING to stderr (or to `logFile`) unless told otherwise.
 */
export async function createTestWorker(
  env: TestWorkflowEnvironment,
  config: StreamingConfig,
  db: Kysely<Database>,
  options: {
    taskQueue?: string;
    logLevel?: LogLevel;
    logFile?: string;
    /** A Worker Deployment version (see workers/deployment.ts); default unversioned. */
    deployment?: WorkerDeploymentOptions;
    /** Another build's workflow code (default: this checkout's, see {@link workflowBundle}). */
    bundle?: WorkflowBundleWithSourceMap;
    identity?: string;
    /** The worker's metrics, for tests that read them (default: a fresh registry nobody reads). */
    metrics?: Metrics;
  } = {},
): Promise<Worker> {
  const level = options.logLevel ?? (process.env.MDP_TEST_LOG === 'debug' ? 'DEBUG' : 'WARNING');
  const { logFile } = options;
  const log = createLogger(level, logFile ? (line) => appendFileSync(logFile, line + '\n') : (line) => process.stderr.write(line + '\n'));
  return Worker.create({
    connection: env.nativeConnection,
    namespace: config.temporal.namespace,
    taskQueue: options.taskQueue ?? config.temporal.task_queue,
    workflowBundle: options.bundle ?? (await workflowBundle()),
    activities: createActivities(activityDeps(config, db, options.metrics ?? createMetrics(), log)),
    ...(options.deployment ? { workerDeploymentOptions: options.deployment } : {}),
    ...(options.identity ? { identity: options.identity } : {}),
    ...WORKER_TUNING,
  });
}

/**
 * Removes what a test run created — its streams and checkpoints (all named after its tag), the
 * bars, signals, job_runs and shard positions of its provider and workflows — and closes the clients.
 */
export async function cleanupTestRun(
  config: StreamingConfig | undefined,
  clients: { redis?: Redis; db?: Kysely<Database>; env?: TestWorkflowEnvironment },
): Promise<void> {
  const { redis, db, env } = clients;
  if (config) await removeTestRun(config, { redis, db });
  await redis?.quit();
  await db?.destroy();
  await env?.teardown();
}

/** What {@link cleanupTestRun} removes, leaving the clients open (for a file that shares them between runs). */
export async function removeTestRun(config: StreamingConfig, clients: { redis?: Redis; db?: Kysely<Database> }): Promise<void> {
  const { redis, db } = clients;
  const tag = runTag(config);
  const provider = config.producers.synthetic.provider;
  await db?.deleteFrom('bars_ohlcv').where('provider', '=', provider).execute();
  await db?.deleteFrom('signals').where('provider', '=', provider).execute();
  await db?.deleteFrom('job_runs').where('job_name', 'like', `%-${tag}.%`).execute();
  await db?.deleteFrom('shard_positions').where('stream', 'like', `${tag}.%`).execute();
  const keys = await redis?.keys(`${tag}.*`);
  if (keys?.length) await redis!.del(...keys);
  const checkpoints = (await redis?.hkeys('mdp:checkpoints'))?.filter((field) => field.startsWith(`${tag}.`));
  if (checkpoints?.length) await redis!.hdel('mdp:checkpoints', ...checkpoints);
}

/**
 * Symbols for a test's producer that land on every shard for `provider` (shard choice depends on
 * the provider name, which is random per test): SPY, AAPL, MSFT, extended until each shard has one.
 */
export function symbolsCoveringShards(provider: string, shards: number): string[] {
  const symbols = ['SPY', 'AAPL', 'MSFT'];
  const covered = () => new Set(symbols.map((s) => shardOf(provider, s, shards))).size === shards;
  // Thirty candidates: 4 shards stay uncovered for about one provider in 3,000 (with ten, one in ten).
  const extras = [
    ...['QQQ', 'IWM', 'TSLA', 'NVDA', 'AMZN', 'GOOG', 'META', 'NFLX', 'AMD', 'INTC', 'JPM', 'BAC', 'XOM', 'CVX', 'WMT'],
    ...['DIS', 'KO', 'PEP', 'CSCO', 'ORCL', 'IBM', 'CRM', 'ADBE', 'AVGO', 'QCOM', 'TXN', 'UBER', 'SHOP', 'PYPL', 'T'],
  ];
  for (const extra of extras) {
    if (covered()) break;
    symbols.push(extra);
  }
  if (!covered()) throw new Error(`no symbol set covers all ${shards} shards for provider ${provider}`);
  return symbols;
}
