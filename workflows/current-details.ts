import { setCurrentDetails, workflowInfo } from '@temporalio/workflow';
import { formatClock, formatCount, formatDuration, formatNewYorkRange, formatPercent, newYorkDate } from '../pipeline/contracts/index.js';

/**
 * The workflows' current details: what the Web UI shows under "Current Details" and the
 * `__temporal_workflow_metadata` query returns, rewritten whenever the workflow learns something.
 * Only numbers the workflow has (its activities' results) are shown: live figures such as a
 * consumer's watermark and lag are in the running activity's heartbeat, which a workflow cannot read.
 */

/** Memo key of the summary a workflow was started with (see {@link showDetails}). */
export const MEMO_SUMMARY = 'summary';

/** A Markdown hard line break: the Web UI renders details as Markdown, the CLI prints them as they are. */
const LINE_BREAK = '  \n';

/** `14:02:01 UTC`. */
export function utcClock(ms: number): string {
  return `${formatClock(ms)} UTC`;
}

/**
 * Sets the current details to `lines` (empty ones left out). The static summary stays with the
 * first run of a workflow (continue-as-new does not carry it in SDK 1.24 / server 1.29), so a
 * continued run starts its details with the summary from the memo, which continue-as-new carries.
 */
export function showDetails(lines: readonly (string | false | null | undefined)[]): void {
  const info = workflowInfo();
  const summary = info.memo?.[MEMO_SUMMARY];
  const carried = info.continuedFromExecutionRunId !== undefined && typeof summary === 'string' ? [`${summary} (continued run)`] : [];
  setCurrentDetails([...carried, ...lines.filter((line): line is string => typeof line === 'string' && line !== '')].join(LINE_BREAK));
}

/** Where a loop workflow (a shard consumer, a producer) stands, from its finished runs. */
export interface LoopState {
  /** Runs finished so far (carried across continue-as-new). */
  readonly runs: number;
  /** Start of the run in progress (workflow clock), if one is. */
  readonly runningSinceMs?: number;
  readonly draining: boolean;
  /** The totals of the finished runs, already written, e.g. `12,340 events → 5,300 bars`. */
  readonly totals: string;
  /** How the last finished run ended, e.g. `14:01:59 UTC (max_run) · frontier 14:01:58 UTC`. */
  readonly lastRun?: string;
  /** A line about something in progress (a model reload). */
  readonly note?: string;
}

/** The current details of a loop workflow: the run in progress, the totals, how the last run ended. */
export function loopDetails(state: LoopState): string[] {
  const current = state.runs + 1;
  return [
    state.draining
      ? state.runningSinceMs === undefined
        ? `drained after ${state.runs} run${state.runs === 1 ? '' : 's'}`
        : `draining: stops run ${current} (since ${utcClock(state.runningSinceMs)})`
      : state.runningSinceMs !== undefined && `run ${current} since ${utcClock(state.runningSinceMs)}`,
    state.note,
    state.runs > 0 ? `${state.totals} in ${state.runs} finished run${state.runs === 1 ? '' : 's'}` : 'no run finished yet',
    state.lastRun !== undefined && `last run ended ${state.lastRun}`,
  ].filter((line): line is string => typeof line === 'string');
}

/** A consumer's or producer's totals: the counts that say most, e.g. `12,340 events → 5,300 bars · 3 late · 0 invalid`. */
export function loopTotals(role: string, totals: Readonly<Record<string, number>>): string {
  const n = (key: string) => formatCount(totals[key] ?? 0);
  if (role === 'microbatch') return `${n('events')} events → ${n('bars')} bars · ${n('late')} late · ${n('invalid')} invalid`;
  if (role === 'inference') return `${n('snapshots')} snapshots → ${n('signals')} signals · ${n('invalid')} invalid`;
  return `${n('published')} events published`;
}

/** Where a chunked job (a replay, a backfill) stands. */
export interface ChunkedState {
  readonly phase: 'planning' | 'running' | 'finished' | 'failed';
  readonly chunksDone: number;
  readonly chunksTotal: number | null;
  /** Share done (0..1), the same one the command line's progress bar shows. */
  readonly fraction: number;
  readonly etaMs: number | null;
  readonly activeMs: number;
  /** The chunk in flight, e.g. `09:30–09:45 ET`. */
  readonly current?: string;
  /** What the job has done so far, already written, e.g. `31,200 of 57,000 events · 9,800 bars`. */
  readonly counts: string;
  readonly error?: string;
}

/**
 * `chunk 14 of 26 · 55 % · ETA 0:39`, then the chunk in flight and the counts. ("of", not "14/26":
 * the Web UI's Markdown turns digits around a slash into a typographic fraction.)
 */
export function chunkedDetails(state: ChunkedState): string[] {
  const total = state.chunksTotal ?? '?';
  switch (state.phase) {
    case 'planning':
      return ['planning'];
    case 'running':
      return [
        `chunk ${Math.min(state.chunksDone + 1, state.chunksTotal ?? Infinity)} of ${total} · ${formatPercent(state.fraction)} · ETA ${formatDuration(state.etaMs)}`,
        ...(state.current === undefined ? [] : [`now ${state.current}`]),
        state.counts,
      ];
    case 'finished':
      return [`finished: ${state.chunksDone} of ${total} chunks in ${formatDuration(state.activeMs)}`, state.counts];
    case 'failed':
      return [`failed after ${state.chunksDone} of ${total} chunks${state.error === undefined ? '' : `: ${state.error}`}`, state.counts];
  }
}

/**
 * A chunk's range in exchange time for its activity's summary and the details, `09:30–09:45 ET`;
 * with the date when the job's range covers more than one New York day.
 */
export function chunkRange(job: { readonly fromMs: number; readonly toMs: number }, chunk: { readonly fromMs: number; readonly toMs: number }): string {
  return formatNewYorkRange(chunk.fromMs, chunk.toMs, { dates: newYorkDate(job.fromMs) !== newYorkDate(job.toMs - 1) });
}

/** `31,200 of 57,000 events`, or `31,200 events` when the total is unknown. */
export function countOf(noun: string, done: number, total: number | null = null): string {
  return `${formatCount(done)}${total === null ? '' : ` of ${formatCount(total)}`} ${noun}`;
}
