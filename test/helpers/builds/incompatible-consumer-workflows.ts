/**
 * A build whose consumer workflow is changed without `patched()`: `streamConsumerWorkflow` first
 * describes the model (one activity more at the start of every run). Its code cannot continue a
 * consumer started by this checkout's code; `mdp deploy check` must say so.
 */
import { proxyActivities, setWorkflowOptions } from '@temporalio/workflow';
import type { Activities } from '../../../activities/index.js';
import type { StreamConsumerInput } from '../../../workflows/index.js';
import { streamConsumerWorkflow as streamConsumerWorkflowV1 } from '../../../workflows/index.js';

export * from '../../../workflows/index.js';

const { describeModel } = proxyActivities<Activities>({ startToCloseTimeout: '1 minute' });

export async function streamConsumerWorkflow(input: StreamConsumerInput) {
  await describeModel({});
  return streamConsumerWorkflowV1(input);
}
setWorkflowOptions({ versioningBehavior: 'AUTO_UPGRADE' }, streamConsumerWorkflow);
