/**
 * Entries say their own format (`d`, `m`, `f`, `F` on Redis): one consumer reads a stream mixing
 * all of them, frames are acknowledged per event (XACK once the last event of a frame is), and
 * people see msgpack as JSON (`mdp stream tail`, `mdp dlq show`), against the local Redis.
 */
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { dlqRedrive, dlqShow } from '../../client/dlq-command.js';
import { tailTopic } from '../../client/tail-command.js';
import type { BusEntry } from '../../pipeline/bus/index.js';
import { encodeEvent, RedisBus, shardStream } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import type { StreamEventV1 } from '../../pipeline/contracts/index.js';
import { SyntheticProducer } from '../../pipeline/producers/index.js';
import { deadLetterOf, EVENT_PAYLOADS, routeEntries } from '../../pipeline/routing/index.js';
import { connectRedis, testConfig, uniqueTag } from '../helpers/services.js';

const GROUP = 'g';

function eventsOf(provider: string, count: number): StreamEventV1[] {
  return new SyntheticProducer({ provider, symbols: ['SPY'], seed: 3, tickRate: 10, priceVolatility: 0.02 }).generateFinite({
    count,
    startUs: Date.now() * 1000 - 60_000_000,
  });
}

const packed = (e: unknown) => encodeEvent(e, 'msgpack') as Uint8Array;

