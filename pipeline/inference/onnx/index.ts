// Public surface of the ONNX (`sklearn`) inference adapter: the adapter, its sidecar format, the
// worker pool and circuit breaker it is built from, and their errors.
export { OnnxAdapter, SKLEARN_ADAPTER_NAME } from './onnx-adapter.js';
export type { OnnxAdapterOptions, OnnxAdapterStats, PredictFn, ReferenceCheck } from './onnx-adapter.js';
export { DERIVATIONS, buildInputRow, defaultSidecarPath, loadModelSidecar, parseModelSidecar } from './model-sidecar.js';
export type { Derivation, ModelInput, ModelInputRow, ModelSidecar } from './model-sidecar.js';
export { OnnxPool } from './onnx-pool.js';
export type { OnnxPoolOptions, OnnxPoolStats, PredictOptions, Prediction } from './onnx-pool.js';
export { CircuitBreaker } from './circuit-breaker.js';
export type { CircuitBreakerOptions, CircuitState, CircuitTransition, TransitionListener } from './circuit-breaker.js';
export { CircuitOpenError } from './circuit-open-error.js';
export { MODEL_ERROR_CODES, ModelError } from './model-error.js';
export type { ModelErrorCode, ModelErrorDetails } from './model-error.js';
export { TimeoutError } from './timeout-error.js';
