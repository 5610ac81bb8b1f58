/**
 * `mdp deploy status | promote [BUILD] | ramp PERCENT [BUILD] | rollback [--to BUILD]`: roll a new
 * worker build onto a running fleet. Each change of routing is followed by a hand-over of the
 * long-running workflows (consumers, producers), which stop their run where they are and start the
 * next one on the version routing picks (see handOverSignal); replays and backfills stay on the
 * version they started on until they finish.
 */
import { deploymentNameOf } from '../pipeline/config/index.js';
import type { Client } from '@temporalio/client';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { createProcessLogger } from '../pipeline/telemetry/index.js';
import type { DeploymentState, HandOverReport, Placement } from './deployments.js';
import {
  describeDeployment,
  handOver,
  longRunningWorkflows,
  placementOf,
  pollersByVersion,
  setCurrentVersion,
  setRampingVersion,
  workloadOf,
} from './deployments.js';
import { DeployError } from './deploy-error.js';

export { DeployError };

export interface VersionReport {
  readonly buildId: string;
  readonly status: string;
  readonly workers: number;
  /** Running workflows whose last task ran on this version, by type. */
  readonly running: Record<string, number>;
  /** Long-running workflows whose activity still runs on this version. */
  readonly activities: number;
  /** Not current nor ramping, nothing runs on it: its workers can stop. */
  readonly safeToStop: boolean;
}

export interface DeployStatus {
  readonly deployment: string;
  readonly namespace: string;
  readonly taskQueue: string;
  readonly current?: string;
  readonly ramping?: { readonly buildId: string; readonly percentage: number };
  readonly versions: readonly VersionReport[];
  readonly workflows: readonly Placement[];
}

const IDENTITY = `mdp-cli ${process.pid}`;

