import assert from 'node:assert/strict';
import { CancelledFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type { MetricValue } from 'prom-client';
import { createProducerActivity } from '../../activities/producer-activity.js';
import type { ProducerDefaults } from '../../activities/producer-activity.js';
import type { ProducerInput, ProducerRunResult } from '../../activities/types.js';
import type { StreamEventV1 } from '../../pipeline/contracts/index.js';
import { createLogger, createMetrics } from '../../pipeline/telemetry/index.js';
import type { Metrics } from '../../pipeline/telemetry/index.js';
import { MemoryBus } from '../helpers/memory-bus.js';

// The synthetic producer activity on an in-memory bus: backpressure instead of loss. With a
// consumer group behind, it never takes a stream's backlog past 90 % of retention; it waits,
// heartbeating, and resumes when the consumer catches up.

const BASE = 'ut.prod';
const STREAM = `${BASE}.0`;
const GROUP = 'ut-group';
const RETENTION = 1000;
const WAIT_MARK = 900; // 90 % of retention

/** A MemoryBus that records the stream's backlog after every publish. */
class RecordingBus extends MemoryBus {
  readonly backlogs: number[] = [];

  override async publishMany(batches: ReadonlyMap<string, readonly string[]>): Promise<void> {
    await super.publishMany(batches);
    this.backlogs.push((await this.backlog(STREAM)).entries);
  }
}

const defaults: ProducerDefaults = {
  stream: BASE,
  shards: 1,
  provider: 'ut',
  symbols: ['AAA', 'BBB'],
  seed: 11,
  tickRate: 50,
  priceVolatility: 0.02,
  maxRunMs: 60_000,
};

function activityEnv(): MockActivityEnvironment {
  return new MockActivityEnvironment({ activityType: 'runProducer', attempt: 1 }, { logger: new DefaultLogger('ERROR', () => undefined) });
}

async function metricValues(metrics: Metrics, name: string): Promise<MetricValue<string>[]> {
  return (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name)?.values ?? [];
}

async function errorCount(metrics: Metrics, reason: string): Promise<number> {
  return (await metricValues(metrics, 'errors_total')).find((v) => v.labels.component === 'producer' && v.labels.reason === reason)?.value ?? 0;
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 20));
  }
}

function setup() {
  const bus = new RecordingBus({ retention: RETENTION });
  const metrics = createMetrics();
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('INFO', (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  const run = createProducerActivity({ openBus: () => bus, metrics, log, producer: defaults });
  const env = activityEnv();
  let beats = 0;
  env.on('heartbeat', () => beats++);
  return { bus, metrics, lines, env, beats: () => beats, run: (input: ProducerInput) => env.run<[ProducerInput], ProducerRunResult, typeof run>(run, input) };
}

describe('producer activity: backpressure instead of loss', function () {
  it('waits at 90 % of retention instead of exceeding it, and resumes as the consumer catches up', async function () {
    const { bus, metrics, lines, beats, run } = setup();
    await bus.ensureGroup(STREAM, GROUP);
    const running = run({ count: 3000, startTs: '2025-10-24T14:00:00Z' });
    let finished = false;
    void running
      .finally(() => {
        finished = true;
      })
      .catch(() => undefined);

    await until('the producer waiting at the mark', async () => (await bus.backlog(STREAM)).entries === WAIT_MARK && beats() > 2);
    assert.equal(finished, false);
    assert.equal(await errorCount(metrics, 'backlog_near_retention'), 1);
    assert.deepEqual(
      (await metricValues(metrics, 'stream_backlog_ratio')).map((v) => [v.labels.topic, v.value]),
      [[STREAM, 0.9]],
    );
    assert.equal(lines.filter((l) => l.level === 'warning' && /near retention/.test(String(l.msg))).length, 1);

    // The consumer catches up in steps; the producer follows without ever passing the mark.
    const consumed: StreamEventV1[] = [];
    while (!finished || (await bus.backlog(STREAM)).entries > 0) {
      const entries = await bus.readNew(STREAM, GROUP, 'c', 250, 0);
      await bus.ack(
        STREAM,
        GROUP,
        entries.map((e) => e.id),
      );
      consumed.push(...entries.map((e) => JSON.parse(e.payload!) as StreamEventV1));
      await new Promise((done) => setTimeout(done, 50));
    }
    const result = await running;

    assert.equal(result.published, 3000);
    assert.equal(result.finished, true);
    assert.equal(consumed.length, 3000, 'every event reached the consumer');
    assert.equal(new Set(consumed.map((e) => e.event_id)).size, 3000);
    assert.ok(Math.max(...bus.backlogs) <= WAIT_MARK, `backlog after each publish: max ${Math.max(...bus.backlogs)}`);
    assert.ok(bus.backlogs.length > 3, 'published in rounds cut to the room left');
    assert.deepEqual(await bus.takeUnreadLoss(STREAM, GROUP), { removed: 0 });
    assert.deepEqual(await metricValues(metrics, 'stream_backlog_ratio'), [], 'gauge removed when the run ends');
    assert.equal(bus.closed, 1);
  });

  it('stops waiting when cancelled, with a CancelledFailure, and closes the bus', async function () {
    const { bus, beats, env, run } = setup();
    await bus.ensureGroup(STREAM, GROUP);
    await bus.publish(
      STREAM,
      Array.from({ length: WAIT_MARK }, () => '{}'),
    );
    const running = run({ count: 100, startTs: '2025-10-24T14:00:00Z' });
    await until('a heartbeat while waiting', () => beats() > 0);
    const cancelledAt = Date.now();
    env.cancel();
    const err = await running.then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof CancelledFailure, `cancelled, got ${String(err)}`);
    assert.ok(Date.now() - cancelledAt < 2000, 'promptly');
    assert.equal(await bus.length(STREAM), WAIT_MARK, 'published nothing');
    assert.equal(bus.closed, 1);
  });

  it('live mode: a run that found no room before its deadline returns unfinished, having published nothing', async function () {
    const { bus, beats, run } = setup();
    await bus.ensureGroup(STREAM, GROUP);
    await bus.publish(
      STREAM,
      Array.from({ length: 950 }, () => '{}'),
    );
    const result = await run({ maxRunMs: 700 });
    assert.deepEqual([result.published, result.finished], [0, false]);
    assert.ok(beats() > 0, 'heartbeats while waiting');
    assert.equal(await bus.length(STREAM), 950);
  });

  it('finite mode: fails the attempt (to be retried from its heartbeat) after waiting maxRunMs', async function () {
    const { bus, run } = setup();
    await bus.ensureGroup(STREAM, GROUP);
    await bus.publish(
      STREAM,
      Array.from({ length: WAIT_MARK }, () => '{}'),
    );
    await assert.rejects(
      run({ count: 10, startTs: '2025-10-24T14:00:00Z', maxRunMs: 400 }),
      (err: Error & { type?: string; nonRetryable?: boolean }) =>
        err.type === 'BacklogAtRetention' && err.nonRetryable === false && /stayed at 90% of retention/.test(err.message),
    );
  });
});
