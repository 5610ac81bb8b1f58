/**
 * Fault matrix, row c: Redis loses its last second (what `appendfsync everysec` allows on a host
 * crash). Redis and the worker are SIGKILLed together right after a window was committed to
 * PostgreSQL; the AOF is cut back to a mark taken just before that window's last events were
 * published (see `redis-aof.ts`), so Redis forgets those events, the window's acknowledgement and
 * the checkpoint written with it, while PostgreSQL keeps the committed bars. Both restart.
 *
 * Accounting (see `survivorsOfRedisLoss`): the events Redis lost count if they were already in a
 * committed bar (the window committed before the crash), and are exempt otherwise (never durably
 * accepted); every other event must be in exactly one bar, none late. No bar committed before the
 * crash may change afterwards.
 */
import assert from 'node:assert/strict';
import type { ProducedEntry } from '../helpers/accounting.js';
import { assertAccounted, changedBars, survivorsOfRedisLoss } from '../helpers/accounting.js';
import { halves, useFaultStack } from '../helpers/fault-run.js';
import { HOLD_OPEN, RECOVERY_MS } from './matrix.js';

describe('fault matrix c: Redis loses its last second', function () {
  this.timeout(300_000);
  const faults = useFaultStack('redis-lost-second');

  it('never rewrites a committed bar; only events Redis lost are lost; exact accounting', async function () {
    const run = await faults.run('lost-second', { overrides: HOLD_OPEN });
    const redis = faults.stack.redis;
    const plan = run.plan(9, 240);
    const worker = await run.startWorker();
    await run.startConsumers();
    // Windows 0-2 committed and acknowledged; window 3's first half read, its window open.
    const rest3 = await run.commitThenOpen(plan, 3);

    // The last second: window 3's second half and window 4's first half arrive; window 3 closes
    // and is committed to PostgreSQL (and acknowledged on the bus).
    const mark = await redis.markAof(run.redis);
    // What the streams held at the mark: entries acknowledged and trimmed before it are gone for good.
    const atMark = new Set<string>();
    for (const stream of run.streams) {
      for (const [id] of (await run.redis.xrange(stream, '-', '+')) as [string, unknown][]) atMark.add(`${stream}|${id}`);
    }
    const [w4a] = halves(plan[4]);
    const lastSecond = await run.publish([...rest3, ...w4a]);
    await run.waitForBars(plan[3], 'window 3 committed with the events published after the mark');
    await Promise.all([redis.kill(), run.killWorker(worker)]);
    const lostMs = Date.now() - mark.atMs;
    const barsAtCrash = await run.bars();
    const cut = redis.loseWritesAfter(mark);
    await redis.start();

    const idsAfterRestart = new Set<string>();
    for (const stream of run.streams) {
      for (const [id] of (await run.redis.xrange(stream, '-', '+')) as [string, unknown][]) idsAfterRestart.add(`${stream}|${id}`);
    }
    const publishedBeforeCrash = [...run.produced];
    const lastSecondKeys = new Set(lastSecond.map((e) => `${e.stream}|${e.id}`));
    const gone = publishedBeforeCrash.filter((e) => {
      const key = `${e.stream}|${e.id}`;
      return !idsAfterRestart.has(key) && (atMark.has(key) || lastSecondKeys.has(key));
    });
    assert.deepEqual(
      gone,
      lastSecond,
      `the cut removed exactly the entries published after the mark (${lostMs} ms of writes: ${JSON.stringify(cut.droppedCommands)})`,
    );
    const { survived, lost } = survivorsOfRedisLoss({ publishedBeforeCrash, streamIdsAfterRestart: idsAfterRestart, barsAtCrash, windowMs: run.windowMs });
    assert.equal(lost.length, w4a.length, "Redis lost window 4's first half (never committed); window 3's second half is in its committed bar");

    await run.startWorker();
    const afterRestart: ProducedEntry[] = await run.publish(plan.slice(5).flat());
    await run.settle(RECOVERY_MS);
    const accounting = await run.account({ produced: [...survived, ...afterRestart], lost, redisRestarted: true });
    assertAccounted(accounting, {
      [`bars committed before the crash that changed after it (AOF cut back ${lostMs} ms: ${JSON.stringify(cut.droppedCommands)})`]: changedBars(
        barsAtCrash,
        accounting.bars,
      ),
    });
  });
});
