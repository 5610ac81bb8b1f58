import type { IbkrProducerDeps } from './ibkr-producer-activity.js';
import { createIbkrProducerActivity } from './ibkr-producer-activity.js';
import type { InferenceDeps } from './inference-activity.js';
import { createInferenceActivity } from './inference-activity.js';
import type { MicroBatchDeps } from './microbatch-activity.js';
import { createMicroBatchActivity } from './microbatch-activity.js';
import type { ModelDeps } from './model-activity.js';
import { createModelActivities } from './model-activity.js';
import type { ProducerDeps } from './producer-activity.js';
import { createProducerActivity } from './producer-activity.js';
import type { ReplayDeps } from './replay-activity.js';
import { createReplayActivities } from './replay-activity.js';
import type { RecoveryDeps } from './recovery-activity.js';
import { createRecoveryActivity } from './recovery-activity.js';
import type { IbkrBackfillDeps } from './ibkr-backfill-activity.js';
import { createIbkrBackfillActivities } from './ibkr-backfill-activity.js';

export type ActivityDeps = MicroBatchDeps & ProducerDeps & IbkrProducerDeps & InferenceDeps & ReplayDeps & ModelDeps & RecoveryDeps & IbkrBackfillDeps;

/**
 * All activities of the pipeline, wired to their dependencies: workers pass real Redis/PostgreSQL
 * clients, tests pass their own (with unique stream names and providers).
 */
export function createActivities(deps: ActivityDeps) {
  return {
    runMicroBatchShard: createMicroBatchActivity(deps),
    runProducer: createProducerActivity(deps),
    runIbkrProducer: createIbkrProducerActivity(deps),
    runInferenceShard: createInferenceActivity(deps),
    ...createReplayActivities(deps),
    ...createModelActivities(deps),
    sweepPendingEntries: createRecoveryActivity(deps),
    ...createIbkrBackfillActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { MicroBatchDefaults, MicroBatchDeps } from './microbatch-activity.js';
export type { ProducerDefaults, ProducerDeps } from './producer-activity.js';
export type { IbkrProducerDefaults, IbkrProducerDeps } from './ibkr-producer-activity.js';
export type { InferenceDefaults, InferenceDeps } from './inference-activity.js';
export type { ReplayDefaults, ReplayDeps } from './replay-activity.js';
export type { StoredBarsReader } from './replay-chunk.js';
export type { ReplayInferenceDefaults } from './replay-inference.js';
export type { AdapterFactory } from './signal-emitter.js';
export type { ModelDeps } from './model-activity.js';
export type { RecoveryDefaults, RecoveryDeps } from './recovery-activity.js';
export type { IbkrBackfillDefaults, IbkrBackfillDeps } from './ibkr-backfill-activity.js';
export type * from './types.js';
export type * from './ibkr-backfill-types.js';
