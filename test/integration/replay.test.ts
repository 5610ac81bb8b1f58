import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import yaml from 'js-yaml';
import { shardOf, shardStream } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import type { StreamEventV1 } from '../../pipeline/contracts/index.js';
import { parseIsoToMicros } from '../../pipeline/contracts/index.js';
import { generateSampleDay } from '../../pipeline/datasets/index.js';
import type { Database } from '../../store/index.js';
import { JobRunTracker, StoreClient } from '../../store/index.js';
import type { ReplayProgress, ReplayWorkflowInput } from '../../workflows/index.js';
import { microBatchWorkflowId } from '../../workflows/index.js';
import { expectedBars } from '../helpers/expected-bars.js';
import {
  cleanupTestRun,
  connectRedis,
  connectStore,
  createTestWorker,
  groupState,
  REPO_ROOT,
  startTemporal,
  temporalCliPath,
  testConfig,
  uniqueTag,
} from '../helpers/services.js';
import type { WorkerProcess } from '../helpers/worker-process.js';
import { startWorkerProcess, writeConfigFile } from '../helpers/worker-process.js';
import { waitFor } from '../helpers/wait.js';

const DATE = '2025-10-01';
const SEED = 20251001;

function inRange(events: readonly StreamEventV1[], from: string, to: string): StreamEventV1[] {
  const a = Date.parse(from) * 1000,
    b = Date.parse(to) * 1000;
  return events.filter((e) => {
    const us = parseIsoToMicros(e.src_ts)!;
    return us >= a && us < b;
  });
}

