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
import type { IbkrBackfillCounts, IbkrBackfillInput, IbkrBackfillPlan, IbkrChunkResult, IbkrSentRequest } from '../activities/index.js';
import { formatDuration } from '../pipeline/contracts/index.js';
import { backfillChunk } from '../pipeline/datasets/backfill-range.js';
import { AUDIT_FINISH_OPTIONS } from './activity-options.js';
import { chunkedDetails, chunkRange, countOf, showDetails } from './current-details.js';
import { rootMessage } from './definitions.js';

const CHUNK_OPTIONS = {
  // A chunk may wait a whole pacing window (10 minutes with IB's limits) before its request goes out.
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '10 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  // TWS unreachable, a timeout or a dropped connection: retried for about five minutes, then the
  // backfill fails with the reason; running the same fetch again resumes after the chunks written.
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 12 },
} as const satisfies ActivityOptions;
/** The chunk activity with its summary (the chunk's time range) shown beside it in the Web UI: a summary is a proxy option, so one proxy per chunk. */
const fetchIbkrChunk = (summary: string) => proxyActivities<Activities>({ ...CHUNK_OPTIONS, summary }).fetchIbkrChunk;
const { planIbkrBackfill, startBackfillAudit } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 5 },
});
const { finishBackfillAudit } = proxyActivities<Activities>(AUDIT_FINISH_OPTIONS);

/** State carried across continue-as-new: where the backfill stands. */
export interface IbkrBackfillCarried {
  readonly plan: IbkrBackfillPlan;
  readonly jobRunId: number;
  readonly nextIndex: number;
  readonly redoneChunks: number;
  readonly totals: IbkrBackfillCounts;
  readonly startedAtMs: number;
  readonly activeMs: number;
  readonly requestMs: number;
  readonly recentRequests?: readonly IbkrSentRequest[];
}

/** Input of {@link ibkrBackfillWorkflow}: the request, plus what a continued run carries. */
export interface IbkrBackfillWorkflowInput extends IbkrBackfillInput {
  /** Set by the workflow when it continues as new; leave unset when starting. */
  readonly carried?: IbkrBackfillCarried;
}

/** What the `progress` query returns (and, with `phase: 'finished'`, the workflow's result). */
export interface IbkrBackfillProgress {
  readonly symbol: string;
  readonly bar: string;
  readonly what: string;
  readonly from: string;
  readonly to: string;
  readonly phase: 'planning' | 'fetching' | 'finished' | 'failed';
  /** The checked request, dataset and chunking; null while planning. */
  readonly plan: IbkrBackfillPlan | null;
  readonly chunksDone: number;
  readonly chunksTotal: number | null;
  /** Chunks whose activity needed more than one attempt (e.g. a worker killed mid-chunk). */
  readonly redoneChunks: number;
  readonly currentChunk: { readonly index: number; readonly fromMs: number; readonly toMs: number } | null;
  readonly counts: IbkrBackfillCounts;
  readonly startedAtMs: number;
  /** Time spent in chunk activities, and in the ones that sent a request. */
  readonly activeMs: number;
  readonly requestMs: number;
  readonly barsPerSecond: number;
  readonly etaMs: number | null;
  readonly jobRunId: number | null;
}

/** Progress of a backfill: chunks done/total, bars, requests, pacing wait, ETA. */
export const backfillProgressQuery = defineQuery<IbkrBackfillProgress>('progress');

/** Chunks per workflow run before it continues as new, bounding the history. */
const CHUNKS_PER_RUN = 200;
/** Requests remembered for the pacers of other workers: twice IB's 60 per window, at most an hour old. */
const RECENT_REQUESTS = 120;
const RECENT_REQUESTS_MS = 3_600_000;

