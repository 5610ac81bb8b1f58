import type { Bus } from '../pipeline/bus/index.js';
import type { BarSink, JobRunSink, SignalSink } from '../pipeline/contracts/index.js';
import type { Logger, Metrics } from '../pipeline/telemetry/index.js';
import type { MicroBatchDefaults } from './microbatch-activity.js';
import type { StoredBarsReader } from './replay-chunk.js';
import { runReplayChunk } from './replay-chunk.js';
import type { ReplayInferenceDefaults } from './replay-inference.js';
import { planReplay } from './replay-plan.js';
import type { AdapterFactory } from './signal-emitter.js';
import { jobAudit } from './job-audit.js';
import type { ReplayChunkInput, ReplayChunkResult, ReplayPlan, ReplayPlanInput } from './types.js';

/** Replay settings from the worker's config: `replay.*`, and the micro-batch settings it windows with. */
export interface ReplayDefaults {
  /** Windowing, routing and streams exactly as the live micro-batch consumer has them. */
  readonly microBatch: MicroBatchDefaults;
  readonly datasetsFile: string;
  /** Base of a replay's own streams: `<stream>.<workflow id>.<chunk start ms>`. */
  readonly stream: string;
  readonly chunkSpan: string;
  /** Inference after each chunk's bars; absent or `adapter: 'off'`: bars only. */
  readonly inference?: ReplayInferenceDefaults;
}

export interface ReplayDeps {
  readonly openBus: () => Bus;
  readonly bars: BarSink;
  readonly jobs: JobRunSink;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly replay: ReplayDefaults;
  readonly readStoredBars: StoredBarsReader;
  /** Where signals are written (only used when the replay runs inference). */
  readonly signals: SignalSink;
  /** Builds the inference adapter (only used when the replay runs inference). */
  readonly createAdapter: AdapterFactory;
}

/**
 * The replay's activities: plan the range ({@link planReplay}), replay one chunk
 * ({@link runReplayChunk}, with its features and signals), and the `job_runs` audit.
 */
export function createReplayActivities(deps: ReplayDeps) {
  const d = deps.replay;
  const audit = jobAudit(deps.jobs, 'replay');
  return {
    planReplay: (input: ReplayPlanInput): Promise<ReplayPlan> =>
      planReplay({ datasetsFile: d.datasetsFile, chunkSpan: d.chunkSpan, windowMs: d.microBatch.windowMs }, deps.log, input),
    runReplayChunk: (input: ReplayChunkInput): Promise<ReplayChunkResult> => runReplayChunk(deps, input),
    startReplayAudit: audit.start,
    finishReplayAudit: audit.finish,
  };
}
