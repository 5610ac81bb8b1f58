/**
 * `mdp dataset fetch ibkr` against the fake TWS, through the real @stoqey/ib client and the real
 * worker wiring: pacing compliance (and the same run unpaced, which must violate), the fetched
 * dataset replayed into exactly the tape's bars, and a worker SIGKILLed mid-backfill.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import yaml from 'js-yaml';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import type { Bar, StreamEventV1 } from '../../pipeline/contracts/index.js';
import { formatMicros, makeEventId } from '../../pipeline/contracts/index.js';
import type { Database } from '../../store/index.js';
import { JobRunTracker, StoreClient } from '../../store/index.js';
import { defaultPayloadConverter } from '@temporalio/common';
import type { IbkrChunkHeartbeat } from '../../activities/index.js';
import type { IbkrBackfillProgress, IbkrBackfillWorkflowInput, ReplayProgress } from '../../workflows/index.js';
import { ibkrBackfillWorkflowId, MdpDataset, MdpProvider, MdpRole } from '../../workflows/index.js';
import { expectedBars } from '../helpers/expected-bars.js';
import { FakeTws, generateTape } from '../helpers/fake-tws/index.js';
import type { Tape } from '../helpers/fake-tws/index.js';
import { HistoricalTap } from '../helpers/fake-tws/historical-tap.js';
import { cleanupTestRun, connectRedis, connectStore, createTestWorker, REPO_ROOT, startTemporal, testConfig, uniqueTag } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';
import type { WorkerProcess } from '../helpers/worker-process.js';
import { runNodeScript, startWorkerProcess, writeConfigFile } from '../helpers/worker-process.js';

/** The tape: 20 minutes of SPY from 2025-10-01 13:30 UTC (09:30 New York), 4 trades a second on average. */
const TAPE_START_SEC = Date.UTC(2025, 9, 1, 13, 30) / 1000;
const TAPE_SECONDS = 20 * 60;
const iso = (sec: number) => new Date(sec * 1000).toISOString().replace('.000Z', 'Z');

/** Scaled-down pacing: at most 6 historical requests in any 1.5 s (IB: 60 in 10 min), 5 per contract in 1 s (IB: 5 in 2 s). */
const FAKE_PACING = { windowMax: 6, windowMs: 1500, sameContractMax: 5, sameContractMs: 1000 };
const MDP_PACING = { historical_window_max: 6, historical_window_ms: 1500, historical_same_contract_max: 5, historical_same_contract_ms: 1000 };

/** The tape's trades as v1 ticks (seq = print order), for the independent bar computation. */
function tapeEvents(tape: Tape, provider: string): StreamEventV1[] {
  return tape.ticks.map((t, i) => {
    const srcTs = formatMicros((t.time * 1000 + t.ms) * 1000);
    return {
      ver: 1,
      provider,
      symbol: t.symbol,
      kind: 'tick',
      src_ts: srcTs,
      ingest_ts: srcTs,
      o: t.price,
      h: t.price,
      l: t.price,
      c: t.price,
      v: t.size,
      seq: i,
      event_id: makeEventId(provider, t.symbol, srcTs, i),
    };
  });
}

/** A bar without its trade count (a replay of bars counts bars, a tick oracle counts ticks). */
const ohlcv = (b: Bar) => ({ symbol: b.symbol, interval: b.interval, tsMs: b.tsMs, open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume });

