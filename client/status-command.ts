import { busNames } from '../pipeline/config/index.js';
import type { Client, WorkflowExecutionDescription } from '@temporalio/client';
import { ScheduleNotFoundError, WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { IbkrFeedView, InferenceHeartbeat, MicroBatchHeartbeat, ProducerHeartbeat } from '../activities/types.js';
import type { Bus } from '../pipeline/bus/index.js';
import { openBus, shardStream } from '../pipeline/bus/index.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { formatClock } from '../pipeline/contracts/index.js';
import { createDb, StoreClient } from '../store/index.js';
import type { ReplayProgress } from '../workflows/index.js';
import { inferenceWorkflowId, microBatchWorkflowId, producerWorkflowId, RECOVERY_SCHEDULE_ID } from '../workflows/index.js';
import { formatProgress, readProgress } from './progress.js';
import type { PipelineProgress } from './progress.js';
import { formatReplayProgress } from './replay-command.js';
import { connectTemporal } from './temporal.js';

/** Longest one Temporal call of `mdp status` may take (a query needs a live worker). */
const CALL_DEADLINE_MS = 3000;

/** One workflow of the fleet: a shard owner (micro-batch or inference consumer) or the producer. */
export interface ConsumerView {
  readonly role: 'producer' | 'microbatch' | 'inference';
  /** Null for the producer. */
  readonly shard: number | null;
  /** The owner: the workflow id, which is also its Redis consumer name. */
  readonly workflowId: string;
  /** The shard stream it reads (the base event stream for the producer). */
  readonly stream: string;
  /** Workflow status (`RUNNING`, `COMPLETED`, ...), or `NOT_FOUND` when it never ran. */
  readonly status: string;
  /** Attempt of the running activity, and its state (`STARTED`, `SCHEDULED` while waiting for a worker, ...). */
  readonly attempt: number | null;
  readonly activityState: string | null;
  /** When the running activity last heartbeated (epoch ms), null when it has not yet. */
  readonly lastHeartbeatMs: number | null;
  /** The last attempt's failure message, when the activity is being retried. */
  readonly lastFailure: string | null;
  /** Micro-batch: event-time watermark and durable frontier (end of the last persisted window). */
  readonly watermarkMs: number | null;
  readonly frontierMs: number | null;
  readonly openWindows: number | null;
  readonly lastId: string | null;
  /** From Redis: age of the oldest entry the group has not acknowledged, and its pending entries. */
  readonly lagMs: number | null;
  readonly pending: number | null;
  /**
   * From Redis: entries the group has not acknowledged (pending + never delivered) and the retention
   * bound (`bus.redis.maxlen`) they count against: producers wait at 90% of it.
   */
  readonly backlog: number | null;
  readonly retention: number | null;
  /** Inference: adapter and model version the run evaluates with. */
  readonly adapter: string | null;
  readonly modelVersion: string | null;
  /** Producer: events published by the running activity. */
  readonly published: number | null;
  /** Build id of the Worker Deployment version its run is on (its workflow task's version before a run starts); null unversioned. */
  readonly version: string | null;
  /** IBKR producer: its live feed (connected or in a gap, gaps so far, refused contracts). */
  readonly feed: IbkrFeedView | null;
}

export interface ReplayView {
  readonly workflowId: string;
  readonly status: string;
  /** The `progress` query's answer, or null when no worker answered in time. */
  readonly progress: ReplayProgress | null;
}

export interface RecoveryScheduleView {
  readonly scheduleId: string;
  readonly intervalMs: number | null;
  readonly paused: boolean;
  /** Why it was paused or unpaused (`mdp up` and `mdp down` say), when someone said. */
  readonly note?: string;
  readonly nextRunMs: number | null;
  readonly lastRunMs: number | null;
  readonly runs: number;
}

/** The fleet as `mdp status` shows it. */
export interface FleetStatus {
  readonly atMs: number;
  /** Null when Temporal answered; otherwise why the workflows are unknown. */
  readonly temporalError: string | null;
  readonly consumers: readonly ConsumerView[];
  readonly replays: readonly ReplayView[];
  readonly recovery: RecoveryScheduleView | null;
  readonly progress: PipelineProgress;
}

interface Member {
  readonly role: ConsumerView['role'];
  readonly shard: number | null;
  readonly workflowId: string;
  readonly stream: string;
  readonly group: string | null;
  /** Shown only when its workflow exists (the IBKR producer of a config that does not enable it). */
  readonly optional?: boolean;
}

/**
 * The fleet of the config: the producers (the IBKR one when `producers.ibkr.enabled`, or when it
 * runs), then every shard's micro-batch and inference owner.
 */
export function fleetMembers(config: StreamingConfig): Member[] {
  const redis = busNames(config);
  const members: Member[] = [
    { role: 'producer', shard: null, workflowId: producerWorkflowId(config.producers.synthetic.provider), stream: redis.stream, group: null },
    {
      role: 'producer',
      shard: null,
      workflowId: producerWorkflowId(config.producers.ibkr.provider),
      stream: redis.stream,
      group: null,
      optional: !config.producers.ibkr.enabled,
    },
  ];
  for (let shard = 0; shard < config.bus.shards; shard++) {
    members.push({
      role: 'microbatch',
      shard,
      workflowId: microBatchWorkflowId(redis.stream, shard),
      stream: shardStream(redis.stream, shard),
      group: redis.consumer_group,
    });
  }
  for (let shard = 0; shard < config.bus.shards; shard++) {
    members.push({
      role: 'inference',
      shard,
      workflowId: inferenceWorkflowId(redis.features_stream, shard),
      stream: shardStream(redis.features_stream, shard),
      group: redis.inference_group,
    });
  }
  return members;
}

/** Milliseconds of a protobuf timestamp (`seconds` may be a Long). */
function timestampMs(ts: { seconds?: number | { toNumber(): number } | null; nanos?: number | null } | null | undefined): number | null {
  if (!ts || ts.seconds === undefined || ts.seconds === null) return null;
  const seconds = typeof ts.seconds === 'number' ? ts.seconds : ts.seconds.toNumber();
  return seconds * 1000 + Math.floor((ts.nanos ?? 0) / 1e6);
}

const ACTIVITY_STATES: Record<number, string> = { 1: 'SCHEDULED', 2: 'STARTED', 3: 'CANCEL_REQUESTED', 4: 'PAUSED', 5: 'PAUSE_REQUESTED' };

type AnyHeartbeat = Partial<MicroBatchHeartbeat & InferenceHeartbeat & ProducerHeartbeat>;

function fromDescription(member: Member, description: WorkflowExecutionDescription | null): Omit<ConsumerView, 'lagMs' | 'pending' | 'backlog' | 'retention'> {
  const empty = {
    role: member.role,
    shard: member.shard,
    workflowId: member.workflowId,
    stream: member.stream,
    status: description?.status.name ?? 'NOT_FOUND',
    attempt: null,
    activityState: null,
    lastHeartbeatMs: null,
    lastFailure: null,
    watermarkMs: null,
    frontierMs: null,
    openWindows: null,
    lastId: null,
    adapter: null,
    modelVersion: null,
    published: null,
    feed: null,
    version: description?.raw.workflowExecutionInfo?.versioningInfo?.deploymentVersion?.buildId || null,
  };
  const activity = description?.status.name === 'RUNNING' ? description.raw.pendingActivities?.[0] : undefined;
  if (!activity) return empty;
  let beat: AnyHeartbeat = {};
  const payload = activity.heartbeatDetails?.payloads?.[0];
  if (payload) {
    try {
      beat = defaultPayloadConverter.fromPayload<AnyHeartbeat | null>(payload) ?? {};
    } catch {
      beat = {};
    }
  }
  return {
    ...empty,
    attempt: activity.attempt ?? null,
    activityState: ACTIVITY_STATES[Number(activity.state ?? 0)] ?? null,
    lastHeartbeatMs: timestampMs(activity.lastHeartbeatTime),
    lastFailure: activity.lastFailure?.message ?? null,
    watermarkMs: beat.watermarkMs ?? null,
    frontierMs: beat.frontierMs ?? null,
    openWindows: beat.openWindows ?? null,
    lastId: beat.lastId ?? null,
    adapter: beat.adapter ?? null,
    modelVersion: beat.version ?? null,
    published: beat.published ?? null,
    feed: beat.feed ?? null,
    version: activity.lastDeploymentVersion?.buildId || empty.version,
  };
}

async function describeOrNull(client: Client, workflowId: string): Promise<WorkflowExecutionDescription | null> {
  try {
    return await client.withDeadline(Date.now() + CALL_DEADLINE_MS, () => client.workflow.getHandle(workflowId).describe());
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

async function readReplays(client: Client): Promise<ReplayView[]> {
  const replays: ReplayView[] = [];
  for await (const info of client.workflow.list({ query: "WorkflowType = 'replayWorkflow' AND ExecutionStatus = 'Running'" })) {
    let progress: ReplayProgress | null = null;
    try {
      progress = await client.withDeadline(Date.now() + CALL_DEADLINE_MS, () => client.workflow.getHandle(info.workflowId).query<ReplayProgress>('progress'));
    } catch {
      progress = null; // no worker answered: the replay waits for one
    }
    replays.push({ workflowId: info.workflowId, status: info.status.name, progress });
    if (replays.length >= 20) break;
  }
  return replays;
}

async function readRecoverySchedule(client: Client): Promise<RecoveryScheduleView | null> {
  try {
    const d = await client.withDeadline(Date.now() + CALL_DEADLINE_MS, () => client.schedule.getHandle(RECOVERY_SCHEDULE_ID).describe());
    const last = d.info.recentActions[d.info.recentActions.length - 1];
    return {
      scheduleId: d.scheduleId,
      intervalMs: d.spec.intervals?.[0]?.every ?? null,
      paused: d.state.paused,
      ...(d.state.note ? { note: d.state.note } : {}),
      nextRunMs: d.info.nextActionTimes[0]?.getTime() ?? null,
      lastRunMs: last ? last.takenAt.getTime() : null,
      runs: d.info.numActionsTaken,
    };
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return null;
    throw err;
  }
}

/**
 * Reads the fleet: every consumer workflow of the config (role, shard, owner, status, last
 * heartbeat and what it carries: watermark, frontier, adapter and model version), each group's lag
 * and pending entries from Redis, running replays with their progress, the recovery schedule, and
 * the pipeline's progress counters. Temporal being unreachable is reported, not thrown: Redis and
 * the store still answer.
 */
export async function readFleetStatus(client: Client | null, bus: Bus, countBars: () => Promise<number>, config: StreamingConfig): Promise<FleetStatus> {
  const atMs = Date.now();
  const members = fleetMembers(config);
  const descriptions = new Map<string, WorkflowExecutionDescription | null>();
  let temporalError: string | null = client ? null : 'not connected';
  let replays: ReplayView[] = [];
  let recovery: RecoveryScheduleView | null = null;
  if (client) {
    try {
      for (const m of members) descriptions.set(m.workflowId, await describeOrNull(client, m.workflowId));
      replays = await readReplays(client);
      recovery = await readRecoverySchedule(client);
    } catch (err) {
      temporalError = (err as Error).message;
    }
  }
  const consumers: ConsumerView[] = [];
  for (const m of members) {
    const view = fromDescription(m, descriptions.get(m.workflowId) ?? null);
    if (m.optional && view.status === 'NOT_FOUND') continue;
    let lagMs: number | null = null,
      pending: number | null = null,
      backlog: number | null = null,
      retention: number | null = null;
    if (m.group) {
      const lag = await bus.lag(m.stream, m.group, atMs);
      lagMs = lag.lagMs;
      pending = lag.pending;
      const streamBacklog = await bus.backlog(m.stream);
      backlog = streamBacklog.groups.get(m.group) ?? null;
      retention = streamBacklog.retention;
    }
    consumers.push({ ...view, status: temporalError && !descriptions.has(m.workflowId) ? 'UNKNOWN' : view.status, lagMs, pending, backlog, retention });
  }
  const progress = await readProgress(bus, countBars, config);
  return { atMs, temporalError, consumers, replays, recovery, progress };
}

function ago(nowMs: number, ms: number | null): string {
  if (ms === null) return '-';
  return `${(Math.max(0, nowMs - ms) / 1000).toFixed(1)}s ago`;
}

function clock(ms: number | null): string {
  return ms === null ? '-' : formatClock(ms, { millis: true });
}

function every(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** `RUNNING`, with the activity's retry attempt and whether it waits for a worker (scheduled, not started). */
function runningText(c: ConsumerView): string {
  if (c.status !== 'RUNNING') return c.status;
  const notes = [...(c.attempt !== null && c.attempt > 1 ? [`attempt ${c.attempt}`] : []), ...(c.activityState === 'SCHEDULED' ? ['no worker'] : [])];
  return notes.length > 0 ? `RUNNING (${notes.join(', ')})` : 'RUNNING';
}

/** A group's backlog with its share of retention, e.g. `12000 (1.2%)`. */
function backlogText(c: ConsumerView): string {
  if (c.backlog === null) return '-';
  return c.retention ? `${c.backlog} (${(Math.round((c.backlog / c.retention) * 1000) / 10).toString()}%)` : String(c.backlog);
}

/**
 * An IBKR feed in one line: live or in a gap (since when, why), the gaps so far and the last one,
 * events dropped, contracts refused. A gap is never hidden: it is what a trader must know.
 */
export function feedText(f: IbkrFeedView, nowMs: number): string {
  const state =
    f.status === 'live'
      ? `feed live (${f.contracts} contracts)`
      : f.status === 'starting'
        ? 'feed connecting to TWS (not live yet)'
        : `feed GAP for ${((nowMs - (f.openGap?.sinceMs ?? nowMs)) / 1000).toFixed(1)}s (${f.openGap?.reason ?? '?'}, since ${clock(f.openGap?.sinceMs ?? null)})`;
  const gaps =
    f.gaps === 0
      ? 'no gaps'
      : `${f.gaps} gap${f.gaps === 1 ? '' : 's'} (${f.gapSeconds}s in all)${f.lastGap ? `, last ${f.lastGap.seconds}s (${f.lastGap.reason}) ${clock(f.lastGap.fromMs)}–${clock(f.lastGap.toMs)}` : ''}`;
  const parts = [state, gaps];
  if (f.dropped > 0) parts.push(`${f.dropped} events dropped (bus backpressure)`);
  if (f.refused.length > 0) parts.push(`refused: ${f.refused.map((r) => `${r.contract} (${r.reason})`).join(', ')}`);
  return parts.join('; ');
}

/** The fleet as a table, then replays, the recovery schedule and the progress line. */
export function formatFleetStatus(s: FleetStatus, previous?: FleetStatus): string {
  const header = [
    'role',
    'shard',
    'owner (workflow id)',
    'status',
    'heartbeat',
    'watermark',
    'frontier',
    'lag',
    'pending',
    'backlog (of retention)',
    'model / published',
    'version',
  ];
  const rows = s.consumers.map((c) => [
    c.role,
    c.shard === null ? '-' : String(c.shard),
    c.workflowId,
    runningText(c),
    ago(s.atMs, c.lastHeartbeatMs),
    clock(c.watermarkMs),
    clock(c.frontierMs),
    c.lagMs === null ? '-' : `${(c.lagMs / 1000).toFixed(1)}s`,
    c.pending === null ? '-' : String(c.pending),
    backlogText(c),
    c.role === 'inference'
      ? c.adapter
        ? `${c.adapter}${c.modelVersion ? ` ${c.modelVersion}` : ''}`
        : '-'
      : c.role === 'producer' && c.published !== null
        ? String(c.published)
        : '-',
    c.version ?? '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...rows.map(line)];
  for (const c of s.consumers) if (c.feed) out.push(`  ${c.workflowId}: ${feedText(c.feed, s.atMs)}`);
  for (const c of s.consumers) if (c.lastFailure) out.push(`  ${c.workflowId}: last attempt failed: ${c.lastFailure}`);
  if (s.temporalError) out.push(`Temporal: ${s.temporalError}`);
  if (s.replays.length === 0) out.push('replays: none running');
  for (const r of s.replays)
    out.push(`replay ${r.workflowId}: ${r.progress ? formatReplayProgress(r.progress) : `${r.status} (no worker answered the progress query)`}`);
  const rec = s.recovery;
  out.push(
    rec
      ? `recovery: schedule ${rec.scheduleId}${rec.intervalMs ? ` every ${every(rec.intervalMs)}` : ''}${rec.paused ? ` (paused${rec.note ? `: ${rec.note}` : ''})` : ''}, ${rec.runs} runs, last ${clock(rec.lastRunMs)}, next ${clock(rec.nextRunMs)}`
      : s.temporalError
        ? 'recovery: unknown'
        : 'recovery: no schedule (mdp up or mdp stream recover --schedule creates it)',
  );
  out.push(formatProgress(s.progress, previous?.progress));
  return out.join('\n');
}

export interface StatusOptions {
  readonly watch: boolean;
  readonly write: (text: string) => void;
  /** Clear the screen between refreshes in watch mode. */
  readonly tty?: boolean;
  readonly intervalMs?: number;
  /** Stops watch mode (besides SIGINT). */
  readonly signal?: AbortSignal;
}

/**
 * `mdp status [--watch]`: the fleet table and progress line once, or every second until Ctrl-C.
 * Works without Temporal (the table then says so); Redis and the store must answer.
 */
export async function statusCommand(config: StreamingConfig, options: StatusOptions): Promise<number> {
  const { write } = options;
  const bus = openBus(config);
  const db = createDb(config.store.url);
  const store = new StoreClient(db);
  let temporal: Awaited<ReturnType<typeof connectTemporal>> | undefined;
  let connectError: string | undefined;
  try {
    temporal = await connectTemporal(config);
  } catch (err) {
    connectError = (err as Error).message;
  }
  let stop = false;
  const onSigint = () => {
    stop = true;
  };
  process.once('SIGINT', onSigint);
  try {
    let previous: FleetStatus | undefined;
    do {
      const status = await readFleetStatus(temporal?.client ?? null, bus, () => store.countBars(config.producers.synthetic.provider), config);
      const shown = connectError ? { ...status, temporalError: connectError } : status;
      if (options.watch && options.tty) write('\x1b[2J\x1b[H');
      write(formatFleetStatus(shown, previous) + '\n' + (options.watch && !options.tty ? '\n' : ''));
      previous = status;
      if (options.watch) await new Promise((r) => setTimeout(r, options.intervalMs ?? 1000));
    } while (options.watch && !stop && !options.signal?.aborted);
  } finally {
    process.removeListener('SIGINT', onSigint);
    await bus.close();
    await db.destroy();
    await temporal?.close();
  }
  return 0;
}
