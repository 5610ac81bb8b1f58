/**
 * The Temporal Worker Deployment of an mdp fleet, through the frontend's deployment API (the TS
 * client has no typed wrapper for it yet): its versions and routing, moving the current or ramping
 * version, and handing the long-running workflows over to the version routing picks for them.
 * Used by `mdp deploy …` and by a worker that makes its own version current (`rollout: auto`).
 */
import { deploymentNameOf } from '../pipeline/config/index.js';
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { StreamingConfig } from '../pipeline/config/index.js';

/** `temporal.api.enums.v1.WorkerDeploymentVersionStatus` (the proto package is not a direct dependency). */
const VERSION_STATUS = ['unspecified', 'inactive', 'current', 'ramping', 'draining', 'drained'] as const;
export type VersionStatus = (typeof VERSION_STATUS)[number];

/** The workflow types that run for as long as the pipeline does and take `handOver` (see handOverSignal). */
export const LONG_RUNNING_WORKFLOW_TYPES = ['streamConsumerWorkflow', 'producerWorkflow'] as const;

export interface DeploymentVersion {
  readonly buildId: string;
  readonly status: VersionStatus;
  readonly createdAt?: Date;
  /** Last time it stopped being current or ramping. */
  readonly deactivatedAt?: Date;
}

export interface DeploymentState {
  readonly name: string;
  readonly current?: string;
  readonly ramping?: { readonly buildId: string; readonly percentage: number };
  /** Newest first. */
  readonly versions: readonly DeploymentVersion[];
}

interface ProtoTimestamp {
  seconds?: { toNumber(): number } | number | string | null;
  nanos?: number | null;
}

function toDate(ts: ProtoTimestamp | null | undefined): Date | undefined {
  if (!ts?.seconds) return undefined;
  const seconds = typeof ts.seconds === 'object' ? ts.seconds.toNumber() : Number(ts.seconds);
  return new Date(seconds * 1000 + Math.floor((ts.nanos ?? 0) / 1e6));
}

function isNotFound(err: unknown): boolean {
  return (err as { code?: number }).code === 5; // gRPC NOT_FOUND
}

