import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  getExternalWorkflowHandle,
  proxyActivities,
  setHandler,
  setWorkflowOptions,
  workflowInfo,
} from '@temporalio/workflow';
import { formatSpan } from '../pipeline/contracts/index.js';
import { onVersionedWorkers } from './versioning.js';
import type { Activities } from '../activities/index.js';
import type { ModelValidation } from '../activities/types.js';
import { AUDIT_FINISH_OPTIONS } from './activity-options.js';
import { showDetails } from './current-details.js';
import type { ModelReloadReply } from './definitions.js';
import { inferenceWorkflowId, modelReloadedSignal, reloadModelSignal } from './definitions.js';

const { validateModel, modelReloadTargets } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 3 },
});
const { startModelReloadAudit } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
});
const { finishModelReloadAudit } = proxyActivities<Activities>(AUDIT_FINISH_OPTIONS);

/**
 * Input of {@link modelReloadWorkflow}, JSON — e.g.
 * `temporal workflow start --task-queue mdp-pipeline --type modelReloadWorkflow --workflow-id mdp-model-reload-mdp.features
 *   --input '{"modelPath":"models/signal_model.onnx"}'`.
 */
export interface ModelReloadInput {
  /** The ONNX model to switch to, as the workers see it (relative: the worker's working directory). */
  readonly modelPath: string;
  /** Reference file to validate against; default `<model>.reference.json` beside it, when it exists. */
  readonly referencePath?: string;
  /** Inference consumer workflow ids; default one per shard of the worker's features stream. */
  readonly consumers?: readonly string[];
  /** How long each consumer has to confirm (and, on failure, to roll back); default 2 minutes. */
  readonly confirmTimeoutMs?: number;
}

/** What happened at one consumer. */
export interface ConsumerReloadOutcome {
  readonly workflowId: string;
  /**
   * `reloaded`: runs the new model; `skipped`: not an ONNX consumer; `not running`: no such
   * workflow; `failed`: refused the model; `timed out`: did not confirm in time;
   * `rolled back`: had switched, and went back when the reload failed elsewhere.
   */
  readonly status: 'reloaded' | 'skipped' | 'not running' | 'failed' | 'timed out' | 'rolled back' | 'rollback failed';
  readonly version?: string;
  readonly previousModelPath?: string;
  readonly previousVersion?: string;
  readonly reason?: string;
}

/** The result of a reload that took effect (one a consumer refused fails the workflow with the reason). */
export interface ModelReloadResult {
  readonly status: 'reloaded';
  readonly modelPath: string;
  readonly version: string;
  readonly validation: ModelValidation;
  readonly consumers: readonly ConsumerReloadOutcome[];
  readonly jobRunId: number;
}

/** A reload whose model did not pass validation: nothing changed. */
export interface ModelReloadRejection {
  readonly status: 'rejected';
  readonly modelPath: string;
  /** `model rejected, nothing changed: <file>: <why>`. */
  readonly reason: string;
  readonly jobRunId: number;
}

export interface ModelReloadProgress {
  readonly phase: 'validating' | 'reloading' | 'rolling back' | 'finished' | 'failed';
  readonly modelPath: string;
  readonly version: string | null;
  readonly consumers: readonly ConsumerReloadOutcome[];
}

/** Where a reload stands: validating, waiting for consumers, rolling back, done. */
export const modelReloadProgressQuery = defineQuery<ModelReloadProgress>('progress');

/** Failure types of a reload, for callers that branch on them. */
export const MODEL_RELOAD_FAILURES = { rejected: 'ModelRejected', notConfirmed: 'ModelReloadFailed' } as const;

const DEFAULT_CONFIRM_TIMEOUT_MS = 120_000;

/** Whether `err` is the validation activity refusing the model (not an outage or a timeout). */
function isRejection(err: unknown): boolean {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === MODEL_RELOAD_FAILURES.rejected;
}

function failureMessage(err: unknown): string {
  const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}

/**
 * Switches the inference consumers to another ONNX model: validates it first (load, shapes,
 * reference rows, output range) — a model that fails changes nothing — then signals every
 * running inference consumer and waits until each confirms it no longer runs the old model. If
 * any consumer refuses or does not confirm in time, those that switched are rolled back to their
 * previous model and the workflow fails with the reason. A model that fails validation is returned
 * as a {@link ModelReloadRejection} (an expected outcome, not a failure). Audited in `job_runs` (kind
 * `model_reload`), one row per reload.
 */
