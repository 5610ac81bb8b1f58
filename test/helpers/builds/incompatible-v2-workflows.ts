/**
 * The workflows of a deliberately incompatible "v2" build for the versioning tests: everything as
 * in this checkout, except that `replayWorkflow` first plans the replay on its own (one activity
 * more at the start of the history). Code of this build replaying the history of a replay started
 * on v1 would fail with a nondeterminism error at the first command; a PINNED replay must
 * therefore never be run by it.
 */
import { proxyActivities, setWorkflowOptions } from '@temporalio/workflow';
import type { Activities } from '../../../activities/index.js';
import type { ReplayWorkflowInput } from '../../../workflows/index.js';
import { replayWorkflow as replayWorkflowV1 } from '../../../workflows/index.js';

export * from '../../../workflows/index.js';

const { planReplay } = proxyActivities<Activities>({ startToCloseTimeout: '1 minute' });

/** Marker the v2 replay puts in its first activity's input, so a test can tell which code ran. */
export const V2_MARKER_SPAN = '1m';

export async function replayWorkflow(input: ReplayWorkflowInput) {
  await planReplay({ dataset: input.dataset, from: input.from, to: input.to, chunkSpan: V2_MARKER_SPAN });
  return replayWorkflowV1(input);
}
setWorkflowOptions({ versioningBehavior: 'PINNED' }, replayWorkflow);
