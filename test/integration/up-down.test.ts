import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { HIDE_CURSOR, SHOW_CURSOR } from '../../client/live-panel.js';
import { ensureRecoverySchedule, PAUSED_BY_DOWN, PAUSED_BY_UP, SCHEDULED_RECOVERY_INPUT, UNPAUSED_BY_UP } from '../../client/recover-command.js';
import { pipelineWorkflowIds, producerWorkflowIdOf, startMicroBatchers } from '../../client/stream-commands.js';
import { busNames } from '../../pipeline/config/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import type { Database } from '../../store/index.js';
import { microBatchWorkflowId, RECOVERY_SCHEDULE_ID } from '../../workflows/index.js';
import { cleanupTestRun, connectRedis, connectStore, REPO_ROOT, startTemporal, testConfig, uniqueTag } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';
import { configFreeEnv, runNodeScript, writeConfigFile } from '../helpers/worker-process.js';

const CLI = resolve(REPO_ROOT, 'dist/client/cli.js');

/** A running `mdp up` and everything it printed so far. */
interface UpProcess {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

describe('mdp up and mdp down: the recovery schedule follows the pipeline', function () {
  this.timeout(300_000);
  let env: TestWorkflowEnvironment;
  let config: StreamingConfig;
  let configFile: string;
  let redis: Redis;
  let db: Kysely<Database>;
  const ups: UpProcess[] = [];

  before(async function () {
    env = await startTemporal();
    const tag = uniqueTag();
    config = testConfig(tag, { bus: { shards: 1 }, temporal: { address: env.address } });
    configFile = writeConfigFile(config, `up-down-${tag}`);
    redis = await connectRedis(config);
    db = await connectStore(config);
  });

  after(async function () {
    for (const up of ups) up.child.kill('SIGKILL');
    await cleanupTestRun(config, { redis, db, env });
  });

  function startUp(): UpProcess {
    const workerLog = resolve(REPO_ROOT, '.data/test', `${config.producers.synthetic.provider}-up-worker.log`);
    const child = spawn(process.execPath, [CLI, 'up', '--config', configFile], {
      cwd: REPO_ROOT,
      env: { ...configFreeEnv(), MDP_WORKER_LOG: workerLog },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const up: UpProcess = { child, output: () => text, exited: new Promise((done) => child.once('exit', (code) => done(code))) };
    ups.push(up);
    return up;
  }

  /** Waits until `up` has bars written, i.e. its worker runs the workflows it started. */
  async function whenRunning(up: UpProcess): Promise<void> {
    await waitFor('mdp up to write bars', 120_000, () => Promise.resolve(/bars written [1-9]/.test(up.output()) ? true : undefined), {
      everyMs: 250,
      guard: () => {
        if (up.child.exitCode !== null) throw new Error(`mdp up exited (${up.child.exitCode}):\n${up.output()}`);
      },
    });
  }

  const schedule = () => env.client.schedule.getHandle(RECOVERY_SCHEDULE_ID).describe();

  it('up unpauses the recovery schedule while it runs, and Ctrl-C pauses it with a note saying why', async function () {
    // As an earlier `up` leaves it.
    await ensureRecoverySchedule(env.client, config);
    await env.client.schedule.getHandle(RECOVERY_SCHEDULE_ID).pause('paused by an earlier stop');

    const startedMs = Date.now();
    const up = startUp();
    await whenRunning(up);
    const running = await schedule();
    assert.deepEqual([running.state.paused, running.state.note], [false, UNPAUSED_BY_UP]);
    assert.equal(running.spec.intervals?.[0]?.every, 300_000, 'every 5 minutes (recovery.interval of the shipped config)');
    assert.equal(running.action.type, 'startWorkflow');
    assert.deepEqual(
      running.action.type === 'startWorkflow' ? running.action.args : undefined,
      [SCHEDULED_RECOVERY_INPUT],
      'scheduled sweeps skip without consumers',
    );
    assert.match(up.output(), /mdp-recovery \(schedule updated: every 5m, .*paused again when this stops\)/);

    up.child.kill('SIGINT');
    assert.equal(await up.exited, 0, up.output());
    const stopped = await schedule();
    assert.deepEqual([stopped.state.paused, stopped.state.note], [true, PAUSED_BY_UP]);
    assert.match(up.output(), new RegExp(`mdp-recovery: ${PAUSED_BY_UP.replace(/[()]/g, '\\$&')}\\n`));
    assert.match(up.output(), /worker stopped \(exit 0\)/);
    // Not on a terminal: plain lines, no cursor movement, one progress line per 10 s (the first at once), then a summary.
    assert.doesNotMatch(up.output(), /\x1b\[/, 'no ANSI escapes when stdout is not a terminal');
    const lines = up.output().match(/^\d\d:\d\d:\d\d \| events in /gm) ?? [];
    const ranSeconds = (Date.now() - startedMs) / 1000;
    assert.ok(lines.length >= 1 && lines.length <= Math.ceil(ranSeconds / 10) + 1, `${lines.length} progress lines in ${ranSeconds.toFixed(0)} s`);
    assert.match(up.output(), /^ran \d+(s|m\d*s?) \| events in [\d,]+ \| bars written [\d,]+ \| signals [\d,]+ \| late [\d,]+ \| dlq [\d,]+$/m);
    // The workflows stay for the next `up` (only the worker stopped).
    const consumer = microBatchWorkflowId(busNames(config).stream, 0);
    assert.equal((await env.client.workflow.getHandle(consumer).describe()).status.name, 'RUNNING');
  });

  it('on a terminal, redraws a status panel in place, and Ctrl-C restores the cursor and prints a summary', async function () {
    // A pseudo-terminal of 100×40 from util-linux script(1); mdp up runs in it as on a user's terminal.
    const workerLog = resolve(REPO_ROOT, '.data/test', `${config.producers.synthetic.provider}-up-tty-worker.log`);
    const command = `stty cols 100 rows 40; exec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} up --config ${JSON.stringify(configFile)}`;
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      cwd: REPO_ROOT,
      env: { ...configFreeEnv(), MDP_WORKER_LOG: workerLog },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const up: UpProcess = { child, output: () => text, exited: new Promise((done) => child.once('exit', (code) => done(code))) };
    ups.push(up);
    // The panel redraws (cursor up over the last frame), and its bar count grows once this run's worker writes bars
    // (the first frame already counts the bars of the earlier run).
    const barCounts = () => [...text.matchAll(/bars written ([\d,]+)/g)].map((m) => Number(m[1].replace(/,/g, '')));
    await waitFor('the panel to count new bars', 120_000, () => {
      const counts = barCounts();
      return Promise.resolve(counts.length > 1 && counts[counts.length - 1] > counts[0] && /\x1b\[\d+A/.test(text) ? true : undefined);
    });
    assert.ok(text.includes(HIDE_CURSOR), 'the cursor is hidden while the panel runs');
    const frames = text.split(/\x1b\[\d+A/);
    const last = frames[frames.length - 1];
    for (const part of ['Temporal UI  http://', 'metrics      http://', 'shard  events in  rate  lag   pending', 'last signals'])
      assert.ok(last.includes(part), `the frame shows ${JSON.stringify(part)}:\n${last}`);
    assert.match(last, /^0 +[\d,]+ +(-|[\d,]+\/s) +\d+\.\ds +\d+/m, 'a row per shard');
    assert.doesNotMatch(text, /^\d\d:\d\d:\d\d \| events in /m, 'no scrolling progress lines');

    // Ctrl-C reaches mdp up (the shell exec'd into it: it is script's child).
    const upPid = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
    process.kill(upPid, 'SIGINT');
    assert.equal(await up.exited, 0, text);
    const after = text.slice(text.lastIndexOf(SHOW_CURSOR));
    assert.ok(after.length > 0, 'the cursor is shown again');
    assert.match(after, /ran \d+(s|m\d*s?) \| events in [\d,]+ \| bars written [\d,]+/);
    assert.match(after, /worker stopped \(exit 0\)/);
  });

  it('down pauses the schedule, drains producers and consumers and exits 0 naming what it stopped; with no worker it exits 1 naming what did not stop', async function () {
    const up = startUp();
    await whenRunning(up);
    assert.equal((await schedule()).state.paused, false, 'up unpaused it again');

    const down = await runNodeScript(CLI, ['down', '--config', configFile]);
    assert.equal(down.code, 0, down.stdout + down.stderr);
    const ids = pipelineWorkflowIds(config);
    const ibkr = producerWorkflowIdOf(config, 'ibkr');
    for (const id of ids) {
      if (id === ibkr) assert.match(down.stdout, new RegExp(`^${id}: not running$`, 'm'), 'the IBKR producer is off in this config');
      else {
        assert.match(down.stdout, new RegExp(`^${id.replace(/[.]/g, '\\.')}: drained after \\d+ runs \\{`, 'm'));
        assert.equal((await env.client.workflow.getHandle(id).describe()).status.name, 'COMPLETED', `${id} completed`);
      }
    }
    assert.match(down.stdout, new RegExp(`^mdp-recovery: ${PAUSED_BY_DOWN}$`, 'm'));
    assert.match(down.stdout, new RegExp(`stopped ${ids.length - 1} workflow\\(s\\); the pipeline is down`));
    const paused = await schedule();
    assert.deepEqual([paused.state.paused, paused.state.note], [true, PAUSED_BY_DOWN]);

    up.child.kill('SIGINT');
    assert.equal(await up.exited, 0, up.output());

    // No worker at all: a consumer cannot drain, and down says which one is left.
    const [started] = await startMicroBatchers(env.client, config, undefined);
    const stuck = await runNodeScript(CLI, ['down', '--config', configFile, '--timeout', '2s']);
    assert.equal(stuck.code, 1, stuck.stdout + stuck.stderr);
    assert.match(stuck.stdout, new RegExp(`^${started.workflowId.replace(/[.]/g, '\\.')}: still running$`, 'm'), stuck.stderr);
    assert.match(stuck.stderr, new RegExp(`mdp: did not stop within 2s: ${started.workflowId.replace(/[.]/g, '\\.')}$`, 'm'));
    await env.client.workflow.getHandle(started.workflowId).terminate('test done');
  });
});
