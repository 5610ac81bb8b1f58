import {
  ActivityFailure,
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  proxyActivities,
  setHandler,
  setWorkflowOptions,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { InferenceInput, InferenceRunResult, MicroBatchInput, MicroBatchRunResult } from '../activities/types.js';
import { LOOP_ACTIVITY_OPTIONS } from './activity-options.js';
import { loopDetails, loopTotals, showDetails, utcClock } from './current-details.js';
import type { LoopStatus, ModelReloadReply, ReloadModelRequest } from './definitions.js';
import { cancelledResult, drainSignal, handOverSignal, modelReloadedSignal, recheckPendingSignal, reloadModelSignal, statusQuery } from './definitions.js';
import { currentBuildId, onVersionedWorkers, runsOnAnotherVersion } from './versioning.js';

const { runMicroBatchShard, runInferenceShard } = proxyActivities<Activities>(LOOP_ACTIVITY_OPTIONS);
const { describeModel } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 3 },
});

/** Model state of an inference consumer, carried across continue-as-new. */
interface CarriedModel {
  readonly version?: string;
  readonly generation: number;
  /** The last reload applied (not a rollback): what `rollbackOf` undoes. */
  readonly lastReload?: { readonly requestId: string; readonly previousModelPath?: string; readonly previousVersion?: string };
}

interface Carried {
  /** Carried across continue-as-new; leave unset when starting. */
  readonly carried?: { runs: number; totals: Record<string, number>; model?: CarriedModel; handOvers?: number; lastRun?: string };
}

/**
 * Input of {@link streamConsumerWorkflow}; JSON, e.g. `{"role":"microbatch","shard":0}` or
 * `{"role":"inference","shard":0,"adapter":"rules"}`.
 */
export type StreamConsumerInput = (MicroBatchInput & Carried & { readonly role: 'microbatch' }) | (InferenceInput & Carried & { readonly role: 'inference' });

type RunResult = MicroBatchRunResult | InferenceRunResult;

/** `lastStoppedBy` of a run stopped on purpose. */
const STOPPED_BY = { drain: 'drained', reload: 'reloaded', recheck: 'rechecked', handover: 'handed-over' } as const;

/** Runs after which the workflow continues as new, keeping its history short. */
const RUNS_PER_HISTORY = 20;
/** Youngest a run may be before a `recheckPending` restarts it. */
const RECHECK_MIN_RUN_MS = 5000;

/** The message of an activity failure (its cause's), for replies and audit rows. */
function failureMessage(err: unknown): string {
  const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}

/**
 * The single owner of one (role, stream, shard): runs the heartbeating consume activity again and
 * again (each run is bounded by `maxRunMs`; a failed attempt is retried by Temporal and re-reads
 * its own pending entries), until signalled to `drain`.
 *
 * Inference consumers with adapter `sklearn` also take `reloadModel` signals: the new model is
 * loaded first (a model that does not load changes nothing), then the current run is stopped and
 * the next one runs the new model; the outcome is signalled back to the requester once no run
 * of this consumer uses the old model any more.
 */
