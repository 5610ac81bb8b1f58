import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { FeatureSnapshot, InferenceAdapter, SignalEventV1 } from '../../contracts/index.js';
import { CircuitBreaker } from './circuit-breaker.js';
import type { CircuitBreakerOptions, CircuitState, CircuitTransition, TransitionListener } from './circuit-breaker.js';
import { CircuitOpenError } from './circuit-open-error.js';
import { ModelError } from './model-error.js';
import { buildInputRow, defaultSidecarPath, loadModelSidecar } from './model-sidecar.js';
import type { ModelSidecar } from './model-sidecar.js';
import { OnnxPool } from './onnx-pool.js';
import type { Prediction } from './onnx-pool.js';
import { TimeoutError } from './timeout-error.js';

/** The adapter label of spec §8.2 (`inference.adapters.sklearn`), on metrics and stored signals. */
export const SKLEARN_ADAPTER_NAME = 'sklearn';

/** Runs the real model: what {@link OnnxAdapterOptions.predictOverride} can delegate to. */
export type PredictFn = (rows: number[][]) => Promise<Prediction>;

export interface OnnxAdapterOptions {
  /** The ONNX model (`inference.adapters.sklearn.model_path`). */
  readonly modelPath: string;
  /** Its sidecar; default: the model path with `.onnx` replaced by `.json`. */
  readonly sidecarPath?: string;
  /** Reference inputs and outputs to check the model against before accepting it (see {@link OnnxAdapter.validate}). */
  readonly referencePath?: string;
  /** Largest accepted probability difference on the reference rows; default 1e-5. */
  readonly referenceTolerance?: number;
  /** Inference worker processes; default 1. */
  readonly poolSize?: number;
  /** Budget of one model call (queueing included); default 200 ms. */
  readonly timeoutMs?: number;
  /** Breaker tuning: `failureThreshold` (default 3), `cooldownMs` (default 5000), `now` (clock). */
  readonly breaker?: Omit<CircuitBreakerOptions, 'onTransition'>;
  /** Told of every breaker transition (log it). */
  readonly onTransition?: TransitionListener;
  /**
   * Evaluates snapshots while the model is unavailable (breaker open, call failed or timed out),
   * normally the rules adapter; its signals get `meta.fallback` = its name. Not closed by
   * {@link OnnxAdapter.close}. Without one, an unavailable model emits no signals.
   */
  readonly fallback?: InferenceAdapter;
  /**
   * Test hook: replaces each evaluation's model call. It receives the rows and the real pool's
   * predict; the adapter's timeout and breaker still apply to it.
   */
  readonly predictOverride?: (rows: number[][], model: PredictFn) => Promise<Prediction>;
}

/** Result of running a model on reference inputs. */
export interface ReferenceCheck {
  readonly rows: number;
  /** Rows whose predicted label differs from the recorded one. */
  readonly labelMismatches: number;
  /** Largest absolute difference between a predicted and a recorded probability. */
  readonly maxAbsDiff: number;
}

/** Counters of an adapter's life, for metrics. */
export interface OnnxAdapterStats {
  /** Snapshots the model answered. */
  readonly predictions: number;
  /** Snapshots skipped because an input was null (warming up) or not finite; the model was not called. */
  readonly notReady: number;
  /** Model calls that failed or timed out. */
  readonly failures: number;
  /** Of those, timeouts. */
  readonly timeouts: number;
  /** Snapshots refused by the open breaker. */
  readonly rejectedByBreaker: number;
  /** Snapshots handed to the fallback adapter. */
  readonly fallbacks: number;
  readonly breakerState: CircuitState;
  readonly transitions: Readonly<Record<CircuitTransition, number>>;
}

interface ReferenceFile {
  readonly inputs: number[][];
  readonly labels: number[];
  readonly probabilities: number[][];
}

/**
 * The `sklearn` inference adapter: an ONNX classifier (typically scikit-learn exported with
 * skl2onnx) run by onnxruntime in worker processes, behind a circuit breaker that falls back to
 * another adapter (the rules) when the model is slow or failing (spec §11.5).
 *
 * For each snapshot it builds the input row in sidecar order; a null input means the features
 * are warming up and nothing is emitted. A predicted class with a signal name whose probability
 * is at least the sidecar's `threshold` emits one {@link SignalEventV1}.
 *
 * @example
 * ```ts
 * const ml = await OnnxAdapter.create({ modelPath: 'models/signal_model.onnx', fallback: rules,
 *   onTransition: (from, to, reason) => log.warn('model breaker', { from, to, reason }) });
 * const signals = await ml.evaluate(snapshot);
 * await ml.close();
 * ```
 */