export async function modelReloadWorkflow(input: ModelReloadInput): Promise<ModelReloadResult | ModelReloadRejection> {
  const info = workflowInfo();
  const timeoutMs = input.confirmTimeoutMs ?? DEFAULT_CONFIRM_TIMEOUT_MS;
  let phase: ModelReloadProgress['phase'] = 'validating';
  let version: string | null = null;
  const outcomes = new Map<string, ConsumerReloadOutcome>();
  const replies = new Map<string, ModelReloadReply>();
  const replyKey = (requestId: string, workflowId: string) => `${requestId}\n${workflowId}`;
  const counts = () => {
    const c: Record<string, number> = { consumers: outcomes.size };
    for (const o of outcomes.values()) {
      const key = o.status.replace(/ /g, '_');
      c[key] = (c[key] ?? 0) + 1;
    }
    return c;
  };
  /** The consumers asked by the current request (the reload, then the rollback), for the current details. */
  let waiting: { requestId: string; asked: readonly string[] } | undefined;
  const show = (reason?: string) => {
    const answered = waiting ? waiting.asked.filter((id) => replies.has(replyKey(waiting!.requestId, id))).length : 0;
    const tally = Object.entries(counts())
      .filter(([key]) => key !== 'consumers')
      .map(([key, n]) => `${n} ${key.replace(/_/g, ' ')}`)
      .join(' · ');
    showDetails([
      phase === 'validating'
        ? `validating ${input.modelPath}`
        : phase === 'finished'
          ? `finished: the reload to ${version} took effect`
          : phase === 'failed'
            ? `failed${reason === undefined ? '' : `: ${reason}`}`
            : `${phase}: ${answered} of ${waiting?.asked.length ?? 0} consumers answered (waiting up to ${formatSpan(timeoutMs)})`,
      version !== null && `${input.modelPath} validated as ${version}`,
      tally,
    ]);
  };

  setHandler(modelReloadedSignal, (reply) => {
    replies.set(replyKey(reply.requestId, reply.workflowId), reply);
    show();
  });
  setHandler(modelReloadProgressQuery, () => ({ phase, modelPath: input.modelPath, version, consumers: [...outcomes.values()] }));

  const audit = async (meta: Record<string, unknown>) =>
    startModelReloadAudit({
      jobName: info.workflowId,
      meta: { modelPath: input.modelPath, ...(input.referencePath ? { referencePath: input.referencePath } : {}), workflowRunId: info.runId, ...meta },
    });

  // 1. Validate: a model that fails is rejected before any consumer is touched. A rejection is an
  // expected outcome, returned (not thrown) so the worker logs it once (the activity's warning),
  // not again as a failed workflow; `mdp model reload` still exits non-zero with the reason.
  show();
  let validation: ModelValidation;
  try {
    validation = await validateModel({ modelPath: input.modelPath, ...(input.referencePath ? { referencePath: input.referencePath } : {}) });
  } catch (err) {
    phase = 'failed';
    const reason = failureMessage(err);
    show(`model rejected, nothing changed: ${reason}`);
    const jobRunId = await CancellationScope.nonCancellable(async () => {
      const id = await audit({ rejected: true });
      await finishModelReloadAudit({ jobRunId: id, status: 'failure', counts: { consumers: 0 }, error: `model rejected: ${reason}` });
      return id;
    });
    if (isRejection(err)) return { status: 'rejected', modelPath: input.modelPath, reason: `model rejected, nothing changed: ${reason}`, jobRunId };
    throw ApplicationFailure.nonRetryable(`model rejected, nothing changed: ${reason}`, MODEL_RELOAD_FAILURES.rejected);
  }
  version = validation.version;
  const jobRunId = await audit({
    version: validation.version,
    referencePath: validation.referencePath,
    maxAbsDiff: validation.maxAbsDiff,
    rows: validation.rows,
  });

  try {
    // 2. Ask every inference consumer to switch, and wait for their answers.
    phase = 'reloading';
    let consumers = input.consumers;
    if (consumers === undefined) {
      const targets = await modelReloadTargets();
      consumers = Array.from({ length: targets.shards }, (_, shard) => inferenceWorkflowId(targets.featuresStream, shard));
    }
    const requestId = `${info.workflowId}/${info.runId}`;
    const asked = await signalAll(consumers, (workflowId) => outcomes.set(workflowId, { workflowId, status: 'not running' }), {
      requestId,
      modelPath: input.modelPath,
      replyTo: info.workflowId,
    });
    waiting = { requestId, asked };
    show();
    await condition(() => asked.every((id) => replies.has(replyKey(requestId, id))), timeoutMs);
    for (const id of asked) {
      const reply = replies.get(replyKey(requestId, id));
      outcomes.set(
        id,
        reply === undefined
          ? { workflowId: id, status: 'timed out', reason: `no confirmation within ${formatSpan(timeoutMs)}` }
          : { workflowId: id, status: reply.status, ...pick(reply) },
      );
    }
    const failed = [...outcomes.values()].filter((o) => o.status === 'failed' || o.status === 'timed out');
    if (failed.length === 0) {
      phase = 'finished';
      show();
      const result: ModelReloadResult = {
        status: 'reloaded',
        modelPath: input.modelPath,
        version: validation.version,
        validation,
        consumers: [...outcomes.values()],
        jobRunId,
      };
      await finishModelReloadAudit({ jobRunId, status: 'success', counts: counts() });
      return result;
    }

    // 3. Roll back those that switched (and those that may still switch: a late reload is undone after it lands).
    phase = 'rolling back';
    const rollbackId = `${requestId}/rollback`;
    const undo = asked.filter((id) => outcomes.get(id)?.status === 'reloaded' || outcomes.get(id)?.status === 'timed out');
    const undoing = await signalAll(undo, () => undefined, { requestId: rollbackId, rollbackOf: requestId, replyTo: info.workflowId });
    waiting = { requestId: rollbackId, asked: undoing };
    show();
    await condition(() => undoing.every((id) => replies.has(replyKey(rollbackId, id))), timeoutMs);
    for (const id of undoing) {
      const reply = replies.get(replyKey(rollbackId, id));
      const before = outcomes.get(id)!;
      if (before.status !== 'reloaded') continue;
      outcomes.set(
        id,
        reply?.status === 'reloaded'
          ? { ...before, status: 'rolled back' }
          : { ...before, status: 'rollback failed', reason: reply?.reason ?? `no rollback confirmation within ${formatSpan(timeoutMs)}` },
      );
    }
    const reason = failed.map((o) => `${o.workflowId}: ${o.reason ?? o.status}`).join('; ');
    throw ApplicationFailure.nonRetryable(
      `model reload to ${input.modelPath} (${validation.version}) failed, rolled back: ${reason}`,
      MODEL_RELOAD_FAILURES.notConfirmed,
      [...outcomes.values()],
    );
  } catch (err) {
    phase = 'failed';
    show(failureMessage(err));
    await CancellationScope.nonCancellable(() => finishModelReloadAudit({ jobRunId, status: 'failure', counts: counts(), error: failureMessage(err) }));
    throw err;
  }
}

function pick(reply: ModelReloadReply): Omit<ConsumerReloadOutcome, 'workflowId' | 'status'> {
  return {
    ...(reply.version === undefined ? {} : { version: reply.version }),
    ...(reply.previousModelPath === undefined ? {} : { previousModelPath: reply.previousModelPath }),
    ...(reply.previousVersion === undefined ? {} : { previousVersion: reply.previousVersion }),
    ...(reply.reason === undefined ? {} : { reason: reply.reason }),
  };
}

/** Signals `request` to each workflow; returns those it reached (the others are not running). */
async function signalAll(
  ids: readonly string[],
  notRunning: (id: string) => void,
  request: { requestId: string; modelPath?: string; rollbackOf?: string; replyTo: string },
): Promise<string[]> {
  const reached = await Promise.all(
    ids.map(async (id) => {
      try {
        await getExternalWorkflowHandle(id).signal(reloadModelSignal, request);
        return id;
      } catch {
        notRunning(id);
        return undefined;
      }
    }),
  );
  return reached.filter((id): id is string => id !== undefined);
}

// A reload takes seconds: it finishes on the code it started on.
setWorkflowOptions(onVersionedWorkers('PINNED'), modelReloadWorkflow);
