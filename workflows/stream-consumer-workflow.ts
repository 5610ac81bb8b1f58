import {
  ActivityCancellationType, CancellationScope, continueAsNew, isCancellation, proxyActivities,
  setHandler, workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { InferenceInput, InferenceRunResult, MicroBatchInput, MicroBatchRunResult } from '../activities/types.js';
import type { LoopStatus } from './definitions.js';
import { cancelledResult, drainSignal, statusQuery } from './definitions.js';

const { runMicroBatchShard, runInferenceShard } = proxyActivities<Activities>({
  // A consumer runs for `maxRunMs`; the heartbeat timeout is what detects a dead worker.
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '10 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});

interface Carried {
  /** Carried across continue-as-new; leave unset when starting. */
  readonly carried?: { runs: number; totals: Record<string, number> };
}

/**
 * Input of {@link streamConsumerWorkflow}; JSON, e.g. `{"role":"microbatch","shard":0}` or
 * `{"role":"inference","shard":0,"adapter":"rules"}`.
 */
export type StreamConsumerInput =
  | (MicroBatchInput & Carried & { readonly role: 'microbatch' })
  | (InferenceInput & Carried & { readonly role: 'inference' });

type RunResult = MicroBatchRunResult | InferenceRunResult;

/** Runs after which the workflow continues as new, keeping its history short. */
const RUNS_PER_HISTORY = 20;

/**
 * The single owner of one (role, stream, shard): runs the heartbeating consume activity again and
 * again (each run is bounded by `maxRunMs`; a failed attempt is retried by Temporal and re-reads
 * its own pending entries), until signalled to `drain`.
 */
export async function streamConsumerWorkflow(input: StreamConsumerInput): Promise<LoopStatus> {
  let runs = input.carried?.runs ?? 0;
  const totals: Record<string, number> = { ...(input.carried?.totals ?? {}) };
  let draining = false;
  let lastStoppedBy: string | undefined;
  const scope = new CancellationScope();

  setHandler(statusQuery, () => ({ role: input.role, runs, draining, totals: { ...totals }, lastStoppedBy }));
  setHandler(drainSignal, () => {
    draining = true;
    scope.cancel();
  });

  const { carried: _carried, ...activityInput } = input;
  for (let i = 0; i < RUNS_PER_HISTORY && !draining; i++) {
    let result: RunResult | undefined;
    try {
      result = await scope.run<RunResult>(() => (input.role === 'inference'
        ? runInferenceShard(activityInput as InferenceInput)
        : runMicroBatchShard(activityInput)));
      lastStoppedBy = result.stoppedBy;
    } catch (err) {
      if (!(draining && isCancellation(err))) throw err;
      result = cancelledResult<RunResult>(err);
      lastStoppedBy = 'drained';
    }
    if (result) {
      for (const [key, value] of Object.entries(result.counts) as [string, number][]) totals[key] = (totals[key] ?? 0) + value;
      runs++;
    }
    if (workflowInfo().continueAsNewSuggested) break;
  }
  if (draining) return { role: input.role, runs, draining, totals, lastStoppedBy };
  return continueAsNew<typeof streamConsumerWorkflow>({ ...input, carried: { runs, totals } });
}
