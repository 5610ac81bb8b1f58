import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import yaml from 'js-yaml';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import type { SignalEventV1 } from '../../pipeline/contracts/index.js';
import { generateSampleDay } from '../../pipeline/datasets/index.js';
import { FeatureEngine } from '../../pipeline/features/index.js';
import { loadRulesFile, RulesAdapter } from '../../pipeline/inference/rules/index.js';
import type { Metrics } from '../../pipeline/telemetry/index.js';
import { createMetrics } from '../../pipeline/telemetry/index.js';
import type { Database } from '../../store/index.js';
import { StoreClient } from '../../store/index.js';
import { knownFeatures } from '../../workers/adapters.js';
import type { ReplayProgress, ReplayWorkflowInput } from '../../workflows/index.js';
import { cleanupTestRun, connectRedis, connectStore, createTestWorker, REPO_ROOT, startTemporal, testConfig, uniqueTag } from '../helpers/services.js';

const DATE = '2025-10-01';
const SEED = 20251003;
const FROM = '2025-10-01T13:30:00Z';
const TO = '2025-10-01T14:30:00Z';
const SYMBOLS = ['QQQ', 'SPY'];

interface SignalRow {
  symbol: string;
  name: string;
  tsMs: number;
  rsi: number | undefined;
}

describe('replay with inference (bars → features → rules signals, chunk by chunk)', function () {
  this.timeout(240_000);
  let env: TestWorkflowEnvironment;
  let db: Kysely<Database>;
  let redis: Redis;
  let config: StreamingConfig;
  let tag: string;
  let provider: string;
  let rulesFile: string;
  let worker: Worker;
  let running: Promise<void>;
  let metrics: Metrics;

  before(async function () {
    env = await startTemporal();
    tag = uniqueTag();
    const dir = resolve(REPO_ROOT, '.data/test', `${tag}-datasets`);
    mkdirSync(resolve(dir, 'day'), { recursive: true });
    const catalog = resolve(dir, 'datasets.yaml');
    rulesFile = resolve(dir, 'rules.yaml');
    writeFileSync(
      rulesFile,
      yaml.dump([
        { name: 'every_bar', condition: 'price > 0.0', signal: 1.0, score: 0.5, mode: 'level' },
        { name: 'rsi_high', condition: 'rsi > 60.0', signal: -1.0, score: 0.7, mode: 'edge', cooldown: '10s' },
      ]),
    );
    config = testConfig(tag, {
      temporal: { address: env.address },
      replay: { datasets_file: catalog, stream: `${tag}.replay` },
      inference: { adapters: { rules: { enabled: true, file: rulesFile }, sklearn: { enabled: false } } },
    });
    provider = config.producers.synthetic.provider;
    writeFileSync(catalog, yaml.dump({ datasets: { day: { format: 'jsonl', path: resolve(dir, 'day'), provider } } }));
    const events = generateSampleDay({ date: DATE, provider, symbols: SYMBOLS, seed: SEED, ticksPerDay: 20_000 });
    writeFileSync(resolve(dir, 'day', `${DATE}.jsonl`), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    redis = await connectRedis(config);
    db = await connectStore(config);
    metrics = createMetrics();
    worker = await createTestWorker(env, config, db, { metrics });
    running = worker.run();
  });

  after(async function () {
    worker?.shutdown();
    await running?.catch(() => undefined);
    await db?.deleteFrom('job_runs').where('job_name', 'like', `mdp-replay-${tag}.%`).execute();
    await cleanupTestRun(config, { redis, db, env });
  });

  const replay = (workflowId: string, input: ReplayWorkflowInput) =>
    env.client.workflow.execute('replayWorkflow', { taskQueue: config.temporal.task_queue, workflowId, args: [input] }) as Promise<ReplayProgress>;

  const storedSignals = async (): Promise<SignalRow[]> => {
    const rows = await db
      .selectFrom('signals')
      .select(['symbol', 'name', 'ts', 'meta'])
      .where('provider', '=', provider)
      .orderBy('symbol')
      .orderBy('name')
      .orderBy('ts')
      .execute();
    return rows.map((r) => ({
      symbol: r.symbol,
      name: r.name,
      tsMs: new Date(r.ts as unknown as string | Date).getTime(),
      rsi: (r.meta as { inputs?: Record<string, number> }).inputs?.rsi,
    }));
  };
  /** Sum of a counter's samples in the worker's registry. */
  const counterTotal = async (name: string): Promise<number> => {
    const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
    return (metric?.values ?? []).reduce((sum, v) => sum + v.value, 0);
  };
  const fullRows = () => db.selectFrom('signals').selectAll().where('provider', '=', provider).orderBy('symbol').orderBy('name').orderBy('ts').execute();

  it('emits the signals of one continuous pass, whatever the chunk boundaries, and re-replaying writes nothing', async function () {
    const input: ReplayWorkflowInput = { dataset: 'day', from: FROM, to: TO, chunkSpan: '5m' };
    const first = await replay(`mdp-replay-${tag}.signals-1`, input);
    assert.equal(first.phase, 'finished');
    assert.equal(first.chunksDone, 12);

    // The reference: the stored bars through one FeatureEngine and one RulesAdapter, in order.
    const bars = await new StoreClient(db).listBars({ provider });
    assert.ok(bars.length > 1000, `enough bars (${bars.length})`);
    bars.sort((a, b) => a.tsMs - b.tsMs || (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
    const engine = new FeatureEngine({ windows: config.features.windows });
    const adapter = new RulesAdapter(loadRulesFile(rulesFile, { knownFeatures: knownFeatures(config) }));
    const continuous: SignalEventV1[] = [];
    for (const bar of bars) continuous.push(...adapter.evaluateSync(engine.update(bar)));

    const stored = await storedSignals();
    // Level rule: exactly one signal per bar, at the bar's start.
    const level = stored
      .filter((s) => s.name === 'every_bar')
      .map((s) => `${s.symbol}@${s.tsMs}`)
      .sort();
    assert.deepEqual(level, bars.map((b) => `${b.symbol}@${b.tsMs}`).sort(), 'one every_bar signal per bar');

    // Edge rule (with cooldown): the same firings as the continuous pass, across 12 chunk boundaries.
    const edge = stored.filter((s) => s.name === 'rsi_high');
    const expected = continuous.filter((s) => s.name === 'rsi_high');
    assert.ok(expected.length >= 5, `the edge rule fires a few times (${expected.length})`);
    assert.deepEqual(
      edge.map((s) => `${s.symbol}@${s.tsMs}`).sort(),
      expected.map((s) => `${s.symbol}@${Date.parse(s.ts)}`).sort(),
      'edge signals equal those of one continuous pass',
    );
    const rsiOf = new Map(expected.map((s) => [`${s.symbol}@${Date.parse(s.ts)}`, s.meta.inputs.rsi]));
    for (const s of edge) {
      const want = rsiOf.get(`${s.symbol}@${s.tsMs}`)!;
      assert.ok(Math.abs(s.rsi! - want) <= 1e-9 * Math.abs(want), `rsi input of ${s.symbol}@${s.tsMs}: ${s.rsi} vs ${want}`);
    }
    console.log(`      ${bars.length} bars → ${level.length} level + ${edge.length} edge signals over ${first.chunksDone} chunks`);

    // Each signal says it is this replay's, and its bar interval (the test config's 1 s window).
    const rows = await fullRows();
    assert.ok(rows.every((r) => r.source === `replay:mdp-replay-${tag}.signals-1` && r.interval_ms === 1000));
    assert.ok(rows.every((r) => (r.meta as { source?: string }).source === r.source && (r.meta as { interval_ms?: number }).interval_ms === 1000));

    // Replaying the same range again (the same replay: a rerun keeps its id): 0 new and 0 changed signal rows.
    const before = await fullRows();
    const second = await replay(`mdp-replay-${tag}.signals-1`, input);
    assert.equal(second.phase, 'finished');
    assert.equal(second.counts.inserted + second.counts.updated, 0, 'no bar rewritten');
    // The workflow's totals carry the inference counts of every chunk.
    assert.equal(first.counts.snapshots, bars.length, 'one snapshot per replayed bar');
    assert.equal(first.counts.signals, level.length + edge.length);
    assert.equal(second.counts.signals, first.counts.signals);
    assert.deepEqual(await fullRows(), before, '0 new and 0 changed signal rows (updated_at untouched)');

    // The replays stayed in their lane: nothing in the live signals stream, the live counters untouched,
    // their own counters moved; no replay snapshot reached the live features streams.
    assert.equal(await redis.xlen(config.bus.redis.signals_stream), 0, 'live signals stream untouched');
    assert.equal(await counterTotal('signals_emitted_total'), 0, 'live signals_emitted_total untouched');
    assert.equal(await counterTotal('microbatch_flush_rows'), 0, 'live microbatch_flush_rows untouched');
    assert.equal(await counterTotal('replay_signals_total'), first.counts.signals + second.counts.signals);
    assert.equal(await counterTotal('replay_bars_written_total'), first.counts.inserted + first.counts.updated);
    assert.deepEqual(await redis.keys(`${config.bus.redis.features_stream}*`), []);
  });

  it('publishes into the live signals stream only when asked, marked as the replay, still without live counts', async function () {
    const workflowId = `mdp-replay-${tag}.published`;
    const result = await replay(workflowId, { dataset: 'day', from: FROM, to: '2025-10-01T13:40:00Z', chunkSpan: '5m', publishSignals: true });
    assert.equal(result.phase, 'finished');
    assert.ok(result.counts.signals > 0);
    const entries = await redis.xrange(config.bus.redis.signals_stream, '-', '+');
    assert.equal(entries.length, result.counts.signals, 'every signal of the replay, published once');
    for (const [, fields] of entries) {
      const signal = JSON.parse(fields[fields.indexOf('d') + 1]) as SignalEventV1;
      assert.equal(signal.meta.source, `replay:${workflowId}`);
      assert.equal(signal.meta.interval_ms, 1000);
    }
    assert.equal(await counterTotal('signals_emitted_total'), 0, 'live signals_emitted_total untouched');
  });
});
