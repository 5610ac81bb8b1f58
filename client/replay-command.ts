import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { abortableSleep, intervalLabel, parseDurationMs, parseWindowMs } from '../pipeline/contracts/index.js';
import type { DatasetDefinition } from '../pipeline/datasets/index.js';
import { DatasetCatalogError, findDataset, loadDatasetCatalog, parseReplayBound } from '../pipeline/datasets/index.js';
import { NoWorkerError } from './no-worker-error.js';
import { ReplayInputError } from './replay-input-error.js';
import { legibleStart, replayLegibility } from './workflow-summaries.js';
import type { FollowFormat } from './follow-workflow.js';
import { followWorkflow, formatDuration, progressBar } from './follow-workflow.js';
import type { ReplayProgress, ReplayWorkflowInput } from '../workflows/index.js';
import { replayFraction, replayWorkflowId } from '../workflows/index.js';

/** The `mdp stream replay` options, as parsed (strings, booleans). */
export interface ReplayFlags {
  readonly dataset?: string;
  readonly from?: string;
  readonly to?: string;
  readonly 'chunk-span'?: string;
  readonly speed?: string;
  readonly window?: string;
  readonly 'publish-signals'?: boolean;
  readonly 'wait-for-worker'?: string;
}

/** A replay to start: its workflow input, its id, and how long to wait for a worker first. */
export interface ReplayStart {
  readonly input: ReplayWorkflowInput;
  readonly workflowId: string;
  readonly waitForWorkerMs: number;
}

/** How long `mdp stream replay` waits for a worker on the task queue before giving up (`--wait-for-worker`). */
export const DEFAULT_WAIT_FOR_WORKER = '10s';

/**
 * Checks `mdp stream replay`'s options before anything connects, and turns them into the workflow
 * input: the dataset resolved from the CLI's datasets file (absolute paths, carried in the input so
 * the worker reads the same files), the range (`--from` before `--to`), the window (`--window`,
 * 500ms..5s like `stream micro-batch`, default the config's `micro_batch.window_ms`),
 * `--publish-signals`. A replay with a non-default window gets its own id, so two windows of one
 * range can run side by side.
 *
 * @throws ReplayInputError naming the option at fault (a usage error: nothing is started)
 */
export function replayInputFromFlags(config: StreamingConfig, flags: ReplayFlags): ReplayStart {
  if (!flags.dataset || !flags.from || !flags.to) {
    throw new ReplayInputError('missing_option', 'stream replay needs --dataset NAME --from DATE --to DATE (or --follow WORKFLOW_ID)');
  }
  const file = config.replay.datasets_file;
  let definition: DatasetDefinition;
  try {
    definition = findDataset(loadDatasetCatalog(file), flags.dataset, file);
  } catch (err) {
    if (err instanceof DatasetCatalogError) throw new ReplayInputError('unknown_dataset', `--dataset: ${err.message}`, { cause: err });
    throw err;
  }
  const fromMs = parseReplayBound(flags.from);
  if (fromMs === undefined) {
    throw new ReplayInputError('bad_range', `--from must be a date (2025-10-01) or an ISO-8601 timestamp with zone (got "${flags.from}")`);
  }
  const toMs = parseReplayBound(flags.to);
  if (toMs === undefined) throw new ReplayInputError('bad_range', `--to must be a date (2025-10-02) or an ISO-8601 timestamp with zone (got "${flags.to}")`);
  if (fromMs >= toMs) throw new ReplayInputError('bad_range', `--from (${flags.from}) must be before --to (${flags.to}): the range is [from, to)`);
  let windowMs = config.micro_batch.window_ms;
  if (flags.window !== undefined) {
    const parsed = parseWindowMs(flags.window);
    if (parsed === undefined) throw new ReplayInputError('bad_window', `--window must be a duration between 500ms and 5s, e.g. 2s (got "${flags.window}")`);
    windowMs = parsed;
  }
  if (flags['chunk-span'] !== undefined) {
    const span = parseDurationMs(flags['chunk-span']);
    if (span === undefined || span <= 0) throw new ReplayInputError('bad_option', `--chunk-span must be a duration such as 15m (got "${flags['chunk-span']}")`);
  }
  let speed: number | undefined;
  if (flags.speed !== undefined) {
    speed = Number(flags.speed);
    if (!Number.isFinite(speed) || speed <= 0) throw new ReplayInputError('bad_option', `--speed must be a positive number (got "${flags.speed}")`);
  }
  const waitForWorkerMs = parseDurationMs(flags['wait-for-worker'] ?? DEFAULT_WAIT_FOR_WORKER);
  if (waitForWorkerMs === undefined) {
    throw new ReplayInputError('bad_option', `--wait-for-worker must be a duration such as 10s or 0 (got "${flags['wait-for-worker']}")`);
  }
  const input: ReplayWorkflowInput = {
    dataset: flags.dataset,
    from: flags.from,
    to: flags.to,
    definition,
    windowMs,
    ...(flags['chunk-span'] ? { chunkSpan: flags['chunk-span'] } : {}),
    ...(speed !== undefined ? { speed } : {}),
    ...(flags['publish-signals'] === true ? { publishSignals: true } : {}),
  };
  const id = replayWorkflowId(flags.dataset, flags.from, flags.to);
  return { input, workflowId: windowMs === config.micro_batch.window_ms ? id : `${id}-${intervalLabel(windowMs)}`, waitForWorkerMs };
}

