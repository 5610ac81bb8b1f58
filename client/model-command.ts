import { busNames } from '../pipeline/config/index.js';
import type { Client } from '@temporalio/client';
import { ApplicationFailure, WorkflowExecutionAlreadyStartedError, WorkflowFailedError } from '@temporalio/client';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { formatCount, formatSpan } from '../pipeline/contracts/index.js';
import type { ConsumerReloadOutcome, ModelReloadInput, ModelReloadRejection, ModelReloadResult } from '../workflows/index.js';
import { MODEL_RELOAD_FAILURES, modelReloadWorkflowId } from '../workflows/index.js';
import { ModelReloadError } from './model-reload-error.js';
import { legibleStart, modelReloadLegibility } from './workflow-summaries.js';

export { ModelReloadError } from './model-reload-error.js';

export interface ModelReloadOptions {
  /** The model, as the workers see it (relative paths: the worker's working directory). */
  readonly modelPath: string;
  readonly referencePath?: string;
  readonly confirmTimeoutMs?: number;
  /** Inference consumer workflow ids; default one per shard of the workers' features stream. */
  readonly consumers?: readonly string[];
  /** Workflow id; default {@link modelReloadWorkflowId} of the features stream (one reload at a time). */
  readonly workflowId?: string;
}

/** Why a reload that every consumer skipped changed nothing. */
export const NO_MODEL_CONSUMER = 'no inference consumer runs a model (start one with mdp stream infer --adapter sklearn --model …); nothing changed';

/**
 * `mdp model reload --path models/x.onnx`: runs `modelReloadWorkflow` and waits for it. Resolves
 * with the new version and each consumer's outcome; rejects with a {@link ModelReloadError}
 * carrying the reason when the model is rejected, a consumer does not switch (nothing changed
 * then: switched consumers are rolled back), or no consumer runs a model (code `no_model_consumer`:
 * the model was valid, but no consumer took it).
 */
export async function reloadModel(client: Client, config: StreamingConfig, options: ModelReloadOptions): Promise<ModelReloadResult> {
  const workflowId = options.workflowId ?? modelReloadWorkflowId(busNames(config).features_stream);
  const input: ModelReloadInput = {
    modelPath: options.modelPath,
    ...(options.referencePath ? { referencePath: options.referencePath } : {}),
    ...(options.confirmTimeoutMs ? { confirmTimeoutMs: options.confirmTimeoutMs } : {}),
    ...(options.consumers ? { consumers: options.consumers } : {}),
  };
  let outcome: ModelReloadResult | ModelReloadRejection;
  try {
    outcome = (await client.workflow.execute('modelReloadWorkflow', {
      taskQueue: config.temporal.task_queue,
      workflowId,
      args: [input],
      // One reload at a time; a finished one may be followed by the next.
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      ...(await legibleStart(client, modelReloadLegibility(input), { modelPath: options.modelPath })),
    })) as ModelReloadResult | ModelReloadRejection;
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError)
      throw new ModelReloadError(`another model reload is running (${workflowId}); wait for it to finish`, [], 'already_running');
    if (err instanceof WorkflowFailedError) {
      const cause = err.cause;
      const details = cause instanceof ApplicationFailure ? cause.details : undefined;
      const consumers = Array.isArray(details?.[0]) ? (details[0] as ConsumerReloadOutcome[]) : [];
      const code = cause instanceof ApplicationFailure && cause.type === MODEL_RELOAD_FAILURES.notConfirmed ? 'not_confirmed' : 'rejected';
      throw new ModelReloadError(cause?.message ?? err.message, consumers, code);
    }
    throw err;
  }
  // A rejected model is the workflow's result (an expected outcome), not its failure.
  if (outcome.status === 'rejected') throw new ModelReloadError(outcome.reason, [], 'rejected');
  const result = outcome;
  // Every consumer skipped (rules) or not running: the pipeline runs what it ran before.
  if (!result.consumers.some((c) => c.status === 'reloaded')) throw new ModelReloadError(NO_MODEL_CONSUMER, result.consumers, 'no_model_consumer');
  return result;
}

/** `max |Δp|` with fixed decimals: `0.000012`, or `< 0.000001` for a model that reproduces its reference. */
function formatDiff(diff: number): string {
  return diff < 1e-6 ? '< 0.000001' : diff.toFixed(6);
}

export interface ModelReloadCommandOptions extends ModelReloadOptions {
  /** `json`: the result (or `{ error, code, consumers }`) as one JSON document on stdout. Default `text`. */
  readonly output?: 'text' | 'json';
  readonly write: (text: string) => void;
  /** The reason of a failed reload (stderr). */
  readonly writeError: (text: string) => void;
}

/**
 * `mdp model reload --path models/x.onnx [--json]`: {@link reloadModel}, printed. Exit code 0 when
 * at least one consumer switched, 1 with the reason otherwise (the outcome of each consumer on
 * stdout, the reason on stderr).
 */
export async function modelReloadCommand(client: Client, config: StreamingConfig, options: ModelReloadCommandOptions): Promise<number> {
  const { write, writeError, output, ...reload } = options;
  const startedMs = Date.now();
  try {
    const result = await reloadModel(client, config, reload);
    const elapsedMs = Date.now() - startedMs;
    write(output === 'json' ? JSON.stringify({ ...result, elapsedMs }) + '\n' : formatReloadResult(result, elapsedMs).join('\n') + '\n');
    return 0;
  } catch (err) {
    if (!(err instanceof ModelReloadError)) throw err;
    if (output === 'json') write(JSON.stringify({ error: err.message, code: err.code, modelPath: reload.modelPath, consumers: err.consumers }) + '\n');
    else for (const o of err.consumers) write(formatOutcome(o) + '\n');
    writeError(`mdp: model reload failed: ${err.message}\n`);
    return 1;
  }
}

/**
 * Lines for the terminal: the version and how it was checked, how many consumers switched and how
 * long it took, then one line per consumer.
 *
 * @example
 * // model models/m.onnx version 1.4.0 validated (1,000 reference rows, max |Δp| < 0.000001); 2 of 4 consumers switched in 1.3 s; job run 17
 */
export function formatReloadResult(result: ModelReloadResult, elapsedMs?: number): string[] {
  const v = result.validation;
  const check =
    v.referencePath === null || v.maxAbsDiff === null
      ? `${formatCount(v.rows)} probe rows`
      : `${formatCount(v.rows)} reference rows, max |Δp| ${formatDiff(v.maxAbsDiff)}`;
  const switched = result.consumers.filter((c) => c.status === 'reloaded').length;
  const took = elapsedMs === undefined ? '' : ` in ${formatSpan(Math.round(elapsedMs / 100) * 100)}`;
  return [
    `model ${result.modelPath} version ${result.version} validated (${check}); ${switched} of ${result.consumers.length} consumers switched${took}; job run ${result.jobRunId}`,
    ...result.consumers.map(formatOutcome),
  ];
}

export function formatOutcome(o: ConsumerReloadOutcome): string {
  const from = o.previousVersion ? ` (was ${o.previousVersion})` : '';
  return `${o.workflowId}: ${o.status}${o.version ? ` ${o.version}` : ''}${o.status === 'reloaded' ? from : ''}${o.reason ? ` — ${o.reason}` : ''}`;
}
