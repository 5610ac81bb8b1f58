import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import type { MetricValue } from 'prom-client';
import { RedisBus, RetentionKeeper } from '../../pipeline/bus/index.js';
import { createLogger, createMetrics } from '../../pipeline/telemetry/index.js';
import type { Metrics } from '../../pipeline/telemetry/index.js';
import { connectRedis, testConfig, uniqueTag } from '../helpers/services.js';

// Retention on a real Redis 7: appends never drop what a group has not read, trimming removes only
// what every group acknowledged, and entries removed anyway (an operator's XTRIM, an old worker's
// MAXLEN, an XDEL, a deleted stream) are counted exactly, once, with a log line.

/** Small enough that a test crosses it, large enough for Redis' 100-entry stream nodes. */
const RETENTION = 100;

async function metricValues(metrics: Metrics, name: string): Promise<MetricValue<string>[]> {
  return (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name)?.values ?? [];
}

async function errorCount(metrics: Metrics, component: string, reason: string): Promise<number> {
  return (await metricValues(metrics, 'errors_total')).find((v) => v.labels.component === component && v.labels.reason === reason)?.value ?? 0;
}

function payloads(count: number, from = 0): string[] {
  return Array.from({ length: count }, (_, i) => JSON.stringify({ n: from + i }));
}

