import assert from 'node:assert/strict';
import { CancelledFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type { MetricValue } from 'prom-client';
import { createInferenceActivity } from '../../activities/inference-activity.js';
import type { InferenceDefaults } from '../../activities/inference-activity.js';
import { createMicroBatchActivity } from '../../activities/microbatch-activity.js';
import type { MicroBatchDefaults } from '../../activities/microbatch-activity.js';
import type { InferenceInput, InferenceRunResult, MicroBatchInput, MicroBatchRunResult } from '../../activities/types.js';
import type { Bar, FeatureSnapshot, InferenceAdapter, SignalEventV1, StreamEventV1 } from '../../pipeline/contracts/index.js';
import { parseRules, RulesAdapter } from '../../pipeline/inference/rules/index.js';
import { makeEventId, parseIsoToMicros, shardOwnerId } from '../../pipeline/contracts/index.js';
import { SyntheticProducer } from '../../pipeline/producers/index.js';
import { createLogger, createMetrics } from '../../pipeline/telemetry/index.js';
import type { Metrics } from '../../pipeline/telemetry/index.js';
import { expectedBars } from '../helpers/expected-bars.js';
import { MemoryBarStore, MemoryJobRuns, MemorySignalStore } from '../helpers/fake-sinks.js';
import { MemoryBus } from '../helpers/memory-bus.js';

// The activities on fake dependencies (an in-memory bus with consumer-group semantics, in-memory
// stores): every routing path, forced flushes, cancellation and failures, without Redis or
// PostgreSQL. The integration tests run the same activities on the real services.

const BASE = 'ut.events';
const STREAM = `${BASE}.0`;
const GROUP = 'ut-group';
const DLQ = 'ut.dlq';
const LATE = 'ut.events.late';
const OWNER = shardOwnerId('microbatch', BASE, 0);
// 2025-10-24T14:02:00Z: event times long past, so the idle rule (wall clock) closes every window.
const T0_MS = 1_761_314_520_000;
const WINDOW_MS = 1000;

function microBatchDefaults(overrides: Partial<MicroBatchDefaults> = {}): MicroBatchDefaults {
  return {
    stream: BASE,
    group: GROUP,
    lateStream: LATE,
    dlqStream: DLQ,
    windowMs: WINDOW_MS,
    allowLateMs: 100,
    flushTimeoutMs: 100,
    maxFutureMs: 5000,
    maxBatchSize: 100,
    maxBufferedEvents: 5000,
    maxDeliveries: 3,
    maxRunMs: 800,
    featuresStream: 'ut.features',
    featureWindows: [{ name: 'vwap_1m', horizon: '60s' }],
    shards: 1,
    ...overrides,
  };
}

function events(count: number, startMs = T0_MS, tickRate = 10): StreamEventV1[] {
  return new SyntheticProducer({ provider: 'ut', symbols: ['AAA', 'BBB'], seed: 7, tickRate, priceVolatility: 0.02 }).generateFinite({
    count,
    startUs: startMs * 1000,
  });
}

function srcMs(event: StreamEventV1): number {
  return parseIsoToMicros(event.src_ts)! / 1000;
}

/** Runs an activity as Temporal would inside the shard owner's workflow. */
function activityEnv(workflowId: string, activityType: string, epoch = Date.now()): MockActivityEnvironment {
  // The SDK's own activity logger would print every expected failure; the tests assert on them instead.
  return new MockActivityEnvironment(
    { activityType, attempt: 1, currentAttemptScheduledTimestampMs: epoch, workflowExecution: { workflowId, runId: 'run-1' } },
    { logger: new DefaultLogger('ERROR', () => undefined) },
  );
}

async function metricValues(metrics: Metrics, name: string): Promise<MetricValue<string>[]> {
  const all = await metrics.registry.getMetricsAsJSON();
  return all.find((m) => m.name === name)?.values ?? [];
}

async function errorCount(metrics: Metrics, component: string, reason: string): Promise<number> {
  return (await metricValues(metrics, 'errors_total')).find((v) => v.labels.component === component && v.labels.reason === reason)?.value ?? 0;
}

function dlqLetters(bus: MemoryBus): Record<string, string>[] {
  return bus.entries(DLQ).map((e) => e.fields!);
}

function setup(overrides: Partial<MicroBatchDefaults> = {}) {
  const bus = new MemoryBus();
  const bars = new MemoryBarStore();
  const jobs = new MemoryJobRuns();
  const metrics = createMetrics();
  const run = createMicroBatchActivity({
    openBus: () => bus,
    bars,
    shards: bars,
    jobs,
    metrics,
    log: createLogger('ERROR', () => undefined),
    microBatch: microBatchDefaults(overrides),
  });
  return {
    bus,
    bars,
    jobs,
    metrics,
    run: (env = activityEnv(OWNER, 'runMicroBatchShard')) => env.run<[MicroBatchInput], MicroBatchRunResult, typeof run>(run, { shard: 0 }),
  };
}

describe('micro-batch activity on fake dependencies', function () {
  it('lands every valid event in exactly one bar and dead-letters the rest under their codes, payloads kept', async function () {
    const { bus, bars, jobs, metrics, run } = setup();
    const valid = events(200);
    await bus.ensureGroup(STREAM, GROUP);
    await bus.publish(
      STREAM,
      valid.slice(0, 100).map((e) => JSON.stringify(e)),
    );
    bus.appendRaw(STREAM, { data: 'x', note: 'foreign' });
    const inverted = { ...valid[0], h: 1, l: 2 };
    await bus.publish(STREAM, ['not json', JSON.stringify(inverted)]);
    await bus.publish(
      STREAM,
      valid.slice(100).map((e) => JSON.stringify(e)),
    );

    const result: MicroBatchRunResult = await run();

    assert.deepEqual(bars.sorted(), expectedBars(valid, WINDOW_MS));
    assert.deepEqual(
      dlqLetters(bus).map((l) => [l.code, l.original, l.stream]),
      [
        ['no_payload', JSON.stringify({ data: 'x', note: 'foreign' }), STREAM],
        ['invalid_event', 'not json', STREAM],
        ['invalid_event', JSON.stringify(inverted), STREAM],
      ],
    );
    assert.match(dlqLetters(bus)[0].reason, /no payload field "d"/);
    assert.match(dlqLetters(bus)[1].reason, /^malformed JSON/);
    assert.match(dlqLetters(bus)[2].reason, /field "h" must be >= "l"/);
    assert.deepEqual(await bus.pendingEntries(STREAM, GROUP, 100), [], 'every entry acknowledged');
    assert.equal(result.counts.events, 203);
    assert.equal(result.counts.accepted, 200);
    assert.equal(result.counts.invalid, 3);
    assert.equal(result.counts.late, 0);
    assert.equal(result.stoppedBy, 'max_run');
    assert.equal(await errorCount(metrics, 'microbatch', 'invalid_event'), 2);
    assert.equal(await errorCount(metrics, 'microbatch', 'no_payload'), 1);
    assert.equal(bus.entries('ut.features.0').length, bars.rows.size, 'one feature snapshot per bar');
    const stored = bars.positions.get(`${STREAM}|${GROUP}`);
    assert.equal(stored?.owner, OWNER);
    assert.equal(
      stored?.position?.frontierMs,
      Math.max(...bars.sorted().map((b) => b.tsMs)) + WINDOW_MS,
      'frontier at the last window end, stored with the bars',
    );
    assert.deepEqual(
      jobs.rows.map((r) => [r.jobName, r.status, r.counts.bars]),
      [[OWNER, 'success', bars.rows.size]],
    );
  });

  it('sends events of windows before the stored frontier to the late stream with their payload, and changes no bar', async function () {
    const { bus, bars, metrics, run } = setup();
    const all = events(100); // 5 s of event time
    const frontierMs = T0_MS + 3000;
    bus.setCheckpoint(STREAM, GROUP, frontierMs);
    await bus.ensureGroup(STREAM, GROUP);
    await bus.publish(
      STREAM,
      all.map((e) => JSON.stringify(e)),
    );

    await run();

    const before = all.filter((e) => srcMs(e) < frontierMs);
    assert.ok(before.length > 0 && before.length < all.length);
    assert.deepEqual(
      bus.entries(LATE).map((e) => e.fields!.d),
      before.map((e) => JSON.stringify(e)),
    );
    assert.deepEqual(
      bars.sorted(),
      expectedBars(
        all.filter((e) => srcMs(e) >= frontierMs),
        WINDOW_MS,
      ),
    );
    assert.equal(await errorCount(metrics, 'microbatch', 'late_event'), before.length);
    assert.deepEqual(await bus.pendingEntries(STREAM, GROUP, 100), []);
  });

  it('dead-letters an entry delivered more than max_deliveries times with its own count, and nothing else', async function () {
    const { bus, bars, metrics, run } = setup({ maxDeliveries: 3 });
    const [poison, ...rest] = events(20);
    await bus.ensureGroup(STREAM, GROUP);
    await bus.publish(STREAM, [JSON.stringify(poison)]);
    // Three earlier attempts of the owner read it and died before acknowledging it.
    await bus.readNew(STREAM, GROUP, OWNER, 10, 0);
    await bus.readPending(STREAM, GROUP, OWNER, '0', 10);
    await bus.readPending(STREAM, GROUP, OWNER, '0', 10);
    await bus.publish(
      STREAM,
      rest.map((e) => JSON.stringify(e)),
    );

    await run();

    assert.deepEqual(
      dlqLetters(bus).map((l) => [l.code, l.reason, l.deliveries, l.original]),
      [['max_deliveries', 'delivered 4 times (max_deliveries 3)', '4', JSON.stringify(poison)]],
    );
    assert.deepEqual(bars.sorted(), expectedBars(rest, WINDOW_MS), 'its neighbours land');
    assert.equal(await errorCount(metrics, 'microbatch', 'max_deliveries'), 1);
    assert.equal(await errorCount(metrics, 'microbatch', 'invalid_event'), 0);
  });

  it('dead-letters an event from tomorrow as future_event: it moves no watermark or frontier, and its neighbours land', async function () {
    const { bus, bars, metrics, run } = setup({ maxFutureMs: 5000 });
    const valid = events(60);
    const srcTs = new Date(Date.now() + 86_400_000).toISOString().replace('Z', '000Z');
    const tomorrow = JSON.stringify({ ...valid[0], seq: 999, src_ts: srcTs, event_id: makeEventId('ut', valid[0].symbol, srcTs, 999) });
    await bus.ensureGroup(STREAM, GROUP);
    // Before its neighbours' windows close: had it reached the batcher, every later event would be late.
    await bus.publish(
      STREAM,
      valid.slice(0, 10).map((e) => JSON.stringify(e)),
    );
    await bus.publish(STREAM, [tomorrow]);
    await bus.publish(
      STREAM,
      valid.slice(10).map((e) => JSON.stringify(e)),
    );

    const result: MicroBatchRunResult = await run();

    assert.deepEqual(
      dlqLetters(bus).map((l) => [l.code, l.original]),
      [['future_event', tomorrow]],
    );
    assert.match(
      dlqLetters(bus)[0].reason,
      new RegExp(`^src_ts ${srcTs.replace(/[.]/g, '[.]')} is 8[0-9.]+ ms ahead of the wall clock \\(max_future_ms 5000\\)$`),
    );
    assert.deepEqual(bars.sorted(), expectedBars(valid, WINDOW_MS), 'every neighbour in its bar');
    assert.equal(bus.entries(LATE).length, 0, 'nothing went late');
    const lastEndMs = Math.max(...bars.sorted().map((b) => b.tsMs)) + WINDOW_MS;
    assert.equal(result.frontierMs, lastEndMs);
    assert.equal(bars.positions.get(`${STREAM}|${GROUP}`)?.position?.frontierMs, lastEndMs, 'the durable frontier stays with the neighbours');
    assert.deepEqual([result.counts.invalid, result.counts.accepted, result.counts.late], [1, valid.length, 0]);
    assert.equal(await errorCount(metrics, 'microbatch', 'future_event'), 1);
    assert.deepEqual(await bus.pendingEntries(STREAM, GROUP, 100), []);
  });

  it('dead-letters the entries of a bar the store refuses as store_rejected before any position covers them; its neighbours land, nothing stays pending', async function () {
    const { bus, bars, jobs, metrics, run } = setup();
    const valid = events(100); // 5 windows of AAA and BBB
    const poisonStartMs = T0_MS + 2 * WINDOW_MS;
    const inPoison = (e: StreamEventV1) => e.symbol === 'BBB' && srcMs(e) >= poisonStartMs && srcMs(e) < poisonStartMs + WINDOW_MS;
    const reason = 'index row size 4016 exceeds btree version 4 maximum 2704 for index "bars_ohlcv_pkey" (SQLSTATE 54000)';
    bars.reject = (bar) => (bar.symbol === 'BBB' && bar.tsMs === poisonStartMs ? { code: '54000', reason } : undefined);
    // A producer's retry re-sent one refused event: its duplicate entry goes with it.
    const first = valid.findIndex(inPoison);
    const published = [...valid.slice(0, first + 1), valid[first], ...valid.slice(first + 1)];
    await bus.ensureGroup(STREAM, GROUP);
    await bus.publish(
      STREAM,
      published.map((e) => JSON.stringify(e)),
    );
    // What the DLQ held when each position that covers the refused window was stored.
    const dlqAtCommit: number[] = [];
    const commit = bars.commit.bind(bars);
    bars.commit = async (lease, committed, position) => {
      const written = await commit(lease, committed, position);
      if ((position.frontierMs ?? 0) > poisonStartMs) dlqAtCommit.push(bus.entries(DLQ).length);
      return written;
    };

    const result: MicroBatchRunResult = await run();

    const refused = published.filter(inPoison).map((e) => JSON.stringify(e));
    assert.ok(dlqAtCommit.length > 0 && dlqAtCommit.every((n) => n === refused.length), `DLQ before the position: ${dlqAtCommit.join(', ')}`);
    assert.ok(refused.length >= 5);
    const letters = dlqLetters(bus);
    assert.deepEqual(
      letters.map((l) => l.original),
      refused,
      "exactly the refused bar's entries, payloads kept",
    );
    for (const letter of letters) {
      assert.equal(letter.code, 'store_rejected');
      assert.equal(letter.reason, `the store rejected its 1s bar at ${new Date(poisonStartMs).toISOString()}: ${reason}`);
      assert.equal(letter.deliveries, '1', 'each entry was delivered once: no "delivered N times" for anyone');
    }
    assert.deepEqual(
      bars.rejected.map((r) => [r.bar.symbol, r.bar.tsMs]),
      [['BBB', poisonStartMs]],
    );
    assert.deepEqual(
      bars.sorted(),
      expectedBars(
        valid.filter((e) => !inPoison(e)),
        WINDOW_MS,
      ),
      'every neighbour in its bar',
    );
    assert.deepEqual(await bus.pendingEntries(STREAM, GROUP, 200), [], 'nothing pending');
    assert.equal(bus.entries(LATE).length, 0);
    const lastEndMs = Math.max(...valid.map(srcMs).map((ms) => ms - (ms % WINDOW_MS))) + WINDOW_MS;
    assert.equal(bars.positions.get(`${STREAM}|${GROUP}`)?.position?.frontierMs, lastEndMs, 'the position moved past the refused window');
    assert.equal(bus.entries('ut.features.0').length, bars.rows.size, 'features of landed bars only');
    assert.deepEqual([result.counts.rejected, result.counts.invalid, result.counts.accepted, result.counts.duplicates], [refused.length, 0, valid.length, 1]);
    assert.equal(result.counts.bars, bars.rows.size);
    assert.equal(await errorCount(metrics, 'microbatch', 'store_rejected'), refused.length);
    assert.equal(await errorCount(metrics, 'microbatch', 'activity_failure'), 0);
    const invalid = (await metricValues(metrics, 'microbatch_events_total')).find((v) => v.labels.outcome === 'invalid')?.value;
    assert.equal(invalid, 0, 'accepted once, not counted again as invalid');
    assert.equal(jobs.rows[0].status, 'success');
  });

  it('cuts the oldest window when the shard holds more than max_buffered_events, and accounts for every event', async function () {
    const { bus, bars, metrics, run } = setup({ maxBufferedEvents: 20 });
    const burst = events(50, T0_MS, 200).filter((e) => srcMs(e) < T0_MS + WINDOW_MS); // one window
    assert.ok(burst.length >= 40);
    await bus.ensureGroup(STREAM, GROUP);
    await bus.publish(
      STREAM,
      burst.map((e) => JSON.stringify(e)),
    );

    const result: MicroBatchRunResult = await run();

    assert.ok(result.counts.forcedFlushes >= 1);
    assert.equal(await errorCount(metrics, 'microbatch', 'forced_flush'), result.counts.forcedFlushes);
    const trades = bars.sorted().reduce((n, b) => n + b.trades, 0);
    assert.equal(trades + bus.entries(LATE).length, burst.length, 'each event in exactly one bar or the late stream');
    assert.equal(result.counts.late, bus.entries(LATE).length);
    assert.deepEqual(await bus.pendingEntries(STREAM, GROUP, 100), []);
  });

  it('counts entries trimmed before it read them, and trims what it acknowledged', async function () {
    const { bus, bars, metrics, run } = setup();
    const all = events(100);
    await bus.ensureGroup(STREAM, GROUP);
    await bus.publish(
      STREAM,
      all.map((e) => JSON.stringify(e)),
    );
    assert.equal(bus.trimOldest(STREAM, 30), 30); // an operator's XTRIM while no consumer ran

    await run();

    assert.equal(await errorCount(metrics, 'microbatch', 'trimmed_unread'), 30);
    assert.deepEqual(bars.sorted(), expectedBars(all.slice(30), WINDOW_MS), 'the rest lands');
    await run(); // the next run's first tick trims what the first acknowledged
    assert.deepEqual(bus.entries(STREAM), []);
    assert.deepEqual(
      (await metricValues(metrics, 'stream_trimmed_entries_total')).map((v) => [v.labels.topic, v.value]),
      [[STREAM, 70]],
    );
    assert.equal(await errorCount(metrics, 'microbatch', 'trimmed_unread'), 30, 'reported once');
  });

  it('stops on cancellation with its counts in the CancelledFailure, removes its gauges and closes the bus', async function () {
    const { bus, bars, jobs, metrics } = setup({ maxRunMs: 60_000 });
    await bus.ensureGroup(STREAM, GROUP);
    await bus.publish(
      STREAM,
      events(40).map((e) => JSON.stringify(e)),
    );
    const env = activityEnv(OWNER, 'runMicroBatchShard');
    const run = createMicroBatchActivity({
      openBus: () => bus,
      bars,
      shards: bars,
      jobs,
      metrics,
      log: createLogger('ERROR', () => undefined),
      microBatch: microBatchDefaults({ maxRunMs: 60_000 }),
    });
    const running = env.run(run, { shard: 0 });
    await new Promise((done) => setTimeout(done, 500));
    env.cancel();
    const err = await running.then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof CancelledFailure, `cancelled, got ${String(err)}`);
    const carried = err.details[0] as MicroBatchRunResult;
    assert.equal(carried.stoppedBy, 'cancelled');
    assert.equal(carried.counts.accepted, 40);
    assert.equal(bus.closed, 1);
    for (const gauge of [
      'stream_consumer_last_heartbeat_seconds',
      'stream_consumer_lag_ms',
      'stream_pending_entries',
      'microbatch_watermark_ms',
      'stream_backlog_ratio',
    ]) {
      assert.deepEqual(await metricValues(metrics, gauge), [], `${gauge} removed`);
    }
    assert.equal(jobs.rows[0].status, 'success');
  });

  it('counts activity_failure, ends its job row as failure and closes the bus when the store fails', async function () {
    const { bus, bars, jobs, metrics, run } = setup();
    bars.failWith = new Error('store down');
    await bus.ensureGroup(STREAM, GROUP);
    await bus.publish(
      STREAM,
      events(20).map((e) => JSON.stringify(e)),
    );

    await assert.rejects(run(), /store down/);

    assert.equal(await errorCount(metrics, 'microbatch', 'activity_failure'), 1);
    assert.deepEqual(
      jobs.rows.map((r) => [r.status, r.error]),
      [['failure', 'store down']],
    );
    assert.equal(bus.closed, 1);
    assert.equal((await bus.pendingEntries(STREAM, GROUP, 100)).length, 20, 'unflushed events stay pending for the next attempt');
  });

  it('after the bus forgot acknowledgements and its last entries, rewrites no stored bar and sends nothing late', async function () {
    const { bus, bars, metrics, run } = setup();
    const all = events(100);
    await bus.ensureGroup(STREAM, GROUP);
    // A second group that reads nothing keeps the acknowledged entries from being trimmed, so the
    // rolled-back group below sees them all again.
    await bus.ensureGroup(STREAM, 'ut-hold');
    const ids = await bus.publish(
      STREAM,
      all.map((e) => JSON.stringify(e)),
    );
    await run();
    const committed = bars.sorted();
    assert.deepEqual(committed, expectedBars(all, WINDOW_MS));
    // A Redis crash that loses its last second: the newest entries (already in stored bars) are
    // gone and the group's acknowledgements rolled back, so everything left is delivered again.
    for (const id of ids.slice(-15)) bus.deleteEntry(STREAM, id);
    bus.rewindGroup(STREAM, GROUP);

    const again = await run(activityEnv(OWNER, 'runMicroBatchShard', Date.now() + 1));

    assert.deepEqual(bars.sorted(), committed, 'no stored bar rewritten with a partial one');
    assert.equal(again.counts.redelivered, 85);
    assert.equal(again.counts.updated + again.counts.inserted, 0);
    assert.equal(again.counts.late, 0);
    assert.deepEqual(bus.entries(LATE), []);
    assert.equal(await errorCount(metrics, 'microbatch', 'late_event'), 0);
    assert.deepEqual(await bus.pendingEntries(STREAM, GROUP, 100), []);
  });

  it("fences off a superseded attempt: it stops reading and committing, and never touches its successor's job row", async function () {
    const { bus, bars, jobs, metrics } = setup();
    const run = createMicroBatchActivity({
      openBus: () => bus,
      bars,
      shards: bars,
      jobs,
      metrics,
      log: createLogger('ERROR', () => undefined),
      microBatch: microBatchDefaults({ maxRunMs: 60_000 }),
    });
    const all = events(120);
    await bus.ensureGroup(STREAM, GROUP);
    await bus.publish(
      STREAM,
      all.slice(0, 60).map((e) => JSON.stringify(e)),
    );
    const stale = activityEnv(OWNER, 'runMicroBatchShard', 1_000);
    const staleRun = stale.run(run, { shard: 0 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await new Promise((done) => setTimeout(done, 300));
    // The server gave up on the first attempt (e.g. its worker froze) and scheduled a second one.
    const successor = activityEnv(OWNER, 'runMicroBatchShard', 2_000);
    const successorRun = successor.run(run, { shard: 0, maxRunMs: 1500 });
    await bus.publish(
      STREAM,
      all.slice(60).map((e) => JSON.stringify(e)),
    );
    const fenced = await staleRun;
    assert.match(String(fenced), /epoch 1000 is fenced off/);
    assert.equal((fenced as { type?: string }).type, 'OwnerFenced');
    await successorRun;
    // A third attempt older than the successor (scheduled before it, delivered late) gets nowhere.
    await assert.rejects(activityEnv(OWNER, 'runMicroBatchShard', 1_500).run(run, { shard: 0 }), /epoch 1500 is fenced off/);

    assert.deepEqual(bars.sorted(), expectedBars(all, WINDOW_MS), 'every event in exactly one bar');
    assert.deepEqual(
      jobs.rows.map((r) => r.status),
      ['abandoned', 'success'],
      'the stale attempt wrote no row after its successor started',
    );
    assert.equal(await errorCount(metrics, 'microbatch', 'owner_fenced'), 2);
    assert.deepEqual(await bus.pendingEntries(STREAM, GROUP, 200), []);
  });

  it('closes the bus when its audit row cannot be started', async function () {
    const { bus, jobs, run } = setup();
    jobs.failStartWith = new Error('PostgreSQL is down');
    await assert.rejects(run(), /PostgreSQL is down/);
    assert.equal(bus.closed, 1);
  });
});

describe('inference activity on fake dependencies', function () {
  const FEATURES = 'ut.features';
  const FSTREAM = `${FEATURES}.0`;
  const IGROUP = 'ut-inference';
  const SIGNALS = 'ut.signals';
  const IOWNER = shardOwnerId('inference', FEATURES, 0);

  /** The inference settings of these tests (one shard, three deliveries, a short run). */
  function inferenceDefaults(maxRuleCooldownMs = 0): InferenceDefaults {
    return {
      featuresStream: FEATURES,
      signalsStream: SIGNALS,
      inferenceGroup: IGROUP,
      dlqStream: DLQ,
      maxDeliveries: 3,
      maxRunMs: 500,
      shards: 1,
      featureWindows: [{ name: 'vwap_1m', horizon: '60s' }],
      maxRuleCooldownMs: () => maxRuleCooldownMs,
    };
  }

  function snapshot(i: number, price: number): FeatureSnapshot {
    const tsMs = T0_MS + i * WINDOW_MS;
    return { ver: 1, provider: 'ut', symbol: 'AAA', interval: '1s', ts: new Date(tsMs).toISOString(), tsMs, price, values: { price }, windows: {} };
  }

  /** Fires `above` for every snapshot priced over 100: simple, deterministic and order-visible. */
  const adapter: InferenceAdapter = {
    name: 'fake',
    version: 'v1',
    evaluate: (s) =>
      Promise.resolve(
        s.price > 100
          ? [
              {
                ver: 1,
                provider: s.provider,
                symbol: s.symbol,
                ts: s.ts,
                name: 'above',
                value: 1,
                score: 1,
                meta: { window: s.interval, price: s.price, inputs: {}, adapter: 'fake' },
              } satisfies SignalEventV1,
            ]
          : [],
      ),
  };

  it('stores and publishes the signals of valid snapshots in order, and dead-letters the rest under their codes', async function () {
    const bus = new MemoryBus();
    const signals = new MemorySignalStore();
    const metrics = createMetrics();
    const defaults = inferenceDefaults();
    const run = createInferenceActivity({
      readStoredBars: () => Promise.resolve([]),
      openBus: () => bus,
      signals,
      createAdapter: () => Promise.resolve(adapter),
      metrics,
      log: createLogger('ERROR', () => undefined),
      inference: defaults,
    });
    await bus.ensureGroup(FSTREAM, IGROUP);
    // A foreign entry three attempts already choked on: dead-lettered as over-delivered, with all its fields.
    bus.appendRaw(FSTREAM, { junk: '1' });
    await bus.readNew(FSTREAM, IGROUP, IOWNER, 10, 0);
    await bus.readPending(FSTREAM, IGROUP, IOWNER, '0', 10);
    await bus.readPending(FSTREAM, IGROUP, IOWNER, '0', 10);
    const snaps = [snapshot(0, 99), snapshot(1, 101), snapshot(2, 102)];
    await bus.publish(FSTREAM, [JSON.stringify(snaps[0]), '{"ver":2}', JSON.stringify(snaps[1]), JSON.stringify(snaps[2])]);

    const result = await activityEnv(IOWNER, 'runInferenceShard').run<[InferenceInput], InferenceRunResult, typeof run>(run, { shard: 0, adapter: 'rules' });

    assert.deepEqual(
      [...signals.rows.values()].map((s) => s.ts),
      [snaps[1].ts, snaps[2].ts],
    );
    assert.deepEqual(
      bus.entries(SIGNALS).map((e) => (JSON.parse(e.fields!.d) as SignalEventV1).ts),
      [snaps[1].ts, snaps[2].ts],
    );
    assert.deepEqual(
      dlqLetters(bus).map((l) => [l.code, l.original]),
      [
        ['max_deliveries', JSON.stringify({ junk: '1' })],
        ['invalid_snapshot', '{"ver":2}'],
      ],
    );
    assert.equal(result.counts.snapshots, 3);
    assert.equal(result.counts.signals, 2);
    assert.equal(result.counts.invalid, 2);
    assert.deepEqual(await bus.pendingEntries(FSTREAM, IGROUP, 100), []);
    assert.equal(await errorCount(metrics, 'inference', 'invalid_snapshot'), 1);
    assert.equal(await errorCount(metrics, 'inference', 'max_deliveries'), 1);
    const emitted = await metricValues(metrics, 'signals_emitted_total');
    assert.deepEqual(
      emitted.map((v) => [v.labels.name, v.value]),
      [['above', 2]],
    );
    assert.equal(bus.closed, 1);
  });

  it("rebuilds the rules' edge and cooldown state from stored bars before a run's first snapshot (a restart or hand-over changes no signal)", async function () {
    // An edge rule that has held since before this run: one continuous pass fired it at bar 0 and
    // not again; a fresh adapter without the warm-up would fire it again at the run's first snapshot.
    const rules = parseRules(
      '- { name: above_100, condition: "price > 100.0", signal: 1.0, score: 0.5, mode: edge }\n- { name: cooled, condition: "price > 0.0", signal: 1.0, score: 0.5, mode: edge, cooldown: 10s }\n',
      'rules.yaml',
    );
    const stored: Bar[] = [0, 1, 2].map((i) => {
      const tsMs = T0_MS + i * WINDOW_MS;
      return { provider: 'ut', symbol: 'AAA', interval: '1s', tsMs, open: 101, high: 101, low: 101, close: 101, volume: 1, trades: 1 };
    });
    const reads: { fromMs: number; toMs: number }[] = [];
    const run = (warmBars: readonly Bar[]) => {
      const bus = new MemoryBus();
      const signals = new MemorySignalStore();
      const activity = createInferenceActivity({
        readStoredBars: (q) => {
          reads.push({ fromMs: q.fromMs, toMs: q.toMs });
          return Promise.resolve(warmBars.filter((b) => b.tsMs >= q.fromMs && b.tsMs < q.toMs));
        },
        openBus: () => bus,
        signals,
        createAdapter: () => Promise.resolve(new RulesAdapter(rules)),
        metrics: createMetrics(),
        log: createLogger('ERROR', () => undefined),
        inference: inferenceDefaults(10_000),
      });
      return { bus, signals, activity };
    };
    for (const [label, warmBars, fired] of [
      ['with the stored bars before it', stored, []],
      ['with nothing stored before it (a fresh series)', [], ['above_100', 'cooled']],
    ] as const) {
      const { bus, signals, activity } = run(warmBars);
      await bus.ensureGroup(FSTREAM, IGROUP);
      await bus.publish(FSTREAM, [JSON.stringify(snapshot(3, 102))]);
      await activityEnv(IOWNER, 'runInferenceShard').run<[InferenceInput], InferenceRunResult, typeof activity>(activity, { shard: 0, adapter: 'rules' });
      assert.deepEqual([...signals.rows.values()].map((r) => r.name).sort(), fired, `signals at the run's first snapshot ${label}`);
    }
    assert.ok(
      reads.every((r) => r.toMs === T0_MS + 3 * WINDOW_MS && r.fromMs <= T0_MS - 10_000),
      `read the warm-up span before the first snapshot: ${JSON.stringify(reads)}`,
    );
  });

  it('fails without retry when the adapter does not load, and opens no bus', async function () {
    const bus = new MemoryBus();
    const defaults = inferenceDefaults();
    const run = createInferenceActivity({
      readStoredBars: () => Promise.resolve([]),
      openBus: () => bus,
      signals: new MemorySignalStore(),
      createAdapter: () => Promise.reject(new Error('rules.yaml:3:7: unknown feature "foo"')),
      metrics: createMetrics(),
      log: createLogger('ERROR', () => undefined),
      inference: defaults,
    });
    await assert.rejects(
      activityEnv(IOWNER, 'runInferenceShard').run(run, { shard: 0, adapter: 'rules' as const }),
      (err: Error & { nonRetryable?: boolean; type?: string }) =>
        err.nonRetryable === true && err.type === 'AdapterLoadError' && /unknown feature "foo"/.test(err.message),
    );
    assert.equal(bus.closed, 0);
  });
});
