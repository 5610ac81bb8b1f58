/**
 * The real `mdp stream replay` and `mdp dataset` commands (`node dist/client/cli.js …` as child
 * processes) against a Temporal dev server of this file's own, with an in-process worker on the
 * config's task queue: progress output, Ctrl-C detaching and `--follow` reattaching, the dataset
 * listing and the deterministic sample-day generator.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import yaml from 'js-yaml';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import type { StreamEventV1 } from '../../pipeline/contracts/index.js';
import { parseIsoToMicros } from '../../pipeline/contracts/index.js';
import type { Database } from '../../store/index.js';
import { StoreClient } from '../../store/index.js';
import type { ReplayProgress } from '../../workflows/index.js';
import { replayWorkflowId } from '../../workflows/index.js';
import { followReplay } from '../../client/replay-command.js';
import { expectedBars } from '../helpers/expected-bars.js';
import { cleanupTestRun, connectRedis, connectStore, createTestWorker, REPO_ROOT, startTemporal, testConfig, uniqueTag } from '../helpers/services.js';
import { configFreeEnv, writeConfigFile } from '../helpers/worker-process.js';
import { waitFor } from '../helpers/wait.js';

const CLI = resolve(REPO_ROOT, 'dist/client/cli.js');
/** Env vars bound to config keys (as in worker-process.ts): cleared so the CLI reads its config file only. */
const DATE = '2025-10-01';
const SEED = 20251001;

interface CliRun {
  readonly child: ChildProcess;
  /** Everything written to stdout so far. */
  stdout: string;
  stderr: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>;
}

/** Spawns the real CLI from the repo root with stdout/stderr captured (not a TTY: one line per change). */
function startCli(args: string[], cwd = REPO_ROOT): CliRun {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: configFreeEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const run: CliRun = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((done) => child.once('exit', (code, signal) => done({ code, signal, atMs: performance.now() }))),
  };
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    run.stdout += text;
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    run.stderr += text;
  });
  return run;
}

/** Runs the CLI to completion (or fails after `timeoutMs`). */
async function cli(args: string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return cliIn(REPO_ROOT, args, timeoutMs);
}

/** {@link cli} from another working directory. */
async function cliIn(cwd: string, args: string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = startCli(args, cwd);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), timeoutMs);
  const { code } = await run.exited;
  clearTimeout(timer);
  await new Promise((r) => setImmediate(r));
  return { code, stdout: run.stdout, stderr: run.stderr };
}

function inRange(events: readonly StreamEventV1[], from: string, to: string): StreamEventV1[] {
  const a = Date.parse(from) * 1000,
    b = Date.parse(to) * 1000;
  return events.filter((e) => {
    const us = parseIsoToMicros(e.src_ts)!;
    return us >= a && us < b;
  });
}