export async function streamConsumerWorkflow(input: StreamConsumerInput): Promise<LoopStatus> {
  let runs = input.carried?.runs ?? 0;
  const totals: Record<string, number> = { ...(input.carried?.totals ?? {}) };
  let draining = false;
  let lastStoppedBy: string | undefined;
  let handOvers = input.carried?.handOvers ?? 0;
  /** The version the current (or last) run was scheduled on. */
  let runBuildId: string | undefined;
  /** The run in progress: its scope, the model generation it runs, its version, and why it is being stopped. */
  let active:
    | { scope: CancellationScope; generation: number; startedAt: number; buildId: string | undefined; stopping?: 'drain' | 'reload' | 'recheck' | 'handover' }
    | undefined;
  let lastRun = input.carried?.lastRun;

  const inference = input.role === 'inference' ? input : undefined;
  const carriedModel = input.carried?.model;
  const model: { path: string | undefined; version: string | undefined; generation: number } = {
    path: inference?.modelPath,
    version: carriedModel?.version,
    generation: carriedModel?.generation ?? 0,
  };
  let lastReload = carriedModel?.lastReload;
  let reloading = false;

  const status = (): LoopStatus => ({
    role: input.role,
    runs,
    draining,
    totals: { ...totals },
    lastStoppedBy,
    ...(runBuildId === undefined ? {} : { buildId: runBuildId }),
    handOvers,
    ...(inference
      ? {
          model: {
            adapter: inference.adapter,
            ...(model.path === undefined ? {} : { path: model.path }),
            ...(model.version === undefined ? {} : { version: model.version }),
            generation: model.generation,
          },
        }
      : {}),
  });
  const show = () =>
    showDetails(
      loopDetails({
        runs,
        runningSinceMs: active?.startedAt,
        draining,
        totals: loopTotals(input.role, totals),
        lastRun,
        note: reloading ? 'reloading the model: the next run uses the new one' : model.version && `model ${model.version}`,
      }),
    );
  setHandler(statusQuery, status);
  setHandler(drainSignal, () => {
    draining = true;
    if (active) {
      active.stopping = 'drain';
      active.scope.cancel();
    }
    show();
  });

  // The recovery sweep claimed a dead consumer's entries for us: restart the run so it re-reads
  // its pending list. A young run is left a moment first, since every restart adds a delivery to
  // the entries it re-reads (which count towards max_deliveries).
  setHandler(recheckPendingSignal, async () => {
    const run = active;
    if (run === undefined || draining || run.stopping !== undefined) return;
    const age = Date.now() - run.startedAt;
    if (age < RECHECK_MIN_RUN_MS) await sleep(RECHECK_MIN_RUN_MS - age);
    if (active === run && run.stopping === undefined) {
      run.stopping = 'recheck';
      run.scope.cancel();
    }
  });

  // The deployment's routing changed (mdp deploy): this task runs on the version routing picks now;
  // a run on another version stops and the next one starts here (see handOverSignal).
  setHandler(handOverSignal, () => {
    const run = active;
    if (!runsOnAnotherVersion(run, draining)) return;
    run.stopping = 'handover';
    run.scope.cancel();
  });

  const reloadModel = async (request: ReloadModelRequest): Promise<void> => {
    const reply = async (outcome: Omit<ModelReloadReply, 'workflowId' | 'requestId'>) => {
      if (request.replyTo === undefined) return;
      const message: ModelReloadReply = { workflowId: workflowInfo().workflowId, requestId: request.requestId, ...outcome };
      try {
        await getExternalWorkflowHandle(request.replyTo).signal(modelReloadedSignal, message);
      } catch {
        // The requester has finished (e.g. it timed out): nobody is waiting for this answer.
      }
    };
    if (!inference) return reply({ status: 'skipped', reason: `a ${input.role} consumer has no model` });
    if (inference.adapter !== 'sklearn')
      return reply({ status: 'skipped', reason: `adapter ${inference.adapter} has no model`, ...(model.version ? { version: model.version } : {}) });
    // One reload at a time, in arrival order.
    await condition(() => !reloading);
    reloading = true;
    show();
    try {
      let target = request.modelPath;
      if (request.rollbackOf !== undefined) {
        if (lastReload?.requestId !== request.rollbackOf) {
          return await reply({
            status: 'skipped',
            reason: `reload ${request.rollbackOf} is not the last one applied here`,
            ...(model.path ? { modelPath: model.path } : {}),
            ...(model.version ? { version: model.version } : {}),
          });
        }
        target = lastReload.previousModelPath;
      }
      if (draining) return await reply({ status: 'failed', reason: 'the consumer is draining' });
      let version: string;
      try {
        version = (await describeModel(target === undefined ? {} : { modelPath: target })).version;
      } catch (err) {
        return await reply({ status: 'failed', reason: failureMessage(err) });
      }
      if (draining) return await reply({ status: 'failed', reason: 'the consumer is draining' });
      const previous = { path: model.path, version: model.version };
      model.path = target;
      model.version = version;
      const generation = ++model.generation;
      lastReload =
        request.rollbackOf === undefined
          ? {
              requestId: request.requestId,
              ...(previous.path === undefined ? {} : { previousModelPath: previous.path }),
              ...(previous.version === undefined ? {} : { previousVersion: previous.version }),
            }
          : undefined;
      if (active && active.generation < generation) {
        active.stopping ??= 'reload';
        active.scope.cancel();
      }
      // Once the old run has stopped, every later run (here or after continue-as-new) uses `target`.
      await condition(() => active === undefined || active.generation >= generation);
      return await reply({
        status: 'reloaded',
        version,
        ...(target === undefined ? {} : { modelPath: target }),
        ...(previous.path === undefined ? {} : { previousModelPath: previous.path }),
        ...(previous.version === undefined ? {} : { previousVersion: previous.version }),
      });
    } finally {
      reloading = false;
      show();
    }
  };
  setHandler(reloadModelSignal, reloadModel);

  const { carried: _carried, ...activityInput } = input;
  for (let i = 0; i < RUNS_PER_HISTORY && !draining; i++) {
    let result: RunResult | undefined;
    const run: NonNullable<typeof active> = { scope: new CancellationScope(), generation: model.generation, startedAt: Date.now(), buildId: currentBuildId() };
    active = run;
    runBuildId = run.buildId;
    show();
    try {
      result = await run.scope.run<RunResult>(() =>
        inference ? runInferenceShard({ ...(activityInput as InferenceInput), modelPath: model.path }) : runMicroBatchShard(activityInput),
      );
      lastStoppedBy = result.stoppedBy;
    } catch (err) {
      if (!(run.stopping !== undefined && isCancellation(err))) throw err;
      result = cancelledResult<RunResult>(err);
      lastStoppedBy = STOPPED_BY[run.stopping];
      if (run.stopping === 'handover') handOvers++;
    } finally {
      active = undefined;
    }
    if (result) {
      for (const [key, value] of Object.entries(result.counts) as [string, number][]) totals[key] = (totals[key] ?? 0) + value;
      runs++;
      if ('version' in result && run.generation === model.generation) model.version = result.version;
      const frontierMs = 'frontierMs' in result ? result.frontierMs : undefined;
      lastRun = `${utcClock(Date.now())} (${lastStoppedBy})${frontierMs === undefined ? '' : ` · frontier ${utcClock(frontierMs)}`}`;
    }
    show();
    if (workflowInfo().continueAsNewSuggested) break;
  }
  // A reload in flight finishes (and answers) before this run ends.
  await condition(allHandlersFinished);
  if (draining) return status();
  const carried = {
    runs,
    totals,
    handOvers,
    ...(lastRun === undefined ? {} : { lastRun }),
    ...(inference
      ? { model: { generation: model.generation, ...(model.version === undefined ? {} : { version: model.version }), ...(lastReload ? { lastReload } : {}) } }
      : {}),
  };
  if (inference) return continueAsNew<typeof streamConsumerWorkflow>({ ...inference, modelPath: model.path, carried });
  return continueAsNew<typeof streamConsumerWorkflow>({ ...input, carried });
}

// Consumers run for as long as the pipeline does: they follow the deployment's current version,
// moving at a hand-over (a signal after the routing changed) instead of staying pinned forever.
setWorkflowOptions(onVersionedWorkers('AUTO_UPGRADE'), streamConsumerWorkflow);
