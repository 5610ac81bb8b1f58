/**
 * The Kafka bus against a real broker (KAFKA_BROKERS, started by scripts/stack-start.sh kafka):
 * partitions as shards, a group's pending records across a restart with delivery counts,
 * out-of-order acknowledgements kept in the commit, dead letters, lag, loss by retention, tail.
 */
import assert from 'node:assert/strict';
import { KafkaBus } from '../../pipeline/bus/index.js';
import { uniqueTag } from '../helpers/services.js';

const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

function openKafka(tag: string): KafkaBus {
  return new KafkaBus({
    brokers: BROKERS,
    clientId: `mdp-test-${tag}`,
    partitions: 3,
    sharded: [`${tag}.events`],
    replicationFactor: 1,
    retentionMs: 86_400_000,
    maxBacklog: 1000,
  });
}

describe('KafkaBus (real broker)', function () {
  this.timeout(60_000);
  let tag: string;
  let bus: KafkaBus;

  beforeEach(() => {
    tag = uniqueTag('k');
    bus = openKafka(tag);
  });
  afterEach(() => bus.close());

  it('maps a shard stream to a partition of its topic, other streams to one-partition topics', () => {
    assert.deepEqual(bus.locate(`${tag}.events.2`), { topic: `${tag}.events`, partition: 2, partitions: 3 });
    assert.deepEqual(bus.locate(`${tag}.events.late`), { topic: `${tag}.events.late`, partition: 0, partitions: 1 });
    assert.equal(bus.locate('mdp.replay.a:b/c.1700000000000').topic, 'mdp.replay.a_b_c.1700000000000');
  });

  it('sends more than the broker takes in one request (1 MiB per batch) as several, in order, with exact ids', async () => {
    // One window's feature snapshots of 10,000 symbols over 4 shards: 2,500 records of ~600 bytes on one partition.
    const stream = `${tag}.events.0`,
      group = `${tag}-g`;
    await bus.ensureGroup(stream, group);
    const payloads = Array.from({ length: 3000 }, (_, i) => `${String(i).padStart(6, '0')}:${'x'.repeat(600)}`);
    const ids = await bus.publish(stream, payloads);
    assert.equal(ids.length, payloads.length);
    const more = Array.from({ length: 2000 }, (_, i) => `late-${String(i).padStart(6, '0')}:${'y'.repeat(600)}`);
    await bus.publishMany(new Map([[`${tag}.events.1`, more]]));
    const read: { id: string; payload: string | undefined }[] = [];
    while (read.length < payloads.length) {
      const got = await bus.readNew(stream, group, 'c', 5000, 1000);
      assert.ok(got.length > 0, `read ${read.length} of ${payloads.length}`);
      read.push(...got.map((e) => ({ id: e.id, payload: e.payload })));
    }
    assert.deepEqual(
      read.map((e) => e.payload),
      payloads,
      'every record, in order',
    );
    assert.deepEqual(
      read.map((e) => e.id),
      ids,
      'the ids publish returned',
    );
    const other = [];
    while (other.length < more.length) {
      const got = await bus.readNew(`${tag}.events.1`, group, 'c', 5000, 1000);
      assert.ok(got.length > 0, `read ${other.length} of ${more.length}`);
      other.push(...got.map((e) => e.payload));
    }
    assert.deepEqual(other, more);
  });

  it('re-delivers exactly the unacknowledged records to a restarted owner, counting deliveries', async () => {
    const stream = `${tag}.events.1`,
      group = `${tag}-g`;
    await bus.ensureGroup(stream, group);
    const ids = await bus.publish(stream, ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual(ids, ['0', '1', '2', '3', '4']);
    const first = await bus.readNew(stream, group, 'owner', 10, 500, 100);
    assert.deepEqual(
      first.map((e) => e.payload),
      ['a', 'b', 'c', 'd', 'e'],
    );
    // Acknowledged out of order: 0 and 3. 1, 2 and 4 stay pending.
    await bus.ack(stream, group, ['0', '3']);
    await bus.close();

    bus = openKafka(tag);
    const again = await bus.readPending(stream, group, 'owner', '0', 10, 200);
    assert.deepEqual(
      again.map((e) => [e.id, e.payload, e.deliveries]),
      [
        ['1', 'b', 2],
        ['2', 'c', 2],
        ['4', 'e', 2],
      ],
    );
    assert.deepEqual(await bus.readNew(stream, group, 'owner', 10, 100, 200), []);
    const lag = await bus.lag(stream, group, Date.now());
    assert.equal(lag.pending, 3);
    assert.equal(lag.undelivered, 0);
    assert.ok(lag.lagMs >= 0);
    await bus.close();

    // Crashed again before acknowledging: the third delivery is counted.
    bus = openKafka(tag);
    const third = await bus.readPending(stream, group, 'owner', '0', 10, 300);
    assert.deepEqual(
      third.map((e) => e.deliveries),
      [3, 3, 3],
    );
    await bus.ack(stream, group, ['1', '2', '4']);
    assert.deepEqual(await bus.pendingEntries(stream, group, 10), []);
    assert.equal((await bus.lag(stream, group, Date.now())).lagMs, 0);
  });

  it('fences an owner whose successor committed with a newer epoch', async () => {
    const stream = `${tag}.events.0`,
      group = `${tag}-g`;
    await bus.ensureGroup(stream, group);
    await bus.publish(stream, ['a']);
    await bus.readNew(stream, group, 'owner', 10, 500, 100);
    const successor = openKafka(tag);
    try {
      await successor.readPending(stream, group, 'owner', '0', 10, 200);
      await bus.lag(stream, group, Date.now()); // the stale owner sees the newer epoch here
      await assert.rejects(bus.readNew(stream, group, 'owner', 10, 10, 100), { name: 'OwnerFencedError' });
    } finally {
      await successor.close();
    }
  });

  it('stops a stale owner at its next commit, before it can rewind its successor', async () => {
    const stream = `${tag}.events.0`,
      group = `${tag}-g`;
    await bus.ensureGroup(stream, group);
    await bus.publish(
      stream,
      Array.from({ length: 8 }, (_, i) => `e${i}`),
    );
    // The first owner reads five records, then freezes without acknowledging them.
    await bus.readNew(stream, group, 'owner', 5, 500, 100);
    const successor = openKafka(tag);
    try {
      const pending = await successor.readPending(stream, group, 'owner', '0', 10, 200);
      assert.equal(pending.length, 5);
      const rest = await successor.readNew(stream, group, 'owner', 10, 500, 200);
      await successor.ack(
        stream,
        group,
        [...pending, ...rest].map((e) => e.id),
      );
      // The stale owner wakes up: it may still fetch (reads change nothing), but its commit is refused.
      await assert.rejects(bus.ack(stream, group, ['0', '1']), { name: 'OwnerFencedError' });
      await assert.rejects(bus.readNew(stream, group, 'owner', 10, 10, 100), { name: 'OwnerFencedError' });
      const lag = await successor.lag(stream, group, Date.now());
      assert.deepEqual([lag.pending, lag.undelivered], [0, 0]);
    } finally {
      await successor.close();
    }
  });

  it('writes dead letters before acknowledging their sources, readable as fields', async () => {
    const stream = `${tag}.events.2`,
      group = `${tag}-g`,
      dlq = `${tag}.dlq`;
    await bus.ensureGroup(stream, group);
    await bus.publish(stream, ['not json']);
    const [entry] = await bus.readNew(stream, group, 'owner', 10, 500, 1);
    await bus.deadLetter(dlq, group, [
      { sourceStream: stream, sourceId: entry.id, payload: entry.payload, code: 'invalid_event', reason: 'invalid event: not JSON' },
    ]);
    const [letter] = await bus.tail(dlq, 10);
    assert.equal(letter.payload, undefined);
    const fields = JSON.parse(letter.foreign!) as Record<string, string>;
    assert.equal(fields.code, 'invalid_event');
    assert.equal(fields.original, 'not json');
    assert.equal(fields.stream, stream);
    assert.equal((await bus.lag(stream, group, Date.now())).pending, 0);
  });

  it('reports records retention deleted before the group read them, once', async () => {
    const stream = `${tag}.events.0`,
      group = `${tag}-g`;
    await bus.ensureGroup(stream, group);
    await bus.publish(
      stream,
      Array.from({ length: 10 }, (_, i) => `e${i}`),
    );
    // What retention does when records age out: the log's start moves past unread records.
    const { Admin } = await import('@platformatic/kafka');
    const admin = new Admin({ clientId: 'retention', bootstrapBrokers: BROKERS });
    await admin.deleteRecords({ topics: [{ name: `${tag}.events`, partitions: [{ partition: 0, offset: 4n }] }] });
    await admin.close();
    assert.deepEqual(await bus.takeUnreadLoss(stream, group), { removed: 4 });
    assert.deepEqual(await bus.takeUnreadLoss(stream, group), { removed: 0 });
    const read = await bus.readNew(stream, group, 'owner', 100, 500, 1);
    assert.deepEqual(
      read.map((e) => e.payload),
      ['e4', 'e5', 'e6', 'e7', 'e8', 'e9'],
    );
    assert.equal(await bus.length(stream), 6);
    assert.equal(await bus.added(stream), 10);
  });

  it('measures the backlog of every group against max_backlog, and drops one-partition topics', async () => {
    const stream = `${tag}.events.1`;
    await bus.ensureGroup(stream, `${tag}-a`);
    await bus.ensureGroup(stream, `${tag}-b`);
    await bus.publish(
      stream,
      Array.from({ length: 20 }, (_, i) => `e${i}`),
    );
    await bus.readNew(stream, `${tag}-a`, 'owner', 15, 500, 1);
    await bus.ack(
      stream,
      `${tag}-a`,
      Array.from({ length: 15 }, (_, i) => String(i)),
    );
    const backlog = await bus.backlog(stream);
    assert.equal(backlog.groups.get(`${tag}-a`), 5);
    assert.equal(backlog.groups.get(`${tag}-b`), 20);
    assert.equal(backlog.entries, 20);
    assert.equal(backlog.retention, 1000);
    assert.ok(backlog.ageMs !== undefined && backlog.retentionMs === 86_400_000);

    const replay = `${tag}.replay.x.1700000000000`;
    await bus.publish(replay, ['r']);
    assert.equal(await bus.length(replay), 1);
    await bus.dropStream(replay);
    assert.equal(await bus.length(replay), 0);
  });
});
