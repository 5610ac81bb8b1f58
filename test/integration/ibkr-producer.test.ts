/**
 * The IBKR live producer end to end: the real @stoqey/ib client in the producer activity talks to
 * the fake TWS over loopback; events go through Redis to the micro-batch consumers under a real
 * Temporal dev server; bars land in PostgreSQL. Every test accounts for every event: each trade
 * and bar the fake TWS sent to the producer is on the bus exactly once (and nothing else is), and
 * the stored bars equal an independent aggregation of them (test/helpers/expected-bars.ts), with
 * nothing late, dead-lettered or pending.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { Registry } from 'prom-client';
import { createActivities } from '../../activities/index.js';
import type { IbkrFeedView, ProducerHeartbeat } from '../../activities/types.js';
import { formatFleetStatus, readFleetStatus } from '../../client/status-command.js';
import { checkProducer } from '../../client/stream-commands.js';
import { openBus, shardStream } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import type { StreamEventV1 } from '../../pipeline/contracts/index.js';
import { createLogger, createMetrics } from '../../pipeline/telemetry/index.js';
import type { Database } from '../../store/index.js';
import { StoreClient } from '../../store/index.js';
import { WORKER_TUNING } from '../../workers/worker-options.js';
import { activityDeps } from '../../workers/wiring.js';
import type { LoopStatus } from '../../workflows/index.js';
import { microBatchWorkflowId, producerWorkflowId } from '../../workflows/index.js';
import { accountFor, assertAccounted, installBarAudit, removeBarAudit, waitSettled } from '../helpers/accounting.js';
import type { FakeTwsOptions } from '../helpers/fake-tws/index.js';
import { FakeTws, generateTape } from '../helpers/fake-tws/index.js';
import { asProduced, busEvents, compareWithBus, expectedIbkrEvents, fileLog } from '../helpers/ibkr-oracle.js';
import { connectRedis, connectStore, REPO_ROOT, removeTestRun, startTemporal, testConfig, uniqueTag, workflowBundle } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const LOG_DIR = resolve(REPO_ROOT, '.data/test/logs');
mkdirSync(LOG_DIR, { recursive: true });
const SYMBOLS = ['SPY', 'AAPL', 'MSFT'];
const CLIENT_ID = 31;

const stock = (symbol: string) => ({ symbol, sec_type: 'STK', exchange: 'SMART', currency: 'USD' });
const waitUntil = <T>(what: string, timeoutMs: number, check: () => T | undefined): Promise<T> => waitFor(what, timeoutMs, () => Promise.resolve(check()));
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The IBKR feed view of the producer's last heartbeat (undefined before one). */
async function feedOf(client: Client, workflowId: string): Promise<IbkrFeedView | undefined> {
  const { raw } = await client.workflow.getHandle(workflowId).describe();
  const payload = raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0];
  return payload ? defaultPayloadConverter.fromPayload<ProducerHeartbeat>(payload).feed : undefined;
}

interface Run {
  readonly tag: string;
  readonly config: StreamingConfig;
  readonly fake: FakeTws;
  readonly metrics: ReturnType<typeof createMetrics>;
  readonly worker: Worker;
  readonly logFile: string;
  readonly provider: string;
  readonly barsProvider: string;
}