/** Deterministic id: one backfill per (symbol, bar, data type, range) at a time, e.g. `mdp-fetch-ibkr-SPY-1s-TRADES-2025-10-01-2025-10-03`. */
export function ibkrBackfillWorkflowId(input: Pick<IbkrBackfillInput, 'symbol' | 'bar' | 'what' | 'from' | 'to'>): string {
  const what = (input.what ?? 'TRADES').toUpperCase();
  return `mdp-fetch-ibkr-${input.symbol}-${input.bar}-${what}-${input.from}-${input.to}`.replace(/[^A-Za-z0-9_.:-]/g, '_');
}

/** Share of a backfill done (0..1), by chunks. The progress bar and the current details show it. */
export function backfillFraction(p: Pick<IbkrBackfillProgress, 'phase' | 'chunksDone' | 'chunksTotal'>): number {
  if (p.phase === 'finished') return 1;
  return p.chunksTotal === null ? 0 : p.chunksTotal > 0 ? p.chunksDone / p.chunksTotal : 1;
}

function zeroCounts(): IbkrBackfillCounts {
  return { requests: 0, cached: 0, empty: 0, bars: 0, dropped: 0, pacingWaitMs: 0 };
}

/**
 * Backfills IB history into a dataset that `replayWorkflow` replays: the range in chunks of at most
 * IB's largest request for the bar size, one heartbeating `fetchIbkrChunk` activity per chunk, in
 * order. Each chunk's file is written whole (temp file + rename); the workflow records each
 * completed chunk, and a chunk whose file exists is never requested again, so a worker killed
 * mid-fetch costs at most the request in flight. Audited in `job_runs` (kind `backfill`).
 */
