import type { ChildProcess } from 'node:child_process';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ModelError } from './model-error.js';
import { TimeoutError } from './timeout-error.js';
import type { WorkerInit, WorkerReply, WorkerRequest } from './worker-protocol.js';

/** Model outputs for a batch of rows: one label and one probability row (in class order) per input row. */
export interface Prediction {
  readonly labels: number[];
  readonly probabilities: number[][];
}

export interface OnnxPoolOptions {
  readonly modelPath: string;
  /** Name of the model's float tensor input `[N, width]`. */
  readonly inputName: string;
  readonly outputs: { readonly label: string; readonly probabilities: string };
  /** Values per input row. */
  readonly width: number;
  /** Probability columns per row (number of classes). */
  readonly classCount: number;
  /** Worker processes, each with its own session; default 1. */
  readonly size?: number;
  /** Budget of one {@link OnnxPool.predict} call, queueing included; default 200 ms. */
  readonly timeoutMs?: number;
  /** onnxruntime intra-op threads per worker; default 1 (the pool is the parallelism). */
  readonly intraOpThreads?: number;
  /** Budget for a worker to load the model; default 30 s. */
  readonly loadTimeoutMs?: number;
  /** Wait before retrying a worker whose restart failed; default 1000 ms. */
  readonly restartDelayMs?: number;
}

export interface PredictOptions {
  /** Overrides the pool's `timeoutMs` for this call (e.g. a large validation batch). */
  readonly timeoutMs?: number;
}

/** Counters of a pool's life, for metrics and tests. */
export interface OnnxPoolStats {
  /** Calls rejected with {@link TimeoutError}. */
  readonly timeouts: number;
  /** Workers terminated and replaced because a call timed out on them. */
  readonly recycled: number;
  /** Workers that died on their own (crash, uncaught error) and were replaced. */
  readonly crashed: number;
  /** Replacement workers that failed to load the model (retried after `restartDelayMs`). */
  readonly restartFailures: number;
}

interface PendingCall {
  readonly id: number;
  readonly rows: Float64Array;
  readonly count: number;
  readonly timeoutMs: number;
  readonly resolve: (prediction: Prediction) => void;
  readonly reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
  slot: Slot | undefined;
}

interface Slot {
  readonly index: number;
  worker: ChildProcess | undefined;
  state: 'starting' | 'idle' | 'busy' | 'down';
  call: PendingCall | undefined;
}

const WORKER_PATH = fileURLToPath(new URL('./onnx-worker.js', import.meta.url));

/** Ends a model worker process (SIGKILL: it may be stuck in native code) and resolves when it is gone. */
function terminate(worker: ChildProcess): Promise<void> {
  if (worker.exitCode !== null || worker.signalCode !== null) return Promise.resolve();
  const gone = new Promise<void>((done) => worker.once('exit', () => done()));
  worker.kill('SIGKILL');
  return gone;
}

/**
 * A fixed pool of worker **processes**, each holding one onnxruntime session of the same model, so
 * inference runs off the event loop. Calls queue for an idle worker; a call that exceeds its
 * budget rejects with {@link TimeoutError} and its worker is killed and restarted, so a hung
 * model cannot wedge the pool. Processes, not worker threads: onnxruntime-node aborts the whole
 * process (`terminate called after throwing an instance of 'Napi::Error'`) when a worker thread
 * running a session is terminated on Node 24, so a timed-out model call would take the worker —
 * every consumer of the mdp worker — down with it; a killed child process takes only itself.
 *
 * @example
 * ```ts
 * const pool = await OnnxPool.start({ modelPath, inputName: 'features', outputs: { label: 'label', probabilities: 'probabilities' }, width: 5, classCount: 3 });
 * const { labels, probabilities } = await pool.predict([[0.001, 0.02, 0.15, 40, 0.002]]);
 * await pool.close();
 * ```
 */
export class OnnxPool {
  readonly modelPath: string;
  readonly size: number;
  readonly timeoutMs: number;
  readonly #init: WorkerInit;
  readonly #loadTimeoutMs: number;
  readonly #restartDelayMs: number;
  readonly #slots: Slot[];
  readonly #queue: PendingCall[] = [];
  readonly #restartTimers = new Set<NodeJS.Timeout>();
  #nextId = 1;
  #closing: Promise<void> | undefined;
  #stats = { timeouts: 0, recycled: 0, crashed: 0, restartFailures: 0 };

