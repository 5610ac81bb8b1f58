// Public surface of event-time windowing: window assignment and the per-shard micro-batcher.
export { windowStartMs } from './window-assigner.js';
export { MicroBatcher } from './micro-batcher.js';
export type { AddResult, MicroBatcherOptions, MicroBatcherSnapshot, WindowFlush } from './micro-batcher.js';
