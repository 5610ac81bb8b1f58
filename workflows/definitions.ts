import { ActivityFailure, CancelledFailure, defineQuery, defineSignal } from '@temporalio/workflow';
import { shardOwnerId } from '../pipeline/contracts/index.js';

/** Stop a long-running consumer or producer workflow after its current activity stops. */
export const drainSignal = defineSignal('drain');

export interface LoopStatus {
  readonly role: string;
  readonly runs: number;
  readonly draining: boolean;
  readonly totals: Record<string, number>;
  readonly lastStoppedBy?: string;
  /** Inference consumers: the model the runs use (`path` omitted = the worker's configured one). */
  readonly model?: ConsumerModelStatus;
  /**
   * Build id of the Worker Deployment version the current (or last) run was scheduled on, which is
   * the version of the worker running it; absent on unversioned workers.
   */
  readonly buildId?: string;
  /** Runs stopped to move to another version ({@link handOverSignal}). */
  readonly handOvers?: number;
}

export interface ConsumerModelStatus {
  readonly adapter: string;
  readonly path?: string;
  /** Known once a reload described it or a run reported it. */
  readonly version?: string;
  /** Reloads applied since the consumer started (carried across continue-as-new). */
  readonly generation: number;
}

/**
 * Asks an inference consumer (adapter `sklearn`) to switch model: it loads the model first
 * (`describeModel`), and only if that works stops its current run and restarts it on the new
 * model. The outcome goes to `replyTo` as a {@link modelReloadedSignal}.
 */
export interface ReloadModelRequest {
  /** Identifies the reload in the reply (and for a later `rollbackOf`). */
  readonly requestId: string;
  /** The model to run; omitted = the worker's `inference.adapters.sklearn.model_path`. */
  readonly modelPath?: string;
  /** Undo the reload with this request id (back to the path it replaced), if it is the last one applied. */
  readonly rollbackOf?: string;
  /** Workflow id to signal the outcome to. */
  readonly replyTo?: string;
}

/** A consumer's answer to a {@link ReloadModelRequest}. */
export interface ModelReloadReply {
  readonly workflowId: string;
  readonly requestId: string;
  /** `reloaded`: no run of this consumer uses the old model any more; `skipped`: nothing to do here. */
  readonly status: 'reloaded' | 'skipped' | 'failed';
  readonly modelPath?: string;
  readonly version?: string;
  readonly previousModelPath?: string;
  readonly previousVersion?: string;
  readonly reason?: string;
}

export const reloadModelSignal = defineSignal<[ReloadModelRequest]>('reloadModel');
export const modelReloadedSignal = defineSignal<[ModelReloadReply]>('modelReloaded');

/**
 * Sent by the `consumerRecoveryWorkflow` of releases before 0.5 to a shard owner after entries of a
 * dead consumer were claimed for it (the sweep now re-appends them instead, and sends nothing; the
 * handler stays so consumer workflows started by an older release replay unchanged): they sit in the owner's pending list, which its activity reads when a run starts. A
 * consumer that handles it stops its current run (like a reload) so the next run reads them now.
 */
export const recheckPendingSignal = defineSignal('recheckPending');

/**
 * Sent by `mdp deploy promote|ramp|rollback` (and a worker that promotes itself) to every running
 * long-running workflow after the deployment's routing changed. Those workflows are `AUTO_UPGRADE`:
 * the signal's workflow task runs on the version routing now picks for them; when that is not the
 * version their activity runs on, they stop the run (it finishes its current step and leaves its
 * unflushed windows pending, as on a drain) and start the next one there. The new run takes the
 * shard with a higher owner epoch, so the old one can write nothing after it. On the same version
 * the signal changes nothing.
 */
export const handOverSignal = defineSignal('handOver');

/** Progress of a long-running workflow: completed activity runs and their summed counts. */
export const statusQuery = defineQuery<LoopStatus>('status');

/** Deterministic workflow ids: one owner per (role, stream, shard), by the one rule of {@link shardOwnerId}. */
export function microBatchWorkflowId(stream: string, shard: number): string {
  return shardOwnerId('microbatch', stream, shard);
}

export function inferenceWorkflowId(featuresStream: string, shard: number): string {
  return shardOwnerId('inference', featuresStream, shard);
}

/** One model reload at a time per features stream (its inference consumers). */
export function modelReloadWorkflowId(featuresStream: string): string {
  return `mdp-model-reload-${featuresStream}`;
}

export function producerWorkflowId(provider: string): string {
  return `mdp-producer-${provider}`;
}

/**
 * The result a cancelled activity attached to its CancelledFailure (its counts up to the stop).
 * An activity cancelled while it waited for a retry never ran to attach one: the server's
 * failure then carries its reason (`"ACTIVITY_ID_NOT_STARTED"`), which is no result.
 */
export function cancelledResult<T extends object>(err: unknown): T | undefined {
  const failure = err instanceof ActivityFailure ? err.cause : err;
  const details: unknown = failure instanceof CancelledFailure ? failure.details[0] : undefined;
  return typeof details === 'object' && details !== null ? (details as T) : undefined;
}

/** The innermost message of a failure chain (an activity failure wraps the activity's own error). */
export function rootMessage(err: unknown): string {
  let e = err instanceof Error ? err : new Error(String(err));
  while (e.cause instanceof Error) e = e.cause;
  return e.message;
}
