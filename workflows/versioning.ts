import type { VersioningBehavior, WorkflowDefinitionOptions } from '@temporalio/common';
import { workflowInfo } from '@temporalio/workflow';

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
export function onVersionedWorkers(behavior: VersioningBehavior): () => WorkflowDefinitionOptions {
  return () => (versionedTask() ? { versioningBehavior: behavior } : {});
}