describe('IBKR backfill (mdp dataset fetch ibkr → fake TWS via @stoqey/ib → dataset → replay)', function () {
  this.timeout(300_000);
  let env: TestWorkflowEnvironment;
  let db: Kysely<Database>;
  let redis: Redis;
  let tag: string;
  let dir: string;
  let catalog: string;
  let provider: string;
  let tape: Tape;
  let base: StreamingConfig;
  const workers: { worker: Worker; running: Promise<void> }[] = [];
  const processes: WorkerProcess[] = [];
  const stops: (() => Promise<void>)[] = [];

  before(async function () {
    env = await startTemporal();
    tag = uniqueTag();
    provider = `ibkr-${tag}`;
    dir = resolve(REPO_ROOT, '.data/test', `${tag}-backfill`);
    mkdirSync(dir, { recursive: true });
    catalog = join(dir, 'datasets.yaml');
    writeFileSync(catalog, yaml.dump({ version: 1, datasets: { unrelated: { format: 'jsonl', path: join(dir, 'unrelated') } } }));
    tape = generateTape({ symbols: ['SPY'], startSec: TAPE_START_SEC, durationSec: TAPE_SECONDS, seed: 20251001 });
    base = config(0, {});
    redis = await connectRedis(base);
    db = await connectStore(base);
  });

  after(async function () {
    for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    for (const w of workers) w.worker.shutdown();
    await Promise.all(workers.map((w) => w.running.catch(() => undefined)));
    for (const stop of stops) await stop().catch(() => undefined);
    await db?.deleteFrom('bars_ohlcv').where('provider', '=', provider).execute();
    await db?.deleteFrom('job_runs').where('job_name', 'like', `mdp-%-${tag}%`).execute();
    await cleanupTestRun(base, { redis, db, env });
  });

  /** This file's config: its catalog and dataset directory, the fake TWS at `port`, `pacing` over IB's. */
  function config(port: number, pacing: Record<string, unknown>, queue = 'queue'): StreamingConfig {
    return testConfig(tag, {
      temporal: { address: env.address, task_queue: `${tag}-${queue}` },
      replay: { datasets_file: catalog, stream: `${tag}.replay` },
      producers: {
        ibkr: {
          host: '127.0.0.1',
          port: port || 1,
          client_id: 31,
          provider,
          backfill_dir: dir,
          contracts: [{ symbol: 'SPY', sec_type: 'STK', exchange: 'SMART', currency: 'USD', primary_exchange: 'ARCA' }],
          pacing,
        },
      },
    });
  }

  /** A fake TWS (historical data only, pacing scaled) behind a tap that logs every reqHistoricalData. */
  async function startTws(options: { latencyMs?: number } = {}): Promise<{ tws: FakeTws; tap: HistoricalTap; logFile: string }> {
    const logFile = resolve(REPO_ROOT, '.data/test', `${tag}-fake-tws-${stops.length}.log`);
    const tws = await FakeTws.start({
      tape,
      live: false,
      pacing: FAKE_PACING,
      historicalLatencyMs: options.latencyMs ?? 20,
      log: (line) => appendFileSync(logFile, line + '\n'),
    });
    const tap = await HistoricalTap.start(tws.port);
    stops.push(
      () => tap.stop(),
      () => tws.stop(),
    );
    return { tws, tap, logFile };
  }

  async function startWorker(cfg: StreamingConfig): Promise<void> {
    const worker = await createTestWorker(env, cfg, db, { logFile: resolve(REPO_ROOT, '.data/test', `${tag}-worker.log`) });
    workers.push({ worker, running: worker.run() });
  }

  const backfill = (cfg: StreamingConfig, input: IbkrBackfillWorkflowInput) =>
    env.client.workflow.execute('ibkrBackfillWorkflow', {
      taskQueue: cfg.temporal.task_queue,
      workflowId: `${ibkrBackfillWorkflowId(input)}-${tag}`,
      args: [input],
    }) as Promise<IbkrBackfillProgress>;

  const replay = (cfg: StreamingConfig, dataset: string, windowMs: number, name: string) =>
    env.client.workflow.execute('replayWorkflow', {
      taskQueue: cfg.temporal.task_queue,
      workflowId: `mdp-replay-${tag}.${name}`,
      args: [{ dataset, from: iso(TAPE_START_SEC), to: iso(TAPE_START_SEC + 3600), windowMs, inference: 'off' }],
    }) as Promise<ReplayProgress>;

  /** Most requests any `windowMs` of the log holds (the tap's independent view of the pacing). */
  function busiestWindow(times: readonly number[], windowMs: number): number {
    let most = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[i] - times[j] >= windowMs) j++;
      most = Math.max(most, i - j + 1);
    }
    return most;
  }

  it('pacing: 10× the window budget of requests, paced → 0 violations; the same run unpaced → violations', async function () {
    // One hour of 1 s bars in 60 s chunks: 60 requests against a budget of 6 per window (20 with
    // the tape's bars, 40 after it that IB answers with "no data").
    const input: IbkrBackfillWorkflowInput = {
      symbol: 'SPY',
      from: iso(TAPE_START_SEC),
      to: iso(TAPE_START_SEC + 3600),
      bar: '1s',
      chunkSeconds: 60,
      dataset: 'paced',
    };
    const paced = await startTws();
    const pacedConfig = config(paced.tap.port, MDP_PACING, 'paced');
    await startWorker(pacedConfig);
    const began = Date.now();
    const handle = await env.client.workflow.start('ibkrBackfillWorkflow', {
      taskQueue: pacedConfig.temporal.task_queue,
      workflowId: `${ibkrBackfillWorkflowId(input)}-${tag}`,
      args: [input],
    });
    // While it runs, the Web UI's view: the pending chunk's heartbeat (chunk, phase, time waited)
    // and the progress query.
    const seen = await waitFor('a chunk heartbeating while it waits for the pacer, and progress', 60_000, async () => {
      const { raw } = await handle.describe();
      const pending = raw.pendingActivities?.find((a) => a.activityType?.name === 'fetchIbkrChunk' && a.heartbeatDetails?.payloads?.length);
      const progress = await handle.query<IbkrBackfillProgress>('progress');
      if (!pending || progress.chunksDone < 12) return undefined;
      const details = defaultPayloadConverter.fromPayload<IbkrChunkHeartbeat>(pending.heartbeatDetails!.payloads![0]);
      return details.phase === 'pacing' && details.waitedMs === 0 ? { details, progress } : undefined;
    });
    assert.equal(seen.details.chunksTotal, 60);
    assert.match(seen.details.chunk, /^2025-10-01T1\d:\d\d:00\.000Z \.\. 2025-10-01T1\d:\d\d:00\.000Z$/);
    assert.ok(seen.progress.counts.pacingWaitMs > 0, 'the pacer made requests wait');
    assert.ok(seen.progress.etaMs !== null && seen.progress.etaMs > 0, 'an ETA');
    const result = (await handle.result()) as IbkrBackfillProgress;
    const wallMs = Date.now() - began;

    assert.equal(result.phase, 'finished');
    assert.equal(result.chunksTotal, 60);
    assert.equal(result.counts.requests, 60);
    assert.equal(result.counts.empty, 40, 'chunks after the tape: IB has no data, recorded as empty');
    assert.equal(result.counts.bars, expectedBars(tapeEvents(tape, provider), 1000).length);
    assert.deepEqual(paced.tws.violations, [], '0 pacing violations reported by the fake TWS');
    assert.equal(paced.tap.requests.length, 60, 'each chunk requested once');
    const times = paced.tap.requests.map((r) => r.atMs);
    assert.ok(
      busiestWindow(times, FAKE_PACING.windowMs) <= FAKE_PACING.windowMax,
      `at most ${FAKE_PACING.windowMax} requests in any ${FAKE_PACING.windowMs} ms`,
    );
    // The budget did bind: 60 requests at 6 per 1.5 s cannot go faster than 9 windows.
    assert.ok(wallMs >= 9 * FAKE_PACING.windowMs, `paced run took ${wallMs} ms`);
    console.log(`      60 requests, budget 6 per ${FAKE_PACING.windowMs} ms: ${wallMs} ms wall, pacing wait ${result.counts.pacingWaitMs} ms, 0 violations`);

    // The same backfill with the pacer off (a fresh TWS, a fresh dataset): TWS answers with 162.
    const unpaced = await startTws();
    const unpacedConfig = config(unpaced.tap.port, { ...MDP_PACING, enabled: false }, 'unpaced');
    await startWorker(unpacedConfig);
    const unpacedRun = await env.client.workflow.start('ibkrBackfillWorkflow', {
      taskQueue: unpacedConfig.temporal.task_queue,
      workflowId: `${ibkrBackfillWorkflowId(input)}-${tag}-unpaced`,
      args: [{ ...input, dataset: 'unpaced' }],
    });
    await waitFor('the unpaced backfill to trip the fake TWS', 60_000, () => Promise.resolve(unpaced.tws.pacingViolations > 0 ? true : undefined));
    await unpacedRun.terminate('the test saw the violations it was waiting for');
    assert.ok(
      unpaced.tws.violations.some((v) => v.code === 162 && v.rule.startsWith('historical_')),
      JSON.stringify(unpaced.tws.violations.slice(0, 3)),
    );
  });

  it('the fetched dataset replays into exactly the bars of the tape (1 s bars as fetched, and 5 s bars of them)', async function () {
    const { tap } = await startTws();
    const cfg = config(tap.port, MDP_PACING, 'replay');
    await startWorker(cfg);
    const input: IbkrBackfillWorkflowInput = {
      symbol: 'SPY',
      from: iso(TAPE_START_SEC),
      to: iso(TAPE_START_SEC + TAPE_SECONDS),
      bar: '1s',
      chunkSeconds: 300,
      dataset: 'exact',
    };
    // Through the command line: progress lines, then the summary.
    const cli = await runNodeScript('dist/client/cli.js', [
      ...['dataset', 'fetch', 'ibkr', '--config', writeConfigFile(cfg, `${tag}-fetch-cli`), '--symbol', 'SPY', '--bar', '1s'],
      ...['--from', input.from, '--to', input.to, '--chunk-seconds', '300', '--dataset', 'exact'],
    ]);
    assert.equal(cli.code, 0, cli.stderr);
    const workflowId = ibkrBackfillWorkflowId({ ...input, what: 'TRADES' });
    assert.match(cli.stdout, new RegExp(`^${workflowId}: started$`, 'm'));
    assert.match(cli.stdout, /^\[#+\] 100% \| 4\/4 chunks \(0 on disk, 0 empty\) \| \d+ bars \| 4 requests, pacing wait \d+:\d\d \| done in \d+:\d\d$/m);
    assert.match(cli.stdout, /^backfill .* finished: 4 chunks → \d+ 1s TRADES bars of SPY/m);
    assert.match(cli.stdout, /^dataset exact: .*exact \(registered in .*datasets\.yaml\), provider ibkr-/m);
    assert.match(cli.stdout, /^replay it: mdp stream replay --dataset exact --from 2025-10-01T13:30:00Z --to 2025-10-01T13:50:00Z$/m);
    const fetched = (await env.client.workflow.getHandle(workflowId).result()) as IbkrBackfillProgress;
    assert.equal(fetched.chunksTotal, 4);
    assert.equal(fetched.counts.empty, 0);

    // Legible in the Web UI: found by its dataset, summarised, its chunk activities by their New York time range.
    const described = await env.client.workflow.getHandle(workflowId).describe();
    assert.deepEqual(
      [MdpRole, MdpProvider, MdpDataset].map((key) => described.typedSearchAttributes.get(key)),
      ['backfill', fetched.plan!.provider, 'exact'],
    );
    assert.equal(await described.staticSummary(), 'IBKR backfill SPY 1 s bars 2025-10-01T13:30:00Z → 13:50:00Z');
    const metadata = await env.client.workflow.getHandle(workflowId).query<{ currentDetails: string }>('__temporal_workflow_metadata');
    assert.match(metadata.currentDetails, /^finished: 4 of 4 chunks in \d+:\d\d {2}\n[\d,]+ bars · 4 requests · 0 chunks on disk · pacing wait \d+:\d\d$/);
    const summaries = ((await env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [])
      .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'fetchIbkrChunk')
      .map((e) => (e.userMetadata?.summary ? defaultPayloadConverter.fromPayload<string>(e.userMetadata.summary) : '(none)'));
    assert.deepEqual(summaries, ['09:30–09:35 ET', '09:35–09:40 ET', '09:40–09:45 ET', '09:45–09:50 ET']);

    // The dataset: registered in the catalog, one file per chunk of v1 bar events.
    const def = (yaml.load(readFileSync(catalog, 'utf8')) as { datasets: Record<string, { format: string; path: string; provider: string }> }).datasets.exact;
    assert.deepEqual({ format: def.format, provider: def.provider }, { format: 'jsonl', provider });
    const files = readdirSync(fetched.plan!.datasetDir).filter((f) => f.endsWith('.jsonl'));
    assert.equal(files.length, 4);
    const rows = files.flatMap((f) =>
      readFileSync(join(fetched.plan!.datasetDir, f), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as StreamEventV1),
    );
    assert.ok(rows.every((e) => e.kind === 'bar' && e.interval === '1s' && e.provider === provider && e.seq === 0));

    const events = tapeEvents(tape, provider);
    const store = new StoreClient(db);
    for (const windowMs of [1000, 5000]) {
      const result = await replay(cfg, 'exact', windowMs, `exact-${windowMs}`);
      const expected = expectedBars(events, windowMs);
      assert.equal(result.counts.events, rows.length);
      assert.equal(result.counts.duplicates + result.counts.late + result.counts.invalid, 0);
      assert.equal(result.counts.inserted, expected.length);
      const interval = windowMs === 1000 ? '1s' : '5s';
      const landed = (await store.listBars({ provider })).filter((b) => b.interval === interval);
      assert.deepEqual(landed.map(ohlcv), expected.map(ohlcv), `${interval} bars equal the tape's`);
    }

    const [run] = await new JobRunTracker(db).listRecent(workflowId, 1);
    await db.deleteFrom('job_runs').where('job_name', '=', workflowId).execute();
    assert.equal(run.kind, 'backfill');
    assert.equal(run.status, 'success');
    assert.equal(run.counts.bars, rows.length);
    assert.equal(run.counts.chunksDone, 4);
    assert.equal(run.meta.dataset, 'exact');

    // Fetching the same range again requests nothing: every chunk is on disk.
    const before = tap.requests.length;
    const again = await backfill(cfg, { ...input });
    assert.equal(again.counts.requests, 0);
    assert.equal(again.counts.cached, 4);
    assert.equal(tap.requests.length, before);
  });

  it('a worker SIGKILLed mid-backfill: the next one requests only the chunk in flight again; no duplicate rows after replay', async function () {
    const { tws, tap } = await startTws({ latencyMs: 300 });
    const cfg = config(tap.port, { ...MDP_PACING, historical_window_max: 4, historical_window_ms: 1000 }, 'kill');
    const configFile = writeConfigFile(cfg, `${tag}-backfill-kill`);
    const input: IbkrBackfillWorkflowInput = {
      symbol: 'SPY',
      from: iso(TAPE_START_SEC),
      to: iso(TAPE_START_SEC + TAPE_SECONDS),
      bar: '1s',
      chunkSeconds: 30,
      dataset: 'killed',
    };
    const first = startWorkerProcess(configFile, `${tag}-backfill-worker-1`);
    processes.push(first);
    const handle = await env.client.workflow.start('ibkrBackfillWorkflow', {
      taskQueue: cfg.temporal.task_queue,
      workflowId: `${ibkrBackfillWorkflowId(input)}-${tag}`,
      args: [input],
    });
    // Kill as the 10th request goes out: TWS answers after 300 ms, so that chunk is in flight.
    await waitFor('10 requests', 120_000, () => Promise.resolve(tap.requests.length >= 10 ? true : undefined), { everyMs: 5 });
    first.child.kill('SIGKILL');
    await first.exited;
    const inFlight = HistoricalTap.key(tap.requests[9]);

    processes.push(startWorkerProcess(configFile, `${tag}-backfill-worker-2`));
    const result = (await handle.result()) as IbkrBackfillProgress;
    assert.equal(result.phase, 'finished');
    assert.equal(result.chunksTotal, 40);

    const counts = new Map<string, number>();
    for (const r of tap.requests) counts.set(HistoricalTap.key(r), (counts.get(HistoricalTap.key(r)) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n > 1).map(([key]) => key);
    assert.ok(
      twice.every((key) => key === inFlight),
      `requested twice: ${JSON.stringify(twice)} (in flight at the kill: ${inFlight})`,
    );
    assert.ok(twice.length <= 1);
    assert.equal(counts.size, 40, 'every chunk requested');
    assert.equal(tap.requests.length, 40 + twice.length);
    assert.deepEqual(tws.violations, []);
    const leftovers = readdirSync(result.plan!.datasetDir).filter((f) => f.includes('.tmp-'));
    assert.deepEqual(leftovers, [], 'no partial file left by the killed worker');
    assert.equal(readdirSync(result.plan!.datasetDir).filter((f) => f.endsWith('.jsonl')).length, 40);

    // Replayed: every bar once, equal to the tape's.
    await db.deleteFrom('bars_ohlcv').where('provider', '=', provider).execute();
    const replayConfig = config(tap.port, MDP_PACING, 'kill-replay');
    await startWorker(replayConfig);
    const replayed = await replay(replayConfig, 'killed', 1000, 'killed');
    const expected = expectedBars(tapeEvents(tape, provider), 1000);
    assert.equal(replayed.counts.duplicates, 0, 'no bar twice in the dataset');
    assert.equal(replayed.counts.inserted, expected.length);
    assert.deepEqual((await new StoreClient(db).listBars({ provider })).map(ohlcv), expected.map(ohlcv));
  });

  it('mdp dataset fetch ibkr: a bad flag exits 2 naming the flag and its value', async function () {
    const cfgFile = writeConfigFile(base, `${tag}-cli`);
    const cases: [string[], RegExp][] = [
      [['--bar', '2s'], /--bar must be one of 1s, 5s, 1m \(got "2s"\)/],
      [['--bar', '1s', '--what', 'BID_ASK'], /--what must be TRADES or MIDPOINT \(got "BID_ASK"\)/],
      [['--bar', '1s', '--from', '2025-10-32'], /--from must be a date/],
      [['--bar', '1s', '--to', '2999-01-01'], /--to \(2999-01-01\) is in the future/],
    ];
    for (const [flags, expected] of cases) {
      const args = ['dataset', 'fetch', 'ibkr', '--config', cfgFile, '--symbol', 'SPY', '--from', '2025-10-01', '--to', '2025-10-03', ...flags];
      const run = await runNodeScript('dist/client/cli.js', args);
      assert.equal(run.code, 2, `${flags.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, expected);
    }
    const other = await runNodeScript('dist/client/cli.js', ['dataset', 'fetch', 'yahoo', '--config', cfgFile]);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /dataset fetch takes one source, ibkr \(got "yahoo"\)/);
  });

  it('an IB error fails the backfill with its code and the request (exit 1), and its job_runs row says why', async function () {
    const { tap } = await startTws();
    const cfg = config(tap.port, MDP_PACING, 'errors');
    await startWorker(cfg);
    const from = iso(TAPE_START_SEC),
      to = iso(TAPE_START_SEC + 600);
    const run = await runNodeScript('dist/client/cli.js', [
      ...['dataset', 'fetch', 'ibkr', '--config', writeConfigFile(cfg, `${tag}-errors`), '--symbol', 'ZZZZ', '--bar', '1m'],
      ...['--from', from, '--to', to, '--dataset', 'unknown'],
    ]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    const why =
      'reqHistoricalData ZZZZ STK SMART USD 1 min TRADES ending 20251001-13:40:00 UTC (600 S): IB error 200: No security definition has been found for the request';
    assert.match(run.stdout, new RegExp(`backfill mdp-fetch-ibkr-ZZZZ-1m-TRADES-\\S+ failed: ${why.replace(/[()]/g, '\\$&')}`));
    const workflowId = ibkrBackfillWorkflowId({ symbol: 'ZZZZ', bar: '1m', what: 'TRADES', from, to });
    const [row] = await new JobRunTracker(db).listRecent(workflowId, 1);
    await db.deleteFrom('job_runs').where('job_name', '=', workflowId).execute();
    assert.equal(row.status, 'failure');
    assert.equal(row.error, why);
    assert.equal(tap.requests.length, 1, 'a final error is not retried');
  });
});
