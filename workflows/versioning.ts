import type { setWorkflowOptions } from '@temporalio/workflow';
import { workflowInfo } from '@temporalio/workflow';

type WorkflowDefinitionOptions = Exclude<Parameters<typeof setWorkflowOptions>[0], (...args: never[]) => unknown>;

/**
 * Build id of the Worker Deployment version whose worker runs this workflow task (undefined on an
 * unversioned worker). The SDK records it with each completed task, so it replays the same.
 */
export function currentBuildId(): string | undefined {
  return versionedTask() ? workflowInfo().currentDeploymentVersion?.buildId : undefined;
}

/** Whether this task runs on a worker of a Worker Deployment (an unversioned worker reports a build id without a deployment). */
function versionedTask(): boolean {
  return Boolean(workflowInfo().currentDeploymentVersion?.deploymentName);
}

/**
 * Workflow options (for `setWorkflowOptions`) declaring `behavior` on versioned workers only: the
 * server rejects a task completion that carries a behaviour from an unversioned worker
 * (`temporal.deployment.versioning: false`, in-process test workers). Decided once per run, from
 * the version its first task ran on; a run started before versioning was turned on gets the
 * worker's default (AUTO_UPGRADE), as it followed every new worker before.
 */
export function onVersionedWorkers(behavior: 'PINNED' | 'AUTO_UPGRADE'): () => WorkflowDefinitionOptions {
  return () => (versionedTask() ? { versioningBehavior: behavior } : {});
}

/**
 * Whether a `handOver` signal stops `run`: it is not already stopping (nor the workflow draining)
 * and it was scheduled on another version than the one this task runs on.
 */
export function runsOnAnotherVersion<R extends { readonly buildId: string | undefined; readonly stopping?: string }>(
  run: R | undefined,
  draining: boolean,
): run is R {
  return run !== undefined && !draining && run.stopping === undefined && run.buildId !== currentBuildId();
}
