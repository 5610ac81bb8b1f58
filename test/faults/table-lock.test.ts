/**
 * Fault matrix, row g: an exclusive lock on `bars_ohlcv` (`LOCK TABLE … IN ACCESS EXCLUSIVE MODE`
 * in an open transaction) held while the consumer flushes, for longer than its heartbeat timeout
 * (scaled down from the 60 s to max(12 s, heartbeat timeout + 2 s) after the flush blocked),
 * then released.
 *
 * A commit that waits on a lock keeps heartbeating, so Temporal never stacks a second attempt on
 * the shard behind it: the same attempt commits when the lock goes. (Were one started, fencing would
 * refuse the older attempt's writes; rows a and f cover that.) The idle rule flushed the window's
 * first half, so the rest of it is late: allowed. Nothing may be rewritten, lost, doubled or left
 * pending.
 */
import assert from 'node:assert/strict';
import { assertAccounted, groupProgress } from '../helpers/accounting.js';
import { outage, useFaultStack } from '../helpers/fault-run.js';
import { waitFor } from '../helpers/wait.js';
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
    await run.startWorker();
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
      await waitFor("the consumer's flush of window 3 to wait on the lock", 60_000, async () => ((await lock.waiters()).length > 0 ? true : undefined), {
        everyMs: 100,
      }).catch(async (err: unknown) => {
        throw new Error(`${(err as Error).message}; backends:\n${await lock.activity()}`);
      });
      firstAttempt = (await run.attempt(0))?.attempt ?? 1;
      await outage(lockMs);
      const during = await run.attempt(0);
      assert.deepEqual(
        { attempt: during?.attempt, state: during?.state },
        { attempt: firstAttempt, state: 'STARTED' },
        'the attempt waiting on the lock is still the one running: no attempt stacked behind it',
      );
    } finally {
      await lock.release();
    }

    await run.publish([...rest3, ...run.plan(4, 240, { after: plan }).flat()]);
    await run.settle(RECOVERY_MS);
    const accounting = await run.account({ allowLate: true });
    assertAccounted(accounting);
  });
});
