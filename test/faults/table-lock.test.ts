/**
 * Fault matrix, row g: an exclusive lock on `bars_ohlcv` (`LOCK TABLE … IN ACCESS EXCLUSIVE MODE`
 * in an open transaction) held while the consumer flushes, for longer than its heartbeat timeout
 * (scaled down from the 60 s to max(12 s, heartbeat timeout + 2 s) after the flush blocked,
 * and at least until Temporal has started a successor attempt), then released.
 *
 * The blocked flush belongs to an attempt Temporal has meanwhile timed out and replaced: when the
 * lock goes, that stale attempt must not commit over its successor. So that the outcome does not
 * hang on who wins the race at the release, the rest of the blocked window is published only once
 * the stale attempt has ended (its worker logs it; at most 30 s), and read by the successor alone.
 * A correct pipeline may have let the first attempt commit the window if it still owned the shard
 * in the store at commit time (the rest of the window is then late: allowed); it may never rewrite
 * a committed bar, lose or double an event, or leave entries pending.
 */
import assert from 'node:assert/strict';
import { assertAccounted, groupProgress } from '../helpers/accounting.js';
import { outage, useFaultStack } from '../helpers/fault-run.js';
import { pollUntil, waitFor } from '../helpers/wait.js';
import { HOLD_OPEN, OUTAGE_MIN_MS, RECOVERY_MS } from './matrix.js';

/**
 * Window 3 is flushed by the idle rule (its later events are held back). 10 s: the lock is surely
 * taken before that flush, and the successor, if it re-read the window's first half, still holds
 * it open when the rest arrives.
 */
const OVERRIDES = { micro_batch: { ...HOLD_OPEN.micro_batch, flush_timeout_ms: 10_000 } };

describe('fault matrix g: an exclusive lock on the bars table past the heartbeat timeout', function () {
  this.timeout(300_000);
  const faults = useFaultStack('table-lock');

  it('no stacked attempt writes over another; exact accounting', async function () {
    const run = await faults.run('table-lock', { overrides: OVERRIDES });
    const plan = run.plan(4, 240);
    const worker = await run.startWorker();
    await run.startConsumers();
    const rest3 = await run.commitThenOpen(plan, 3);
    const pendingBefore = await groupProgress(run.redis, run.streams[0], run.group);
    const lockMs = Math.max(OUTAGE_MIN_MS, (await run.heartbeatTimeoutMs()) + 2000);

    const lock = await run.lockBarsTable();
    let firstAttempt = 1;
    try {
      const pendingAtLock = await groupProgress(run.redis, run.streams[0], run.group);
      assert.deepEqual(pendingAtLock, pendingBefore, 'precondition: window 3 was still open when the lock was taken');
      // Silence: the idle rule flushes window 3 (its first half), and the upsert blocks.
      await waitFor('the consumer\'s flush of window 3 to wait on the lock', 60_000, async () => ((await lock.waiters()).length > 0 ? true : undefined), { everyMs: 100 })
        .catch(async (err: unknown) => { throw new Error(`${(err as Error).message}; backends:\n${await lock.activity()}`); });
      firstAttempt = (await run.attempt(0))?.attempt ?? 1;
      await outage(lockMs);
      await waitFor('Temporal to start a successor attempt while the lock is held', 120_000, async () => {
        const a = await run.attempt(0);
        return a && a.attempt > firstAttempt && a.state === 'STARTED' ? true : undefined;
      }, { everyMs: 250 });
    } finally {
      await lock.release();
    }

    // Wait (bounded) until the attempt whose flush was blocked has ended, as its worker logs it.
    await pollUntil(30_000, () => Promise.resolve(run.logLines(worker).some((l) => l.attempt === firstAttempt && typeof l.msg === 'string' && /consumer (stopped|failed)/.test(l.msg)) ? true : undefined), { everyMs: 100 });
    await run.publish([...rest3, ...run.plan(4, 240, { after: plan }).flat()]);
    await run.settle(RECOVERY_MS);
    const accounting = await run.account({ allowLate: true });
    assertAccounted(accounting);
  });
});