describe('retention on Redis Streams: never drops unread entries, counts what is lost anyway', function () {
  this.timeout(60_000);
  let redis: Redis;
  let bus: RedisBus;
  let tag: string;
  let n = 0;
  const stream = () => `${tag}.s${++n}`;

  before(async function () {
    const config = testConfig(uniqueTag('ret'));
    tag = config.bus.redis.stream.replace(/\.events$/, '');
    redis = await connectRedis(config);
    bus = new RedisBus(config.bus.redis.uri, { maxLen: RETENTION });
  });

  after(async function () {
    const keys = await redis.keys(`${tag}.*`);
    if (keys.length > 0) await redis.del(...keys);
    await bus.close();
    await redis.quit();
  });

  /** Reads `count` new entries as `consumer` of `group` and acknowledges the first `ack` of them. */
  async function readAndAck(s: string, group: string, count: number, ack = count): Promise<string[]> {
    const entries = await bus.readNew(s, group, 'c1', count, 0);
    assert.equal(entries.length, count, `${group} read ${count}`);
    await bus.ack(
      s,
      group,
      entries.slice(0, ack).map((e) => e.id),
    );
    return entries.map((e) => e.id);
  }

  it('keeps every entry a group has not read when appends go past the retention bound', async function () {
    const s = stream();
    await bus.ensureGroup(s, 'g');
    await bus.publish(s, payloads(250));
    await bus.publishMany(new Map([[s, payloads(250, 250)]]));
    assert.equal(await redis.xlen(s), 500, 'nothing trimmed on append');
    const read = await bus.readNew(s, 'g', 'c1', 1000, 0);
    assert.deepEqual(
      read.map((e) => JSON.parse(e.payload!) as { n: number }).map((p) => p.n),
      Array.from({ length: 500 }, (_, i) => i),
    );
    assert.deepEqual(await bus.takeUnreadLoss(s, 'g'), { removed: 0 });
  });

  it('caps a stream no group reads at the retention bound (nobody can miss it), and never a late/DLQ stream', async function () {
    const capped = stream();
    await bus.publish(capped, payloads(250));
    const length = await redis.xlen(capped);
    assert.ok(length >= RETENTION && length < 250, `MAXLEN ~ ${RETENTION} left ${length}`);
    const kept = stream();
    await bus.publish(kept, payloads(250), { trim: false });
    assert.equal(await redis.xlen(kept), 250);
  });

  it('trimAcknowledged removes exactly the prefix every group acknowledged: the slower group bounds it', async function () {
    const s = stream();
    await bus.ensureGroup(s, 'fast');
    await bus.ensureGroup(s, 'slow');
    const ids = await bus.publish(s, payloads(50));
    await readAndAck(s, 'fast', 30);
    await readAndAck(s, 'slow', 20, 10); // entries 11-20 pending

    assert.equal(await bus.trimAcknowledged(s), 10, "below slow's oldest pending entry");
    assert.equal((await redis.xrange(s, '-', '+', 'COUNT', 1))[0][0], ids[10]);
    assert.equal(await bus.trimAcknowledged(s), 0, 'nothing more is acknowledged by both');

    await bus.ack(s, 'slow', ids.slice(10, 20));
    assert.equal(await bus.trimAcknowledged(s), 10, "up to slow's last delivered entry");
    assert.equal((await redis.xrange(s, '-', '+', 'COUNT', 1))[0][0], ids[20]);

    await readAndAck(s, 'slow', 30);
    assert.equal(await bus.trimAcknowledged(s), 10, "now fast's position bounds it");
    await readAndAck(s, 'fast', 20);
    assert.equal(await bus.trimAcknowledged(s), 20);
    assert.equal(await redis.xlen(s), 0);
    assert.deepEqual(await bus.takeUnreadLoss(s, 'slow'), { removed: 0 });
    assert.deepEqual(await bus.takeUnreadLoss(s, 'fast'), { removed: 0 });

    const groupless = stream();
    await bus.publish(groupless, payloads(10), { trim: false });
    assert.equal(await bus.trimAcknowledged(groupless), 0, 'a stream without groups is left alone');
    assert.equal(await redis.xlen(groupless), 10);
    assert.equal(await bus.trimAcknowledged(`${tag}.missing`), 0);
  });

  it('reports a backlog of pending + undelivered per group, the slowest for the stream, not counting entries lost', async function () {
    const s = stream();
    await bus.ensureGroup(s, 'a');
    await bus.ensureGroup(s, 'b');
    await bus.publish(s, payloads(300));
    await readAndAck(s, 'a', 250, 200); // 50 pending, 50 undelivered
    let backlog = await bus.backlog(s);
    assert.deepEqual([...backlog.groups].sort(), [
      ['a', 100],
      ['b', 300],
    ]);
    assert.equal(backlog.entries, 300);
    assert.equal(backlog.retention, RETENTION);
    // An operator trims 10 entries that a acknowledged and b never read: b can read 290 at most,
    // although Redis' lag for b still says 300.
    await redis.xtrim(s, 'MAXLEN', 290);
    backlog = await bus.backlog(s);
    assert.deepEqual([...backlog.groups].sort(), [
      ['a', 100],
      ['b', 290],
    ]);
    await readAndAck(s, 'b', 240);
    assert.equal((await bus.backlog(s)).groups.get('b'), 50, 'b: 50 undelivered (Redis lag: 60)');
    assert.equal((await bus.backlog(`${tag}.missing`)).entries, 0);
  });

  describe('entries removed before a group read them', function () {
    function keeperFor(s: string, group = 'g') {
      const metrics = createMetrics();
      const lines: Record<string, unknown>[] = [];
      const log = createLogger('INFO', (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
      const keeper = new RetentionKeeper({ bus, metrics, log, stream: s, group, component: 'microbatch' });
      const lost = () => errorCount(metrics, 'microbatch', 'trimmed_unread');
      const lossLines = () => lines.filter((l) => l.level === 'error' && /before the group read them/.test(String(l.msg)));
      return { keeper, metrics, lines, lost, lossLines };
    }

    it('counts an XTRIM behind the group exactly, once, with an error line', async function () {
      const s = stream();
      const { keeper, lost, lossLines } = keeperFor(s);
      await keeper.check();
      await bus.ensureGroup(s, 'g');
      await bus.publish(s, payloads(100));
      await keeper.check(); // the running keeper has seen the group before the trim
      await readAndAck(s, 'g', 30);
      await redis.xtrim(s, 'MAXLEN', 40); // removes 60: the 30 read, and 30 never read
      await keeper.check();
      assert.equal(await lost(), 30);
      assert.equal(lossLines().length, 1);
      assert.deepEqual([lossLines()[0].stream, lossLines()[0].group, lossLines()[0].entries], [s, 'g', 30]);

      await keeper.check();
      await readAndAck(s, 'g', 40);
      await keeper.check();
      assert.equal(await lost(), 30, 'reported once, also after the group caught up');
      assert.equal(lossLines().length, 1);
      // Redis' own lag still counts them; the bus does not.
      assert.deepEqual((await bus.lag(s, 'g', Date.now())).undelivered, 0);
      assert.equal((await bus.backlog(s)).groups.get('g'), 0);
    });

    it('counts entries trimmed before the group read anything, and ones trimmed while no consumer ran', async function () {
      const s = stream();
      await bus.ensureGroup(s, 'g');
      await bus.publish(s, payloads(250));
      // An old worker still appending with MAXLEN, while the consumer is down.
      await redis.xadd(s, 'MAXLEN', '=', 200, '*', 'd', '{}');
      const first = keeperFor(s);
      await first.keeper.check();
      assert.equal(await first.lost(), 51, 'the 51 oldest, never read');

      // The next run of the consumer must not report them again; a later trim it does report.
      await redis.xtrim(s, 'MAXLEN', 150);
      const second = keeperFor(s);
      await second.keeper.check();
      assert.equal(await second.lost(), 50);
      assert.equal(second.lossLines().length, 1);
      const read = await bus.readNew(s, 'g', 'c1', 1000, 0);
      assert.equal(read.length, 150);
      await second.keeper.check();
      assert.equal(await second.lost(), 50);
    });

    it('counts an XDEL of entries the group has not read', async function () {
      const s = stream();
      const { keeper, lost } = keeperFor(s);
      await bus.ensureGroup(s, 'g');
      const ids = await bus.publish(s, payloads(20));
      await readAndAck(s, 'g', 5);
      await redis.xdel(s, ids[2], ids[8], ids[9]); // one read, two not
      await keeper.check();
      assert.equal(await lost(), 2);
    });

    it('notices a stream deleted while no consumer ran, before the group is created again', async function () {
      const s = stream();
      const first = keeperFor(s);
      await bus.ensureGroup(s, 'g');
      await bus.publish(s, payloads(20));
      await readAndAck(s, 'g', 5, 3);
      await first.keeper.check();
      await redis.del(s);
      await bus.publish(s, payloads(3)); // a producer recreates it

      const second = keeperFor(s);
      await second.keeper.check(); // as the consume loop does, before ensureGroup
      await bus.ensureGroup(s, 'g');
      assert.equal(await errorCount(second.metrics, 'microbatch', 'stream_deleted'), 1);
      const line = second.lines.find((l) => l.level === 'error' && /deleted/.test(String(l.msg)));
      assert.ok(line, 'an error line');
      assert.deepEqual([line.lastSeenUndelivered, line.lastSeenPending], [15, 2]);
      await second.keeper.check();
      assert.equal(await errorCount(second.metrics, 'microbatch', 'stream_deleted'), 1, 'once');
      assert.equal(await second.lost(), 0, 'the new stream has lost nothing');
    });

    it('warns once per episode when the group backlog nears retention, and trims on its tick', async function () {
      const s = stream();
      const { keeper, metrics, lines } = keeperFor(s);
      await bus.ensureGroup(s, 'g');
      await bus.publish(s, payloads(95));
      await keeper.check();
      await keeper.check();
      assert.equal(await errorCount(metrics, 'microbatch', 'backlog_near_retention'), 1);
      assert.deepEqual(
        (await metricValues(metrics, 'stream_backlog_ratio')).map((v) => [v.labels.topic, v.value]),
        [[s, 0.95]],
      );
      assert.equal(lines.filter((l) => l.level === 'warning' && /near retention/.test(String(l.msg))).length, 1);

      await readAndAck(s, 'g', 20);
      await keeper.tick(Date.now()); // the first tick trims
      assert.equal(await redis.xlen(s), 75);
      assert.deepEqual(
        (await metricValues(metrics, 'stream_trimmed_entries_total')).map((v) => v.value),
        [20],
      );
      await keeper.check();
      await bus.publish(s, payloads(20));
      await keeper.check();
      assert.equal(await errorCount(metrics, 'microbatch', 'backlog_near_retention'), 2, 'under 80 %, then back over 90 %: a new episode');
      keeper.close();
      assert.deepEqual(await metricValues(metrics, 'stream_backlog_ratio'), []);
    });
  });
});
