import assert from 'node:assert/strict';
import { msToNumber } from '@temporalio/common/lib/time.js';
import { WORKER_TUNING } from '../../workers/worker-options.js';
import { AUDIT_FINISH_OPTIONS, LOOP_ACTIVITY_OPTIONS } from '../../workflows/activity-options.js';

describe('activity options of the workflows', function () {
  it('consumers and the producer are retried within seconds after a kill or an outage', function () {
    const { heartbeatTimeout, retry } = LOOP_ACTIVITY_OPTIONS;
    // A dead worker is noticed after the heartbeat timeout, the next attempt starts at most the
    // retry's maximum interval later: together they bound recovery (issue 9 measured 40 s at 10 s + 30 s).
    assert.ok(msToNumber(heartbeatTimeout) <= 5000, `heartbeatTimeout ${heartbeatTimeout}`);
    assert.ok(msToNumber(retry.maximumInterval) <= 5000, `retry.maximumInterval ${retry.maximumInterval}`);
    assert.ok(msToNumber(retry.initialInterval) <= msToNumber(retry.maximumInterval));
    assert.ok(!('maximumAttempts' in retry), 'a shard owner is retried until it runs again');
    // Room for a few heartbeats per timeout: workers flush them at least this often.
    assert.ok(
      msToNumber(heartbeatTimeout) >= 3 * msToNumber(WORKER_TUNING.maxHeartbeatThrottleInterval),
      `heartbeatTimeout ${heartbeatTimeout} vs heartbeat throttle ${WORKER_TUNING.maxHeartbeatThrottleInterval}`,
    );
  });

  it('ending a job_runs row is retried for long enough to outlast an outage', function () {
    const { retry, scheduleToCloseTimeout } = AUDIT_FINISH_OPTIONS;
    assert.ok(!('maximumAttempts' in retry), 'no attempt limit');
    assert.ok(msToNumber(scheduleToCloseTimeout) >= 3_600_000, `scheduleToCloseTimeout ${scheduleToCloseTimeout}`);
    assert.ok(msToNumber(retry.maximumInterval) <= 30_000);
  });
});
