/**
 * Fault matrix, row l: the worker running the IBKR live producer is SIGKILLed mid-stream. A new
 * worker process takes over: its attempt resumes from the last heartbeat, connects to the (fake)
 * TWS again with the same client id and resubscribes. Nothing is published twice, every published
 * event is exactly what TWS sent (ids included: `seq` continues deterministically), the only trades
 * lost are the ones the dead worker had received and not yet published, the time without a
 * subscription is reported as a gap, and the bars are exact (the matrix's accounting).
 */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { StoreClient } from '../../store/index.js';
import { producerWorkflowId } from '../../workflows/index.js';
import { assertAccounted } from '../helpers/accounting.js';
import { FakeTws, generateTape } from '../helpers/fake-tws/index.js';
import { useFaultStack } from '../helpers/fault-run.js';
import { asProduced, busEvents, compareWithBus, expectedTicks, fileLog } from '../helpers/ibkr-oracle.js';
import { uniqueTag } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';
import { RECOVERY_MS } from './matrix.js';

const SYMBOLS = ['SPY', 'AAPL', 'MSFT', 'QQQ'];
const CLIENT_ID = 41;

const waitUntil = <T>(what: string, timeoutMs: number, check: () => T | undefined): Promise<T> => waitFor(what, timeoutMs, () => Promise.resolve(check()));

describe('fault matrix l: the worker running the IBKR live producer SIGKILLed', function () {
  this.timeout(300_000);
  const faults = useFaultStack('ibkr-worker-kill');
  let fake: FakeTws | undefined;

  afterEach(async () => {
    await fake?.stop();
  });

  it('resumes on another worker: no duplicate event, seq continues, the gap reported, exact accounting', async function () {
    const provider = uniqueTag('ibkr-');
    const logFile = resolve(faults.stack.dir, 'fake-tws.log');
    fake = await FakeTws.start({
      tape: generateTape({ symbols: SYMBOLS, startSec: 1_761_314_400, durationSec: 600, seed: 31, ticksPerSecond: 8 }),
      log: fileLog(logFile),
    });
    const run = await faults.run('ibkr-live', {
      shards: 2,
      overrides: {
        producers: {
          ibkr: {
            enabled: true,
            provider,
            host: fake.host,
            port: fake.port,
            client_id: CLIENT_ID,
            contracts: SYMBOLS.map((symbol) => ({ symbol, sec_type: 'STK', exchange: 'SMART', currency: 'USD' })),
            data: 'trades',
            reconnect_initial_ms: 200,
            reconnect_max_ms: 1000,
          },
        },
        micro_batch: { window_ms: 1000, allow_late_ms: 1000, flush_timeout_ms: 1000 },
      },
    });
    // The oracle's own group: nothing is trimmed before it is compared with what TWS sent.
    for (const stream of run.streams) await run.redis.xgroup('CREATE', stream, 'oracle', '0', 'MKSTREAM');

    const first = await run.startWorker();
    await run.startConsumers();
    const producer = await run.client.workflow.start('producerWorkflow', {
      taskQueue: run.config.temporal.task_queue,
      workflowId: producerWorkflowId(provider),
      args: [{ provider: 'ibkr' }],
    });
    // Trades flowing and published for a few seconds, and a heartbeat carrying them.
    await waitFor('4 s of trades published by the first worker', 60_000, async () => {
      const published = (await busEvents(run.redis, run.config)).length;
      const seconds = new Set(fake!.sentTicks.map((t) => t.time)).size;
      return seconds >= 4 && published > 0 ? true : undefined;
    });
    const killAt = Date.now();
    await run.killWorker(first);
    const firstConnection = fake.sentTicks[0].connection;

    await run.startWorker();
    await waitUntil('trades on a new connection for 3 s', RECOVERY_MS, () =>
      new Set(fake!.sentTicks.filter((t) => t.connection !== firstConnection).map((t) => t.time)).size >= 3 ? true : undefined,
    );
    await producer.signal('drain');
    await producer.result();
    assert.ok(await run.settle(RECOVERY_MS), 'the consumers read and acknowledged everything');
    const onBus = await busEvents(run.redis, run.config);
    // The last windows close when the idle watermark passes them: one bar per (symbol, second) published.
    const windows = new Set(onBus.map((e) => `${e.symbol}|${e.src_ts}`)).size;
    const store = new StoreClient(run.db);
    await waitFor(`${windows} bars`, 30_000, async () => ((await store.listBars({ provider })).length >= windows ? true : undefined));

    const ticks = expectedTicks(fake, { clientId: CLIENT_ID, provider });
    const cmp = compareWithBus(
      ticks.map((t) => t.event),
      onBus,
    );
    assert.deepEqual(cmp.duplicates, [], 'no event_id published twice');
    assert.deepEqual(cmp.unexpected, [], 'every published event is what TWS sent, seq included');
    // Lost: only what the dead worker received and had not yet published (its last moments).
    const lostIds = new Set(cmp.missing.map((e) => e.event_id));
    const lost = ticks.filter((t) => lostIds.has(t.event.event_id)).map((t) => t.tick);
    assert.ok(
      lost.every((t) => t.connection === firstConnection && t.atMs >= killAt - 1000),
      `only the dead worker's in-flight trades are missing: ${JSON.stringify(lost.slice(0, 5))}`,
    );
    const lastPublishedBefore = Math.max(
      ...ticks.filter((t) => t.tick.connection === firstConnection && !lostIds.has(t.event.event_id)).map((t) => t.tick.atMs),
    );
    assert.ok(
      lost.every((t) => t.atMs >= lastPublishedBefore),
      'the lost ones are a suffix of what the first connection carried',
    );

    // The restart is a reported gap, from the dead attempt's last heartbeat to the resubscription.
    const gaps = run.workers
      .flatMap((w) => run.logLines(w))
      .filter((l) => l.msg === 'IBKR gap ended: trades printed in it were not received')
      .map((l) => ({ reason: l.reason as string, from: Date.parse(l.from as string), to: Date.parse(l.to as string) }));
    assert.equal(gaps.length, 1, JSON.stringify(gaps));
    assert.equal(gaps[0].reason, 'restart');
    assert.ok(gaps[0].from <= killAt && gaps[0].to - gaps[0].from >= 4000, `the gap spans the outage: ${JSON.stringify(gaps[0])}`);
    assert.equal(fake.pacingViolations, 0);

    assertAccounted(await run.account({ produced: asProduced(onBus, run.config) }));
    const restarted = ticks.filter((t) => t.tick.connection !== firstConnection).length;
    assert.ok(restarted > 0 && onBus.length > restarted, `trades on both sides of the kill (${onBus.length} published, ${restarted} after it)`);
  });
});