  private constructor(options: OnnxPoolOptions) {
    const size = options.size ?? 1;
    const timeoutMs = options.timeoutMs ?? 200;
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`size must be a positive integer (got ${size})`);
    if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive (got ${timeoutMs})`);
    this.modelPath = options.modelPath;
    this.size = size;
    this.timeoutMs = timeoutMs;
    this.#loadTimeoutMs = options.loadTimeoutMs ?? 30_000;
    this.#restartDelayMs = options.restartDelayMs ?? 1000;
    this.#init = {
      modelPath: options.modelPath,
      inputName: options.inputName,
      labelOutput: options.outputs.label,
      probabilitiesOutput: options.outputs.probabilities,
      width: options.width,
      classCount: options.classCount,
      intraOpThreads: options.intraOpThreads ?? 1,
    };
    this.#slots = Array.from({ length: size }, (_, index) => ({ index, worker: undefined, state: 'down' as const, call: undefined }));
  }

  /**
   * Starts every worker and waits until each has loaded the model. Rejects with a
   * {@link ModelError} naming the model path (`MODEL_LOAD` for a file onnxruntime cannot read,
   * `MODEL_MISMATCH` when inputs or outputs differ from the options) and leaves nothing running.
   */
  static async start(options: OnnxPoolOptions): Promise<OnnxPool> {
    const pool = new OnnxPool(options);
    const started = await Promise.allSettled(pool.#slots.map((slot) => pool.#spawn(slot)));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) {
      await pool.close();
      throw failed.reason;
    }
    return pool;
  }

  get stats(): OnnxPoolStats {
    return { ...this.#stats };
  }

  /**
   * Runs the model on `rows` (each `width` numbers) in one worker. Rejects with
   * {@link TimeoutError} past the budget, with {@link ModelError} `MODEL_RUN` when onnxruntime
   * rejects the input, `MODEL_WORKER_EXIT` when the worker dies, `MODEL_CLOSED` after close.
   */
  predict(rows: readonly (readonly number[])[], options: PredictOptions = {}): Promise<Prediction> {
    if (this.#closing !== undefined) return Promise.reject(this.#closedError());
    const width = this.#init.width;
    const flat = new Float64Array(rows.length * width);
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r];
      if (row.length !== width) return Promise.reject(new RangeError(`row ${r} has ${row.length} values, the model takes ${width}`));
      flat.set(row, r * width);
    }
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    return new Promise<Prediction>((resolve, reject) => {
      const call: PendingCall = { id: this.#nextId++, rows: flat, count: rows.length, timeoutMs, resolve, reject, timer: undefined, slot: undefined };
      call.timer = setTimeout(() => this.#onTimeout(call), timeoutMs);
      this.#queue.push(call);
      this.#pump();
    });
  }

  /** Rejects queued and running calls with `MODEL_CLOSED` and terminates the workers. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    for (const timer of this.#restartTimers) clearTimeout(timer);
    this.#restartTimers.clear();
    const closed = this.#closedError();
    for (const call of this.#queue.splice(0)) this.#settle(call, closed);
    const exits: Promise<void>[] = [];
    for (const slot of this.#slots) {
      if (slot.call !== undefined) this.#settle(slot.call, closed);
      if (slot.worker !== undefined) exits.push(terminate(slot.worker));
      slot.worker = undefined;
      slot.state = 'down';
    }
    await Promise.allSettled(exits);
  }

  #closedError(): ModelError {
    return new ModelError(`${this.#init.modelPath}: model pool is closed`, { code: 'MODEL_CLOSED', file: this.#init.modelPath });
  }

