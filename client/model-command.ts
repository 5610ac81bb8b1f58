import { busNames } from '../pipeline/config/index.js';
import type { Client } from '@temporalio/client';
import { ApplicationFailure, WorkflowExecutionAlreadyStartedError, WorkflowFailedError } from '@temporalio/client';
import type { StreamingConfig } from '../pipeline/config/index.js';
import type { ConsumerReloadOutcome, ModelReloadInput, ModelReloadResult } from '../workflows/index.js';
import { modelReloadWorkflowId } from '../workflows/index.js';
import { legibleStart, modelReloadLegibility } from './workflow-summaries.js';

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

/** A reload that did not take effect; `message` is the reason (naming the model or the consumers). */
export class ModelReloadError extends Error {
  constructor(
    message: string,
    readonly consumers: readonly ConsumerReloadOutcome[] = [],
  ) {
    super(message);
    this.name = this.constructor.name;
  }
}

/**
 * `mdp model reload --path models/x.onnx`: runs `modelReloadWorkflow` and waits for it. Resolves
 * with the new version and each consumer's outcome; rejects with a {@link ModelReloadError}
 * carrying the reason when the model is rejected or a consumer does not switch (nothing changed
 * then: switched consumers are rolled back).
 */
export async function reloadModel(client: Client, config: StreamingConfig, options: ModelReloadOptions): Promise<ModelReloadResult> {
  const workflowId = options.workflowId ?? modelReloadWorkflowId(busNames(config).features_stream);
  const input: ModelReloadInput = {
    modelPath: options.modelPath,
    ...(options.referencePath ? { referencePath: options.referencePath } : {}),
    ...(options.confirmTimeoutMs ? { confirmTimeoutMs: options.confirmTimeoutMs } : {}),
    ...(options.consumers ? { consumers: options.consumers } : {}),
  };
  try {
    return (await client.workflow.execute('modelReloadWorkflow', {
      taskQueue: config.temporal.task_queue,
      workflowId,
      args: [input],
      // One reload at a time; a finished one may be followed by the next.
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      ...(await legibleStart(client, modelReloadLegibility(input), { modelPath: options.modelPath })),
    })) as ModelReloadResult;
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError)
      throw new ModelReloadError(`another model reload is running (${workflowId}); wait for it to finish`);
    if (err instanceof WorkflowFailedError) {
      const cause = err.cause;
      const details = cause instanceof ApplicationFailure ? cause.details : undefined;
      const consumers = Array.isArray(details?.[0]) ? (details[0] as ConsumerReloadOutcome[]) : [];
      throw new ModelReloadError(cause?.message ?? err.message, consumers);
    }
    throw err;
  }
}

/** Lines for the terminal: the version, then one line per consumer. */
export function formatReloadResult(result: ModelReloadResult): string[] {
  const v = result.validation;
  const check = v.referencePath === null ? `${v.rows} probe rows` : `${v.rows} reference rows, max |Δp| ${v.maxAbsDiff}`;
  return [`model ${result.modelPath} version ${result.version} validated (${check}); job run ${result.jobRunId}`, ...result.consumers.map(formatOutcome)];
}

export function formatOutcome(o: ConsumerReloadOutcome): string {
  const from = o.previousVersion ? ` (was ${o.previousVersion})` : '';
  return `${o.workflowId}: ${o.status}${o.version ? ` ${o.version}` : ''}${o.status === 'reloaded' ? from : ''}${o.reason ? ` — ${o.reason}` : ''}`;
}