describe('replay (dataset → own stream → MicroBatcher under Temporal → PostgreSQL)', function () {
  this.timeout(240_000);
  let env: TestWorkflowEnvironment;
  let db: Kysely<Database>;
  let redis: Redis;
  let config: StreamingConfig;
  let tag: string;
  let provider: string;
  let dayEvents: StreamEventV1[];
  let worker: Worker;
  let running: Promise<void>;
  const processes: WorkerProcess[] = [];

  before(async function () {
    env = await startTemporal();
    tag = uniqueTag();
    const dir = resolve(REPO_ROOT, '.data/test', `${tag}-datasets`);
    mkdirSync(dir, { recursive: true });
    const catalog = resolve(dir, 'datasets.yaml');
    config = testConfig(tag, { temporal: { address: env.address }, replay: { datasets_file: catalog, stream: `${tag}.replay` } });
    provider = config.producers.synthetic.provider;
    writeFileSync(
      catalog,
      yaml.dump({
        datasets: {
          day: { format: 'jsonl', path: resolve(dir, 'day'), provider },
          // The day's stored 1 s bars, re-aggregated by a replay into 5 s bars (another interval, same provider).
          stored: { format: 'store', provider, interval: '1s' },
        },
      }),
    );
    dayEvents = generateSampleDay({ date: DATE, provider, symbols: ['SPY'], seed: SEED, ticksPerDay: 60_000 });
    mkdirSync(resolve(dir, 'day'), { recursive: true });
    writeFileSync(resolve(dir, 'day', `${DATE}.jsonl`), dayEvents.map((e) => JSON.stringify(e)).join('\n') + '\n');
    redis = await connectRedis(config);
    db = await connectStore(config);
    worker = await createTestWorker(env, config, db);
    running = worker.run();
  });

  after(async function () {
    for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    worker?.shutdown();
    await running?.catch(() => undefined);
    await db?.deleteFrom('job_runs').where('job_name', 'like', `mdp-replay-${tag}.%`).execute();
    await cleanupTestRun(config, { redis, db, env });
  });

  const replay = (workflowId: string, input: ReplayWorkflowInput, taskQueue = config.temporal.task_queue) =>
    env.client.workflow.execute('replayWorkflow', { taskQueue, workflowId, args: [input] }) as Promise<ReplayProgress>;

  it('lands the bars of a whole day; replaying it again changes nothing, and both runs are audited', async function () {
    const store = new StoreClient(db);
    const expected = expectedBars(dayEvents, config.micro_batch.window_ms);
    const input: ReplayWorkflowInput = { dataset: 'day', from: DATE, to: '2025-10-02' };

    const began = performance.now();
    const first = await replay(`mdp-replay-${tag}.day-1`, input);
    const wallMs = performance.now() - began;
    assert.equal(first.phase, 'finished');
    assert.equal(first.counts.events, dayEvents.length);
    assert.equal(first.counts.accepted, dayEvents.length);
    assert.equal(first.counts.late + first.counts.invalid + first.counts.duplicates, 0);
    assert.equal(first.counts.inserted, expected.length);
    assert.equal(first.chunksDone, first.chunksTotal);
    assert.equal(first.chunksTotal, 26, '6.5 h session in 15 min chunks, empty chunks skipped');
    assert.deepEqual(await store.listBars({ provider }), expected);
    console.log(
      `      one-day replay: ${dayEvents.length} events → ${expected.length} bars in ${Math.round(wallMs)} ms wall ` +
        `(${Math.round(dayEvents.length / (wallMs / 1000))} events/s, ${Math.round(expected.length / (wallMs / 1000))} bars/s; ` +
        `in-chunk ${Math.round(first.eventsPerSecond)} events/s)`,
    );

    const rows = () =>
      db.selectFrom('bars_ohlcv').select(['ts', 'open', 'close', 'volume', 'updated_at']).where('provider', '=', provider).orderBy('ts').execute();
    const before = await rows();
    const second = await replay(`mdp-replay-${tag}.day-2`, input);
    assert.equal(second.counts.inserted, 0, '0 duplicate rows');
    assert.equal(second.counts.updated, 0, '0 changed rows');
    assert.equal(second.counts.unchanged, expected.length);
    assert.deepEqual(await rows(), before, 'no row rewritten');

    const jobs = new JobRunTracker(db);
    for (const [id, inserted] of [
      [`mdp-replay-${tag}.day-1`, expected.length],
      [`mdp-replay-${tag}.day-2`, 0],
    ] as const) {
      const [run] = await jobs.listRecent(id, 5);
      assert.ok(run, `job_runs row of ${id}`);
      assert.equal(run.kind, 'replay');
      assert.equal(run.status, 'success');
      assert.equal(run.counts.events, dayEvents.length);
      assert.equal(run.counts.bars, expected.length);
      assert.equal(run.counts.inserted, inserted);
      assert.equal(run.meta.dataset, 'day');
    }
    // The replay's own streams are gone once their chunks are done.
    assert.deepEqual(await redis.keys(`${tag}.replay.*`), []);
  });

  it('lands exactly the bars the live pipeline wrote for the same events (parity)', async function () {
    const store = new StoreClient(db);
    await db.deleteFrom('bars_ohlcv').where('provider', '=', provider).execute();
    const from = '2025-10-01T13:30:00Z',
      to = '2025-10-01T14:00:00Z';
    const events = inRange(dayEvents, from, to);
    const shard = shardOf(provider, 'SPY', config.bus.shards);
    const stream = shardStream(config.bus.redis.stream, shard);
    for (let i = 0; i < events.length; i += 1000) {
      const pipe = redis.pipeline();
      for (const e of events.slice(i, i + 1000)) pipe.xadd(stream, '*', 'd', JSON.stringify(e));
      await pipe.exec();
    }
    const expected = expectedBars(events, config.micro_batch.window_ms);
    const live = await env.client.workflow.start('streamConsumerWorkflow', {
      taskQueue: config.temporal.task_queue,
      workflowId: microBatchWorkflowId(config.bus.redis.stream, shard),
      args: [{ role: 'microbatch', shard }],
    });
    await waitFor('live run persisted every window', 60_000, async () => {
      const g = await groupState(redis, stream, config.bus.redis.consumer_group);
      return g && g.pending === 0 && g.lag === 0 && (await store.countBars(provider)) === expected.length ? true : undefined;
    });
    await live.signal('drain');
    await live.result();
    const liveBars = await store.listBars({ provider });
    assert.deepEqual(liveBars, expected);

    await db.deleteFrom('bars_ohlcv').where('provider', '=', provider).execute();
    const result = await replay(`mdp-replay-${tag}.parity`, { dataset: 'day', from, to, chunkSpan: '5m' });
    assert.equal(result.chunksDone, 6);
    assert.equal(result.counts.inserted, expected.length);
    assert.deepEqual(await store.listBars({ provider }), liveBars, 'replayed bars equal the live bars');
  });

  it('resumes after its worker is SIGKILLed mid-replay, redoing only the chunk in flight', async function () {
    const store = new StoreClient(db);
    await db.deleteFrom('bars_ohlcv').where('provider', '=', provider).execute();
    const procConfig = testConfig(tag, {
      temporal: { address: env.address, task_queue: `${tag}-proc-queue` },
      replay: { datasets_file: config.replay.datasets_file, stream: `${tag}.replay` },
      telemetry: { log_level: 'WARNING' },
    });
    const configFile = writeConfigFile(procConfig, `replay-${tag}`);
    const from = '2025-10-01T13:30:00Z',
      to = '2025-10-01T13:50:00Z';
    const expected = expectedBars(inRange(dayEvents, from, to), config.micro_batch.window_ms);
    const workflowId = `mdp-replay-${tag}.kill`;
    processes.push(startWorkerProcess(configFile, `replay-${tag}-1`));
    // 1-minute chunks at 60× speed: about a second per chunk, so the kill lands mid-replay.
    const handle = await env.client.workflow.start('replayWorkflow', {
      taskQueue: procConfig.temporal.task_queue,
      workflowId,
      args: [{ dataset: 'day', from, to, chunkSpan: '1m', speed: 60 } satisfies ReplayWorkflowInput],
    });
    const atKill = await waitFor(
      'a few chunks done and one in flight',
      90_000,
      async () => {
        const p = await handle.query<ReplayProgress>('progress');
        return p.chunksDone >= 4 && p.currentChunk !== null ? p : undefined;
      },
      { everyMs: 100 },
    );
    processes[0].child.kill('SIGKILL');
    await processes[0].exited;
    processes.push(startWorkerProcess(configFile, `replay-${tag}-2`));
    const result = (await handle.result()) as ReplayProgress;

    assert.equal(result.phase, 'finished');
    assert.equal(result.chunksDone, 20);
    assert.equal(result.chunksTotal, 20);
    console.log(`      killed at chunk ${atKill.chunksDone + 1}/20; redone chunks: ${result.redoneChunks}`);
    assert.ok(result.redoneChunks <= 1, `at most the chunk in flight is redone (got ${result.redoneChunks})`);
    assert.ok(atKill.chunksDone < result.chunksDone);
    // Each chunk was scheduled exactly once: completed chunks were never run again.
    const history = await handle.fetchHistory();
    const scheduled = (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runReplayChunk');
    assert.equal(scheduled.length, 20);
    assert.deepEqual(await store.listBars({ provider }), expected, 'bars equal an independent computation: nothing lost, nothing doubled');
    const [run] = await new JobRunTracker(db).listRecent(workflowId, 5);
    assert.equal(run.status, 'success');
    assert.equal(run.counts.bars, result.counts.bars);
    processes[1].child.kill('SIGTERM');
    await processes[1].exited;
  });

  it('starts from the real `temporal workflow start` command with JSON input, shows its memo and completes', async function () {
    await db.deleteFrom('bars_ohlcv').where('provider', '=', provider).execute();
    const from = '2025-10-01T15:00:00Z',
      to = '2025-10-01T15:30:00Z';
    const workflowId = `mdp-replay-${tag}.cli`;
    const input = JSON.stringify({ dataset: 'day', from, to });
    await promisify(execFile)(temporalCliPath(), [
      'workflow',
      'start',
      '--address',
      env.address,
      '--namespace',
      config.temporal.namespace,
      '--task-queue',
      config.temporal.task_queue,
      '--type',
      'replayWorkflow',
      '--workflow-id',
      workflowId,
      '--input',
      input,
    ]);
    const handle = env.client.workflow.getHandle(workflowId);
    const result = (await handle.result()) as ReplayProgress;
    assert.equal(result.phase, 'finished');
    const expected = expectedBars(inRange(dayEvents, from, to), config.micro_batch.window_ms);
    assert.equal(result.counts.bars, expected.length);
    assert.deepEqual(await new StoreClient(db).listBars({ provider }), expected);
    const description = await handle.describe();
    assert.equal(description.memo?.dataset, 'day');
    assert.equal(description.memo?.from, from);
    assert.equal(description.memo?.status, 'finished');
  });
  it('replays a time range of the store: stored bars re-aggregated into a longer window', async function () {
    const store = new StoreClient(db);
    // The day's 1 s bars (a replay of the file is idempotent, so this works after the first test too).
    await replay(`mdp-replay-${tag}.stored-source`, { dataset: 'day', from: DATE, to: '2025-10-02' });
    const oneSecond = await store.listBars({ provider, interval: '1s' });
    assert.ok(oneSecond.length > 1000, "the day's 1 s bars are stored");
    const result = await replay(`mdp-replay-${tag}.stored-5s`, { dataset: 'stored', from: DATE, to: '2025-10-02', windowMs: 5000 });
    assert.equal(result.phase, 'finished');
    assert.equal(result.counts.events, oneSecond.length, 'one replayed event per stored bar');
    const ohlcv = (bars: readonly { symbol: string; tsMs: number; open: number; high: number; low: number; close: number; volume: number }[]) =>
      bars.map((b) => [b.symbol, b.tsMs, b.open, b.high, b.low, b.close, b.volume]);
    // An independent 5 s aggregation of the stored 1 s bars (other tests of this file store 1 s
    // bars of the same day too, so the stored bars, not the ticks, are the reference).
    const byWindow = new Map<string, typeof oneSecond>();
    for (const bar of oneSecond) {
      const key = `${bar.symbol}|${Math.floor(bar.tsMs / 5000) * 5000}`;
      byWindow.set(key, [...(byWindow.get(key) ?? []), bar]);
    }
    const expected = [...byWindow]
      .map(([key, bars]) => {
        const sorted = [...bars].sort((a, b) => a.tsMs - b.tsMs);
        const [symbol, ts] = key.split('|') as [string, string];
        return {
          symbol,
          tsMs: Number(ts),
          open: sorted[0].open,
          close: sorted.at(-1)!.close,
          high: Math.max(...bars.map((b) => b.high)),
          low: Math.min(...bars.map((b) => b.low)),
          volume: bars.reduce((v, b) => v + b.volume, 0),
        };
      })
      .sort((a, b) => a.symbol.localeCompare(b.symbol) || a.tsMs - b.tsMs);
    assert.deepEqual(ohlcv(await store.listBars({ provider, interval: '5s' })), ohlcv(expected));
  });
});