  /** Hands queued calls to idle workers. */
  #pump(): void {
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) return;
      if (slot.state !== 'idle' || slot.worker === undefined) continue;
      const call = this.#queue.shift()!;
      slot.state = 'busy';
      slot.call = call;
      call.slot = slot;
      const request: WorkerRequest = { id: call.id, rows: call.rows, count: call.count };
      slot.worker.send(request);
    }
  }

  /** Starts a worker in `slot`; resolves once it has loaded the model. */
  #spawn(slot: Slot): Promise<void> {
    const modelPath = this.#init.modelPath;
    // Advanced serialization carries the typed arrays; no inherited --inspect or loaders.
    const worker = fork(WORKER_PATH, [JSON.stringify(this.#init)], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    slot.worker = worker;
    slot.state = 'starting';
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      const failLoad = (err: ModelError): void => {
        clearTimeout(loadTimer);
        if (slot.worker === worker) {
          slot.worker = undefined;
          slot.state = 'down';
        }
        void terminate(worker);
        reject(err);
      };
      const loadTimer = setTimeout(() => {
        failLoad(new ModelError(`${modelPath}: model did not load within ${this.#loadTimeoutMs} ms`, { code: 'MODEL_LOAD', file: modelPath }));
      }, this.#loadTimeoutMs);

      worker.on('message', (message: WorkerReply) => {
        if (slot.worker !== worker) return; // a recycled worker's late words
        switch (message.type) {
          case 'ready':
            ready = true;
            clearTimeout(loadTimer);
            slot.state = 'idle';
            resolve();
            this.#pump();
            return;
          case 'failed':
            failLoad(new ModelError(`${modelPath}: ${message.message}`, { code: message.code, file: modelPath }));
            return;
          case 'result':
          case 'error': {
            const call = slot.call;
            if (call === undefined || call.id !== message.id) return;
            slot.call = undefined;
            slot.state = 'idle';
            if (message.type === 'error') {
              this.#settle(call, new ModelError(`${modelPath}: inference failed: ${message.message}`, { code: 'MODEL_RUN', file: modelPath }));
            } else {
              this.#settle(call, undefined, toPrediction(message.labels, message.probabilities, this.#init.classCount));
            }
            this.#pump();
            return;
          }
        }
      });
      worker.on('error', (err: Error) => {
        if (slot.worker !== worker) return;
        if (!ready) {
          failLoad(new ModelError(`${modelPath}: model worker failed while loading: ${err.message}`, { code: 'MODEL_LOAD', file: modelPath, cause: err }));
        } else {
          this.#onCrash(slot, `${err.name}: ${err.message}`);
        }
      });
      worker.on('exit', (code, signal) => {
        if (slot.worker !== worker) return;
        const how = signal === null ? `code ${code}` : `signal ${signal}`;
        if (!ready) {
          failLoad(new ModelError(`${modelPath}: model worker exited with ${how} while loading`, { code: 'MODEL_LOAD', file: modelPath }));
        } else {
          this.#onCrash(slot, `exit ${how}`);
        }
      });
    });
  }

  #onTimeout(call: PendingCall): void {
    call.timer = undefined;
    this.#stats.timeouts += 1;
    const slot = call.slot;
    const err = new TimeoutError(
      `model call took longer than ${call.timeoutMs} ms${slot === undefined ? ' (still queued)' : '; worker recycled'}`,
      call.timeoutMs,
    );
    if (slot === undefined) {
      const at = this.#queue.indexOf(call);
      if (at >= 0) this.#queue.splice(at, 1);
      this.#settle(call, err);
      return;
    }
    this.#settle(call, err);
    this.#stats.recycled += 1;
    this.#replace(slot);
  }

  #onCrash(slot: Slot, reason: string): void {
    this.#stats.crashed += 1;
    const call = slot.call;
    if (call !== undefined) {
      this.#settle(
        call,
        new ModelError(`${this.#init.modelPath}: model worker died during a call (${reason})`, { code: 'MODEL_WORKER_EXIT', file: this.#init.modelPath }),
      );
    }
    this.#replace(slot);
  }

  /** Terminates the slot's worker (if any) and starts a fresh one; retries later if it fails to load. */
  #replace(slot: Slot): void {
    const old = slot.worker;
    slot.worker = undefined;
    slot.call = undefined;
    slot.state = 'down';
    if (old !== undefined) void terminate(old);
    if (this.#closing !== undefined) return;
    this.#spawn(slot).catch(() => {
      this.#stats.restartFailures += 1;
      if (this.#closing !== undefined) return;
      const timer = setTimeout(() => {
        this.#restartTimers.delete(timer);
        if (this.#closing === undefined && slot.state === 'down') this.#replace(slot);
      }, this.#restartDelayMs);
      timer.unref();
      this.#restartTimers.add(timer);
    });
  }

  #settle(call: PendingCall, err: Error | undefined, prediction?: Prediction): void {
    if (call.timer !== undefined) clearTimeout(call.timer);
    call.timer = undefined;
    call.slot = undefined;
    if (err !== undefined) call.reject(err);
    else call.resolve(prediction!);
  }
}

function toPrediction(labels: Float64Array, flat: Float32Array | Float64Array, classCount: number): Prediction {
  const probabilities: number[][] = [];
  for (let r = 0; r < labels.length; r++) probabilities.push(Array.from(flat.subarray(r * classCount, (r + 1) * classCount)));
  return { labels: Array.from(labels), probabilities };
}
