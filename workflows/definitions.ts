import { ActivityFailure, CancelledFailure, defineQuery, defineSignal } from '@temporalio/workflow';

/** Stop a long-running consumer or producer workflow after its current activity stops. */
export const drainSignal = defineSignal('drain');

export interface LoopStatus {
  readonly role: string;
  readonly runs: number;
  readonly draining: boolean;
  readonly totals: Record<string, number>;
  readonly lastStoppedBy?: string;
}

/** Progress of a long-running workflow: completed activity runs and their summed counts. */
export const statusQuery = defineQuery<LoopStatus>('status');

/** Deterministic workflow ids: one owner per (role, stream, shard). */
export function microBatchWorkflowId(stream: string, shard: number): string {
  return `mdp-microbatch-${stream}-${shard}`;
}

export function inferenceWorkflowId(featuresStream: string, shard: number): string {
  return `mdp-inference-${featuresStream}-${shard}`;
}

export function producerWorkflowId(provider: string): string {
  return `mdp-producer-${provider}`;
}

/** The result a cancelled activity attached to its CancelledFailure (its counts up to the stop). */
export function cancelledResult<T>(err: unknown): T | undefined {
  const failure = err instanceof ActivityFailure ? err.cause : err;
  return failure instanceof CancelledFailure ? (failure.details[0] as T | undefined) : undefined;
}
