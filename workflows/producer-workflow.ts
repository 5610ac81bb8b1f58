import { CancellationScope, continueAsNew, isCancellation, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { ProducerInput, ProducerResume, ProducerRunResult } from '../activities/types.js';
import { IBKR_LOOP_ACTIVITY_OPTIONS, LOOP_ACTIVITY_OPTIONS } from './activity-options.js';
import type { LoopStatus } from './definitions.js';
import { cancelledResult, drainSignal, statusQuery } from './definitions.js';

const { runProducer } = proxyActivities<Activities>(LOOP_ACTIVITY_OPTIONS);
const { runIbkrProducer } = proxyActivities<Activities>(IBKR_LOOP_ACTIVITY_OPTIONS);

export interface ProducerWorkflowInput extends ProducerInput {
  readonly carried?: { runs: number; published: number; resume?: ProducerResume };
}

const RUNS_PER_HISTORY = 20;

/**
 * Runs a producer: the synthetic one in live or rate mode until drained (each activity run bounded,
 * then continued), in finite mode (`count`) until that many events are published; the IBKR live
 * feed (`provider: 'ibkr'`) until drained, each run carrying its resume state to the next.
 */
export async function producerWorkflow(input: ProducerWorkflowInput): Promise<LoopStatus> {
  let runs = input.carried?.runs ?? 0;
  let published = input.carried?.published ?? 0;
  let resume = input.carried?.resume;
  let draining = false;
  let lastStoppedBy: string | undefined;
  const scope = new CancellationScope();
  const status = (): LoopStatus => ({ role: 'producer', runs, draining, totals: { published }, lastStoppedBy });

  setHandler(statusQuery, status);
  setHandler(drainSignal, () => {
    draining = true;
    scope.cancel();
  });

  const { carried: _carried, ...activityInput } = input;
  for (let i = 0; i < RUNS_PER_HISTORY && !draining; i++) {
    try {
      const run = activityInput.provider === 'ibkr' ? runIbkrProducer : runProducer;
      const result = await scope.run(() => run({ ...activityInput, resume }));
      published += result.published;
      resume = result.resume;
      runs++;
      if (result.finished) return { ...status(), lastStoppedBy: 'finished' };
    } catch (err) {
      if (!(draining && isCancellation(err))) throw err;
      published += cancelledResult<ProducerRunResult>(err)?.published ?? 0;
      lastStoppedBy = 'drained';
    }
    if (workflowInfo().continueAsNewSuggested) break;
  }
  if (draining) return status();
  return continueAsNew<typeof producerWorkflow>({ ...input, carried: { runs, published, resume } });
}
