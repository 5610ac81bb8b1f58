/**
 * Fault matrix, row f: a worker frozen (SIGSTOP) with a window open, past the consumer's heartbeat
 * timeout, while a second worker process takes over the shard; then the frozen one resumes
 * (SIGCONT), and events keep arriving. The resumed, stale attempt (or any attempt Temporal handed
 * the frozen worker meanwhile) must not write a bar, acknowledge, or touch the successor's
 * `job_runs` row: every bar committed by the successor stays as it was, every event is in exactly
 * one bar, none late, nothing pending, and the successor's row is still `running` until it drains.
 *
 * Scaled down: the issue froze a worker 33 s; here it stays frozen until the successor has taken
 * over and committed the window the frozen attempt holds (heartbeat timeout + retry + a commit).
 *
 * The private Temporal's long polls expire after 3 s, not 60 s: a frozen worker's open polls are
 * otherwise handed the next attempts, each timing out in turn (40-80 s before one reaches the other
 * worker in trials), and whether those attempts start on SIGCONT depends on the SDK's client-side
 * poll deadline — not deterministic enough for CI. Those handed attempts are as stale as the first
 * one and must be fenced the same way; the issue's run (60 s polls) saw one mark the successor's
 * job_runs row abandoned.
 */
import assert from 'node:assert/strict';
import { assertAccounted, changedBars } from '../helpers/accounting.js';
import { useFaultStack } from '../helpers/fault-run.js';
import { waitFor } from '../helpers/wait.js';
import { JobRunTracker } from '../../store/index.js';
import { HOLD_OPEN, RECOVERY_MS } from './matrix.js';

describe('fault matrix f: a frozen worker resumes after its successor took over', function () {
  this.timeout(300_000);
  // Long polls expire after 3 s instead of 60 s (see the file's doc).
  const faults = useFaultStack('frozen-worker', { temporalDynamicConfig: { 'matching.longPollExpirationInterval': '3s' } });

  it('the stale attempt writes, acknowledges and touches nothing; exact accounting', async function () {
    const run = await faults.run('frozen-worker', { overrides: HOLD_OPEN });
    const plan = run.plan(4, 240);
    const frozen = await run.startWorker('worker-frozen');
    await run.startConsumers();
    await run.waitForAttemptOn(0, frozen, 60_000);
    const successorWorker = await run.startWorker('worker-successor');
    const heartbeatTimeoutMs = await run.heartbeatTimeoutMs();
    const rest3 = await run.commitThenOpen(plan, 3);

    frozen.child.kill('SIGSTOP');
    try {
      await run.assertOpen(plan[3], 'window 3 was open when the worker froze');
      // Its blocking read (100 ms) was in flight: let Redis time it out, or the first entries
      // published next would be delivered into the frozen worker's socket.
      await waitFor(
        "the frozen worker's blocking read to expire",
        10_000,
        async () => {
          const clients = ((await run.redis.client('LIST')) as string).split('\n');
          return clients.some((c) => / name=mdp /.test(c) && / flags=\S*b/.test(c)) ? undefined : true;
        },
        { everyMs: 50 },
      );
      // The rest of window 3 is waiting when the successor starts; it closes by the idle rule.
      await run.publish(rest3);
      const successor = await run.waitForAttemptOn(0, successorWorker, 3 * heartbeatTimeoutMs + 60_000, 2);
      await run.waitForBars(plan[3], 'the successor committed window 3 (both halves)');
      const committed = await run.bars();
      const successorRow = (await run.jobRuns()).find((r) => r.meta.attempt === successor.attempt && r.status === 'running');
      assert.ok(successorRow, `the successor (attempt ${successor.attempt}) has a running job_runs row`);

      frozen.child.kill('SIGCONT');
      // The producer does not wait for a frozen worker to be told it is stale.
      await run.publish(run.plan(4, 240, { after: plan }).flat());
      await run.settle(RECOVERY_MS);

      const accounting = await run.account();
      const rowBeforeDrain = await new JobRunTracker(run.db).get(successorRow.id);
      const drained = await run.drain().then(
        () => 'drained',
        (err: unknown) => (err as Error).message,
      );
      const rowAfterDrain = await new JobRunTracker(run.db).get(successorRow.id);
      const rowLines = (row: typeof rowBeforeDrain) => `#${row?.id} ${row?.status}${row?.error ? ` (${row.error})` : ''}`;
      assertAccounted(accounting, {
        'bars committed by the successor that changed after the frozen worker resumed': changedBars(committed, accounting.bars),
        "the successor's job_runs row, touched by a stale attempt":
          rowBeforeDrain?.status === 'running' && rowBeforeDrain.error === null && rowAfterDrain?.status === 'success'
            ? []
            : [
                `attempt ${successor.attempt}: ${rowLines(rowBeforeDrain)} before the drain, ${rowLines(rowAfterDrain)} after it (expected running, then success)`,
              ],
        drain: drained === 'drained' ? [] : [drained],
      });
    } finally {
      frozen.child.kill('SIGCONT');
    }
  });
});