describe('bus entries in every format (json, msgpack, frames)', function () {
  let config: StreamingConfig;
  let redis: Redis;
  let bus: RedisBus;
  let stream: string;
  let tag: string;

  beforeEach(async function () {
    tag = uniqueTag('enc');
    config = testConfig(tag, { bus: { shards: 1 } });
    redis = await connectRedis(config);
    bus = new RedisBus(config.bus.redis.uri, { maxLen: 1000 });
    stream = shardStream(config.bus.redis.stream, 0);
    await bus.ensureGroup(stream, GROUP);
  });

  afterEach(async function () {
    await bus.close();
    const keys = await redis.keys(`${tag}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  /** Every entry not yet delivered. */
  const readAll = async (consumer: string, on: RedisBus = bus): Promise<BusEntry[]> => {
    const out: BusEntry[] = [];
    for (;;) {
      const read = await on.readNew(stream, GROUP, consumer, 100, 10);
      if (read.length === 0) return out;
      out.push(...read);
    }
  };

  const pendingIds = async () => ((await redis.xpending(stream, GROUP, '-', '+', 100)) as [string][]).map(([id]) => id);

  it('one consumer reads d, m, f and F entries of one stream, in order, each event with its id', async function () {
    const events = eventsOf(tag, 8);
    const ids = await bus.publish(stream, [
      JSON.stringify(events[0]),
      packed(events[1]),
      { frame: events.slice(2, 5).map((e) => JSON.stringify(e)) },
      { values: events.slice(5, 8) },
      Buffer.from([0x93, 0xc4, 0xff]),
    ]);
    const raw = await redis.xrange(stream, '-', '+');
    assert.deepEqual(
      raw.map(([, fields]) => fields[0]),
      ['d', 'm', 'f', 'F', 'm'],
    );
    assert.equal(ids.length, 9, 'one id per event');
    assert.deepEqual(
      ids.slice(2, 5),
      [0, 1, 2].map((k) => `${raw[2][0]}/${k}`),
    );

    const read = await readAll('c');
    assert.deepEqual(
      read.map((e) => e.id),
      ids,
    );
    const { decoded, dead } = routeEntries(read, EVENT_PAYLOADS, { sourceStream: stream, maxDeliveries: 5 });
    assert.deepEqual(
      decoded.map((d) => d.value.eventId),
      events.map((e) => e.event_id),
    );
    assert.equal(dead.length, 1);
    assert.match(dead[0].reason, /malformed msgpack: /);
    assert.ok(dead[0].payload instanceof Uint8Array, 'the dead letter keeps the bytes');
  });

  it('acknowledges a frame entry once every event of it is, and a second ack changes nothing', async function () {
    const events = eventsOf(tag, 3);
    const ids = await bus.publish(stream, [{ values: events }, JSON.stringify(events[0])]);
    const read = await readAll('c');
    assert.equal(read.length, 4);
    const [entryId] = ids[0].split('/');
    await bus.ack(stream, GROUP, [ids[0], ids[2]]);
    assert.deepEqual(await pendingIds(), [entryId, ids[3]], 'the frame stays pending while one event is open');
    await bus.ack(stream, GROUP, [ids[0], ids[3]]);
    assert.deepEqual(await pendingIds(), [entryId], 'a double ack of an event settles nothing more');
    await bus.deadLetter(`${tag}.dlq`, GROUP, [deadLetterOf(read[1], stream, { code: 'invalid_event', detail: 'test' })]);
    assert.deepEqual(await pendingIds(), [], 'the last event (dead-lettered) acknowledges the entry');
    await bus.ack(stream, GROUP, ids);
    assert.deepEqual(await pendingIds(), []);
    const [letter] = await bus.tail(`${tag}.dlq`, 1);
    const fields = JSON.parse(letter.foreign!) as Record<string, string>;
    assert.equal(fields.id, ids[1], 'the dead letter names the event by its own id');
    assert.equal(fields.encoding, 'msgpack');
    assert.deepEqual(Buffer.from(fields['original.base64'], 'base64'), Buffer.from(packed(events[1])), "the event's own bytes");
  });

  it('a frame re-read after a crash comes back whole, with its delivery count on each event', async function () {
    const events = eventsOf(tag, 5);
    const ids = await bus.publish(stream, [{ frame: events.slice(0, 3).map((e) => JSON.stringify(e)) }, { values: events.slice(3) }]);
    await readAll('c');
    await bus.ack(stream, GROUP, [ids[0]]); // then the process dies: the entry stays pending
    const next = new RedisBus(config.bus.redis.uri, { maxLen: 1000 });
    try {
      const first = await next.readPending(stream, GROUP, 'c', '0', 3);
      assert.deepEqual(
        first.map((e) => [e.id, e.deliveries]),
        ids.slice(0, 3).map((id) => [id, 2]),
      );
      const rest = await next.readPending(stream, GROUP, 'c', first.at(-1)!.id, 3);
      assert.deepEqual(
        rest.map((e) => e.id),
        ids.slice(3),
        'paging continues after the whole frame',
      );
      await next.ack(stream, GROUP, ids);
      assert.deepEqual(await pendingIds(), []);
    } finally {
      await next.close();
    }
  });

  it('a read of count events asks for count / frame size entries: never more than one frame over', async function () {
    const events = eventsOf(tag, 40);
    await bus.publish(
      stream,
      Array.from({ length: 10 }, (_, k) => ({ values: events.slice(4 * k, 4 * k + 4) })),
    );
    const reader = new RedisBus(config.bus.redis.uri, { maxLen: 1000 });
    try {
      assert.equal((await reader.readNew(stream, GROUP, 'c', 8, 10)).length, 8, 'two frames of four');
      assert.equal((await reader.readNew(stream, GROUP, 'c', 10, 10)).length, 8, 'floor(10 / 4) frames');
      assert.equal((await reader.readNew(stream, GROUP, 'c', 3, 10)).length, 4, 'at least one frame, however small the count');
    } finally {
      await reader.close();
    }
  });

  it('requeue copies each event of a claimed frame as an entry of its own, bytes intact', async function () {
    const events = eventsOf(tag, 2);
    await bus.publish(stream, [{ values: events }]);
    await readAll('dead');
    const [pending] = await bus.pendingEntries(stream, GROUP, 10);
    const taken = await bus.claim(stream, GROUP, 'sweep', 0, [pending.id]);
    assert.equal(taken.length, 2);
    await bus.requeue(stream, GROUP, taken);
    assert.deepEqual(await pendingIds(), []);
    const copies = await readAll('owner');
    assert.deepEqual(
      copies.map((e) => Buffer.from(e.packed!)),
      events.map((e) => Buffer.from(packed(e))),
    );
  });

  it('mdp stream tail shows msgpack events as their JSON; mdp dlq show prints a msgpack original as JSON; redrive republishes it', async function () {
    const events = eventsOf(tag, 3);
    await bus.publish(stream, [packed(events[0]), { values: events.slice(1) }]);
    let out = '';
    await tailTopic(bus, config, { topic: config.bus.redis.stream, limit: 10, format: 'json', write: (t) => (out += t) });
    assert.deepEqual(
      (JSON.parse(out) as { payload: unknown }[]).map((e) => e.payload),
      events,
    );
    out = '';
    await tailTopic(bus, config, { topic: config.bus.redis.stream, limit: 10, format: 'text', write: (t) => (out += t) });
    assert.equal(out.trim().split('\n').length, 3);
    assert.ok(
      out.split('\n').every((l) => l === '' || l.includes(`${tag}:SPY`)),
      out,
    );

    const read: BusEntry[] = await readAll('c');
    await bus.deadLetter(config.bus.redis.dlq_stream, GROUP, [deadLetterOf(read[2], stream, { code: 'invalid_event', detail: 'for the test' })]);
    const [dlqId] = (await redis.xrange(config.bus.redis.dlq_stream, '-', '+')).map(([id]) => id);
    out = '';
    await dlqShow(config, { ids: [dlqId], output: 'json' }, (t) => (out += t));
    const view = JSON.parse(out) as { encoding: string; payload: unknown; eventId: string };
    assert.equal(view.encoding, 'msgpack');
    assert.deepEqual(view.payload, events[2]);
    assert.equal(view.eventId, events[2].event_id);
    out = '';
    await dlqShow(config, { ids: [dlqId] }, (t) => (out += t));
    assert.match(out, /encoding:\s+msgpack/);
    assert.ok(out.includes(JSON.stringify(events[2], null, 2)), out);

    await redis.del(stream);
    out = '';
    assert.equal(await dlqRedrive(config, { ids: [dlqId], output: 'json' }, (t) => (out += t)), 0, out);
    const [again] = await bus.readAfter(stream, undefined, 10);
    assert.deepEqual(JSON.parse(again.payload!), events[2], 'republished (as bus.encoding says: json here)');
  });
});