/** The deployment's versions and routing; undefined when no worker of it has polled yet. */
export async function describeDeployment(client: Client, namespace: string, name: string): Promise<DeploymentState | undefined> {
  let info;
  try {
    ({ workerDeploymentInfo: info } = await client.workflowService.describeWorkerDeployment({ namespace, deploymentName: name }));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  const routing = info?.routingConfig;
  const versions = (info?.versionSummaries ?? []).map((v): DeploymentVersion => ({
    buildId: v.deploymentVersion?.buildId ?? '',
    status: (VERSION_STATUS as readonly VersionStatus[])[v.status ?? 0] ?? 'unspecified',
    ...(toDate(v.createTime) ? { createdAt: toDate(v.createTime) } : {}),
    ...(toDate(v.lastDeactivationTime) ? { deactivatedAt: toDate(v.lastDeactivationTime) } : {}),
  }));
  versions.sort((a, b) => (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0));
  const current = routing?.currentDeploymentVersion?.buildId || undefined;
  const ramping = routing?.rampingDeploymentVersion?.buildId || undefined;
  return {
    name,
    ...(current ? { current } : {}),
    ...(ramping ? { ramping: { buildId: ramping, percentage: routing?.rampingVersionPercentage ?? 0 } } : {}),
    versions,
  };
}

/**
 * Waits until workers of `buildId` poll both the workflow and the activity tasks of `taskQueue`
 * (before that the server refuses to make the version current: the other task queue would become
 * unversioned). Looks the version up through the deployment first: the server logs an error for
 * every lookup of an unknown version.
 */
export async function waitForVersion(
  client: Client,
  namespace: string,
  name: string,
  buildId: string,
  taskQueue: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (signal?.aborted) throw new Error('stopped waiting for the version: aborted');
    // Listed first (the list may lag a little): the server logs an error for every lookup of a deployment it does not know.
    const { workerDeployments } = await client.workflowService.listWorkerDeployments({ namespace });
    const listed = workerDeployments?.some((d) => d.name === name) === true;
    if (listed && (await describeDeployment(client, namespace, name))?.versions.some((v) => v.buildId === buildId)) {
      // Listed in the deployment a moment before the version itself answers: NOT_FOUND is "not yet".
      const described = await client.workflowService
        .describeWorkerDeploymentVersion({ namespace, deploymentVersion: { deploymentName: name, buildId } })
        .catch((err: unknown) => {
          if (isNotFound(err)) return undefined;
          throw err;
        });
      const info = described?.workerDeploymentVersionInfo;
      const types = new Set((info?.taskQueueInfos ?? []).filter((q) => q.name === taskQueue).map((q) => Number(q.type)));
      if (types.has(1) && types.has(2)) return; // workflow and activity (temporal.api.enums.v1.TaskQueueType)
    }
    if (Date.now() > deadline)
      throw new Error(`workers of deployment ${name} version ${buildId} have not polled task queue ${taskQueue} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Makes `buildId` the current version; returns the one it replaced (undefined = unversioned). */
export async function setCurrentVersion(client: Client, namespace: string, name: string, buildId: string, identity: string): Promise<string | undefined> {
  const reply = await client.workflowService.setWorkerDeploymentCurrentVersion({ namespace, deploymentName: name, buildId, identity });
  return reply.previousDeploymentVersion?.buildId || undefined;
}

/** Ramps `buildId` to `percentage` % of the workflows that follow routing (0 % with no build id ends a ramp). */
export async function setRampingVersion(client: Client, namespace: string, name: string, buildId: string | undefined, percentage: number, identity: string) {
  await client.workflowService.setWorkerDeploymentRampingVersion({ namespace, deploymentName: name, buildId: buildId ?? '', percentage, identity });
}

/** The running long-running workflows of this pipeline's task queue (see {@link LONG_RUNNING_WORKFLOW_TYPES}). */
export async function longRunningWorkflows(client: Client, config: StreamingConfig): Promise<WorkflowExecutionInfo[]> {
  const types = LONG_RUNNING_WORKFLOW_TYPES.map((t) => `"${t}"`).join(', ');
  const query = `TaskQueue = "${config.temporal.task_queue}" AND ExecutionStatus = "Running" AND WorkflowType IN (${types})`;
  const out: WorkflowExecutionInfo[] = [];
  for await (const wf of client.workflow.list({ query })) out.push(wf);
  return out;
}

/** Where a workflow's work runs: the version of its last workflow task and of its pending activity's worker. */
export interface Placement {
  readonly workflowId: string;
  readonly type: string;
  readonly workflowBuildId?: string;
  readonly activityBuildId?: string;
  /** Its pending activity is scheduled but not yet started by any worker (`activityBuildId` is then the previous attempt's, if any). */
  readonly activityWaiting?: boolean;
  /** `AUTO_UPGRADE`, `PINNED` or undefined (unversioned). */
  readonly behavior?: string;
  /** Still running (a drained or finished workflow has nothing left to move). */
  readonly running: boolean;
}

const BEHAVIORS = [undefined, 'PINNED', 'AUTO_UPGRADE'] as const;

export async function placementOf(client: Client, workflowId: string): Promise<Placement> {
  const { raw, type, status } = await client.workflow.getHandle(workflowId).describe();
  const versioning = raw.workflowExecutionInfo?.versioningInfo;
  const activity = raw.pendingActivities?.[0];
  const workflowBuildId = versioning?.deploymentVersion?.buildId || undefined;
  const activityBuildId = activity?.lastDeploymentVersion?.buildId || undefined;
  const behavior = BEHAVIORS[versioning?.behavior ?? 0];
  const activityWaiting = activity !== undefined && Number(activity.state) === 1; // temporal.api.enums.v1.PendingActivityState SCHEDULED
  return {
    workflowId,
    type,
    running: status.name === 'RUNNING',
    ...(workflowBuildId ? { workflowBuildId } : {}),
    ...(activityBuildId ? { activityBuildId } : {}),
    ...(activityWaiting ? { activityWaiting } : {}),
    ...(behavior ? { behavior } : {}),
  };
}

export interface HandOverReport {
  readonly workflowId: string;
  /** Where its work runs after the hand-over (or when the wait ended). */
  readonly placement: Placement;
  /** True when its workflow tasks and its running activity are on `target`. */
  readonly moved: boolean;
}

/**
 * Signals `handOver` to every running long-running workflow and, when `target` is given, waits
 * (up to `timeoutMs`) until each one's workflow tasks and running activity are on it, signalling
 * again every `resignalMs` (a signal that reached the old version before the new routing did
 * changes nothing there). Without `target` (a ramp: routing picks per workflow) it signals once and
 * reports where each workflow runs after `settleMs`.
 */
export async function handOver(
  client: Client,
  config: StreamingConfig,
  options: { target?: string; timeoutMs?: number; resignalMs?: number; settleMs?: number; signal?: AbortSignal } = {},
): Promise<HandOverReport[]> {
  const workflows = await longRunningWorkflows(client, config);
  const signal = (id: string) =>
    client.workflow
      .getHandle(id)
      .signal('handOver')
      .catch(() => undefined); // finished meanwhile (drained): nothing to move
  await Promise.all(workflows.map((w) => signal(w.workflowId)));
  const { target } = options;
  if (target === undefined) {
    await new Promise((r) => setTimeout(r, options.settleMs ?? 5000));
    return Promise.all(workflows.map(async (w) => ({ workflowId: w.workflowId, placement: await placementOf(client, w.workflowId), moved: false })));
  }
  // Moved: its tasks run on the target and so does its run — started there, or scheduled by a
  // task there and waiting for a worker. Between a stopped run and the next one it has none yet.
  const onTarget = (p: Placement) => !p.running || (p.workflowBuildId === target && (p.activityWaiting === true || p.activityBuildId === target));
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  const resignalMs = options.resignalMs ?? 5000;
  const reports = new Map<string, HandOverReport>();
  let lastSignal = Date.now();
  for (;;) {
    const open = workflows.filter((w) => !reports.get(w.workflowId)?.moved);
    await Promise.all(
      open.map(async (w) => {
        const placement = await placementOf(client, w.workflowId).catch(() => undefined);
        // Gone (drained meanwhile): nothing left to move.
        reports.set(
          w.workflowId,
          placement
            ? { workflowId: w.workflowId, placement, moved: onTarget(placement) }
            : { workflowId: w.workflowId, placement: { workflowId: w.workflowId, type: w.type, running: false }, moved: true },
        );
      }),
    );
    const waiting = workflows.filter((w) => !reports.get(w.workflowId)?.moved);
    if (waiting.length === 0 || Date.now() > deadline || options.signal?.aborted) break;
    if (Date.now() - lastSignal >= resignalMs) {
      await Promise.all(waiting.map((w) => signal(w.workflowId)));
      lastSignal = Date.now();
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return workflows.map((w) => reports.get(w.workflowId)!);
}

/** Running workflows whose last workflow task ran on `buildId`, by workflow type. */
export async function workloadOf(client: Client, config: StreamingConfig, buildId: string): Promise<Map<string, number>> {
  const name = deploymentNameOf(config);
  const query = `TaskQueue = "${config.temporal.task_queue}" AND TemporalWorkerDeploymentVersion = "${name}:${buildId}" AND ExecutionStatus = "Running"`;
  const counts = new Map<string, number>();
  for await (const wf of client.workflow.list({ query })) counts.set(wf.type, (counts.get(wf.type) ?? 0) + 1);
  return counts;
}

/** Worker identities polling the pipeline's task queue, by build id (`unversioned` for workers without one). */
export async function pollersByVersion(client: Client, config: StreamingConfig): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const taskQueueType of [1, 2]) {
    // workflow, activity (temporal.api.enums.v1.TaskQueueType)
    const { pollers } = await client.workflowService.describeTaskQueue({
      namespace: config.temporal.namespace,
      taskQueue: { name: config.temporal.task_queue },
      taskQueueType,
    });
    for (const p of pollers ?? []) {
      const buildId = p.deploymentOptions?.buildId || 'unversioned';
      const set = out.get(buildId) ?? new Set<string>();
      set.add(p.identity ?? '?');
      out.set(buildId, set);
    }
  }
  return out;
}
