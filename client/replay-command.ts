import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import type { StreamingConfig } from '../pipeline/config/index.js';
import type { ReplayProgress, ReplayWorkflowInput } from '../workflows/index.js';
import { replayWorkflowId } from '../workflows/index.js';

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
      memo: { dataset: options.dataset, from: options.from, to: options.to },
    });
    return { workflowId, started: true };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { workflowId, started: false };
    throw err;
  }
}

function duration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '--:--';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600),
    m = Math.floor((s % 3600) / 60),
    sec = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

/** One progress line: `[#####-----] 12/26 chunks 45% | 31200 events 41000/s | 9800 bars | ETA 0:03`. */
export function formatReplayProgress(p: ReplayProgress, width = 24): string {
  const total = p.eventsTotal ?? null;
  const fraction = p.phase === 'finished' ? 1 : total ? Math.min(1, p.counts.events / total) : p.chunksTotal ? Math.min(1, p.chunksDone / p.chunksTotal) : 0;
  const filled = Math.round(fraction * width);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  return [
    `${bar} ${String(Math.round(fraction * 100)).padStart(3)}%`,
    `${p.chunksDone}/${p.chunksTotal ?? '?'} chunks`,
    `${p.counts.events}${total !== null ? `/${total}` : ''} events ${Math.round(p.eventsPerSecond)}/s`,
    `${p.counts.bars} bars ${Math.round(p.barsPerSecond)}/s (new ${p.counts.inserted}, changed ${p.counts.updated})`,
    p.phase === 'finished' ? `done in ${duration(p.activeMs)}` : `ETA ${duration(p.etaMs)}`,
  ].join(' | ');
}

/** The innermost message of an error chain: a failed workflow's result error only says "Workflow execution failed". */
function rootCause(err: unknown): string {
  let e = err instanceof Error ? err : new Error(String(err));
  while (e.cause instanceof Error) e = e.cause;
  return e.message;
}

/** The closing line of a finished replay: what it read, what it landed and what it set aside. */
export function formatReplaySummary(workflowId: string, p: ReplayProgress): string {
  const c = p.counts;
  return (
    `replay ${workflowId} finished: ${p.chunksDone} chunks, ${c.events} events → ${c.bars} bars ` +
    `(new ${c.inserted}, changed ${c.updated}, unchanged ${c.unchanged}); late ${c.late}, invalid ${c.invalid}, duplicates ${c.duplicates}; ` +
    `redone chunks ${p.redoneChunks}; in ${duration(p.activeMs)}`
  );
}

/**
 * Polls the replay's `progress` query and redraws one line until the workflow closes, or until
 * `signal` aborts (Ctrl-C: detach only — the replay keeps running on the workers).
 */
export async function followReplay(
  client: Client,
  workflowId: string,
  write: (text: string) => void,
  options: { signal?: AbortSignal; everyMs?: number; tty?: boolean } = {},
): Promise<'finished' | 'detached' | 'failed'> {
  const handle = client.workflow.getHandle(workflowId);
  const tty = options.tty ?? false;
  let last = '';
  const show = (line: string, final = false) => {
    if (tty) write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
    else if (line !== last || final) write(line + '\n');
    last = line;
  };
  for (;;) {
    if (options.signal?.aborted) {
      if (tty) write('\n');
      return 'detached';
    }
    let status;
    try {
      ({ status } = await handle.describe());
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new Error(`no replay workflow ${workflowId} (start one with --dataset NAME --from D --to D)`);
      throw err;
    }
    if (status.name !== 'RUNNING') {
      try {
        const result = (await handle.result()) as ReplayProgress;
        show(formatReplayProgress(result), true);
        write(formatReplaySummary(workflowId, result) + '\n');
        return 'finished';
      } catch (err) {
        show(`replay ${workflowId} ${status.name.toLowerCase()}: ${rootCause(err)}`, true);
        return 'failed';
      }
    }
    try {
      show(formatReplayProgress(await handle.query<ReplayProgress>('progress')));
    } catch {
      show('waiting for a worker to pick up the replay…');
    }
    await new Promise<void>((done) => {
      const timer = setTimeout(done, options.everyMs ?? 500);
      options.signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          done();
        },
        { once: true },
      );
    });
  }
}
