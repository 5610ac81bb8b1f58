#!/usr/bin/env node
/**
 * The mdp worker process: hosts every workflow and activity on the configured task queue, serves
 * metrics, and shuts down gracefully on SIGINT/SIGTERM (activities are cancelled, finish their
 * current step and leave unflushed windows pending for the next owner).
 *
 *   node dist/workers/worker.js [--config configs/streaming.yaml]
 */
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { collectDefaultMetrics } from 'prom-client';
import { createActivities } from '../activities/index.js';
import { ConfigError, loadStreamingConfig, deploymentNameOf } from '../pipeline/config/index.js';
import { createMetrics, createProcessLogger } from '../pipeline/telemetry/index.js';
import { createDb, migrateToLatest } from '../store/index.js';
import { buildIdOf } from './build-id.js';
import { applyRolloutWithRetries, deploymentOptions } from './deployment.js';
import { closeIbkrConnections } from './ibkr-connections.js';
import { startMetricsServer } from './metrics-server.js';
import { checkReadiness } from './readiness.js';
import { sdkRuntimeOptions } from './sdk-logger.js';
import { activityDeps } from './wiring.js';
import { WORKER_TUNING } from './worker-options.js';
import { WORKFLOWS_PATH } from './workflows-path.js';

async function run(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string', default: process.env.MDP_CONFIG ?? 'configs/streaming.yaml' } } });
  const config = loadStreamingConfig({ file: values.config, env: process.env });
  const log = createProcessLogger({
    level: config.telemetry.log_level,
    format: config.telemetry.log_format,
    stream: process.stdout,
    env: process.env,
    component: 'worker',
    fields: { pid: process.pid },
  });
  // The SDK's and its core's lines through the same logger, at the same level.
  Runtime.install(sdkRuntimeOptions(log, config.telemetry.log_level));
  // Node's own warnings (deprecations, MaxListenersExceededWarning) too, instead of raw stderr text;
  // with --trace-warnings, with the stack that says where.
  process.removeAllListeners('warning');
  process.on('warning', (warning) =>
    log.warn(warning.message, { component: 'node', warning: warning.name, ...(process.traceProcessWarnings ? { stack: warning.stack } : {}) }),
  );

  const metrics = createMetrics();
  // Process metrics (heap, RSS, event-loop lag, GC) beside the pipeline's own.
  collectDefaultMetrics({ register: metrics.registry });
  // /readyz: Redis, PostgreSQL and the Temporal frontend answer (each probed on its own connection).
  const readiness = () =>
    checkReadiness({
      redisUri: config.bus.redis.uri,
      ...(config.bus.type === 'kafka' ? { kafkaBrokers: config.bus.kafka.brokers } : {}),
      storeUrl: config.store.url,
      temporalAddress: config.temporal.address,
    });
  const server = await startMetricsServer(metrics.registry, config.telemetry.metrics_host, config.telemetry.metrics_port, { readiness });
  log.info('metrics listening', { url: `http://${config.telemetry.metrics_host}:${(server.address() as AddressInfo).port}/metrics` });

  const db = createDb(config.store.url, { log });
  const applied = await migrateToLatest(db);
  if (applied.length > 0) log.info('migrations applied', { applied });

  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const buildId = buildIdOf(config);
  const deployment = deploymentOptions(config, buildId);
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.task_queue,
    workflowsPath: WORKFLOWS_PATH,
    activities: createActivities(activityDeps(config, db, metrics, log)),
    ...(deployment ? { workerDeploymentOptions: deployment } : {}),
    ...WORKER_TUNING,
  });
  log.info('worker running', {
    taskQueue: config.temporal.task_queue,
    temporal: config.temporal.address,
    namespace: config.temporal.namespace,
    ...(deployment ? { deployment: deploymentNameOf(config), buildId, rollout: config.temporal.deployment.rollout } : { versioning: 'off' }),
  });
  try {
    const running = worker.run(); // resolves after SIGINT/SIGTERM once in-flight tasks have stopped
    // Applied once the worker polls; a shutdown ends it where it stands.
    const rollout = new AbortController();
    const applying = deployment ? applyRolloutWithRetries(config, buildId, log, rollout.signal) : Promise.resolve();
    await running;
    rollout.abort();
    await applying;
  } finally {
    await connection.close();
    await closeIbkrConnections();
    await db.destroy();
    server.close();
    log.info('worker stopped');
  }
}

// The entrypoint's fatal error, before (or instead of) a logger: the one place the worker prints.
run().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    // eslint-disable-next-line no-console
    console.error(`mdp worker: invalid configuration: ${(err as Error).message}`);
    process.exit(2);
  }
  // eslint-disable-next-line no-console
  console.error(err);
  process.exit(1);
});
