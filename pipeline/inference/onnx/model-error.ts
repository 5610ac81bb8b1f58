/** Every reason the ONNX adapter can fail; callers branch on these, never on the message. */
export const MODEL_ERROR_CODES = [
  /** The model, sidecar or reference file does not exist or cannot be read. */
  'MODEL_FILE_NOT_FOUND',
  /** The sidecar is not JSON or a key is missing or has a bad value; `key` says which. */
  'MODEL_SIDECAR_INVALID',
  /** onnxruntime cannot load the model file (corrupt, truncated, unsupported opset). */
  'MODEL_LOAD',
  /** The model loads but does not match its sidecar (input name or width, outputs, classes, sha256). */
  'MODEL_MISMATCH',
  /** The reference file is not `{ inputs, labels, probabilities }` of the model's shape. */
  'MODEL_REFERENCE_INVALID',
  /** The model's outputs on the reference inputs differ from the recorded ones. */
  'MODEL_REFERENCE_MISMATCH',
  /** onnxruntime rejected one inference call; the worker stays up. */
  'MODEL_RUN',
  /** A model worker process died during a call; it is restarted. */
  'MODEL_WORKER_EXIT',
  /** The pool or adapter was closed. */
  'MODEL_CLOSED',
] as const;

export type ModelErrorCode = (typeof MODEL_ERROR_CODES)[number];

export interface ModelErrorDetails {
  readonly code: ModelErrorCode;
  /** The file the error is about (model, sidecar or reference). */
  readonly file?: string | undefined;
  /** The offending sidecar key, e.g. `inputs[4].of`. */
  readonly key?: string | undefined;
  readonly cause?: unknown;
}

/**
 * A model that cannot be loaded, validated or run. Messages start with the file and, for sidecar
 * problems, the key: `models/signal_model.json: threshold: must be a number between 0 and 1`.
 */
export class ModelError extends Error {
  readonly code: ModelErrorCode;
  readonly file: string | undefined;
  readonly key: string | undefined;

  constructor(message: string, details: ModelErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = this.constructor.name;
    this.code = details.code;
    this.file = details.file;
    this.key = details.key;
  }
}
