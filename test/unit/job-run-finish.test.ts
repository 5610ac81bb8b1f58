import assert from 'node:assert/strict';
import { finishJobRun } from '../../activities/job-run-finish.js';
import { createLogger } from '../../pipeline/telemetry/index.js';
import { MemoryJobRuns } from '../helpers/fake-sinks.js';
import { waitFor } from '../helpers/wait.js';

/** Job rows whose `finish` fails while `down` is set, like a store during an outage. */
class FlakyJobRuns extends MemoryJobRuns {
  down: Error | undefined;
  finishCalls = 0;

  override finish(id: number, status: 'success' | 'failure', counts: Record<string, number>, error?: string): Promise<void> {
    this.finishCalls++;
    return this.down ? Promise.reject(this.down) : super.finish(id, status, counts, error);
  }
}

describe('finishJobRun', function () {
  const capture = () => {
    const lines: Record<string, unknown>[] = [];
    return { lines, log: createLogger('INFO', (line) => lines.push(JSON.parse(line) as Record<string, unknown>)) };
  };
  const retry = { firstDelayMs: 10, maxDelayMs: 40 };

  it('ends the row at once when the store answers', async function () {
    const jobs = new FlakyJobRuns();
    const id = await jobs.start({ jobName: 'j', kind: 'microbatch' });
    await finishJobRun(jobs, capture().log, { id, status: 'failure', counts: { events: 2 }, error: 'boom' }, retry);
    assert.deepEqual(jobs.rows[0], { id, jobName: 'j', kind: 'microbatch', status: 'failure', counts: { events: 2 }, error: 'boom' });
  });

  it('returns after the first try while the store is down, and ends the row once it is back', async function () {
    const jobs = new FlakyJobRuns();
    const id = await jobs.start({ jobName: 'j', kind: 'microbatch' });
    jobs.down = new Error('connect ECONNREFUSED');
    const { lines, log } = capture();
    await finishJobRun(jobs, log, { id, status: 'failure', counts: {}, error: 'store down' }, retry);
    assert.equal(jobs.rows[0]?.status, 'running');
    await waitFor('a few retries', 5000, () => Promise.resolve(jobs.finishCalls >= 4 ? true : undefined), { everyMs: 5 });
    assert.equal(jobs.rows[0]?.status, 'running');
    jobs.down = undefined;
    await waitFor('the row ended', 5000, () => Promise.resolve(jobs.rows[0]?.status === 'failure' ? true : undefined), { everyMs: 5 });
    assert.equal(jobs.rows[0]?.error, 'store down');
    assert.deepEqual(
      lines.map((l) => l.msg),
      ['cannot end the job run now; retrying in the background', 'job run ended after retrying'],
    );
  });

  it('leaves a row a successor already abandoned as it is', async function () {
    const jobs = new FlakyJobRuns();
    const id = await jobs.start({ jobName: 'j', kind: 'microbatch' });
    jobs.down = new Error('connect ECONNREFUSED');
    await finishJobRun(jobs, capture().log, { id, status: 'failure', counts: {} }, retry);
    jobs.down = undefined;
    await jobs.markAbandoned('j');
    const calls = jobs.finishCalls;
    await waitFor('the next retry', 5000, () => Promise.resolve(jobs.finishCalls > calls ? true : undefined), { everyMs: 5 });
    assert.equal(jobs.rows[0]?.status, 'abandoned', 'the first terminal status wins');
  });

  it('does not retry a row that does not exist, and gives up after retryForMs', async function () {
    const missing = new FlakyJobRuns();
    missing.down = Object.assign(new Error('job run 7 does not exist'), { code: 'JOB_RUN_NOT_FOUND' });
    await finishJobRun(missing, capture().log, { id: 7, status: 'failure', counts: {} }, retry);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(missing.finishCalls, 1);

    const jobs = new FlakyJobRuns();
    const id = await jobs.start({ jobName: 'j', kind: 'microbatch' });
    jobs.down = new Error('connect ECONNREFUSED');
    const { lines, log } = capture();
    await finishJobRun(jobs, log, { id, status: 'failure', counts: {} }, { ...retry, retryForMs: 50 });
    await waitFor('giving up', 5000, () => Promise.resolve(lines.some((l) => l.level === 'error') ? true : undefined), { everyMs: 5 });
    const calls = jobs.finishCalls;
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(jobs.finishCalls, calls, 'no retry after giving up');
    assert.match(String(lines.at(-1)?.msg), /gave up ending the job run/);
  });
});