export class OnnxAdapter implements InferenceAdapter {
  readonly name = SKLEARN_ADAPTER_NAME;
  /** The sidecar's model version. */
  readonly version: string;
  readonly sidecar: ModelSidecar;
  readonly timeoutMs: number;
  readonly #pool: OnnxPool;
  readonly #breaker: CircuitBreaker;
  readonly #fallback: InferenceAdapter | undefined;
  readonly #predictOverride: OnnxAdapterOptions['predictOverride'];
  /** Feature whose window label goes into `meta.window`: the first plain feature input. */
  readonly #windowFeature: string | undefined;
  #stats = { predictions: 0, notReady: 0, failures: 0, timeouts: 0, rejectedByBreaker: 0, fallbacks: 0 };
  #closing: Promise<void> | undefined;

  private constructor(sidecar: ModelSidecar, pool: OnnxPool, options: OnnxAdapterOptions) {
    this.sidecar = sidecar;
    this.version = sidecar.version;
    this.#pool = pool;
    this.timeoutMs = pool.timeoutMs;
    this.#breaker = new CircuitBreaker({ ...options.breaker, onTransition: options.onTransition });
    this.#fallback = options.fallback;
    this.#predictOverride = options.predictOverride;
    const first = sidecar.inputs.find((input) => 'feature' in input);
    this.#windowFeature = first !== undefined && 'feature' in first ? first.feature : undefined;
  }

