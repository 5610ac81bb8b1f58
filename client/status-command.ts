import { busNames } from '../pipeline/config/index.js';
import type { Client, WorkflowExecutionDescription } from '@temporalio/client';
import { ScheduleNotFoundError, WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { IbkrFeedView, InferenceHeartbeat, MicroBatchHeartbeat, ProducerHeartbeat } from '../activities/types.js';
import type { Bus } from '../pipeline/bus/index.js';
import { shardStream } from '../pipeline/bus/index.js';
import { withBus } from './cli-bus.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { formatAge, formatClock, formatCount } from '../pipeline/contracts/index.js';
import { loadDatasetCatalog } from '../pipeline/datasets/index.js';
import type { ProviderBars } from '../store/index.js';
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
  /** The last attempt's failure message, when the activity is being retried (never a worker's clean shutdown). */
  readonly lastFailure: string | null;
  /** The last attempt ended because its worker shut down (Ctrl-C on `mdp up`): stopped, not failed. */
  readonly workerShutdown: boolean;
  /** When the workflow closed (drained, failed, terminated), epoch ms; null while it runs. */
  readonly closedMs: number | null;
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

/** One provider's bars in the store, and whether live producers or replays write them. */
export interface ProviderBarsView extends ProviderBars {
  /**
   * `replay` when a dataset of the replay catalog writes this provider (and no live producer of the
   * config does), else `live` (the config's producers, and `--provider file` events).
   */
  readonly lane: 'live' | 'replay';
}

/** The pipeline is not consuming: since when, and the span of the feed that is not in bars. */
export interface PipelineStop {
  /**
   * `drained`: every micro-batch workflow completed; `ended`: they all closed, some failed or were
   * terminated; `no worker`: they wait for a worker (or it stopped heartbeating).
   */
  readonly reason: 'drained' | 'ended' | 'no worker';
  /** The last sign of life: the newest drain (close time) or heartbeat, else the newest live bar write. */
  readonly sinceMs: number;
  /** End of the newest bar of the config's producers, epoch ms: their feed from there to now is not in bars. Null without such bars. */
  readonly barsEndMs: number | null;
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
  /** Stored bars per provider (live first, then replays), from `bars_ohlcv`. */
  readonly providers: readonly ProviderBarsView[];
  /** Set when no micro-batch consumer is consuming (drained, or waiting for a worker); null while it runs or before it ever ran. */
  readonly stopped: PipelineStop | null;
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
    workerShutdown: false,
    closedMs: description?.closeTime?.getTime() ?? null,
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
  const failure = activity.lastFailure?.message ?? null;
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
    lastFailure: failure !== null && !isWorkerShutdown(failure) ? failure : null,
    workerShutdown: failure !== null && isWorkerShutdown(failure),
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

/**
 * Whether an activity attempt ended because its worker shut down (the SDK's `WORKER_SHUTDOWN`
 * cancellation, or Core's "Worker is shutting down"): a clean stop, retried by the next worker.
 */
export function isWorkerShutdown(message: string): boolean {
  return /worker is shutting down|WORKER_SHUTDOWN/i.test(message);
}

/** A heartbeat older than this means its worker is gone even if the activity still shows as started. */
const STALE_HEARTBEAT_MS = 60_000;

/**
 * The providers whose bars replays write: each dataset's provider (`as_provider` for store
 * datasets), minus the config's live producers. An unreadable catalog names none.
 */
function replayProviders(config: StreamingConfig): Set<string> {
  const live = new Set([config.producers.synthetic.provider, config.producers.ibkr.provider]);
  const replay = new Set<string>();
  try {
    for (const def of loadDatasetCatalog(config.replay.datasets_file).values()) {
      const provider = def.format === 'store' ? (def.as_provider ?? def.provider) : def.provider;
      if (provider !== undefined && !live.has(provider)) replay.add(provider);
    }
  } catch {
    // `mdp dataset ls` reports a broken catalog; status still shows the bars, all as live.
  }
  return replay;
}

/** Live providers first (most bars first), then replays. */
export function providerViews(rows: readonly ProviderBars[], replay: ReadonlySet<string>): ProviderBarsView[] {
  const views = rows.map((r): ProviderBarsView => ({ ...r, lane: replay.has(r.provider) ? 'replay' : 'live' }));
  return views.sort((a, b) => (a.lane === b.lane ? b.bars - a.bars || a.provider.localeCompare(b.provider) : a.lane === 'live' ? -1 : 1));
}

/**
 * Whether the pipeline stands still: every micro-batch consumer is closed (drained), or waits for a
 * worker, or last heartbeated more than a minute ago. Null while one consumes, and when none ever ran.
 * The gap is that of the feeds the config's producers (`feeds`: their providers) would have sent.
 */
export function pipelineStop(
  consumers: readonly ConsumerView[],
  providers: readonly ProviderBarsView[],
  atMs: number,
  windowMs: number,
  feeds: ReadonlySet<string>,
): PipelineStop | null {
  const batchers = consumers.filter((c) => c.role === 'microbatch');
  if (batchers.length === 0 || batchers.some((c) => c.status === 'UNKNOWN')) return null;
  const consuming = (c: ConsumerView) =>
    c.status === 'RUNNING' && c.activityState === 'STARTED' && c.lastHeartbeatMs !== null && atMs - c.lastHeartbeatMs < STALE_HEARTBEAT_MS;
  if (batchers.some(consuming)) return null;
  if (batchers.some((c) => c.status === 'RUNNING' && c.activityState === 'STARTED' && c.lastHeartbeatMs === null)) return null; // just started
  const live = providers.filter((p) => feeds.has(p.provider));
  const signs = batchers.map((c) => c.closedMs ?? c.lastHeartbeatMs).filter((ms): ms is number => ms !== null);
  const lastWrite = live.length > 0 ? Math.max(...live.map((p) => p.lastWrittenMs)) : null;
  const sinceMs = signs.length > 0 ? Math.max(...signs) : lastWrite;
  if (sinceMs === null) return null; // never ran
  const closed = batchers.every((c) => c.status !== 'RUNNING' && c.status !== 'NOT_FOUND');
  return {
    reason: closed ? (batchers.every((c) => c.status === 'COMPLETED') ? 'drained' : 'ended') : 'no worker',
    sinceMs,
    barsEndMs: live.length > 0 ? Math.max(...live.map((p) => p.lastBarMs)) + windowMs : null,
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
export async function readFleetStatus(
  client: Client | null,
  bus: Bus,
  barsByProvider: () => Promise<ProviderBars[]>,
  config: StreamingConfig,
): Promise<FleetStatus> {
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
  const providers = providerViews(await barsByProvider(), replayProviders(config));
  const liveBars = providers.filter((p) => p.lane === 'live').reduce((n, p) => n + p.bars, 0);
  const progress = await readProgress(bus, () => Promise.resolve(liveBars), config);
  const feeds = new Set([config.producers.synthetic.provider, ...(config.producers.ibkr.enabled ? [config.producers.ibkr.provider] : [])]);
  const stopped = pipelineStop(consumers, providers, atMs, config.micro_batch.window_ms, feeds);
  return { atMs, temporalError, consumers, replays, recovery, progress, providers, stopped };
}

/** A span to the tenth of a second under a minute (`1.6s`), then as an age (`47m`, `2h5m`). */
function span(ms: number): string {
  return ms < 60_000 ? `${(Math.max(0, ms) / 1000).toFixed(1)}s` : formatAge(ms);
}

function ago(nowMs: number, ms: number | null): string {
  return ms === null ? '-' : `${span(nowMs - ms)} ago`;
}

function clock(ms: number | null): string {
  return ms === null ? '-' : formatClock(ms, { millis: true });
}

function every(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/**
 * `RUNNING`, with the activity's retry attempt and whether it waits for a worker (scheduled, not
 * started); a closed workflow says when: `drained at 10:14:30` (completed), `failed at …`.
 */
function runningText(c: ConsumerView): string {
  if (c.status === 'COMPLETED') return c.closedMs === null ? 'drained' : `drained at ${formatClock(c.closedMs)}`;
  if (c.status !== 'RUNNING') return c.closedMs === null ? c.status : `${c.status.toLowerCase().replace(/_/g, ' ')} at ${formatClock(c.closedMs)}`;
  if (c.workerShutdown && c.activityState === 'SCHEDULED')
    return c.lastHeartbeatMs === null ? 'RUNNING (no worker)' : `RUNNING (no worker since ${formatClock(c.lastHeartbeatMs)})`;
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

/** A time of day, with the date when it is not `nowMs`'s day (a gap may span days). */
function when(ms: number, nowMs: number): string {
  const iso = new Date(ms).toISOString();
  return iso.slice(0, 10) === new Date(nowMs).toISOString().slice(0, 10) ? iso.slice(11, 19) : `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
}

/**
 * `pipeline stopped 12m ago (no worker since 10:02:15); the feed's gap 10:02:11 → 10:14:30 (12m) is not in bars`:
 * how long the pipeline has stood still, and the span of the feed its bars miss.
 */
export function stoppedText(stop: PipelineStop, nowMs: number): string {
  const how = `${stop.reason === 'no worker' ? 'no worker since' : `${stop.reason} at`} ${when(stop.sinceMs, nowMs)}`;
  const head = `pipeline stopped ${formatAge(nowMs - stop.sinceMs)} ago (${how}; mdp up resumes it)`;
  if (stop.barsEndMs === null || stop.barsEndMs >= nowMs) return head;
  return `${head}; the feed's gap ${when(stop.barsEndMs, nowMs)} → ${when(nowMs, nowMs)} (${formatAge(nowMs - stop.barsEndMs)}) is not in bars`;
}

/** `bars  synthetic 12,345 (last 10:02:10)` per live provider, then `replay bars  history 8,296 (…)`. */
export function providerLines(providers: readonly ProviderBarsView[]): string[] {
  const text = (p: ProviderBarsView) => `${p.provider} ${formatCount(p.bars)} (newest ${new Date(p.lastBarMs).toISOString().slice(0, 19)}Z)`;
  const live = providers.filter((p) => p.lane === 'live');
  const replay = providers.filter((p) => p.lane === 'replay');
  return [
    `bars: ${live.length === 0 ? 'none from live providers' : live.map(text).join(', ')}`,
    ...(replay.length === 0 ? [] : [`replay bars: ${replay.map(text).join(', ')}`]),
  ];
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
    c.lagMs === null ? '-' : span(c.lagMs),
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
  if (s.stopped) out.push(stoppedText(s.stopped, s.atMs));
  out.push(...providerLines(s.providers));
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
  /** `json`: the {@link FleetStatus} as one JSON document on one line (one per refresh in watch mode). Default `text`. */
  readonly output?: 'text' | 'json';
}

/**
 * `mdp status [--watch] [--json]`: the fleet table and progress line once, or every second until
 * Ctrl-C; with `output: 'json'` the same data as one JSON document per refresh.
 * Works without Temporal (the table then says so); Redis and the store must answer.
 */
export async function statusCommand(config: StreamingConfig, options: StatusOptions): Promise<number> {
  const { write } = options;
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
    // An unreachable Redis is one line naming it (withBus), not the driver's retry message.
    await withBus(config, async (bus) => {
      let previous: FleetStatus | undefined;
      do {
        const status = await readFleetStatus(temporal?.client ?? null, bus, () => store.barsByProvider(), config);
        const shown = connectError ? { ...status, temporalError: connectError } : status;
        if (options.output === 'json') write(JSON.stringify(shown) + '\n');
        else {
          if (options.watch && options.tty) write('\x1b[2J\x1b[H');
          write(formatFleetStatus(shown, previous) + '\n' + (options.watch && !options.tty ? '\n' : ''));
        }
        previous = status;
        if (options.watch) await new Promise((r) => setTimeout(r, options.intervalMs ?? 1000));
      } while (options.watch && !stop && !options.signal?.aborted);
    });
  } finally {
    process.removeListener('SIGINT', onSigint);
    await db.destroy();
    await temporal?.close();
  }
  return 0;
}
