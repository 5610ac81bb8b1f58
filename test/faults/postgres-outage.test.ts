/**
 * Fault matrix, row d: PostgreSQL stops (`pg_ctl stop -m immediate`, a crash) while windows are
 * due to flush, stays down longer than the consumer's heartbeat timeout (scaled down from the
 * issue's 30 s to max(12 s, heartbeat timeout + 2 s)), then starts. Every event must be in exactly
 * one bar, none late, none dead-lettered, nothing pending; after a drain no `job_runs` row of the
 * shard is left `running` and no Redis connection of a failed attempt is left open.
 */
import assert from 'node:assert/strict';
import { assertAccounted } from '../helpers/accounting.js';
import { outage, useFaultStack } from '../helpers/fault-run.js';
import { HOLD_OPEN, OUTAGE_MIN_MS, RECOVERY_MS } from './matrix.js';

describe('fault matrix d: PostgreSQL stopped, then started', function () {
  this.timeout(300_000);
  const faults = useFaultStack('postgres-outage');

  it('resumes after the outage; exact accounting, no run left running, no connection leaked', async function () {
    const run = await faults.run('postgres-outage', { overrides: HOLD_OPEN });
    const plan = run.plan(6, 240);
    await run.startWorker();
    await run.startConsumers();
    const rest = await run.commitThenOpen(plan, 3);
    const outageMs = Math.max(OUTAGE_MIN_MS, (await run.heartbeatTimeoutMs()) + 2000);

    await faults.stack.postgres.stop('immediate');
    const downAt = Date.now();
    // Windows 3 and 4 become due while the store is down: their flushes fail.
    await run.publish([...rest, ...plan[4], ...plan[5]]);
    await outage(outageMs - (Date.now() - downAt));
    await faults.stack.postgres.start();

    await run.publish(run.plan(2, 240, { after: plan }).flat());
    const settled = await run.settle(RECOVERY_MS);
    const accounting = await run.account();
    assertAccounted(accounting);
    assert.ok(settled);

    await run.drain();
    const runs = await run.jobRuns();
    assert.deepEqual(
      runs.filter((r) => r.status === 'running').map((r) => `#${r.id} attempt ${String(r.meta.attempt)}`),
      [],
      `every job_runs row ends after the outage: ${runs.map((r) => `${r.status}(attempt ${String(r.meta.attempt)})`).join(', ')}`,
    );
    const clients = ((await run.redis.client('LIST')) as string).split('\n').filter((line) => / name=mdp /.test(line));
    assert.deepEqual(clients, [], 'no consumer is running after the drain, so no Redis connection of the pipeline is open');
  });
});
