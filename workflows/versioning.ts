import { workflowInfo } from '@temporalio/workflow';

/**
 * Build id of the Worker Deployment version whose worker runs this workflow task (undefined on an
 * unversioned worker). The SDK records it with each completed task, so it replays the same.
 */
export function currentBuildId(): string | undefined {
  return workflowInfo().currentDeploymentVersion?.buildId;
}
