import { CancellationScope, continueAsNew, isCancellation, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { ProducerInput, ProducerResume, ProducerRunResult } from '../activities/types.js';
import { IBKR_LOOP_ACTIVITY_OPTIONS, LOOP_ACTIVITY_OPTIONS } from './activity-options.js';
import type { LoopStatus } from './definitions.js';
import { cancelledResult, drainSignal, statusQuery } from './definitions.js';
import { loopDetails, loopTotals, showDetails, utcClock } from './current-details.js';

const { runProducer } = proxyActivities<Activities>(LOOP_ACTIVITY_OPTIONS);
const { runIbkrProducer } = proxyActivities<Activities>(IBKR_LOOP_ACTIVITY_OPTIONS);

export interface ProducerWorkflowInput extends ProducerInput {
  readonly carried?: { runs: number; published: number; resume?: ProducerResume; lastRun?: string };
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
  let lastRun = input.carried?.lastRun;
  let runningSinceMs: number | undefined;
  const scope = new CancellationScope();
  const status = (): LoopStatus => ({ role: 'producer', runs, draining, totals: { published }, lastStoppedBy });
  const show = () => showDetails(loopDetails({ runs, runningSinceMs, draining, totals: loopTotals('producer', { published }), lastRun }));

  setHandler(statusQuery, status);
  setHandler(drainSignal, () => {
    draining = true;
    scope.cancel();
    show();
  });

  const { carried: _carried, ...activityInput } = input;
  for (let i = 0; i < RUNS_PER_HISTORY && !draining; i++) {
    runningSinceMs = Date.now();
    show();
    try {
      const run = activityInput.provider === 'ibkr' ? runIbkrProducer : runProducer;
      const result = await scope.run(() => run({ ...activityInput, resume }));
      published += result.published;
      resume = result.resume;
      runs++;
      lastRun = `${utcClock(Date.now())} (${result.finished ? 'finished' : 'max_run'})`;
      if (result.finished) {
        runningSinceMs = undefined;
        showDetails([`finished: ${loopTotals('producer', { published })} in ${runs} run${runs === 1 ? '' : 's'}`]);
        return { ...status(), lastStoppedBy: 'finished' };
      }
    } catch (err) {
      if (!(draining && isCancellation(err))) throw err;
      published += cancelledResult<ProducerRunResult>(err)?.published ?? 0;
      lastStoppedBy = 'drained';
      lastRun = `${utcClock(Date.now())} (drained)`;
    }
    runningSinceMs = undefined;
    show();
    if (workflowInfo().continueAsNewSuggested) break;
  }
  if (draining) return status();
  return continueAsNew<typeof producerWorkflow>({ ...input, carried: { runs, published, resume, ...(lastRun === undefined ? {} : { lastRun }) } });
}
