/**
 * A worker as a version of the fleet's Temporal Worker Deployment: its deployment options, and
 * what it does with the routing once it polls (`temporal.deployment.rollout`).
 */
import { deploymentNameOf } from '../pipeline/config/index.js';
import { Client, Connection } from '@temporalio/client';
import type { WorkerDeploymentOptions } from '@temporalio/worker';
import { describeDeployment, handOver, LONG_RUNNING_WORKFLOW_TYPES, setCurrentVersion, waitForVersion, workloadOf } from '../client/deployments.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import type { Logger } from '../pipeline/telemetry/index.js';

/**
 * Every mdp workflow declares its behaviour (consumers and producers AUTO_UPGRADE, finite jobs
 * PINNED; see workflows/versioning.ts). The default, AUTO_UPGRADE, applies only to runs started
 * on an unversioned worker before versioning was turned on: they followed every new worker before.
 */
export function deploymentOptions(config: StreamingConfig, buildId: string): WorkerDeploymentOptions | undefined {
  if (!config.temporal.deployment.versioning) return undefined;
  return { useWorkerVersioning: true, version: { deploymentName: deploymentNameOf(config), buildId }, defaultVersioningBehavior: 'AUTO_UPGRADE' };
}

/**
 * Once this worker polls: the first version of a deployment becomes current; with `rollout: auto`
 * this version becomes current too, and the long-running workflows are handed over to it. With
 * `manual` the worker only says how to promote it. Failures are logged, never fatal: the worker
 * serves whatever routing sends it.
 */
export async function applyRollout(config: StreamingConfig, buildId: string, log: Logger, signal?: AbortSignal): Promise<void> {
  const name = deploymentNameOf(config);
  const { rollout } = config.temporal.deployment;
  const namespace = config.temporal.namespace;
  const connection = await Connection.connect({ address: config.temporal.address });
  // The worker stopping ends the rollout where it stands: closing the connection fails its calls.
  const stop = () => void connection.close().catch(() => undefined);
  signal?.addEventListener('abort', stop, { once: true });
  try {
    const client = new Client({ connection, namespace });
    await waitForVersion(client, namespace, name, buildId, config.temporal.task_queue, 120_000, signal);
    const state = await describeDeployment(client, namespace, name);
    const current = state?.current;
    if (current === buildId) {
      log.info('worker version is current', { deployment: name, buildId });
      return;
    }
    if (current !== undefined && rollout === 'manual') {
      log.info('worker version registered, not current', {
        deployment: name,
        buildId,
        current,
        promote: `mdp deploy promote ${buildId}`,
      });
      return;
    }
    const previous = await setCurrentVersion(client, namespace, name, buildId, `mdp-worker ${process.pid}`);
    log.info('worker version made current', { deployment: name, buildId, previous: previous ?? 'unversioned', rollout });
    const reports = await handOver(client, config, { target: buildId, timeoutMs: 120_000, ...(signal ? { signal } : {}) });
    // Replays and backfills stay on the version they started on: say so when it had some.
    if (previous !== undefined) {
      const pinned = [...(await workloadOf(client, config, previous))].filter(([type]) => !(LONG_RUNNING_WORKFLOW_TYPES as readonly string[]).includes(type));
      if (pinned.length > 0)
        log.warn('workflows stay on the previous version until they finish', {
          previous,
          workflows: Object.fromEntries(pinned),
          fix: `keep a worker of ${previous} running until mdp deploy status says it is drained, or move them: mdp deploy unpin ${previous}`,
        });
    }
    const stuck = reports.filter((r) => !r.moved).map((r) => r.workflowId);
    if (stuck.length > 0) log.warn('long-running workflows not yet on this version', { buildId, workflows: stuck });
    else if (reports.length > 0) log.info('long-running workflows handed over', { buildId, workflows: reports.length });
  } finally {
    signal?.removeEventListener('abort', stop);
    await connection.close().catch(() => undefined);
  }
}

/**
 * {@link applyRollout}, tried again after a failure (a deployment the server is still setting up
 * answers NOT_FOUND for a moment) up to 5 times, 1 s, 2 s, 4 s … apart; the last error is logged.
 */
export async function applyRolloutWithRetries(config: StreamingConfig, buildId: string, log: Logger, signal: AbortSignal): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await applyRollout(config, buildId, log, signal);
    } catch (err) {
      if (signal.aborted) return; // the worker is stopping
      const error = (err as Error).message;
      if (attempt >= 5) {
        log.error('worker deployment: could not apply the rollout; promote with mdp deploy promote', { buildId, error, attempts: attempt });
        return;
      }
      log.warn('worker deployment: applying the rollout failed, trying again', { buildId, error, attempt });
      await new Promise((r) => setTimeout(r, 1000 * 2 ** (attempt - 1)));
      if (signal.aborted) return;
    }
  }
}
