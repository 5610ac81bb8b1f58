/**
 * Fault matrix, row b: the Redis process is SIGKILLed while a window is open and restarted from
 * its AOF (intact: a process crash loses nothing the OS already has). The consumer reconnects or
 * is retried; every event must be in exactly one bar, none late, none dead-lettered, nothing pending.
 */
import assert from 'node:assert/strict';
import { assertAccounted, unacknowledgedIds } from '../helpers/accounting.js';
import { outage, useFaultStack } from '../helpers/fault-run.js';
import { HOLD_OPEN, RECOVERY_MS } from './matrix.js';

/** How long Redis stays down (scaled down; the consumer blocks or fails and is retried meanwhile). */
const REDIS_DOWN_MS = 3000;
/**
 * The consumer may live through the outage with window 3 open and no event to read: its idle rule
 * must not close that window before the rest of it can be published again, or that rest would
 * rightly be late. So here the idle flush waits longer than the outage and the restart.
 */
const OVERRIDES = { micro_batch: { ...HOLD_OPEN.micro_batch, flush_timeout_ms: 15_000 } };

describe('fault matrix b: Redis SIGKILLed and restarted (AOF intact)', function () {
  this.timeout(300_000);
  const faults = useFaultStack('redis-kill');

  it('loses nothing Redis acknowledged; exact accounting', async function () {
    const run = await faults.run('redis-kill', { overrides: OVERRIDES });
    const plan = run.plan(4, 240);
    const worker = await run.startWorker();
    await run.startConsumers();
    const rest = await run.commitThenOpen(plan, 3);

    // Entries the group had acknowledged may be trimmed (acknowledged-only trimming); the others
    // must all come back from the AOF.
    const unacknowledged = await unacknowledgedIds(run.redis, run.streams[0], run.group);
    assert.ok(unacknowledged.size > 0, 'window 3 is open: its entries are unacknowledged');
    await faults.stack.redis.kill();
    await outage(REDIS_DOWN_MS);
    await faults.stack.redis.start();
    const held = new Set(((await run.redis.xrange(run.streams[0], '-', '+')) as [string, unknown][]).map(([id]) => id));
    assert.deepEqual(
      [...unacknowledged].filter((id) => !held.has(id)),
      [],
      'every entry Redis took and no group acknowledged is back after the restart',
    );

    await run.publish([...rest, ...run.plan(4, 240, { after: plan }).flat()]);
    await run.settle(RECOVERY_MS);
    const accounting = await run.account({ redisRestarted: true });
    assertAccounted(accounting);
    // Redis 7.0 forgets its groups' read counters on an AOF reload: that is no loss to report.
    assert.deepEqual(
      run.logLines(worker).filter((l) => typeof l.msg === 'string' && /before the group read them/.test(l.msg)),
      [],
      'no false trimmed_unread after the restart',
    );
  });
});
