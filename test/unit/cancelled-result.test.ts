import assert from 'node:assert/strict';
import { ActivityFailure, CancelledFailure, RetryState } from '@temporalio/common';
import { cancelledResult } from '../../workflows/definitions.js';

describe('cancelledResult', function () {
  const cancelled = (details: unknown[]) =>
    new ActivityFailure('Activity cancelled', 'runMicroBatchShard', '1', RetryState.CANCEL_REQUESTED, 'worker', new CancelledFailure('', details));

  it('is the result a cancelled run attached to its CancelledFailure', function () {
    const result = { counts: { events: 3 }, stoppedBy: 'cancelled' };
    assert.deepEqual(cancelledResult(cancelled([result])), result);
    assert.deepEqual(cancelledResult(new CancelledFailure('', [result])), result);
  });

  it('is nothing for an activity cancelled while it waited for a retry (the server gives a reason, not a result)', function () {
    // What the server sends when a drain cancels an attempt that has not started: before, the
    // consumer workflow read `counts` of this string and its workflow task failed for good.
    assert.equal(cancelledResult(cancelled(['ACTIVITY_ID_NOT_STARTED'])), undefined);
    assert.equal(cancelledResult(cancelled([])), undefined);
    assert.equal(cancelledResult(cancelled([null])), undefined);
    assert.equal(cancelledResult(new Error('not a cancellation')), undefined);
  });
});
