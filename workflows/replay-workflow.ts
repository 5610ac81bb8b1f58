import {
  ActivityCancellationType,
  allHandlersFinished,
  CancellationScope,
  condition,
  ContinueAsNew,
  continueAsNew,
  defineQuery,
  proxyActivities,
  setHandler,
  setWorkflowOptions,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import { onVersionedWorkers } from './versioning.js';
import type { ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { AUDIT_FINISH_OPTIONS } from './activity-options.js';
import { chunkedDetails, chunkRange, countOf, showDetails } from './current-details.js';
import { rootMessage } from './definitions.js';
import type { DatasetDefinition, ReplayChunkResult, ReplayCounts as ChunkCounts, ReplayInferenceCounts, ReplayPlan } from '../activities/types.js';

/** Bars, and the features/signals computed from them when inference is enabled. */
type ReplayCounts = ChunkCounts & ReplayInferenceCounts;
import { chunkAt, nextCursor } from '../pipeline/datasets/replay-range.js';

const CHUNK_OPTIONS = {
  // One chunk is bounded work; the heartbeat timeout detects a dead worker within seconds.
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '10 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
} as const satisfies ActivityOptions;
/** The chunk activity with its summary (the chunk's time range) shown beside it in the Web UI: a summary is a proxy option, so one proxy per chunk. */
const runReplayChunk = (summary: string) => proxyActivities<Activities>({ ...CHUNK_OPTIONS, summary }).runReplayChunk;
const { planReplay, startReplayAudit } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
});
const { finishReplayAudit } = proxyActivities<Activities>(AUDIT_FINISH_OPTIONS);

/**
 * Input of {@link replayWorkflow}, JSON — e.g. from the Temporal CLI:
 * `temporal workflow start --task-queue mdp-pipeline --type replayWorkflow --workflow-id mdp-replay-x
 *   --input '{"dataset":"spy_1day_history","from":"2025-10-01","to":"2025-10-02"}'`.
 */
export interface ReplayWorkflowInput {
  /** A dataset named in the worker's `replay.datasets_file` (or, with `definition`, the name of that definition). */
  readonly dataset: string;
  /**
   * The dataset itself, as `mdp stream replay` resolves it from its datasets file: format, absolute
   * path(s), provider, symbols. Omitted: the worker looks `dataset` up in its own datasets file.
   */
  readonly definition?: DatasetDefinition;
  /** Start, inclusive: a date (`2025-10-01`, UTC midnight) or an ISO-8601 timestamp with zone. */
  readonly from: string;
  /** End, exclusive, same forms. */
  readonly to: string;
  /** Event time per chunk, e.g. `15m` (default `replay.chunk_span`); rounded up to whole windows. */
  readonly chunkSpan?: string;
  /** Event-time speed-up over the wall clock (60 = a minute per second); omit for as fast as possible. */
  readonly speed?: number;
  /** Window length of the bars in ms (default `micro_batch.window_ms`, i.e. the live bars); bars and signals are keyed by it. */
  readonly windowMs?: number;
  /**
   * Also publish the replay's signals to the live signals stream (`bus.*.signals_stream`), marked
   * `meta.source` = `replay:<workflow id>`. Default false: they are only stored (with that source).
   */
  readonly publishSignals?: boolean;
  /** Features and signals for the replayed bars: `rules`, `sklearn` or `off` (default: as configured for live). */
  readonly inference?: 'rules' | 'sklearn' | 'off';
  /** Set by the workflow when it continues as new; leave unset when starting. */
  readonly carried?: ReplayCarried;
}

/** State carried across continue-as-new: where the replay stands. */
export interface ReplayCarried {
  readonly plan: ReplayPlan;
  readonly jobRunId: number;
  readonly cursorMs: number;
  readonly chunksDone: number;
  readonly redoneChunks: number;
  readonly totals: ReplayCounts;
  readonly startedAtMs: number;
  readonly activeMs: number;
}

