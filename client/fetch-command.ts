import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { IbkrBackfillWorkflowInput as IbkrBackfillInput } from '../workflows/index.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { parseBackfillRequest } from '../pipeline/producers/ibkr/index.js';
import type { IbkrBackfillProgress } from '../workflows/index.js';
import { backfillFraction, ibkrBackfillWorkflowId } from '../workflows/index.js';
import { backfillLegibility, legibleStart } from './workflow-summaries.js';
import type { FollowFormat } from './follow-workflow.js';
import { followWorkflow, formatDuration, progressBar } from './follow-workflow.js';

/** The flags of `mdp dataset fetch ibkr`, as parsed from the command line (strings). */
export interface FetchFlags {
  readonly symbol?: string;
  readonly from?: string;
  readonly to?: string;
  readonly bar?: string;
  readonly what?: string;
  readonly dataset?: string;
  readonly rth?: boolean;
  /** Seconds per request, below IB's maximum for the bar size. */
  readonly 'chunk-seconds'?: string;
}

/**
 * The workflow input for the flags, checked here first so a bad flag fails at once (exit 2) with
 * the flag and its value; the worker checks again (the workflow can be started without the CLI).
 *
 * @throws BackfillInputError
 */
export function backfillInputFromFlags(flags: FetchFlags, nowMs = Date.now()): IbkrBackfillInput {
  const chunk = flags['chunk-seconds'];
  const checked = parseBackfillRequest(
    {
      symbol: flags.symbol,
      from: flags.from,
      to: flags.to,
      bar: flags.bar,
      what: flags.what,
      dataset: flags.dataset,
      useRth: flags.rth,
      ...(chunk !== undefined ? { chunkSeconds: /^\d+$/.test(chunk) ? Number(chunk) : chunk } : {}),
    },
    { style: 'flag', nowMs },
  );
  return {
    symbol: checked.symbol,
    from: flags.from!,
    to: flags.to!,
    bar: checked.bar,
    what: checked.what,
    ...(flags.dataset !== undefined ? { dataset: checked.dataset } : {}),
    ...(flags.rth ? { useRth: true } : {}),
    ...(chunk !== undefined ? { chunkSeconds: checked.chunkSeconds } : {}),
  };
}

/** Starts a backfill under its deterministic id (or finds the one running); returns the id. */
export async function startBackfill(client: Client, config: StreamingConfig, input: IbkrBackfillInput): Promise<{ workflowId: string; started: boolean }> {
  const workflowId = ibkrBackfillWorkflowId(input);
  try {
    await client.workflow.start('ibkrBackfillWorkflow', {
      taskQueue: config.temporal.task_queue,
      workflowId,
      args: [input],
      // A running fetch of the same range keeps running (this call follows it); a finished one may
      // be run again, and then requests only the chunks not on disk.
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      ...(await legibleStart(client, backfillLegibility(config, input), {
        source: 'ibkr',
        symbol: input.symbol,
        bar: input.bar,
        what: input.what ?? 'TRADES',
        from: input.from,
        to: input.to,
      })),
    });
    return { workflowId, started: true };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { workflowId, started: false };
    throw err;
  }
}

/** One progress line: `[######------]  25% | 36/144 chunks (2 on disk, 20 empty) | 28800 bars | 14 requests, pacing wait 0:41 | ETA 3:10`. */
export function formatBackfillProgress(p: IbkrBackfillProgress, width = 24): string {
  if (p.phase === 'planning' || p.chunksTotal === null) return `${progressBar(0, width)} | planning ${p.symbol} ${p.bar} ${p.what} ${p.from} .. ${p.to}`;
  const c = p.counts;
  return [
    progressBar(backfillFraction(p), width),
    `${p.chunksDone}/${p.chunksTotal} chunks (${c.cached} on disk, ${c.empty} empty)`,
    `${c.bars} bars`,
    `${c.requests} requests, pacing wait ${formatDuration(c.pacingWaitMs)}`,
    p.phase === 'finished' ? `done in ${formatDuration(p.activeMs)}` : `ETA ${formatDuration(p.etaMs)}`,
  ].join(' | ');
}

/** The closing lines of a finished backfill: what it fetched, where it is, and how to replay it. */
export function formatBackfillSummary(workflowId: string, p: IbkrBackfillProgress): string {
  const c = p.counts;
  const plan = p.plan!;
  const lines = [
    `backfill ${workflowId} finished: ${p.chunksDone} chunks → ${c.bars} ${plan.bar} ${plan.what} bars of ${plan.contract.symbol} ` +
      `(${c.requests} requests, ${c.cached} chunks already on disk, ${c.empty} empty: IB had no bars; ${c.dropped} bars outside their chunk dropped; ` +
      `redone chunks ${p.redoneChunks}; pacing wait ${formatDuration(c.pacingWaitMs)}; in ${formatDuration(p.activeMs)})`,
    `dataset ${plan.dataset}: ${plan.datasetDir}${plan.datasetAdded ? ` (registered in ${plan.datasetsFile})` : ''}, provider ${plan.provider}`,
    `replay it: mdp stream replay --dataset ${plan.dataset} --from ${p.from} --to ${p.to}`,
  ];
  if (plan.contract.defaulted) lines.push(`note: ${plan.contract.symbol} is not in producers.ibkr.contracts; it was requested as a US stock (STK, SMART, USD)`);
  if (c.bars === 0) lines.push('note: IB returned no bars for the whole range (a holiday, a weekend, or data older than IB keeps for this bar size?)');
  return lines.join('\n');
}

export const BACKFILL_FOLLOW: FollowFormat<IbkrBackfillProgress> = {
  noun: 'backfill',
  startHint: 'start one with mdp dataset fetch ibkr --symbol S --from D --to D --bar 1s',
  line: (p) => formatBackfillProgress(p),
  summary: formatBackfillSummary,
};

/** Follows a backfill's progress until it closes (Ctrl-C detaches; the backfill keeps running). */
export function followBackfill(
  client: Client,
  workflowId: string,
  write: (text: string) => void,
  options: { signal?: AbortSignal; everyMs?: number; tty?: boolean } = {},
): Promise<'finished' | 'detached' | 'failed'> {
  return followWorkflow(client, workflowId, BACKFILL_FOLLOW, write, options);
}
