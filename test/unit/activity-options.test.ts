import assert from 'node:assert/strict';
import { msToNumber } from '@temporalio/common/lib/time.js';
import { AUDIT_FINISH_OPTIONS } from '../../workflows/activity-options.js';

describe('activity options of the workflows', function () {
  it('ending a job_runs row is retried for long enough to outlast an outage', function () {
    const { retry, scheduleToCloseTimeout } = AUDIT_FINISH_OPTIONS;
    assert.ok(!('maximumAttempts' in retry), 'no attempt limit');
    assert.ok(msToNumber(scheduleToCloseTimeout) >= 3_600_000, `scheduleToCloseTimeout ${scheduleToCloseTimeout}`);
    assert.ok(msToNumber(retry.maximumInterval) <= 30_000);
  });
});