export async function ibkrBackfillWorkflow(input: IbkrBackfillWorkflowInput): Promise<IbkrBackfillProgress> {
  const info = workflowInfo();
  const carried = input.carried;
  let phase: IbkrBackfillProgress['phase'] = carried ? 'fetching' : 'planning';
  let plan: IbkrBackfillPlan | null = carried?.plan ?? null;
  let jobRunId: number | null = carried?.jobRunId ?? null;
  let nextIndex = carried?.nextIndex ?? 0;
  let redoneChunks = carried?.redoneChunks ?? 0;
  const totals: IbkrBackfillCounts = { ...zeroCounts(), ...carried?.totals };
  const startedAtMs = carried?.startedAtMs ?? Date.now();
  let activeMs = carried?.activeMs ?? 0;
  let requestMs = carried?.requestMs ?? 0;
  let currentChunk: IbkrBackfillProgress['currentChunk'] = null;
  let recentRequests: IbkrSentRequest[] = [...(carried?.recentRequests ?? [])];

  const progress = (): IbkrBackfillProgress => {
    let etaMs: number | null = null;
    if (phase === 'finished') etaMs = 0;
    else if (plan && totals.requests > 0) {
      // Chunks already on disk cost nothing; the others cost what requests have cost so far (pacing waits included).
      const toRequest = Math.max(0, plan.chunksTotal - nextIndex - Math.max(0, plan.chunksPresent - totals.cached));
      etaMs = toRequest * (requestMs / totals.requests);
    }
    return {
      symbol: input.symbol,
      bar: input.bar,
      what: input.what ?? 'TRADES',
      from: input.from,
      to: input.to,
      phase,
      plan,
      chunksDone: nextIndex,
      chunksTotal: plan?.chunksTotal ?? null,
      redoneChunks,
      currentChunk,
      counts: { ...totals },
      startedAtMs,
      activeMs,
      requestMs,
      barsPerSecond: activeMs > 0 ? totals.bars / (activeMs / 1000) : 0,
      etaMs,
      jobRunId,
    };
  };
  const show = (error?: string) => {
    const p = progress();
    showDetails(
      chunkedDetails({
        phase: p.phase === 'fetching' ? 'running' : p.phase,
        chunksDone: nextIndex,
        chunksTotal: p.chunksTotal,
        fraction: backfillFraction(p),
        etaMs: p.etaMs,
        activeMs,
        ...(plan && currentChunk ? { current: chunkRange(plan, currentChunk) } : {}),
        counts: `${countOf('bars', totals.bars)} · ${countOf('requests', totals.requests)} · ${totals.cached} chunks on disk · pacing wait ${formatDuration(totals.pacingWaitMs)}`,
        ...(error === undefined ? {} : { error }),
      }),
    );
  };
  setHandler(backfillProgressQuery, progress);
  show();
  upsertMemo({ source: 'ibkr', symbol: input.symbol, bar: input.bar, what: input.what ?? 'TRADES', from: input.from, to: input.to });

  try {
    if (!plan) {
      plan = await planIbkrBackfill({
        symbol: input.symbol,
        from: input.from,
        to: input.to,
        bar: input.bar,
        ...(input.what !== undefined ? { what: input.what } : {}),
        ...(input.dataset !== undefined ? { dataset: input.dataset } : {}),
        ...(input.useRth !== undefined ? { useRth: input.useRth } : {}),
        ...(input.chunkSeconds !== undefined ? { chunkSeconds: input.chunkSeconds } : {}),
      });
      upsertMemo({ dataset: plan.dataset, chunksTotal: plan.chunksTotal, chunksPresent: plan.chunksPresent });
    }
    if (jobRunId === null) {
      jobRunId = await startBackfillAudit({
        jobName: info.workflowId,
        meta: {
          source: 'ibkr',
          symbol: plan.symbol,
          bar: plan.bar,
          what: plan.what,
          contract: plan.contract,
          dataset: plan.dataset,
          datasetDir: plan.datasetDir,
          from: input.from,
          to: input.to,
          fromMs: plan.fromMs,
          toMs: plan.toMs,
          chunkMs: plan.chunkMs,
          chunksTotal: plan.chunksTotal,
          workflowRunId: info.runId,
        },
      });
    }
    phase = 'fetching';
    for (let run = 0; nextIndex < plan.chunksTotal; run++) {
      if (run >= CHUNKS_PER_RUN || workflowInfo().continueAsNewSuggested) {
        await condition(allHandlersFinished);
        return await continueAsNew<typeof ibkrBackfillWorkflow>({
          ...input,
          carried: { plan, jobRunId, nextIndex, redoneChunks, totals, startedAtMs, activeMs, requestMs, recentRequests },
        });
      }
      const chunk = backfillChunk(plan, nextIndex);
      currentChunk = { index: nextIndex, ...chunk };
      show();
      const result: IbkrChunkResult = await fetchIbkrChunk(chunkRange(plan, chunk))({
        plan,
        index: nextIndex,
        chunk,
        jobRunId,
        totalsBefore: { ...totals, chunksDone: nextIndex },
        recentRequests,
      });
      if (result.sent) recentRequests = [...recentRequests, result.sent].filter((r) => r.atMs > Date.now() - RECENT_REQUESTS_MS).slice(-RECENT_REQUESTS);
      for (const key of Object.keys(totals) as (keyof IbkrBackfillCounts)[]) totals[key] += result.counts[key];
      if (result.attempt > 1) redoneChunks++;
      activeMs += result.elapsedMs;
      if (result.counts.requests > 0) requestMs += result.elapsedMs;
      nextIndex++;
      currentChunk = null;
      upsertMemo({ chunksDone: nextIndex, bars: totals.bars });
    }
    phase = 'finished';
    show();
    await finishBackfillAudit({ jobRunId, status: 'success', counts: { ...totals, chunksDone: nextIndex, redoneChunks } });
    upsertMemo({ status: 'finished' });
    return progress();
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    phase = 'failed';
    show(rootMessage(err));
    if (jobRunId !== null) {
      const id = jobRunId;
      await CancellationScope.nonCancellable(() =>
        finishBackfillAudit({ jobRunId: id, status: 'failure', counts: { ...totals, chunksDone: nextIndex, redoneChunks }, error: rootMessage(err) }),
      );
    }
    throw err;
  }
}

// A backfill is a finite job: it finishes on the code it started on (continue-as-new keeps the
// version); the old version drains when its backfills are done (`mdp deploy status`).
setWorkflowOptions(onVersionedWorkers('PINNED'), ibkrBackfillWorkflow);