/** `[#####-----]  45% | 3/12 chunks | …` lines of the progress output. */
const BAR_LINE =
  /^\[(#*)(-*)\]\s+(\d+)% \| (\d+)\/(\d+) chunks \| (\d+)\/(\d+) events (\d+)\/s \| (\d+) bars (\d+)\/s \(new (\d+), changed (\d+)\) \| (ETA (\d+:\d\d|--:--)|done in \d+:\d\d)$/;

describe('mdp stream replay and mdp dataset (the real CLI against Temporal)', function () {
  this.timeout(240_000);
  let env: TestWorkflowEnvironment;
  let db: Kysely<Database>;
  let redis: Redis;
  let config: StreamingConfig;
  let configFile: string;
  let tag: string;
  let dataset: string;
  let dir: string;
  let provider: string;
  let worker: Worker;
  let running: Promise<void>;
  const children: ChildProcess[] = [];

  const run = (args: string[]) => {
    const r = startCli(args);
    children.push(r.child);
    return r;
  };
  const dayFile = () => resolve(dir, 'day', `${DATE}.jsonl`);
  const dayEvents = () =>
    readFileSync(dayFile(), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as StreamEventV1);

  before(async function () {
    env = await startTemporal();
    tag = uniqueTag();
    dataset = `${tag}_day`;
    dir = resolve(REPO_ROOT, '.data/test', `${tag}-cli-datasets`);
    mkdirSync(dir, { recursive: true });
    const catalog = resolve(dir, 'datasets.yaml');
    config = testConfig(tag, {
      temporal: { address: env.address },
      replay: { datasets_file: catalog, stream: `${tag}.replay` },
      telemetry: { log_level: 'WARNING' },
    });
    provider = config.producers.synthetic.provider;
    writeFileSync(
      catalog,
      yaml.dump({
        datasets: {
          [dataset]: {
            description: 'CLI test sample day',
            format: 'jsonl',
            path: resolve(dir, 'day'),
            provider,
            generate: { symbols: ['SPY'], seed: SEED, ticks_per_day: 60_000, volatility: 0.15, start_prices: { SPY: 668.0 } },
          },
          [`${tag}_badcsv`]: { format: 'csv', path: resolve(dir, 'bad.csv'), provider },
          [`${tag}_absent`]: { format: 'csv', path: resolve(dir, 'absent.csv'), provider },
        },
      }),
    );
    writeFileSync(resolve(dir, 'bad.csv'), 'symbol,price\nSPY,668.1\n');
    configFile = writeConfigFile(config, `replay-cli-${tag}`);
    redis = await connectRedis(config);
    db = await connectStore(config);
    worker = await createTestWorker(env, config, db);
    running = worker.run();
  });

  after(async function () {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    worker?.shutdown();
    await running?.catch(() => undefined);
    await db?.deleteFrom('job_runs').where('job_name', 'like', `mdp-replay-${tag}%`).execute();
    await cleanupTestRun(config, { redis, db, env });
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (configFile) rmSync(configFile, { force: true });
  });

  it('mdp dataset ls lists the dataset; mdp dataset generate writes the same bytes every time', async function () {
    const before = await cli(['dataset', 'ls', '--config', configFile]);
    assert.equal(before.code, 0, before.stderr);
    assert.match(
      before.stdout,
      new RegExp(`^${dataset}\\s+jsonl\\s+${resolve(dir, 'day')}\\s+not generated yet \\(mdp dataset generate ${dataset} --date YYYY-MM-DD\\)$`, 'm'),
    );
    assert.match(before.stdout, new RegExp(`^${tag}_badcsv\\s+csv\\s+\\S+bad\\.csv\\s+unreadable: .*CSV header must name a src_ts`, 'm'));
    assert.match(before.stdout, new RegExp(`^${tag}_absent\\s+csv\\s+\\S+absent\\.csv\\s+missing$`, 'm'));
    mkdirSync(resolve(dir, 'day'), { recursive: true });
    const empty = await cli(['dataset', 'ls', '--config', configFile]);
    assert.match(empty.stdout, new RegExp(`^${dataset}\\s+jsonl\\s+\\S+\\s+not generated yet`, 'm'), 'an empty directory is not generated yet either');

    const first = await cli(['dataset', 'generate', dataset, '--date', DATE, '--config', configFile]);
    assert.equal(first.code, 0, first.stderr);
    const written = /^(.+): (\d+) events$/m.exec(first.stdout);
    assert.ok(written, `generate names the file and the count: ${first.stdout}`);
    assert.equal(written[1], dayFile());
    const bytes = readFileSync(dayFile());
    const events = dayEvents();
    assert.equal(events.length, Number(written[2]));
    assert.ok(events.length > 50_000 && events.length < 70_000, `about 60 000 ticks (got ${events.length})`);
    assert.ok(events.every((e) => e.provider === provider && e.symbol === 'SPY'));
    assert.equal(events[0].src_ts.slice(0, 16), '2025-10-01T13:30', 'the session opens 09:30 New York');

    rmSync(dayFile());
    const second = await cli(['dataset', 'generate', dataset, '--date', DATE, '--config', configFile]);
    assert.equal(second.code, 0, second.stderr);
    const again = readFileSync(dayFile());
    assert.equal(createHash('sha256').update(again).digest('hex'), createHash('sha256').update(bytes).digest('hex'), 'same dataset, same date: same bytes');

    const after = await cli(['dataset', 'ls', '--config', configFile]);
    assert.equal(after.code, 0, after.stderr);
    assert.match(
      after.stdout,
      new RegExp(`^${dataset}\\s+jsonl\\s+\\S+\\s+1 files, ${events.length} events, 2025-10-01T13:30:00\\.000Z \\.\\. 2025-10-01T20:00:00\\.000Z$`, 'm'),
    );

    const unknown = await cli(['dataset', 'generate', 'nope', '--date', DATE, '--config', configFile]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, new RegExp(`unknown dataset "nope" \\(.*defines: ${dataset}, `));
    const usage = await cli(['dataset', 'generate', dataset, '--config', configFile]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--date/);
  });

  it('mdp stream replay shows a progress bar with rates and an ETA, then a summary; exits 0 with the bars in the store', async function () {
    const store = new StoreClient(db);
    await db.deleteFrom('bars_ohlcv').where('provider', '=', provider).execute();
    const from = '2025-10-01T13:30:00Z',
      to = '2025-10-01T14:30:00Z';
    const expected = expectedBars(inRange(dayEvents(), from, to), config.micro_batch.window_ms);
    // 30 two-minute chunks at 600×: 0.2 s per chunk when paced, so the 500 ms poll sees the bar move.
    const replay = run(['stream', 'replay', '--config', configFile, '--dataset', dataset, '--from', from, '--to', to, '--chunk-span', '2m', '--speed', '600']);
    const { code } = await replay.exited;
    const stdout = replay.stdout;
    console.log(
      stdout
        .split('\n')
        .map((l) => `      | ${l}`)
        .join('\n'),
    );
    assert.equal(code, 0, replay.stderr);

    const workflowId = replayWorkflowId(dataset, from, to);
    const lines = stdout.trimEnd().split('\n');
    assert.equal(lines[0], `${workflowId}: started`);
    const bars = lines.map((l) => BAR_LINE.exec(l)).filter((m) => m !== null);
    assert.ok(bars.length >= 3, `several progress lines (got ${bars.length})`);
    const moving = bars.filter((m) => m[13].startsWith('ETA') && m[14] !== '--:--' && Number(m[3]) >= 5 && Number(m[3]) <= 90);
    assert.ok(moving.length >= 1, 'a line mid-replay with a partial bar, a rate and a numeric ETA');
    for (const m of moving) {
      assert.ok(m[1].length > 0 && m[2].length > 0, 'partially filled bar');
      assert.ok(Number(m[8]) > 0, 'events per second');
    }
    const percents = bars.map((m) => Number(m[3]));
    assert.deepEqual(
      percents,
      [...percents].sort((a, b) => a - b),
      'progress only moves forward',
    );

    const final = BAR_LINE.exec(lines.at(-2) ?? '');
    assert.ok(final, `the last progress line is the finished bar: ${lines.at(-2)}`);
    assert.equal(final[2], '', 'bar full');
    assert.equal(final[3], '100');
    assert.equal(`${final[4]}/${final[5]}`, '30/30');
    assert.match(final[13], /^done in /);
    assert.equal(Number(final[11]), expected.length, 'new bars');
    const summary = lines.at(-1)!;
    assert.match(
      summary,
      new RegExp(
        `^replay ${workflowId} finished: 30 chunks, (\\d+) events → ${expected.length} bars ` +
          `\\(new ${expected.length}, changed 0, unchanged 0\\); late 0, invalid 0, duplicates 0; redone chunks 0; in \\d+:\\d\\d$`,
      ),
    );

    assert.deepEqual(await store.listBars({ provider }), expected, 'the replayed bars are in the store');
    const description = await env.client.workflow.getHandle(workflowId).describe();
    assert.equal(description.status.name, 'COMPLETED');
    assert.deepEqual({ dataset: description.memo?.dataset, from: description.memo?.from, to: description.memo?.to }, { dataset, from, to });
  });

  it('Ctrl-C detaches promptly and the replay keeps running; --follow reattaches and completes', async function () {
    const store = new StoreClient(db);
    await db.deleteFrom('bars_ohlcv').where('provider', '=', provider).execute();
    const from = '2025-10-01T14:30:00Z',
      to = '2025-10-01T15:30:00Z';
    const expected = expectedBars(inRange(dayEvents(), from, to), config.micro_batch.window_ms);
    const workflowId = replayWorkflowId(dataset, from, to);
    // 60 one-minute chunks at 300×: a fifth of a second each, so about 12 s in all.
    const replay = run(['stream', 'replay', '--config', configFile, '--dataset', dataset, '--from', from, '--to', to, '--chunk-span', '1m', '--speed', '300']);
    await waitFor(
      'the CLI to show a few chunks done',
      60_000,
      () => {
        const done = [...replay.stdout.matchAll(/\| (\d+)\/60 chunks \|/g)].map((m) => Number(m[1]));
        return Promise.resolve(done.some((n) => n >= 2) ? true : undefined);
      },
      { everyMs: 100 },
    );
    const interruptedAt = performance.now();
    replay.child.kill('SIGINT');
    const exit = await replay.exited;
    const exitMs = exit.atMs - interruptedAt;
    console.log(`      exited ${Math.round(exitMs)} ms after SIGINT`);
    assert.equal(exit.signal, null, 'exits by itself, not killed by the signal');
    assert.equal(exit.code, 0, replay.stderr);
    assert.ok(exitMs < 3000, `exits promptly after Ctrl-C (took ${Math.round(exitMs)} ms)`);
    assert.match(replay.stdout, new RegExp(`^detached; the replay keeps running\\. Reattach: mdp stream replay --follow ${workflowId}$`, 'm'));

    const handle = env.client.workflow.getHandle(workflowId);
    assert.equal((await handle.describe()).status.name, 'RUNNING', 'the replay keeps running after the CLI detached');
    const atDetach = await handle.query<ReplayProgress>('progress');
    assert.ok(atDetach.chunksDone >= 2 && atDetach.chunksDone < 60, `mid-replay (${atDetach.chunksDone}/60)`);

    const follow = run(['stream', 'replay', '--config', configFile, '--follow', workflowId]);
    // The same follow loop in this process, polling fast on one signal: no abort listener piles up per poll.
    const detachSignal = new AbortController().signal;
    const polls = { n: 0 };
    const inProcess = followReplay(env.client, workflowId, () => void polls.n++, { signal: detachSignal, everyMs: 20 });
    const { code } = await follow.exited;
    assert.equal(await inProcess, 'finished');
    assert.ok(polls.n > 20, `polled many times (${polls.n})`);
    assert.equal(getEventListeners(detachSignal, 'abort').length, 0, 'no abort listener left behind by the polls');
    console.log(
      follow.stdout
        .split('\n')
        .slice(-3)
        .map((l) => `      | ${l}`)
        .join('\n'),
    );
    assert.equal(code, 0, follow.stderr);
    const lines = follow.stdout.trimEnd().split('\n');
    assert.ok(!lines.some((l) => l.endsWith(': started')), 'following does not start anything');
    const bars = lines.map((l) => BAR_LINE.exec(l)).filter((m) => m !== null);
    assert.ok(bars.length >= 2, 'progress while following');
    assert.ok(Number(bars[0][4]) >= atDetach.chunksDone, 'picks up where the replay stands');
    const final = BAR_LINE.exec(lines.at(-2) ?? '');
    assert.ok(final && final[3] === '100' && final[4] === '60', `finished bar: ${lines.at(-2)}`);
    assert.match(lines.at(-1)!, new RegExp(`^replay ${workflowId} finished: 60 chunks, \\d+ events → ${expected.length} bars `));

    assert.equal((await handle.describe()).status.name, 'COMPLETED');
    const result = (await handle.result()) as ReplayProgress;
    assert.equal(result.redoneChunks, 0, 'detaching the client never disturbs the replay');
    assert.deepEqual(await store.listBars({ provider }), expected);

    // Following a finished replay prints its result; following an unknown id fails clearly.
    const again = await cli(['stream', 'replay', '--config', configFile, '--follow', workflowId]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^replay .* finished: 60 chunks/m);
    const unknown = await cli(['stream', 'replay', '--config', configFile, '--follow', `mdp-replay-${tag}-nope`]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, new RegExp(`no replay workflow mdp-replay-${tag}-nope`));
  });

  /** True when Temporal has any execution under `workflowId`. */
  const exists = async (workflowId: string): Promise<boolean> => {
    try {
      await env.client.workflow.getHandle(workflowId).describe();
      return true;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  };

  it('fails fast, starting nothing: unknown dataset, inverted or unparseable range, window out of bounds (exit 2)', async function () {
    const replayArgs = (...more: string[]) => ['stream', 'replay', '--config', configFile, ...more];
    const unknown = await cli(replayArgs('--dataset', `${tag}_nope`, '--from', DATE, '--to', '2025-10-02'));
    assert.equal(unknown.code, 2, unknown.stdout);
    assert.match(unknown.stderr, new RegExp(`^mdp: --dataset: unknown dataset "${tag}_nope" \\(.*defines: ${dataset}, ${tag}_badcsv, ${tag}_absent\\)$`, 'm'));
    assert.equal(unknown.stdout, '');
    assert.equal(await exists(replayWorkflowId(`${tag}_nope`, DATE, '2025-10-02')), false, 'no workflow for an unknown dataset');

    const inverted = await cli(replayArgs('--dataset', dataset, '--from', '2025-10-02', '--to', DATE));
    assert.equal(inverted.code, 2);
    assert.match(inverted.stderr, /--from \(2025-10-02\) must be before --to \(2025-10-01\)/);
    assert.equal(await exists(replayWorkflowId(dataset, '2025-10-02', DATE)), false, 'no workflow for an inverted range');

    const garbled = await cli(replayArgs('--dataset', dataset, '--from', 'yesterday', '--to', DATE));
    assert.equal(garbled.code, 2);
    assert.match(garbled.stderr, /^mdp: --from must be a date or an ISO timestamp with a zone, e\.g\. 2025-10-01 .*\(got "yesterday"\)$/m);

    for (const window of ['10ms', '1m', 'soon']) {
      const bad = await cli(replayArgs('--dataset', dataset, '--from', DATE, '--to', '2025-10-02', '--window', window));
      assert.equal(bad.code, 2, window);
      assert.match(bad.stderr, new RegExp(`--window must be a duration between 500ms and 5s, e.g. 2s \\(got "${window}"\\)`));
    }

    const usage = await cli(replayArgs('--dataset', dataset, '--from', DATE));
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--dataset NAME --from DATE --to DATE/);
    const speed = await cli(replayArgs('--dataset', dataset, '--from', DATE, '--to', '2025-10-02', '--speed', 'fast'));
    assert.equal(speed.code, 2);
    assert.match(speed.stderr, /--speed must be a positive number/);
  });

  it('without a worker on the task queue, says so after --wait-for-worker and starts nothing (exit 1)', async function () {
    const lonely = writeConfigFile({ ...config, temporal: { ...config.temporal, task_queue: `${tag}-nobody` } }, `replay-cli-${tag}-nobody`);
    try {
      const began = performance.now();
      const result = await cli(['stream', 'replay', '--config', lonely, '--dataset', dataset, '--from', DATE, '--to', '2025-10-02', '--wait-for-worker', '2s']);
      const tookMs = performance.now() - began;
      assert.equal(result.code, 1, result.stdout);
      assert.match(result.stderr, new RegExp(`^mdp: no worker is polling task queue "${tag}-nobody" .*waited 0:02.*nothing was started$`, 'm'));
      assert.ok(tookMs >= 2000 && tookMs < 30_000, `waited the bound, not forever (${Math.round(tookMs)} ms)`);
      assert.equal(await exists(replayWorkflowId(dataset, DATE, '2025-10-02')), false, 'no workflow started');
    } finally {
      rmSync(lonely, { force: true });
    }
  });

  it('--window is the replay input: 1 s and 2 s replays of the same data land 1 s and 2 s bars, and their signals side by side', async function () {
    const store = new StoreClient(db);
    await db.deleteFrom('bars_ohlcv').where('provider', '=', provider).execute();
    await db.deleteFrom('signals').where('provider', '=', provider).execute();
    const from = '2025-10-01T15:30:00Z',
      to = '2025-10-01T15:45:00Z';
    const events = inRange(dayEvents(), from, to);
    const replayAt = async (window: string) => {
      const result = await cli(['stream', 'replay', '--config', configFile, '--dataset', dataset, '--from', from, '--to', to, '--window', window]);
      assert.equal(result.code, 0, result.stderr);
      const workflowId = /^(\S+): started$/m.exec(result.stdout)?.[1];
      assert.ok(workflowId, result.stdout);
      return { workflowId, progress: (await env.client.workflow.getHandle(workflowId).result()) as ReplayProgress };
    };
    const signalRows = (intervalMs: number) =>
      db
        .selectFrom('signals')
        .selectAll()
        .where('provider', '=', provider)
        .where('interval_ms', '=', intervalMs)
        .orderBy('symbol')
        .orderBy('name')
        .orderBy('ts')
        .execute();

    const one = await replayAt('1s');
    assert.equal(one.workflowId, replayWorkflowId(dataset, from, to), 'the config window keeps the plain id');
    assert.equal(one.progress.plan?.windowMs, 1000);
    assert.deepEqual(await store.listBars({ provider, interval: '1s' }), expectedBars(events, 1000));
    const oneSignals = await signalRows(1000);
    assert.ok(oneSignals.length > 0 && oneSignals.length === one.progress.counts.signals, `1 s signals (${oneSignals.length})`);

    const two = await replayAt('2s');
    assert.equal(two.workflowId, `${replayWorkflowId(dataset, from, to)}-2s`, 'another window, another replay');
    assert.equal(two.progress.plan?.windowMs, 2000);
    assert.deepEqual(await store.listBars({ provider, interval: '2s' }), expectedBars(events, 2000));
    assert.deepEqual(await store.listBars({ provider, interval: '1s' }), expectedBars(events, 1000), '1 s bars untouched');
    const twoSignals = await signalRows(2000);
    assert.ok(twoSignals.length > 0 && twoSignals.length === two.progress.counts.signals, `2 s signals (${twoSignals.length})`);
    assert.deepEqual(await signalRows(1000), oneSignals, 'the 1 s signals are not overwritten by the 2 s replay');
    assert.ok(twoSignals.every((r) => r.source === `replay:${two.workflowId}`));
  });

  it('datasets paths resolve against the file naming them whatever the cwd, and the replay carries the resolved dataset', async function () {
    // A config and catalog of the CLI's own, naming each other and the data relatively, in a
    // directory the worker knows nothing of: the worker's catalog has no such dataset.
    const own = resolve(dir, 'elsewhere');
    mkdirSync(resolve(own, 'data'), { recursive: true });
    writeFileSync(
      resolve(own, 'data', `${DATE}.jsonl`),
      inRange(dayEvents(), '2025-10-01T16:00:00Z', '2025-10-01T16:05:00Z')
        .map((e) => JSON.stringify(e))
        .join('\n') + '\n',
    );
    const name = `${tag}_relative`;
    writeFileSync(resolve(own, 'catalog.yaml'), yaml.dump({ datasets: { [name]: { format: 'jsonl', path: 'data', provider } } }));
    const ownConfig = resolve(own, 'streaming.yaml');
    writeFileSync(ownConfig, yaml.dump({ ...config, replay: { ...config.replay, datasets_file: 'catalog.yaml' } }));
    const cwd = resolve(dir, 'day'); // any other directory

    const ls = await cliIn(cwd, ['dataset', 'ls', '--config', ownConfig]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, new RegExp(`^${name}\\s+jsonl\\s+${resolve(own, 'data')}\\s+1 files, \\d+ events`, 'm'));

    const replayed = await cliIn(cwd, [
      'stream',
      'replay',
      '--config',
      ownConfig,
      '--dataset',
      name,
      '--from',
      '2025-10-01T16:00:00Z',
      '--to',
      '2025-10-01T16:05:00Z',
    ]);
    assert.equal(replayed.code, 0, replayed.stderr + replayed.stdout);
    assert.match(replayed.stdout, /finished: \d+ chunks, [1-9]\d* events/);
  });
});