async function requireDeployment(client: Client, config: StreamingConfig): Promise<DeploymentState> {
  const name = deploymentNameOf(config);
  // A deployment's state lives in a system workflow of the server, which can answer NOT_FOUND for a
  // moment while it is busy (seen under load right after a version first polled): ask a few times
  // over 3 s before saying that no worker ever polled.
  for (let attempt = 1; ; attempt++) {
    const state = await describeDeployment(client, config.temporal.namespace, name);
    if (state) return state;
    if (attempt >= DESCRIBE_ATTEMPTS)
      throw new DeployError(
        `no worker of deployment "${name}" has polled namespace ${config.temporal.namespace} yet (start one: node dist/workers/worker.js, or mdp up)`,
      );
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** How many times `requireDeployment` asks before a NOT_FOUND is believed (500 ms apart). */
const DESCRIBE_ATTEMPTS = 7;

export async function deployStatus(client: Client, config: StreamingConfig): Promise<DeployStatus> {
  const state = await requireDeployment(client, config);
  const pollers = await pollersByVersion(client, config);
  const workflows = await Promise.all((await longRunningWorkflows(client, config)).map((w) => placementOf(client, w.workflowId).catch(() => undefined)));
  const placed = workflows.filter((p): p is Placement => p !== undefined);
  const versions = await Promise.all(
    state.versions.map(async (v): Promise<VersionReport> => {
      const running = Object.fromEntries(await workloadOf(client, config, v.buildId));
      const activities = placed.filter((p) => p.activityBuildId === v.buildId).length;
      const routed = v.buildId === state.current || v.buildId === state.ramping?.buildId;
      return {
        buildId: v.buildId,
        status: v.status,
        workers: pollers.get(v.buildId)?.size ?? 0,
        running,
        activities,
        safeToStop: !routed && Object.keys(running).length === 0 && activities === 0,
      };
    }),
  );
  return {
    deployment: state.name,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.task_queue,
    ...(state.current ? { current: state.current } : {}),
    ...(state.ramping ? { ramping: state.ramping } : {}),
    versions,
    workflows: placed,
  };
}

export function formatDeployStatus(s: DeployStatus): string[] {
  const lines = [
    `deployment ${s.deployment} (namespace ${s.namespace}, task queue ${s.taskQueue})`,
    `  current  ${s.current ?? '(none: unversioned workers take the work)'}`,
    `  ramping  ${s.ramping ? `${s.ramping.buildId} at ${s.ramping.percentage} %` : '(none)'}`,
    '',
  ];
  const width = Math.max(7, ...s.versions.map((v) => v.buildId.length));
  lines.push(`  ${'VERSION'.padEnd(width)}  ${'STATUS'.padEnd(8)}  WORKERS  RUNNING ON IT`);
  for (const v of s.versions) {
    const running = Object.entries(v.running).map(([type, n]) => `${n} ${type}`);
    if (v.activities > 0) running.push(`${v.activities} consumer/producer run${v.activities === 1 ? '' : 's'}`);
    const stranded = v.workers === 0 && !v.safeToStop && v.buildId !== s.current && v.buildId !== s.ramping?.buildId;
    const note =
      v.status === 'inactive'
        ? `  → ready: mdp deploy promote ${v.buildId} (or ramp)`
        : v.safeToStop && v.workers > 0
          ? '  → drained: safe to stop its workers'
          : stranded
            ? `  → NO WORKERS: start workers of ${v.buildId}, or move its workflows to the current version: mdp deploy unpin ${v.buildId}`
            : '';
    lines.push(`  ${v.buildId.padEnd(width)}  ${v.status.padEnd(8)}  ${String(v.workers).padStart(7)}  ${running.join(', ') || '-'}${note}`);
  }
  if (s.workflows.length > 0) {
    lines.push('', '  long-running workflows (workflow task version / running activity version):');
    for (const p of s.workflows) lines.push(`    ${p.workflowId}  ${p.workflowBuildId ?? 'unversioned'} / ${p.activityBuildId ?? '-'}`);
  }
  return lines;
}

/** Versions with workers polling now, newest first. */
async function polledVersions(client: Client, config: StreamingConfig, state: DeploymentState): Promise<string[]> {
  const pollers = await pollersByVersion(client, config);
  return state.versions.map((v) => v.buildId).filter((b) => (pollers.get(b)?.size ?? 0) > 0);
}

function requirePollers(config: StreamingConfig, state: DeploymentState, polled: readonly string[], buildId: string): void {
  if (!state.versions.some((v) => v.buildId === buildId))
    throw new DeployError(`deployment ${state.name} has no version ${buildId} (versions: ${state.versions.map((v) => v.buildId).join(', ') || 'none'})`);
  if (!polled.includes(buildId))
    throw new DeployError(
      `no worker of version ${buildId} polls task queue ${config.temporal.task_queue}: start them first (MDP_BUILD_ID=${buildId} node dist/workers/worker.js), or nothing would run`,
    );
}

export interface RolloutResult {
  readonly action: 'promote' | 'ramp' | 'rollback';
  readonly buildId: string;
  readonly previous?: string;
  readonly percentage?: number;
  readonly handOvers: readonly HandOverReport[];
}

/** Makes `buildId` (default: the newest polled version that is not current) current and hands the long-running workflows over. */
export async function promote(
  client: Client,
  config: StreamingConfig,
  buildId: string | undefined,
  action: 'promote' | 'rollback' = 'promote',
): Promise<RolloutResult> {
  const state = await requireDeployment(client, config);
  const polled = await polledVersions(client, config, state);
  const target = buildId ?? polled.find((b) => b !== state.current);
  if (target === undefined)
    throw new DeployError(`no version other than the current one (${state.current ?? 'none'}) has workers polling: start the new workers first`);
  if (target === state.current) throw new DeployError(`${target} is already the current version of ${state.name}`);
  requirePollers(config, state, polled, target);
  const previous = await setCurrentVersion(client, config.temporal.namespace, state.name, target, IDENTITY);
  const handOvers = await handOver(client, config, { target });
  return { action, buildId: target, ...(previous ? { previous } : {}), handOvers };
}

/** Sends `percentage` % of the workflows that follow routing to `buildId` (0 ends the ramp); the long-running ones move at a hand-over. */
export async function ramp(client: Client, config: StreamingConfig, percentage: number, buildId: string | undefined): Promise<RolloutResult> {
  const state = await requireDeployment(client, config);
  if (percentage === 0) {
    await setRampingVersion(client, config.temporal.namespace, state.name, undefined, 0, IDENTITY);
    return {
      action: 'ramp',
      buildId: state.current ?? '',
      percentage: 0,
      handOvers: await handOver(client, config, state.current ? { target: state.current } : {}),
    };
  }
  const polled = await polledVersions(client, config, state);
  const target = buildId ?? state.ramping?.buildId ?? polled.find((b) => b !== state.current);
  if (target === undefined) throw new DeployError('no version other than the current one has workers polling: start the new workers first');
  if (target === state.current) throw new DeployError(`${target} is the current version; ramp another one`);
  requirePollers(config, state, polled, target);
  await setRampingVersion(client, config.temporal.namespace, state.name, target, percentage, IDENTITY);
  return { action: 'ramp', buildId: target, percentage, handOvers: await handOver(client, config) };
}

/** Back to `to` (default: the version that was current before, the most recently deactivated one with workers). */
export async function rollback(client: Client, config: StreamingConfig, to: string | undefined): Promise<RolloutResult> {
  const state = await requireDeployment(client, config);
  let target = to;
  // During a ramp, rolling back ends the ramp: everything goes back to the current version.
  if (target === undefined && state.ramping && state.current) {
    await setRampingVersion(client, config.temporal.namespace, state.name, undefined, 0, IDENTITY);
    return {
      action: 'rollback',
      buildId: state.current,
      previous: state.ramping.buildId,
      handOvers: await handOver(client, config, { target: state.current }),
    };
  }
  if (target === undefined) {
    const polled = new Set(await polledVersions(client, config, state));
    const previous = state.versions
      .filter((v) => v.buildId !== state.current && v.deactivatedAt !== undefined)
      .sort((a, b) => b.deactivatedAt!.getTime() - a.deactivatedAt!.getTime());
    if (previous.length === 0) throw new DeployError(`deployment ${state.name} has no earlier current version to roll back to`);
    target = previous.find((v) => polled.has(v.buildId))?.buildId;
    if (target === undefined)
      throw new DeployError(
        `the previous version ${previous[0].buildId} has no workers polling: start them first (MDP_BUILD_ID=${previous[0].buildId} node dist/workers/worker.js from that build)`,
      );
  }
  if (state.ramping) await setRampingVersion(client, config.temporal.namespace, state.name, undefined, 0, IDENTITY);
  return promote(client, config, target, 'rollback');
}

export function formatRollout(r: RolloutResult): string[] {
  const head =
    r.action === 'ramp'
      ? r.percentage === 0
        ? `ramp ended: every workflow that follows routing goes to the current version ${r.buildId || '(none)'}`
        : `ramping ${r.buildId} at ${r.percentage} %`
      : `${r.action === 'rollback' ? 'rolled back to' : 'promoted'} ${r.buildId} (${r.action === 'rollback' ? 'from' : 'was'} ${r.previous ?? 'unversioned'})`;
  const lines = [head];
  for (const h of r.handOvers) {
    const where = `${h.placement.workflowBuildId ?? 'unversioned'}${h.placement.activityBuildId && h.placement.activityBuildId !== h.placement.workflowBuildId ? ` (activity still on ${h.placement.activityBuildId})` : ''}`;
    lines.push(`  ${h.workflowId}  on ${where}${r.action !== 'ramp' && !h.moved ? '  NOT MOVED' : ''}`);
  }
  if (r.handOvers.length === 0) lines.push('  (no long-running workflow to hand over)');
  if (r.action !== 'ramp') lines.push('replays and backfills stay on the version they started on; `mdp deploy status` says when the old version is drained.');
  return lines;
}

export interface ReplayCheck {
  readonly workflowId: string;
  readonly runId: string;
  /** Why this code cannot continue the workflow (a nondeterminism error names the first command that differs); absent = it can. */
  readonly error?: string;
}

/**
 * Replays the history of every running consumer and producer (the `AUTO_UPGRADE` workflows a new
 * version takes over at a hand-over) against a build's workflow code (default: this checkout's),
 * as a worker of that build would on its first task. Run it from the new build before
 * `mdp deploy promote`: a workflow listed with an error would fail its tasks on the new version.
 */
export async function checkReplay(client: Client, config: StreamingConfig, workflowsPath?: string): Promise<ReplayCheck[]> {
  const { Runtime, Worker } = await import('@temporalio/worker');
  const { sdkRuntimeOptions } = await import('../workers/sdk-logger.js');
  // The bundler, the replay worker and the SDK core log through the runtime, into the CLI's
  // logger on stderr: errors only (the nondeterminism a check finds is reported below, not as the
  // core's warning).
  try {
    const log = createProcessLogger({ level: 'ERROR', format: config.telemetry.log_format, stream: process.stderr, env: process.env, component: 'cli' });
    Runtime.install(sdkRuntimeOptions(log, 'ERROR'));
  } catch {
    // installed already (a test process): its logger stays
  }
  const { WORKFLOWS_PATH } = await import('../workers/workflows-path.js');
  const running = await longRunningWorkflows(client, config);
  async function* histories() {
    for (const w of running) yield { workflowId: w.workflowId, history: await client.workflow.getHandle(w.workflowId, w.runId).fetchHistory() };
  }
  const checks: ReplayCheck[] = [];
  for await (const result of Worker.runReplayHistories({ workflowsPath: workflowsPath ?? WORKFLOWS_PATH, replayName: 'mdp-deploy-check' }, histories())) {
    checks.push({ workflowId: result.workflowId, runId: result.runId, ...(result.error ? { error: result.error.message } : {}) });
  }
  return checks;
}

export function formatReplayCheck(checks: readonly ReplayCheck[]): string[] {
  if (checks.length === 0) return ['no consumer or producer is running: nothing to check'];
  const failed = checks.filter((c) => c.error !== undefined);
  return [
    ...checks.map((c) => `  ${c.workflowId}  ${c.error === undefined ? 'ok' : `CANNOT CONTINUE: ${c.error.split('\n')[0]}`}`),
    failed.length === 0
      ? `this build's workflow code continues all ${checks.length} running consumers and producers`
      : `${failed.length} of ${checks.length} would fail their tasks on this build: guard the change with patched() before promoting it`,
  ];
}

export interface Unpinned {
  readonly workflowId: string;
  readonly type: string;
}

/**
 * Moves the running workflows pinned to `buildId` (replays, backfills, reloads) off it: each gets a
 * versioning override to AUTO_UPGRADE, so its next task runs on the current version. For a version
 * whose workers are gone for good (a box restarted on a new build): its code must then continue
 * their histories (`mdp deploy check` does not cover pinned workflows; a replay that cannot is
 * better cancelled and started again, which lands nothing twice).
 */
export async function unpin(client: Client, config: StreamingConfig, buildId: string): Promise<Unpinned[]> {
  const name = deploymentNameOf(config);
  const query = `TaskQueue = "${config.temporal.task_queue}" AND TemporalWorkerDeploymentVersion = "${name}:${buildId}" AND ExecutionStatus = "Running" AND TemporalWorkflowVersioningBehavior = "Pinned"`;
  const moved: Unpinned[] = [];
  for await (const wf of client.workflow.list({ query })) {
    await client.workflowService.updateWorkflowExecutionOptions({
      namespace: config.temporal.namespace,
      workflowExecution: { workflowId: wf.workflowId, runId: wf.runId },
      workflowExecutionOptions: { versioningOverride: { autoUpgrade: true } },
      updateMask: { paths: ['versioning_override'] },
      identity: IDENTITY,
    });
    moved.push({ workflowId: wf.workflowId, type: wf.type });
  }
  return moved;
}
