import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { createActivities } from '../../activities/index.js';
import type { ActivityDeps } from '../../activities/index.js';
import { shardStream } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import { decodeEvent } from '../../pipeline/contracts/index.js';
import { createLogger, createMetrics } from '../../pipeline/telemetry/index.js';
import type { Metrics } from '../../pipeline/telemetry/index.js';
import type { Database } from '../../store/index.js';
import { SignalsStoreClient, StoreClient } from '../../store/index.js';
import type { LoopStatus } from '../../workflows/index.js';
import { inferenceWorkflowId, microBatchWorkflowId, producerWorkflowId } from '../../workflows/index.js';
import { activityDeps } from '../../workers/wiring.js';
import { WORKER_TUNING } from '../../workers/worker-options.js';
import {
  cleanupTestRun,
  connectRedis,
  connectStore,
  groupState,
  startTemporal,
  symbolsCoveringShards,
  testConfig,
  uniqueTag,
  workflowBundle,
} from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const EVENTS = 600;
/** Payloads the micro-batcher must reject (to the DLQ, counted as errors). */
const INVALID = ['not json at all', '{"ver":1,"kind":"tick"}', '{"ver":1,"kind":"bar","provider":"p","symbol":"SPY","src_ts":"yesterday","price":"NaN"}'];

interface Sample {
  readonly value: number;
  readonly labels: Readonly<Record<string, string | number | undefined>>;
  readonly metricName?: string;
}

/** Current samples of one metric; for histograms, the `_count` series only. */
async function samples(metrics: Metrics, name: string): Promise<Sample[]> {
  const metric = metrics.registry.getSingleMetric(name);
  assert.ok(metric, `${name} is registered`);
  const { type, values } = await metric.get();
  return (values as Sample[])
    .filter((v) => String(type) !== 'histogram' || v.metricName === `${name}_count`)
    .map((v) => ({ value: v.value, labels: v.labels }));
}

/** Gauges the consumers set while they run (and remove when they stop). */
const GAUGES = [
  'stream_consumer_lag_ms',
  'stream_pending_entries',
  'microbatch_watermark_ms',
  'stream_consumer_last_heartbeat_seconds',
  'stream_backlog_ratio',
];

/** Entries ever appended to a stream: consumers trim what they acknowledged, so XLEN no longer says. */
async function entriesAdded(redis: Redis, stream: string): Promise<number> {
  const info = (await redis.xinfo('STREAM', stream)) as (string | number)[];
  return Number(info[info.indexOf('entries-added') + 1]);
}

const sum = (list: readonly Sample[]) => list.reduce((total, s) => total + s.value, 0);
const labelSet = (list: readonly Sample[], label: string) => [...new Set(list.map((s) => String(s.labels[label])))].sort();

/**
 * Every metric of spec §6.1 (and mdp's extras) moved by the real components: a finite synthetic
 * run plus a few invalid events, consumed by micro-batch and rules-inference shards under a
 * Temporal dev server, with the metrics object this test holds. Counters are checked against what
 * landed in Redis and PostgreSQL, not only for being positive.
 */