/** What the `progress` query returns (and, with `phase: 'finished'`, the workflow's result). */
export interface ReplayProgress {
  readonly dataset: string;
  readonly from: string;
  readonly to: string;
  readonly phase: 'planning' | 'replaying' | 'finished' | 'failed';
  /** Effective range (whole windows) and chunking; null while planning. */
  readonly plan: ReplayPlan | null;
  readonly chunksDone: number;
  readonly chunksTotal: number | null;
  /** Chunks that had to be redone after a failed attempt (e.g. a worker killed mid-chunk). */
  readonly redoneChunks: number;
  /** The chunk in progress, or null. */
  readonly currentChunk: { readonly fromMs: number; readonly toMs: number } | null;
  readonly eventsTotal: number | null;
  readonly counts: ReplayCounts;
  /** Workflow-clock time the replay started (epoch ms), and time spent in chunks so far. */
  readonly startedAtMs: number;
  readonly activeMs: number;
  readonly eventsPerSecond: number;
  readonly barsPerSecond: number;
  /** Estimated time to completion, or null when unknown. */
  readonly etaMs: number | null;
  readonly jobRunId: number | null;
}

/** Progress of a replay: chunks, counts, rate and ETA. */
export const progressQuery = defineQuery<ReplayProgress>('progress');

/** Chunks per workflow run before it continues as new, bounding the history (≈ 6 events per chunk). */
const CHUNKS_PER_RUN = 200;

/** Deterministic default id: one replay per (dataset, range) at a time. */
export function replayWorkflowId(dataset: string, from: string, to: string): string {
  return `mdp-replay-${dataset}-${from}-${to}`.replace(/[^A-Za-z0-9_.:-]/g, '_');
}

/** Share of a replay done (0..1): events when their total is known, else chunks. The progress bar and the current details show it. */
export function replayFraction(p: Pick<ReplayProgress, 'phase' | 'eventsTotal' | 'chunksDone' | 'chunksTotal' | 'counts'>): number {
  if (p.phase === 'finished') return 1;
  if (p.eventsTotal) return Math.min(1, p.counts.events / p.eventsTotal);
  return p.chunksTotal ? Math.min(1, p.chunksDone / p.chunksTotal) : 0;
}

function zeroCounts(): ReplayCounts {
  return { events: 0, accepted: 0, duplicates: 0, late: 0, invalid: 0, windows: 0, bars: 0, inserted: 0, updated: 0, unchanged: 0, snapshots: 0, signals: 0 };
}

/**
 * Replays a dataset's `[from, to)` through the replay's own streams and consumer, chunk by chunk
 * (each chunk one heartbeating activity, in event-time order), landing the same bars the live
 * pipeline would. The workflow records each completed chunk, so a worker killed mid-replay costs
 * only the chunk in flight (redone idempotently). Audited in `job_runs` (kind `replay`).
 */
