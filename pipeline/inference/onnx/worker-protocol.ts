// Messages between OnnxPool and onnx-worker (one process per pool slot), over IPC.
import type { ModelErrorCode } from './model-error.js';

/** What an ONNX worker process loads and checks the model against (its first argument, as JSON). */
export interface WorkerInit {
  readonly modelPath: string;
  readonly inputName: string;
  readonly labelOutput: string;
  readonly probabilitiesOutput: string;
  /** Columns of the input row. */
  readonly width: number;
  /** Columns of the probabilities output. */
  readonly classCount: number;
  readonly intraOpThreads: number;
}

/** One inference request: `count` rows of `width` values, row-major. */
export interface WorkerRequest {
  readonly id: number;
  readonly rows: Float64Array;
  readonly count: number;
}

export type WorkerReply =
  | { readonly type: 'ready' }
  | { readonly type: 'failed'; readonly code: ModelErrorCode; readonly message: string }
  | { readonly type: 'result'; readonly id: number; readonly labels: Float64Array; readonly probabilities: Float32Array | Float64Array }
  | { readonly type: 'error'; readonly id: number; readonly message: string };