describe('metrics are moved by the pipeline components (producer, micro-batch, features, inference, store)', function () {
  this.timeout(240_000);
  let env: TestWorkflowEnvironment;
  let db: Kysely<Database>;
  let redis: Redis;
  let config: StreamingConfig;
  let symbols: string[];
  let rulesDir: string;
  const metrics = createMetrics();
  /**
   * Every series of each gauge seen while the pipeline ran, with its highest value: consumers
   * remove their gauges when they stop, so the end state alone cannot show them.
   */
  const peaks = new Map<string, Map<string, Sample>>();
  let upsertBarsCalls = 0;
  let upsertSignalsCalls = 0;

  before(async function () {
    const tag = uniqueTag();
    rulesDir = await mkdtemp(join(tmpdir(), 'mdp-movement-'));
    const rulesFile = join(rulesDir, 'rules.yaml');
    await writeFile(rulesFile, '- name: "every_bar"\n  condition: "price > 0.0"\n  signal: 0.0\n  score: 0.1\n  mode: level\n');
    // A long idle flush keeps each shard's last window (and its entries) pending for a while, so the
    // once-a-second lag gauge is sampled while there is lag to report.
    const overrides = {
      micro_batch: { flush_timeout_ms: 2500 },
      inference: { adapters: { rules: { enabled: true, file: rulesFile } } },
    };
    // Every shard must get events, or its series would legitimately be missing.
    const base = testConfig(tag, overrides);
    symbols = symbolsCoveringShards(base.producers.synthetic.provider, base.bus.shards);
    config = testConfig(tag, { ...overrides, producers: { synthetic: { symbols } } });
    redis = await connectRedis(config);
    db = await connectStore(config);
    env = await startTemporal();
  });

  after(async function () {
    await cleanupTestRun(config, { redis, db, env });
    if (rulesDir) await rm(rulesDir, { recursive: true, force: true });
  });

  /** The worker's own wiring (workers/wiring.ts), with store writes counted on the way. */
  function countedDeps(): ActivityDeps {
    const deps = activityDeps(
      config,
      db,
      metrics,
      createLogger('WARNING', (line) => process.stderr.write(line + '\n')),
    );
    const bars = deps.bars;
    const shards = deps.shards;
    const signals = deps.signals;
    return {
      ...deps,
      bars: {
        upsertBars: (rows) => {
          upsertBarsCalls++;
          return bars.upsertBars(rows);
        },
        listBars: (query) => bars.listBars(query),
      },
      // The micro-batch consumer writes its bars in the commit that also stores its position.
      shards: {
        acquire: (lease) => shards.acquire(lease),
        commit: (lease, rows, position) => {
          upsertBarsCalls++;
          return shards.commit(lease, rows, position);
        },
      },
      signals: {
        upsertSignals: (rows) => {
          upsertSignalsCalls++;
          return signals.upsertSignals(rows);
        },
      },
    };
  }

  it('moves every metric with the labels of spec §6.1', async function () {
    assert.ok(
      INVALID.every((payload) => !decodeEvent(payload).ok),
      'the injected payloads are invalid',
    );
    const provider = config.producers.synthetic.provider;
    const shards = config.bus.shards;
    const { stream, features_stream: featuresStream, consumer_group: group, inference_group: inferenceGroup } = config.bus.redis;
    const queue = config.temporal.task_queue;
    const worker = await Worker.create({
      connection: env.nativeConnection,
      namespace: config.temporal.namespace,
      taskQueue: queue,
      workflowBundle: await workflowBundle(),
      activities: createActivities(countedDeps()),
      ...WORKER_TUNING,
    });

    await worker.runUntil(async () => {
      const handles: WorkflowHandle[] = [];
      for (let shard = 0; shard < shards; shard++) {
        handles.push(
          await env.client.workflow.start('streamConsumerWorkflow', {
            taskQueue: queue,
            workflowId: microBatchWorkflowId(stream, shard),
            args: [{ role: 'microbatch', shard }],
          }),
        );
        handles.push(
          await env.client.workflow.start('streamConsumerWorkflow', {
            taskQueue: queue,
            workflowId: inferenceWorkflowId(featuresStream, shard),
            args: [{ role: 'inference', shard, adapter: 'rules' }],
          }),
        );
      }

      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          for (const name of GAUGES) {
            const seen = peaks.get(name) ?? new Map<string, Sample>();
            peaks.set(name, seen);
            for (const s of await samples(metrics, name)) {
              const key = JSON.stringify(s.labels);
              if (s.value >= (seen.get(key)?.value ?? Number.NEGATIVE_INFINITY)) seen.set(key, s);
            }
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      })();

      try {
        await env.client.workflow.execute('producerWorkflow', {
          taskQueue: queue,
          workflowId: producerWorkflowId(provider),
          args: [{ provider: 'synthetic', count: EVENTS, startTs: '2025-10-01T14:00:00Z', tickRate: 10, priceVolatility: 0.5 }],
        });
        for (const [i, payload] of INVALID.entries()) await redis.xadd(shardStream(stream, i % shards), '*', 'd', payload);

        const bars = new StoreClient(db);
        const signals = new SignalsStoreClient(db);
        await waitFor('bars, features and signals committed and every entry acknowledged', 90_000, async () => {
          for (let shard = 0; shard < shards; shard++) {
            const events = await groupState(redis, shardStream(stream, shard), group);
            const feats = await groupState(redis, shardStream(featuresStream, shard), inferenceGroup);
            if (!events || events.pending + events.lag > 0) return undefined;
            if (!feats || feats.pending + feats.lag > 0) return undefined;
          }
          const barCount = await bars.countBars(provider);
          return barCount > 0 && (await signals.countSignals(provider)) >= barCount ? true : undefined;
        });
      } finally {
        sampling = false;
        await sampler;
        for (const h of handles) await h.signal('drain');
        await Promise.all(handles.map((h) => h.result() as Promise<LoopStatus>));
      }
    });

    const storedBars = await new StoreClient(db).listBars({ provider });
    const storedSignals = await new SignalsStoreClient(db).countSignals(provider);
    const eventStreams = Array.from({ length: shards }, (_, shard) => shardStream(stream, shard));
    const featureStreams = Array.from({ length: shards }, (_, shard) => shardStream(featuresStream, shard));
    const microConsumers = Array.from({ length: shards }, (_, shard) => microBatchWorkflowId(stream, shard));
    const inferenceConsumers = Array.from({ length: shards }, (_, shard) => inferenceWorkflowId(featuresStream, shard));
    const windowMs = String(config.micro_batch.window_ms);

    // stream_events_ingested_total{bus,topic,provider} — the producer, once per published event.
    const ingested = await samples(metrics, 'stream_events_ingested_total');
    assert.equal(sum(ingested), EVENTS);
    assert.deepEqual(labelSet(ingested, 'bus'), ['redis']);
    assert.deepEqual(labelSet(ingested, 'provider'), [provider]);
    assert.deepEqual(labelSet(ingested, 'topic'), eventStreams);
    for (const s of ingested)
      assert.equal(
        s.value,
        (await entriesAdded(redis, String(s.labels.topic))) - INVALID.filter((_, i) => shardStream(stream, i % shards) === s.labels.topic).length,
      );

    // stream_consumer_lag_ms{topic,group,consumer} — every shard consumer (micro-batch and inference),
    // above zero while the micro-batcher held a window's entries.
    const lag = [...(peaks.get('stream_consumer_lag_ms')?.values() ?? [])];
    assert.deepEqual(
      lag.map((s) => `${s.labels.topic}|${s.labels.group}|${s.labels.consumer}`).sort(),
      [
        ...eventStreams.map((topic, shard) => `${topic}|${group}|${microConsumers[shard]}`),
        ...featureStreams.map((topic, shard) => `${topic}|${inferenceGroup}|${inferenceConsumers[shard]}`),
      ].sort(),
    );
    for (const s of lag.filter((l) => eventStreams.includes(String(l.labels.topic)))) assert.ok(s.value > 0, `lag of ${s.labels.topic} was reported above 0`);

    // microbatch_flush_total{window_ms,symbol} — one per bar flushed; microbatch_flush_rows{window_ms} — rows written.
    const flushes = await samples(metrics, 'microbatch_flush_total');
    assert.equal(sum(flushes), storedBars.length);
    assert.deepEqual(labelSet(flushes, 'window_ms'), [windowMs]);
    assert.deepEqual(labelSet(flushes, 'symbol'), [...symbols].sort());
    for (const symbol of symbols) {
      assert.equal(sum(flushes.filter((s) => s.labels.symbol === symbol)), storedBars.filter((b) => b.symbol === symbol).length, symbol);
    }
    const rows = await samples(metrics, 'microbatch_flush_rows');
    assert.deepEqual(rows, [{ value: storedBars.length, labels: { window_ms: windowMs } }]);

    // microbatch_window_latency_ms — one observation per window committed, no labels.
    const latency = await samples(metrics, 'microbatch_window_latency_ms');
    assert.equal(latency.length, 1);
    assert.deepEqual(latency[0].labels, {});
    assert.ok(latency[0].value >= new Set(storedBars.map((b) => b.tsMs)).size, `${latency[0].value} windows observed`);

    // store_write_duration_seconds{table} — bars by the micro-batcher, signals by inference.
    const writes = await samples(metrics, 'store_write_duration_seconds');
    assert.deepEqual(labelSet(writes, 'table'), ['bars_ohlcv', 'signals']);
    const barWrites = sum(writes.filter((s) => s.labels.table === 'bars_ohlcv'));
    const signalWrites = sum(writes.filter((s) => s.labels.table === 'signals'));
    assert.ok(upsertBarsCalls > 0 && upsertSignalsCalls > 0);
    assert.equal(barWrites, upsertBarsCalls, 'one observation per bars write');
    assert.equal(signalWrites, upsertSignalsCalls, 'one observation per signals write');

    // features_update_duration_seconds{symbol,window} — one feature update per bar.
    const features = await samples(metrics, 'features_update_duration_seconds');
    assert.equal(sum(features), storedBars.length);
    assert.deepEqual(labelSet(features, 'symbol'), [...symbols].sort());
    assert.deepEqual(labelSet(features, 'window'), [...new Set(storedBars.map((b) => b.interval))]);

    // inference_eval_duration_seconds{adapter} — one evaluation per feature snapshot.
    const evals = await samples(metrics, 'inference_eval_duration_seconds');
    assert.deepEqual(evals, [{ value: storedBars.length, labels: { adapter: 'rules' } }]);

    // signals_emitted_total{name,adapter} — the level rule fires on every bar.
    const emitted = await samples(metrics, 'signals_emitted_total');
    assert.deepEqual(emitted, [{ value: storedSignals, labels: { name: 'every_bar', adapter: 'rules' } }]);
    assert.equal(storedSignals, storedBars.length);

    // errors_total{component,reason} — the invalid events, by the micro-batcher; every other reason
    // the consumers know is exported from zero.
    const errors = await samples(metrics, 'errors_total');
    assert.deepEqual(
      errors.filter((s) => s.value !== 0),
      [{ value: INVALID.length, labels: { component: 'microbatch', reason: 'invalid_event' } }],
    );
    assert.deepEqual(labelSet(errors, 'component'), ['inference', 'microbatch', 'producer']);

    // Retention: each consumer trims what its group acknowledged and reports its backlog's share of retention.
    const trimmed = await samples(metrics, 'stream_trimmed_entries_total');
    assert.deepEqual(labelSet(trimmed, 'topic'), [...eventStreams, ...featureStreams].sort());
    assert.ok(sum(trimmed.filter((s) => eventStreams.includes(String(s.labels.topic)))) > 0, 'acknowledged events were trimmed');
    const backlog = [...(peaks.get('stream_backlog_ratio')?.values() ?? [])];
    assert.deepEqual(labelSet(backlog, 'topic'), [...eventStreams, ...featureStreams].sort());
    for (const s of backlog) assert.ok(s.value >= 0 && s.value < 0.01, `backlog ratio of ${s.labels.topic}: ${s.value}`);

    // Extras: outcomes per event, pending entries, watermark, heartbeats.
    const outcomes = await samples(metrics, 'microbatch_events_total');
    assert.equal(sum(outcomes.filter((s) => s.labels.outcome === 'accepted')), EVENTS);
    assert.equal(sum(outcomes.filter((s) => s.labels.outcome === 'invalid')), INVALID.length);
    assert.deepEqual(labelSet(outcomes, 'topic'), eventStreams);
    const pending = [...(peaks.get('stream_pending_entries')?.values() ?? [])];
    assert.deepEqual(
      pending.map((s) => `${s.labels.topic}|${s.labels.group}`).sort(),
      [...eventStreams.map((t) => `${t}|${group}`), ...featureStreams.map((t) => `${t}|${inferenceGroup}`)].sort(),
    );
    assert.ok(
      pending.some((s) => eventStreams.includes(String(s.labels.topic)) && s.value > 0),
      'pending entries were reported',
    );
    const watermarks = [...(peaks.get('microbatch_watermark_ms')?.values() ?? [])];
    assert.deepEqual(labelSet(watermarks, 'topic'), eventStreams);
    for (const s of watermarks) assert.ok(s.value >= Date.parse('2025-10-01T14:00:00Z'), `watermark of ${s.labels.topic}`);
    const heartbeats = [...(peaks.get('stream_consumer_last_heartbeat_seconds')?.values() ?? [])];
    assert.deepEqual(
      heartbeats.map((s) => `${s.labels.topic}|${s.labels.consumer}`).sort(),
      [...eventStreams.map((t, shard) => `${t}|${microConsumers[shard]}`), ...featureStreams.map((t, shard) => `${t}|${inferenceConsumers[shard]}`)].sort(),
    );
    for (const s of heartbeats) assert.ok(Math.abs(s.value - Date.now() / 1000) < 300, `heartbeat of ${s.labels.consumer} is recent`);
    // Drained consumers take their gauges with them, so a stopped consumer never looks stale.
    for (const name of GAUGES) assert.deepEqual(await samples(metrics, name), [], `${name} after the consumers stopped`);
  });
});
