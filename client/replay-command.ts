import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { legibleStart, replayLegibility } from './workflow-summaries.js';
import type { FollowFormat } from './follow-workflow.js';
import { followWorkflow, formatDuration, progressBar } from './follow-workflow.js';
import type { ReplayProgress, ReplayWorkflowInput } from '../workflows/index.js';
import { replayFraction, replayWorkflowId } from '../workflows/index.js';

export interface ReplayOptions {
  readonly dataset: string;
  readonly from: string;
  readonly to: string;
  readonly chunkSpan?: string;
  readonly speed?: number;
  /** Workflow id; default {@link replayWorkflowId}. */
  readonly workflowId?: string;
}

/** Starts a replay (or finds the one running under the same id); returns its id. */
export async function startReplay(client: Client, config: StreamingConfig, options: ReplayOptions): Promise<{ workflowId: string; started: boolean }> {
  const workflowId = options.workflowId ?? replayWorkflowId(options.dataset, options.from, options.to);
  const input: ReplayWorkflowInput = {
    dataset: options.dataset,
    from: options.from,
    to: options.to,
    ...(options.chunkSpan ? { chunkSpan: options.chunkSpan } : {}),
    ...(options.speed ? { speed: options.speed } : {}),
  };
  try {
    await client.workflow.start('replayWorkflow', {
      taskQueue: config.temporal.task_queue,
      workflowId,
      args: [input],
      // A running replay of the same range keeps running; a finished one may be run again.
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      ...(await legibleStart(client, replayLegibility(config, input), { dataset: options.dataset, from: options.from, to: options.to })),
    });
    return { workflowId, started: true };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { workflowId, started: false };
    throw err;
  }
}

/** One progress line: `[#####-----] 12/26 chunks 45% | 31200 events 41000/s | 9800 bars | ETA 0:03`. */
export function formatReplayProgress(p: ReplayProgress, width = 24): string {
  const total = p.eventsTotal ?? null;
  return [
    progressBar(replayFraction(p), width),
    `${p.chunksDone}/${p.chunksTotal ?? '?'} chunks`,
    `${p.counts.events}${total !== null ? `/${total}` : ''} events ${Math.round(p.eventsPerSecond)}/s`,
    `${p.counts.bars} bars ${Math.round(p.barsPerSecond)}/s (new ${p.counts.inserted}, changed ${p.counts.updated})`,
    p.phase === 'finished' ? `done in ${formatDuration(p.activeMs)}` : `ETA ${formatDuration(p.etaMs)}`,
  ].join(' | ');
}

/** The closing line of a finished replay: what it read, what it landed and what it set aside. */
export function formatReplaySummary(workflowId: string, p: ReplayProgress): string {
  const c = p.counts;
  return (
    `replay ${workflowId} finished: ${p.chunksDone} chunks, ${c.events} events → ${c.bars} bars ` +
    `(new ${c.inserted}, changed ${c.updated}, unchanged ${c.unchanged}); late ${c.late}, invalid ${c.invalid}, duplicates ${c.duplicates}; ` +
    `redone chunks ${p.redoneChunks}; in ${formatDuration(p.activeMs)}`
  );
}

/** How a replay shows while it runs (`mdp stream replay`). */
export const REPLAY_FOLLOW: FollowFormat<ReplayProgress> = {
  noun: 'replay',
  startHint: 'start one with --dataset NAME --from D --to D',
  line: (p) => formatReplayProgress(p),
  summary: formatReplaySummary,
};

/**
 * Polls the replay's `progress` query and redraws one line until the workflow closes, or until
 * `signal` aborts (Ctrl-C: detach only — the replay keeps running on the workers).
 */
export function followReplay(
  client: Client,
  workflowId: string,
  write: (text: string) => void,
  options: { signal?: AbortSignal; everyMs?: number; tty?: boolean } = {},
): Promise<'finished' | 'detached' | 'failed'> {
  return followWorkflow(client, workflowId, REPLAY_FOLLOW, write, options);
}
