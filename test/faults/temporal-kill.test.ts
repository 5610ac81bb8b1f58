/**
 * Fault matrix, row e: the Temporal dev server is SIGKILLed while a window is open and restarted on
 * the same port and SQLite file (history kept). Events keep arriving meanwhile. Every event must be
 * in exactly one bar, none late, none dead-lettered, nothing pending, and the consumer workflow
 * still answers (it drains).
 */
import assert from 'node:assert/strict';
import { assertAccounted } from '../helpers/accounting.js';
import { useFaultStack } from '../helpers/fault-run.js';
import { HOLD_OPEN, RECOVERY_MS } from './matrix.js';

describe('fault matrix e: Temporal dev server SIGKILLed and restarted', function () {
  this.timeout(300_000);
  const faults = useFaultStack('temporal-kill');

  it('the pipeline carries on and the workflow survives; exact accounting', async function () {
    const run = await faults.run('temporal-kill', { overrides: HOLD_OPEN });
    const plan = run.plan(6, 240);
    await run.startWorker();
    await run.startConsumers();
    const rest = await run.commitThenOpen(plan, 3);

    await faults.stack.temporal.kill();
    await run.publish([...rest, ...plan[4], ...plan[5]]);
    await faults.stack.temporal.start(); // down for as long as the server takes to start again

    await run.publish(run.plan(2, 240, { after: plan }).flat());
    await run.settle(RECOVERY_MS);
    const accounting = await run.account();
    assertAccounted(accounting);
    const [status] = await run.drain();
    assert.equal(status.lastStoppedBy, 'drained');
  });
});