describe('IBKR live producer (fake TWS over loopback, Temporal, Redis, PostgreSQL)', function () {
  this.timeout(180_000);
  let env: TestWorkflowEnvironment;
  let db: Kysely<Database>;
  let redis: Redis;
  const runs: Run[] = [];

  before(async function () {
    const probe = testConfig(uniqueTag());
    redis = await connectRedis(probe);
    db = await connectStore(probe);
    env = await startTemporal();
  });

  afterEach(async function () {
    for (const run of runs.splice(0)) {
      await run.fake.stop();
      if (this.currentTest?.state === 'failed') console.error(`logs of the failed run: ${run.logFile}`);
      for (const provider of [run.provider, run.barsProvider]) await db.deleteFrom('bars_ohlcv').where('provider', '=', provider).execute();
      await removeBarAudit(db, run.provider);
      await removeTestRun(run.config, { redis, db });
    }
  });

  after(async function () {
    await redis?.quit();
    await db?.destroy();
    await env?.teardown();
  });

  /** A fake TWS with a busy tape, and a config + in-process worker (its own metrics) pointed at it. */
  async function setUp(ibkr: Record<string, unknown>, options: { micro?: Record<string, unknown>; fake?: Partial<FakeTwsOptions> } = {}): Promise<Run> {
    const tag = uniqueTag('i');
    const logFile = resolve(LOG_DIR, `ibkr-producer-${tag}.log`);
    const fake = await FakeTws.start({
      tape: generateTape({ symbols: SYMBOLS, startSec: 1_761_314_400, durationSec: 300, seed: 23, ticksPerSecond: 10 }),
      log: fileLog(logFile),
      ...options.fake,
    });
    const provider = `ibkr-${tag}`;
    const config = testConfig(tag, {
      producers: {
        ibkr: {
          enabled: true,
          provider,
          host: fake.host,
          port: fake.port,
          client_id: CLIENT_ID,
          contracts: SYMBOLS.map(stock),
          data: 'trades',
          reconnect_initial_ms: 200,
          reconnect_max_ms: 1000,
          ...ibkr,
        },
      },
      micro_batch: { window_ms: 1000, allow_late_ms: 1000, flush_timeout_ms: 500, ...options.micro },
    });
    await installBarAudit(db, { providerPrefix: provider });
    // A group of the oracle's own that never acknowledges: streams are trimmed only below what every
    // group acknowledged, so every published event is still there to compare with what TWS sent.
    for (let shard = 0; shard < config.bus.shards; shard++)
      await redis.xgroup('CREATE', shardStream(config.bus.redis.stream, shard), 'oracle', '0', 'MKSTREAM');
    const metrics = createMetrics(new Registry());
    const log = createLogger('INFO', fileLog(logFile));
    const worker = await Worker.create({
      connection: env.nativeConnection,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.task_queue,
      workflowBundle: await workflowBundle(),
      activities: createActivities(activityDeps(config, db, metrics, log)),
      ...WORKER_TUNING,
    });
    const run: Run = {
      tag,
      config,
      fake,
      metrics,
      worker,
      logFile,
      provider,
      barsProvider: config.producers.ibkr.data === 'both' ? `${provider}-bars` : provider,
    };
    runs.push(run);
    return run;
  }

  async function startConsumers(run: Run): Promise<WorkflowHandle[]> {
    const handles: WorkflowHandle[] = [];
    for (let shard = 0; shard < run.config.bus.shards; shard++) {
      handles.push(
        await env.client.workflow.start('streamConsumerWorkflow', {
          taskQueue: run.config.temporal.task_queue,
          workflowId: microBatchWorkflowId(run.config.bus.redis.stream, shard),
          args: [{ role: 'microbatch', shard }],
        }),
      );
    }
    return handles;
  }

  function startProducer(run: Run): Promise<WorkflowHandle> {
    return env.client.workflow.start('producerWorkflow', {
      taskQueue: run.config.temporal.task_queue,
      workflowId: producerWorkflowId(run.provider),
      args: [{ provider: 'ibkr' }],
    });
  }

  /** Ticks the fake sent to the producer on connections after the first `after` ones, for at least `seconds` distinct seconds. */
  async function ticksFor(run: Run, seconds: number, what: string, options: { sinceMs?: number } = {}): Promise<void> {
    const since = options.sinceMs ?? 0;
    await waitUntil(what, 30_000, () => {
      const secs = new Set(run.fake.sentTicks.filter((t) => t.clientId === CLIENT_ID && t.atMs >= since).map((t) => t.time));
      return secs.size >= seconds ? true : undefined;
    });
  }

  /** Drains the producer, waits for the consumers to have read everything and flushed every window, drains them. */
  async function finish(run: Run, producer: WorkflowHandle, consumers: WorkflowHandle[], expected: readonly StreamEventV1[]): Promise<LoopStatus> {
    await producer.signal('drain');
    const status = (await producer.result()) as LoopStatus;
    const streams = Array.from({ length: run.config.bus.shards }, (_, s) => shardStream(run.config.bus.redis.stream, s));
    assert.ok(await waitSettled(redis, streams, run.config.bus.redis.consumer_group, 30_000), 'the consumers read and acknowledged everything');
    // The last windows close when the idle watermark passes them (flush_timeout + allow_late).
    const store = new StoreClient(db);
    const windows = new Set(expected.map((e) => `${e.provider}|${e.symbol}|${Math.floor(Date.parse(e.src_ts) / 1000)}`));
    await waitFor('every window with an event flushed', 30_000, async () => {
      const bars = [
        ...(await store.listBars({ provider: run.provider })),
        ...(run.barsProvider !== run.provider ? await store.listBars({ provider: run.barsProvider }) : []),
      ];
      return bars.length >= windows.size ? true : undefined;
    });
    for (const h of consumers) await h.signal('drain');
    await Promise.all(consumers.map((h) => h.result()));
    return status;
  }

  /** The whole accounting: bus vs. what TWS sent, then bars vs. the independent aggregation. */
  async function account(run: Run, expected: readonly StreamEventV1[]) {
    const onBus = await busEvents(redis, run.config);
    const cmp = compareWithBus(expected, onBus);
    assert.deepEqual(cmp.duplicates, [], 'no event_id published twice');
    assert.deepEqual(cmp.unexpected, [], 'nothing published that TWS did not send');
    assert.deepEqual(
      cmp.missing.map((e) => e.event_id),
      [],
      'every trade and bar TWS sent to the producer was published',
    );
    const names = run.config.bus.redis;
    const accounting = await accountFor({
      redis,
      db,
      streams: Array.from({ length: run.config.bus.shards }, (_, s) => shardStream(names.stream, s)),
      group: names.consumer_group,
      lateStream: names.late_stream,
      dlqStream: names.dlq_stream,
      windowMs: run.config.micro_batch.window_ms,
      produced: asProduced(onBus, run.config),
    });
    assertAccounted(accounting);
    fileLog(run.logFile)(`oracle: ${onBus.length} events on the bus = ${expected.length} sent by TWS; ${accounting.report}`);
    return { onBus, accounting };
  }

  async function metricValues(run: Run, name: string): Promise<[Partial<Record<string, string | number>>, number][]> {
    const metric = (await run.metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
    return (metric?.values ?? []).map((v) => [v.labels, v.value]);
  }

  it('(a) live trades and 5-second bars → bars equal to an independent aggregation of what TWS sent; the feed shows in mdp status', async function () {
    // Bars are published when they end, stamped with their start: the lateness reach must cover 5 s + delivery.
    const run = await setUp({ data: 'both' }, { micro: { allow_late_ms: 5000 } });
    await run.worker.runUntil(async () => {
      const consumers = await startConsumers(run);
      const producer = await startProducer(run);
      await waitUntil('two rounds of non-empty real-time bars for every symbol', 30_000, () =>
        SYMBOLS.every((s) => run.fake.sentBars.filter((b) => b.symbol === s && b.clientId === CLIENT_ID && b.count > 0).length >= 2) ? true : undefined,
      );

      // mdp status shows the feed (from the producer's heartbeat).
      const feed = await waitFor('a heartbeat of the live feed', 10_000, async () => {
        const f = await feedOf(env.client, producer.workflowId);
        return f?.status === 'live' ? f : undefined;
      });
      assert.deepEqual([feed.contracts, feed.gaps, feed.refused, feed.dropped], [3, 0, [], 0]);
      const bus = openBus(run.config);
      try {
        const status = await readFleetStatus(env.client, bus, () => Promise.resolve([]), run.config);
        const text = formatFleetStatus(status);
        assert.match(text, new RegExp(`^  ${producerWorkflowId(run.provider)}: feed live \\(3 contracts\\); no gaps$`, 'm'), text);
      } finally {
        await bus.close();
      }

      const expectedNow = () => expectedIbkrEvents(run.fake, { clientId: CLIENT_ID, provider: run.provider, barsProvider: run.barsProvider });
      const status = await finish(run, producer, consumers, expectedNow());
      const expected = expectedNow();
      const { onBus } = await account(run, expected);
      assert.ok(onBus.filter((e) => e.kind === 'bar').length >= 6 && onBus.filter((e) => e.kind === 'tick').length > 80, `a real run (${onBus.length} events)`);
      assert.equal(status.totals.published, onBus.length, "the workflow's count is what the bus holds");
    });
    assert.equal(run.fake.pacingViolations, 0, 'TWS reported no pacing violation');
    assert.deepEqual(run.fake.unhandled, []);
    const requests: Record<string, number> = Object.fromEntries((await metricValues(run, 'ibkr_requests_total')).map(([l, v]) => [String(l.kind), v]));
    assert.deepEqual(requests, { start_api: 1, contract_details: 3, tick_by_tick: 3, real_time_bars: 3, cancel_tick_by_tick: 3, cancel_real_time_bars: 3 });
    assert.deepEqual(await metricValues(run, 'ibkr_pacing_violations_total'), []);
  });

  it('(b) TWS drops mid-stream and comes back, then loses IB (1100 → 1101): reconnect, resubscribe, no duplicate, both gaps reported, bars exact on both sides', async function () {
    const run = await setUp({});
    await run.worker.runUntil(async () => {
      const consumers = await startConsumers(run);
      const producer = await startProducer(run);
      await ticksFor(run, 3, 'three seconds of trades on the first connection');

      const downAt = Date.now();
      await run.fake.goDown();
      await pause(2000);
      await run.fake.comeBack();
      await ticksFor(run, 3, 'three seconds of trades after the reconnect', { sinceMs: Date.now() });
      const connections = new Set(run.fake.sentTicks.map((t) => t.connection));
      assert.equal(connections.size, 2, 'a second connection carried trades');
      assert.ok(!run.fake.sentTicks.some((t) => t.atMs > downAt + 50 && t.atMs < downAt + 2000), 'TWS sent nothing while down');

      const subscriptionsBefore = run.fake.requests.filter((r) => r.name === 'REQ_TICK_BY_TICK_DATA').length;
      run.fake.connectivityLost();
      await pause(1000);
      run.fake.connectivityRestored({ dataLost: true });
      await waitUntil('the producer to subscribe again after 1101', 10_000, () =>
        run.fake.requests.filter((r) => r.name === 'REQ_TICK_BY_TICK_DATA').length === subscriptionsBefore + SYMBOLS.length ? true : undefined,
      );
      await ticksFor(run, 3, 'three seconds of trades after 1101', { sinceMs: Date.now() });

      const feed = await waitFor('the heartbeat to show both gaps', 10_000, async () => {
        const f = await feedOf(env.client, producer.workflowId);
        return f && f.gaps === 2 && f.status === 'live' ? f : undefined;
      });
      assert.equal(feed.lastGap?.reason, 'connectivity_lost');

      const status = await finish(run, producer, consumers, expectedIbkrEvents(run.fake, { clientId: CLIENT_ID, provider: run.provider }));
      const { onBus } = await account(run, expectedIbkrEvents(run.fake, { clientId: CLIENT_ID, provider: run.provider }));
      assert.equal(status.totals.published, onBus.length);
      // Trades on both sides of each gap.
      const times = onBus.map((e) => Date.parse(e.src_ts));
      assert.ok(times.some((t) => t < downAt - 1000) && times.some((t) => t > downAt + 3000), 'bars on both sides of the gap');
    });
    const histogram = (await run.metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'ibkr_gap_seconds')!;
    const countOf = (reason: string) =>
      histogram.values.find((v) => (v as { metricName?: string }).metricName === 'ibkr_gap_seconds_count' && v.labels.reason === reason)?.value;
    const sumOf = (reason: string) =>
      histogram.values.find((v) => (v as { metricName?: string }).metricName === 'ibkr_gap_seconds_sum' && v.labels.reason === reason)?.value ?? 0;
    assert.deepEqual([countOf('disconnected'), countOf('connectivity_lost')], [1, 1]);
    assert.ok(sumOf('disconnected') >= 2 && sumOf('disconnected') < 6, `the disconnect gap spans the outage (${sumOf('disconnected')} s)`);
    assert.ok(sumOf('connectivity_lost') >= 0.9 && sumOf('connectivity_lost') < 5, `the 1100 gap spans it (${sumOf('connectivity_lost')} s)`);
    const logged = readFileSync(run.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"IBKR gap ended'))
      .map((l) => (JSON.parse(l) as { reason: string }).reason);
    assert.deepEqual(logged, ['disconnected', 'connectivity_lost'], 'each gap is logged');
    assert.equal(run.fake.pacingViolations, 0);
  });

  it('(d) market data lines: 6 contracts on a budget of 4 → 4 subscribed, the other 2 refused by name; without the budget TWS answers 101', async function () {
    const extra = ['IWM', 'QQQ', 'DIA'];
    const contracts = [...SYMBOLS, ...extra].map(stock);
    for (const budget of [4, 6]) {
      const run = await setUp(
        { contracts, market_data_lines: budget },
        { fake: { marketDataLines: 4, extraContracts: extra.map((symbol) => ({ ...stock(symbol), secType: 'STK', primaryExch: 'ARCA' })) } },
      );
      const warnings = checkProducer(run.config, 'ibkr');
      await run.worker.runUntil(async () => {
        const producer = await startProducer(run);
        const feed = await waitFor('the feed to settle', 15_000, async () => {
          const f = await feedOf(env.client, producer.workflowId);
          return f?.status === 'live' && f.refused.length === 2 ? f : undefined;
        });
        await producer.signal('drain');
        await producer.result();
        if (budget === 4) {
          assert.deepEqual(warnings, [
            'producers.ibkr.market_data_lines is 4 and each contract takes 1 (trades): subscribing 4 of 6 contracts; refused: QQQ (STK SMART USD), DIA (STK SMART USD)',
          ]);
          assert.deepEqual(
            feed.refused.map((r) => [r.contract, r.reason]),
            [
              ['QQQ (STK SMART USD)', 'beyond producers.ibkr.market_data_lines'],
              ['DIA (STK SMART USD)', 'beyond producers.ibkr.market_data_lines'],
            ],
          );
          assert.equal(run.fake.requests.filter((r) => r.name === 'REQ_TICK_BY_TICK_DATA').length, 4);
          assert.deepEqual(run.fake.violations, [], 'TWS never had to refuse a line');
        } else {
          // The can-fail check: a budget above the account's lines is caught by TWS, and the producer says so.
          assert.deepEqual(warnings, []);
          assert.deepEqual(
            run.fake.violations.map((v) => [v.rule, v.code]),
            [
              ['market_data_lines', 101],
              ['market_data_lines', 101],
            ],
          );
          assert.deepEqual(
            feed.refused.map((r) => r.reason),
            [
              'TWS refused the tick-by-tick subscription: 101 Max number of tickers has been reached.',
              'TWS refused the tick-by-tick subscription: 101 Max number of tickers has been reached.',
            ],
          );
        }
      });
    }
  });

  it('(d) a burst of 120 subscriptions (241 messages) stays under 50 messages/s: 0 violations at TWS; with pacing disabled TWS reports them', async function () {
    const extra = Array.from({ length: 117 }, (_, i) => `X${String(i).padStart(3, '0')}`);
    const contracts = [...SYMBOLS, ...extra].map(stock);
    for (const enabled of [true, false]) {
      const run = await setUp(
        { contracts, market_data_lines: 120, pacing: { enabled } },
        { fake: { marketDataLines: 120, extraContracts: extra.map((symbol) => ({ ...stock(symbol), secType: 'STK', primaryExch: 'NASDAQ' })) } },
      );
      await run.worker.runUntil(async () => {
        const producer = await startProducer(run);
        await waitFor('120 subscriptions', 30_000, async () => ((await feedOf(env.client, producer.workflowId))?.status === 'live' ? true : undefined));
        await producer.signal('drain');
        await producer.result();
      });
      const subscribe = run.fake.requests.filter((r) => r.name === 'REQ_TICK_BY_TICK_DATA' || r.name === 'REQ_CONTRACT_DATA' || r.name === 'START_API');
      assert.equal(subscribe.length, 241);
      const first = subscribe[0].atMs;
      const last = subscribe[240].atMs;
      if (enabled) {
        assert.equal(run.fake.pacingViolations, 0, 'no violation at TWS');
        assert.ok(last - first >= 3800, `241 messages at ≤ 50/s take at least 3.8 s (took ${last - first} ms)`);
        const waited = (await run.metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'ibkr_pacing_wait_seconds')!;
        const sum = waited.values.filter((v) => (v as { metricName?: string }).metricName === 'ibkr_pacing_wait_seconds_sum').reduce((n, v) => n + v.value, 0);
        assert.ok(sum > 10, `the time spent waiting is measured (${sum} s over all requests)`);
      } else {
        assert.ok(run.fake.pacingViolations > 50, `without the pacer TWS reports violations (got ${run.fake.pacingViolations})`);
      }
      await run.fake.stop();
    }
  });
});