/**
 * Waits up to `waitMs` for a worker polling the pipeline's task queue (workflow tasks), checking
 * every half second: a replay started without one would only say "waiting for a worker" forever.
 *
 * @throws NoWorkerError when none polled within the wait
 */
export async function waitForWorker(client: Client, config: StreamingConfig, waitMs: number, everyMs = 500): Promise<void> {
  const taskQueue = config.temporal.task_queue;
  const deadline = Date.now() + waitMs;
  for (;;) {
    const { pollers } = await client.workflowService.describeTaskQueue({
      namespace: config.temporal.namespace,
      taskQueue: { name: taskQueue },
      taskQueueType: 1, // workflow (temporal.api.enums.v1.TaskQueueType)
    });
    if ((pollers ?? []).length > 0) return;
    if (Date.now() >= deadline) break;
    await abortableSleep(Math.min(everyMs, Math.max(0, deadline - Date.now())));
  }
  throw new NoWorkerError(
    taskQueue,
    waitMs,
    `no worker is polling task queue "${taskQueue}" (namespace ${config.temporal.namespace} at ${config.temporal.address}; waited ${formatDuration(waitMs)}); ` +
      'start one (mdp up, or npm run worker) and run the replay again; nothing was started',
  );
}

/** A replay started by name (tests, other commands); `mdp stream replay` goes through {@link replayInputFromFlags}. */
export interface ReplayOptions {
  readonly dataset: string;
  readonly from: string;
  readonly to: string;
  readonly chunkSpan?: string;
  readonly speed?: number;
  readonly windowMs?: number;
  readonly publishSignals?: boolean;
  /** Workflow id; default {@link replayWorkflowId}. */
  readonly workflowId?: string;
}

/** Starts a replay (or finds the one running under the same id); returns its id. */
export async function startReplay(client: Client, config: StreamingConfig, options: ReplayOptions): Promise<{ workflowId: string; started: boolean }> {
  const input: ReplayWorkflowInput = {
    dataset: options.dataset,
    from: options.from,
    to: options.to,
    ...(options.chunkSpan ? { chunkSpan: options.chunkSpan } : {}),
    ...(options.speed ? { speed: options.speed } : {}),
    ...(options.windowMs !== undefined ? { windowMs: options.windowMs } : {}),
    ...(options.publishSignals === true ? { publishSignals: true } : {}),
  };
  return startReplayWorkflow(client, config, { input, workflowId: options.workflowId ?? replayWorkflowId(options.dataset, options.from, options.to) });
}

/** Starts the replay `input` as `workflowId` (or finds the one running under that id). */
export async function startReplayWorkflow(
  client: Client,
  config: StreamingConfig,
  replay: Pick<ReplayStart, 'input' | 'workflowId'>,
): Promise<{ workflowId: string; started: boolean }> {
  const { input, workflowId } = replay;
  try {
    await client.workflow.start('replayWorkflow', {
      taskQueue: config.temporal.task_queue,
      workflowId,
      args: [input],
      // A running replay of the same range keeps running; a finished one may be run again.
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      ...(await legibleStart(client, replayLegibility(config, input), { dataset: input.dataset, from: input.from, to: input.to })),
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
