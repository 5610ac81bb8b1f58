/**
 * Fault matrix, row a: the worker process is SIGKILLed mid-window, and mid-flush (its bar upsert
 * blocked behind a table lock the test holds). A new worker process takes over; every event must
 * be in exactly one bar, none late, none dead-lettered, nothing pending, no bar ever rewritten.
 */
import assert from 'node:assert/strict';
import { assertAccounted, groupProgress } from '../helpers/accounting.js';
import { useFaultStack } from '../helpers/fault-run.js';
import { waitFor } from '../helpers/wait.js';
import { HOLD_OPEN, RECOVERY_MS } from './matrix.js';

describe('fault matrix a: worker SIGKILLed', function () {
  this.timeout(300_000);
  const faults = useFaultStack('worker-kill');

  it('mid-window (2 shards): the next worker re-reads the open windows; exact accounting', async function () {
    const run = await faults.run('mid-window', { shards: 2, overrides: HOLD_OPEN });
    const plan = run.plan(8, 240);
    const first = await run.startWorker();
    await run.startConsumers();
    const rest = await run.commitThenOpen(plan, 3);
    await run.killWorker(first);
    await run.assertOpen(plan[3], 'window 3 was open at the kill');

    await run.publish([...rest, ...plan.slice(4).flat()]);
    await run.startWorker();
    await run.settle(RECOVERY_MS);
    const accounting = await run.account();
    assertAccounted(accounting);
  });

  it('mid-flush (the upsert blocked on a table lock): exact accounting', async function () {
    const run = await faults.run('mid-flush', { overrides: HOLD_OPEN });
    const plan = run.plan(8, 240);
    const first = await run.startWorker();
    await run.startConsumers();
    const rest = await run.commitThenOpen(plan, 3);
    const openBefore = await groupProgress(run.redis, run.streams[0], run.group);

    const lock = await run.lockBarsTable();
    try {
      assert.deepEqual(await groupProgress(run.redis, run.streams[0], run.group), openBefore, 'precondition: window 3 was still open when the lock was taken');
      // Window 3 closes (window 4's events move the watermark past it): its flush blocks.
      await run.publish([...rest, ...plan[4]]);
      const blocked = await waitFor(
        "the worker's bar upsert to wait on the lock",
        30_000,
        async () => {
          const waiters = await lock.waiters();
          return waiters.length > 0 ? waiters : undefined;
        },
        { everyMs: 50 },
      );
      // A waiter on the bars_ohlcv relation lock (pg_locks) is the flush's upsert: pg_stat_activity
      // may still show the session's previous statement while the new one waits in parse/bind.
      assert.ok(blocked.length > 0);
      await run.killWorker(first);
    } finally {
      await lock.release();
    }

    await run.publish(plan.slice(5).flat());
    await run.startWorker();
    await run.settle(RECOVERY_MS);
    const accounting = await run.account();
    assertAccounted(accounting);
  });
});
