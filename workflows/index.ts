export { producerWorkflow } from './producer-workflow.js';
export type { ProducerWorkflowInput } from './producer-workflow.js';
export { streamConsumerWorkflow } from './stream-consumer-workflow.js';
export type { StreamConsumerInput } from './stream-consumer-workflow.js';
export { drainSignal, inferenceWorkflowId, microBatchWorkflowId, producerWorkflowId, statusQuery } from './definitions.js';
export type { LoopStatus } from './definitions.js';
export { progressQuery, replayWorkflow, replayWorkflowId } from './replay-workflow.js';
export type { ReplayCarried, ReplayProgress, ReplayWorkflowInput } from './replay-workflow.js';
