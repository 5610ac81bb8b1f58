import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { ApplicationFailureCategory } from '@temporalio/common';
import type { InferenceAdapter, JobRunSink } from '../pipeline/contracts/index.js';
import type { InferenceDefaults } from './inference-activity.js';
import { jobAudit } from './job-audit.js';
import type { AdapterFactory } from './signal-emitter.js';
import { ModelError, OnnxAdapter, OnnxPool } from '../pipeline/inference/onnx/index.js';
import type { Prediction } from '../pipeline/inference/onnx/index.js';
import type { Logger } from '../pipeline/telemetry/index.js';
import type { ModelDescribeInput, ModelDescription, ModelReloadTargets, ModelValidateInput, ModelValidation } from './types.js';

export interface ModelDeps {
  /** Builds an adapter exactly as an inference run does (`sklearn`: the ONNX model, rules as fallback). */
  readonly createAdapter: AdapterFactory;
  readonly jobs: JobRunSink;
  readonly log: Logger;
  /** The inference consumers a reload addresses: one per shard of the features stream. */
  readonly inference: Pick<InferenceDefaults, 'featuresStream' | 'shards'>;
}

/** The `job_runs` kind of model reloads. */
export const MODEL_RELOAD_JOB_KIND = 'model_reload';

/** Failure type of a model that does not pass validation (never retried). */
export const MODEL_REJECTED = 'ModelRejected';

/** Largest accepted distance of a probability row's sum from 1. */
const SUM_TOLERANCE = 1e-3;

/** `<model>.reference.json` beside `<model>.onnx`, the file `scripts/train_model.py` writes. */
export function defaultReferencePath(modelPath: string): string {
  return `${modelPath.replace(/\.onnx$/i, '')}.reference.json`;
}

/** A few rows around zero, for the range check of a model without a reference file. */
function probeRows(width: number): number[][] {
  return [Array.from({ length: width }, () => 0), Array.from({ length: width }, () => 0.01), Array.from({ length: width }, (_, i) => (i % 2 ? -0.5 : 0.5))];
}

/** What is wrong with a model's outputs on `rows` inputs, or undefined when they are in shape and range. */
export function outputProblem(prediction: Prediction, rows: number, classes: readonly number[]): string | undefined {
  if (prediction.labels.length !== rows) return `returned ${prediction.labels.length} labels for ${rows} rows`;
  if (prediction.probabilities.length !== rows) return `returned ${prediction.probabilities.length} probability rows for ${rows} rows`;
  for (let r = 0; r < rows; r++) {
    const label = prediction.labels[r];
    if (!classes.includes(label)) return `row ${r}: label ${label} is not one of the classes [${classes.join(', ')}]`;
    const p = prediction.probabilities[r];
    if (p.length !== classes.length) return `row ${r}: ${p.length} probabilities for ${classes.length} classes`;
    if (!p.every((v) => Number.isFinite(v) && v >= -1e-6 && v <= 1 + 1e-6)) return `row ${r}: probabilities out of [0, 1]: [${p.join(', ')}]`;
    const sum = p.reduce((a, b) => a + b, 0);
    if (Math.abs(sum - 1) > SUM_TOLERANCE) return `row ${r}: probabilities sum to ${sum}, not 1`;
  }
  return undefined;
}

/**
 * A model that fails validation is an expected outcome, not a fault: a non-retryable failure of
 * category BENIGN, which the SDK logs at debug (not as "Activity failed"), so the one line about it
 * is the activity's own warning.
 */
function reject(err: unknown): never {
  if (err instanceof ModelError)
    throw ApplicationFailure.create({
      message: err.message,
      type: MODEL_REJECTED,
      nonRetryable: true,
      details: [{ code: err.code, file: err.file ?? null }],
      category: ApplicationFailureCategory.BENIGN,
    });
  throw err;
}

/**
 * Activities of `modelReloadWorkflow` and of the inference consumers' reload: validate a model
 * before anything switches to it, let a consumer load the model it is about to run, and the
 * `job_runs` audit (kind `model_reload`). Model paths are as the worker sees them (relative ones
 * against its working directory, like `inference.adapters.sklearn.model_path`).
 */
export function createModelActivities(deps: ModelDeps) {
  /**
   * Loads the model with its sidecar (sha256, input and output shapes, a trial run), checks it
   * against the reference rows (recorded labels and probabilities), and checks its outputs are
   * in range (labels among the classes, probabilities in [0, 1] summing to 1). A model that fails
   * is rejected without retry (`ModelRejected`), the message naming the file and the reason.
   */
  async function validateModel(input: ModelValidateInput): Promise<ModelValidation> {
    const modelPath = resolve(process.cwd(), input.modelPath);
    const explicitReference = input.referencePath === undefined ? undefined : resolve(process.cwd(), input.referencePath);
    const referencePath = explicitReference ?? (existsSync(defaultReferencePath(modelPath)) ? defaultReferencePath(modelPath) : undefined);
    const log = deps.log.child({ activity: 'validateModel', modelPath });
    try {
      const adapter = await OnnxAdapter.create({ modelPath, ...(referencePath === undefined ? {} : { referencePath }), poolSize: 1 });
      const { sidecar } = adapter;
      let maxAbsDiff: number | null = null;
      let rows: number[][];
      try {
        if (referencePath !== undefined) {
          maxAbsDiff = (await adapter.validate(referencePath)).maxAbsDiff;
          rows = (JSON.parse(await readFile(referencePath, 'utf8')) as { inputs: number[][] }).inputs;
        } else {
          rows = probeRows(sidecar.inputs.length);
        }
      } finally {
        await adapter.close();
      }
      const pool = await OnnxPool.start({
        modelPath,
        inputName: sidecar.inputName,
        outputs: sidecar.outputs,
        width: sidecar.inputs.length,
        classCount: sidecar.classes.length,
      });
      try {
        const problem = outputProblem(await pool.predict(rows, { timeoutMs: 10_000 }), rows.length, sidecar.classes);
        if (problem !== undefined) throw new ModelError(`${modelPath}: output out of shape or range: ${problem}`, { code: 'MODEL_MISMATCH', file: modelPath });
      } finally {
        await pool.close();
      }
      log.info('model validated', { version: sidecar.version, referencePath, maxAbsDiff, rows: rows.length });
      return {
        modelPath: input.modelPath,
        version: sidecar.version,
        referencePath: referencePath ?? null,
        rows: rows.length,
        maxAbsDiff,
        classes: [...sidecar.classes],
      };
    } catch (err) {
      if (err instanceof ModelError) log.warn('model rejected', { reason: err.message });
      return reject(err);
    }
  }

  /** Loads the model as an inference run would (same factory), and reports its version. */
  async function describeModel(input: ModelDescribeInput): Promise<ModelDescription> {
    let adapter: InferenceAdapter;
    try {
      adapter = await deps.createAdapter('sklearn', input.modelPath);
    } catch (err) {
      return reject(err);
    }
    try {
      return { adapter: adapter.name, version: adapter.version };
    } finally {
      await adapter.close?.();
    }
  }

  /** The worker's features stream and shard count: its inference consumers are one per shard. */
  function modelReloadTargets(): Promise<ModelReloadTargets> {
    return Promise.resolve({ featuresStream: deps.inference.featuresStream, shards: deps.inference.shards });
  }

  const audit = jobAudit(deps.jobs, MODEL_RELOAD_JOB_KIND);
  return { validateModel, describeModel, modelReloadTargets, startModelReloadAudit: audit.start, finishModelReloadAudit: audit.finish };
}