export async function replayWorkflow(input: ReplayWorkflowInput): Promise<ReplayProgress> {
  const info = workflowInfo();
  const carried = input.carried;
  let phase: ReplayProgress['phase'] = carried ? 'replaying' : 'planning';
  let plan: ReplayPlan | null = carried?.plan ?? null;
  let jobRunId: number | null = carried?.jobRunId ?? null;
  let chunksDone = carried?.chunksDone ?? 0;
  let redoneChunks = carried?.redoneChunks ?? 0;
  const totals: ReplayCounts = { ...zeroCounts(), ...carried?.totals };
  const startedAtMs = carried?.startedAtMs ?? Date.now();
  let activeMs = carried?.activeMs ?? 0;
  let currentChunk: { fromMs: number; toMs: number } | null = null;

  const progress = (): ReplayProgress => {
    const secs = activeMs / 1000;
    const eventsPerSecond = secs > 0 ? totals.events / secs : 0;
    const barsPerSecond = secs > 0 ? totals.bars / secs : 0;
    let etaMs: number | null = null;
    if (phase === 'finished') etaMs = 0;
    else if (plan && plan.eventsTotal !== null && eventsPerSecond > 0) etaMs = Math.max(0, ((plan.eventsTotal - totals.events) / eventsPerSecond) * 1000);
    else if (plan && chunksDone > 0) etaMs = Math.max(0, (plan.chunksTotal - chunksDone) * (activeMs / chunksDone));
    return {
      dataset: input.dataset,
      from: input.from,
      to: input.to,
      phase,
      plan,
      chunksDone,
      chunksTotal: plan?.chunksTotal ?? null,
      redoneChunks,
      currentChunk,
      eventsTotal: plan?.eventsTotal ?? null,
      counts: { ...totals },
      startedAtMs,
      activeMs,
      eventsPerSecond,
      barsPerSecond,
      etaMs,
      jobRunId,
    };
  };
  const show = (error?: string) => {
    const p = progress();
    showDetails(
      chunkedDetails({
        phase: p.phase === 'replaying' ? 'running' : p.phase,
        chunksDone,
        chunksTotal: p.chunksTotal,
        fraction: replayFraction(p),
        etaMs: p.etaMs,
        activeMs,
        ...(plan && currentChunk ? { current: chunkRange({ fromMs: plan.firstDataMs ?? plan.fromMs, toMs: plan.toMs }, currentChunk) } : {}),
        counts: `${countOf('events', totals.events, p.eventsTotal)} · ${countOf('bars', totals.bars)}`,
        ...(error === undefined ? {} : { error }),
      }),
    );
  };
  setHandler(progressQuery, progress);
  show();
  // The Web UI shows the memo: which dataset and range, and how far (updated per chunk).
  upsertMemo({ dataset: input.dataset, from: input.from, to: input.to });

  try {
    if (!plan) {
      plan = await planReplay({
        dataset: input.dataset,
        from: input.from,
        to: input.to,
        chunkSpan: input.chunkSpan,
        windowMs: input.windowMs,
        ...(input.definition !== undefined ? { definition: input.definition } : {}),
      });
      upsertMemo({
        range: `${new Date(plan.fromMs).toISOString()} .. ${new Date(plan.toMs).toISOString()}`,
        chunksTotal: plan.chunksTotal,
        eventsTotal: plan.eventsTotal,
      });
    }
    if (jobRunId === null) {
      jobRunId = await startReplayAudit({
        jobName: info.workflowId,
        meta: {
          dataset: input.dataset,
          from: input.from,
          to: input.to,
          fromMs: plan.fromMs,
          toMs: plan.toMs,
          windowMs: plan.windowMs,
          chunkSpanMs: plan.chunkSpanMs,
          publishSignals: input.publishSignals === true,
          workflowRunId: info.runId,
        },
      });
    }
    phase = 'replaying';
    let cursorMs = carried?.cursorMs ?? (plan.firstDataMs === null ? plan.toMs : Math.max(plan.fromMs, plan.firstDataMs));
    for (let i = 0; cursorMs < plan.toMs; i++) {
      if (i >= CHUNKS_PER_RUN || workflowInfo().continueAsNewSuggested) {
        // No signal or update handlers today, but never leave one half-done across runs.
        await condition(allHandlersFinished);
        return await continueAsNew<typeof replayWorkflow>({
          ...input,
          carried: { plan, jobRunId, cursorMs, chunksDone, redoneChunks, totals, startedAtMs, activeMs },
        });
      }
      currentChunk = chunkAt(plan, cursorMs);
      const range = chunkRange({ fromMs: plan.firstDataMs ?? plan.fromMs, toMs: plan.toMs }, currentChunk);
      show();
      const result: ReplayChunkResult = await runReplayChunk(range)({
        dataset: input.dataset,
        ...(plan.definition !== undefined ? { definition: plan.definition } : {}),
        ...(input.publishSignals === true ? { publishSignals: true } : {}),
        chunk: currentChunk,
        range: { fromMs: plan.fromMs, toMs: plan.toMs, windowMs: plan.windowMs, chunkSpanMs: plan.chunkSpanMs },
        ...(input.speed !== undefined ? { speed: input.speed } : {}),
        ...(input.inference !== undefined ? { inference: input.inference } : {}),
        jobRunId,
        totalsBefore: { ...totals, chunksDone },
      });
      for (const key of Object.keys(totals) as (keyof ReplayCounts)[]) totals[key] += result.counts[key] ?? 0;
      chunksDone++;
      if (result.attempt > 1) redoneChunks++;
      activeMs += result.elapsedMs;
      cursorMs = nextCursor(plan, result.toMs, result.nextDataMs);
      currentChunk = null;
      upsertMemo({ chunksDone, events: totals.events, bars: totals.bars });
    }
    phase = 'finished';
    show();
    await finishReplayAudit({ jobRunId, status: 'success', counts: { ...totals, chunksDone, redoneChunks } });
    upsertMemo({ status: 'finished' });
    return progress();
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    phase = 'failed';
    show(rootMessage(err));
    if (jobRunId !== null) {
      const id = jobRunId;
      await CancellationScope.nonCancellable(() =>
        finishReplayAudit({ jobRunId: id, status: 'failure', counts: { ...totals, chunksDone, redoneChunks }, error: (err as Error).message }),
      );
    }
    throw err;
  }
}

// A replay is a finite job: it finishes on the code it started on (continue-as-new keeps the
// version), so a new build can change its activity sequence freely; the old version drains when
// its replays are done (`mdp deploy status`).
setWorkflowOptions(onVersionedWorkers('PINNED'), replayWorkflow);
