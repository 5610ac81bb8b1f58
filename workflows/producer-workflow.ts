import { CancellationScope, continueAsNew, isCancellation, proxyActivities, setHandler, setWorkflowOptions, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { ProducerInput, ProducerResume, ProducerRunResult } from '../activities/types.js';
import { IBKR_LOOP_ACTIVITY_OPTIONS, LOOP_ACTIVITY_OPTIONS } from './activity-options.js';
import type { LoopStatus } from './definitions.js';
import { cancelledResult, drainSignal, handOverSignal, statusQuery } from './definitions.js';
import { loopDetails, loopTotals, showDetails, utcClock } from './current-details.js';
import { currentBuildId, onVersionedWorkers, runsOnAnotherVersion } from './versioning.js';

const { runProducer } = proxyActivities<Activities>(LOOP_ACTIVITY_OPTIONS);
const { runIbkrProducer } = proxyActivities<Activities>(IBKR_LOOP_ACTIVITY_OPTIONS);

export interface ProducerWorkflowInput extends ProducerInput {
  readonly carried?: { runs: number; published: number; resume?: ProducerResume; handOvers?: number; lastRun?: string };
}

const RUNS_PER_HISTORY = 20;

/**
 * Runs a producer: the synthetic one in live or rate mode until drained (each activity run bounded,
 * then continued), in finite mode (`count`) until that many events are published; the IBKR live
 * feed (`provider: 'ibkr'`) until drained, each run carrying its resume state to the next.
 *
 * A `handOver` signal (the deployment's routing changed) stops a run on another version than the
 * one this task runs on; the next run resumes from the stopped run's state on the new version.
 */
export async function producerWorkflow(input: ProducerWorkflowInput): Promise<LoopStatus> {
  let runs = input.carried?.runs ?? 0;
  let published = input.carried?.published ?? 0;
  let resume = input.carried?.resume;
  let handOvers = input.carried?.handOvers ?? 0;
  let draining = false;
  let lastStoppedBy: string | undefined;
  let lastRun = input.carried?.lastRun;
  let runningSinceMs: number | undefined;
  let active: { scope: CancellationScope; buildId: string | undefined; stopping?: 'drain' | 'handover' } | undefined;
  let runBuildId: string | undefined;
  const status = (): LoopStatus => ({
    role: 'producer',
    runs,
    draining,
    totals: { published },
    lastStoppedBy,
    ...(runBuildId === undefined ? {} : { buildId: runBuildId }),
    handOvers,
  });
  const show = () => showDetails(loopDetails({ runs, runningSinceMs, draining, totals: loopTotals('producer', { published }), lastRun }));

  setHandler(statusQuery, status);
  setHandler(drainSignal, () => {
    draining = true;
    if (active) {
      active.stopping = 'drain';
      active.scope.cancel();
    }
    show();
  });
  setHandler(handOverSignal, () => {
    const run = active;
    if (!runsOnAnotherVersion(run, draining)) return;
    run.stopping = 'handover';
    run.scope.cancel();
  });

  const { carried: _carried, ...activityInput } = input;
  for (let i = 0; i < RUNS_PER_HISTORY && !draining; i++) {
    const run: NonNullable<typeof active> = { scope: new CancellationScope(), buildId: currentBuildId() };
    active = run;
    runBuildId = run.buildId;
    runningSinceMs = Date.now();
    show();
    try {
      const activity = activityInput.provider === 'ibkr' ? runIbkrProducer : runProducer;
      const result = await run.scope.run(() => activity({ ...activityInput, resume }));
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
      if (!(run.stopping !== undefined && isCancellation(err))) throw err;
      const stopped = cancelledResult<ProducerRunResult>(err);
      published += stopped?.published ?? 0;
      // A run stopped before it started attached nothing: the previous resume state still holds.
      if (stopped?.resume) resume = stopped.resume;
      if (run.stopping === 'handover') {
        handOvers++;
        lastStoppedBy = 'handed-over';
      } else lastStoppedBy = 'drained';
      lastRun = `${utcClock(Date.now())} (${lastStoppedBy})`;
    } finally {
      active = undefined;
    }
    runningSinceMs = undefined;
    show();
    if (workflowInfo().continueAsNewSuggested) break;
  }
  if (draining) return status();
  return continueAsNew<typeof producerWorkflow>({
    ...input,
    carried: { runs, published, resume, handOvers, ...(lastRun === undefined ? {} : { lastRun }) },
  });
}

// A producer runs for as long as the pipeline does: it follows the deployment's current version,
// moving at a hand-over with its resume state (so the sequence, and every event_id, continues).
setWorkflowOptions(onVersionedWorkers('AUTO_UPGRADE'), producerWorkflow);