  /**
   * Loads the sidecar and the model into the worker pool and checks them: the sidecar's
   * `sha256` (if any) against the file, the model's input and outputs against the sidecar, one
   * trial inference, and the reference rows when `referencePath` is given. Rejects with a
   * {@link ModelError} naming the offending file; nothing is left running then.
   */
  static async create(options: OnnxAdapterOptions): Promise<OnnxAdapter> {
    const { modelPath } = options;
    // The model first: a missing model is reported as itself, not as its missing sidecar.
    let bytes: Buffer;
    try {
      bytes = await readFile(modelPath);
    } catch (cause) {
      const reason = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such model file' : `cannot read model: ${(cause as Error).message}`;
      throw new ModelError(`${modelPath}: ${reason}`, { code: 'MODEL_FILE_NOT_FOUND', file: modelPath, cause });
    }
    const sidecar = await loadModelSidecar(options.sidecarPath ?? defaultSidecarPath(modelPath));
    if (sidecar.sha256 !== undefined) {
      const actual = createHash('sha256').update(bytes).digest('hex');
      if (actual !== sidecar.sha256) {
        throw new ModelError(`${modelPath}: sha256 ${actual} differs from ${sidecar.file} sha256 ${sidecar.sha256}`, {
          code: 'MODEL_MISMATCH',
          file: modelPath,
          key: 'sha256',
        });
      }
    }
    const pool = await OnnxPool.start({
      modelPath,
      inputName: sidecar.inputName,
      outputs: sidecar.outputs,
      width: sidecar.inputs.length,
      classCount: sidecar.classes.length,
      ...(options.poolSize === undefined ? {} : { size: options.poolSize }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
    const adapter = new OnnxAdapter(sidecar, pool, options);
    try {
      await adapter.#smokeTest();
      if (options.referencePath !== undefined) {
        const tolerance = options.referenceTolerance ?? 1e-5;
        const check = await adapter.validate(options.referencePath);
        if (check.labelMismatches > 0 || !(check.maxAbsDiff <= tolerance)) {
          throw new ModelError(
            `${modelPath}: differs from ${options.referencePath}: ${check.labelMismatches} of ${check.rows} labels, max probability difference ${check.maxAbsDiff} (tolerance ${tolerance})`,
            { code: 'MODEL_REFERENCE_MISMATCH', file: modelPath },
          );
        }
      }
    } catch (err) {
      await adapter.close();
      throw err;
    }
    return adapter;
  }

  /** Counters and breaker state. */
  get stats(): OnnxAdapterStats {
    return { ...this.#stats, breakerState: this.#breaker.state, transitions: this.#breaker.transitionCounts };
  }

  /** The breaker's current state. */
  get breakerState(): CircuitState {
    return this.#breaker.state;
  }

  async evaluate(snapshot: FeatureSnapshot): Promise<readonly SignalEventV1[]> {
    if (this.#closing !== undefined) {
      throw new ModelError(`${this.#pool.modelPath}: adapter is closed`, { code: 'MODEL_CLOSED', file: this.#pool.modelPath });
    }
    const input = buildInputRow(this.sidecar, snapshot.values);
    if (input === undefined) {
      this.#stats.notReady += 1;
      return [];
    }
    let prediction: Prediction;
    try {
      prediction = await this.#breaker.execute(() => this.#predict([input.row]));
    } catch (err) {
      return this.#onUnavailable(snapshot, err);
    }
    this.#stats.predictions += 1;
    const label = prediction.labels[0];
    const probabilities = prediction.probabilities[0];
    const name = this.sidecar.signalNames.get(label);
    const classIndex = this.sidecar.classes.indexOf(label);
    const score = probabilities[classIndex];
    if (name === undefined || score === undefined || score < this.sidecar.threshold) return [];
    return [
      {
        ver: 1,
        provider: snapshot.provider,
        symbol: snapshot.symbol,
        ts: snapshot.ts,
        name,
        value: label,
        score,
        meta: {
          window: (this.#windowFeature === undefined ? undefined : snapshot.windows[this.#windowFeature]) ?? snapshot.interval,
          price: snapshot.price,
          inputs: input.inputs,
          adapter: SKLEARN_ADAPTER_NAME,
          model_version: this.version,
          probabilities: Object.fromEntries(this.sidecar.classes.map((c, i) => [String(c), probabilities[i]])),
        },
      },
    ];
  }

  /**
   * Runs the model on a reference file (`{ inputs, labels, probabilities }`, as written by
   * `scripts/train_model.py`) and compares. Bypasses the breaker; allows 5 s for the batch.
   */
  async validate(referencePath: string): Promise<ReferenceCheck> {
    const reference = await loadReference(referencePath, this.sidecar.inputs.length, this.sidecar.classes.length);
    const prediction = await this.#pool.predict(reference.inputs, { timeoutMs: Math.max(this.timeoutMs, 5000) });
    let labelMismatches = 0,
      maxAbsDiff = 0;
    reference.labels.forEach((label, r) => {
      if (prediction.labels[r] !== label) labelMismatches += 1;
      reference.probabilities[r].forEach((p, c) => {
        maxAbsDiff = Math.max(maxAbsDiff, Math.abs((prediction.probabilities[r][c] ?? Number.NaN) - p));
      });
    });
    return { rows: reference.labels.length, labelMismatches, maxAbsDiff };
  }

  /** Terminates the inference workers (not the fallback). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#pool.close();
    return this.#closing;
  }

  #predict(rows: number[][]): Promise<Prediction> {
    const override = this.#predictOverride;
    if (override === undefined) return this.#pool.predict(rows);
    return withTimeout(
      override(rows, (r) => this.#pool.predict(r)),
      this.timeoutMs,
    );
  }

  async #onUnavailable(snapshot: FeatureSnapshot, err: unknown): Promise<readonly SignalEventV1[]> {
    let reason: string;
    if (err instanceof CircuitOpenError) {
      this.#stats.rejectedByBreaker += 1;
      reason = 'circuit_open';
    } else {
      this.#stats.failures += 1;
      if (err instanceof TimeoutError) this.#stats.timeouts += 1;
      reason = err instanceof TimeoutError ? 'timeout' : 'error';
    }
    const fallback = this.#fallback;
    if (fallback === undefined) return [];
    this.#stats.fallbacks += 1;
    const signals = await fallback.evaluate(snapshot);
    return signals.map((signal) => ({ ...signal, meta: { ...signal.meta, fallback: fallback.name, fallback_reason: reason } }));
  }

  /** One zero row: proves the model runs and returns labels it declares. */
  async #smokeTest(): Promise<void> {
    const modelPath = this.#pool.modelPath;
    const prediction = await this.#pool.predict([this.sidecar.inputs.map(() => 0)], { timeoutMs: Math.max(this.timeoutMs, 5000) });
    const label = prediction.labels[0];
    if (label === undefined || !this.sidecar.classes.includes(label)) {
      throw new ModelError(`${modelPath}: predicted label ${label} is not one of ${this.sidecar.file} classes [${this.sidecar.classes.join(', ')}]`, {
        code: 'MODEL_MISMATCH',
        file: modelPath,
        key: 'classes',
      });
    }
  }
}

async function loadReference(file: string, width: number, classCount: number): Promise<ReferenceFile> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (cause) {
    throw new ModelError(`${file}: cannot read reference file: ${(cause as Error).message}`, { code: 'MODEL_FILE_NOT_FOUND', file, cause });
  }
  const bad = (key: string, reason: string): ModelError => new ModelError(`${file}: ${key}: ${reason}`, { code: 'MODEL_REFERENCE_INVALID', file, key });
  const { inputs, labels, probabilities } = (json ?? {}) as Partial<ReferenceFile>;
  const numbers = (value: unknown, length: number): boolean => Array.isArray(value) && value.length === length && value.every((v) => typeof v === 'number');
  if (!Array.isArray(inputs) || inputs.length === 0) throw bad('inputs', 'must be a non-empty array of rows');
  if (!inputs.every((row) => numbers(row, width))) throw bad('inputs', `every row must have ${width} numbers`);
  if (!numbers(labels, inputs.length)) throw bad('labels', `must have one number per input row (${inputs.length})`);
  if (!Array.isArray(probabilities) || probabilities.length !== inputs.length || !probabilities.every((row) => numbers(row, classCount))) {
    throw bad('probabilities', `must have one row of ${classCount} numbers per input row`);
  }
  return { inputs, labels: labels as number[], probabilities };
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new TimeoutError(`model call took longer than ${timeoutMs} ms`, timeoutMs)), timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
