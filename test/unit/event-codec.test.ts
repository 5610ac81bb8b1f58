import assert from 'node:assert/strict';
import {
  compareStreamIds,
  decodePacked,
  encodeEvent,
  encodeShardBatch,
  entryIdOf,
  frameEventId,
  packFrame,
  splitJsonFrame,
  splitPackedFrame,
} from '../../pipeline/bus/index.js';
import type { StreamEventV1 } from '../../pipeline/contracts/index.js';
import { EVENT_PAYLOADS } from '../../pipeline/routing/index.js';
import { SyntheticProducer } from '../../pipeline/producers/index.js';

const events: StreamEventV1[] = new SyntheticProducer({
  provider: 'codec',
  symbols: ['SPY', 'AAPL'],
  seed: 7,
  tickRate: 10,
  priceVolatility: 0.02,
}).generateFinite({
  count: 20,
  startUs: 1_760_000_000_000_000,
});

describe('event encoding (bus.encoding) and frames', function () {
  it('msgpack keeps every v1 field exactly: ISO strings, integer seq, float64 prices', function () {
    const odd: StreamEventV1 = { ...events[0], o: 0.1 + 0.2, h: 1e300, l: 5e-324, c: 0.30000000000000004, v: 123456789, seq: 2 ** 40 };
    for (const e of [...events, odd]) {
      const decoded = decodePacked(encodeEvent(e, 'msgpack') as Uint8Array);
      assert.ok(decoded.ok);
      assert.deepEqual(decoded.value, e);
      assert.equal(Object.getPrototypeOf(decoded.value), Object.prototype, 'a plain object');
    }
  });

  it('routes msgpack through the same contract check as JSON, and names malformed msgpack', function () {
    const json = EVENT_PAYLOADS.decode(encodeEvent(events[0], 'json'));
    const packed = EVENT_PAYLOADS.decode(encodeEvent(events[0], 'msgpack'));
    assert.deepEqual(packed, json);
    const bad = EVENT_PAYLOADS.decode(encodeEvent({ ...events[0], v: -1 }, 'msgpack'));
    assert.deepEqual(bad, { ok: false, reason: 'field "v" must be >= 0 (got -1)' });
    const truncated = EVENT_PAYLOADS.decode((encodeEvent(events[0], 'msgpack') as Uint8Array).subarray(0, 20));
    assert.ok(!truncated.ok && truncated.reason.startsWith('malformed msgpack: '), JSON.stringify(truncated));
    const trailing = EVENT_PAYLOADS.decode(Buffer.from('not msgpack'));
    assert.ok(!trailing.ok && trailing.reason.startsWith('malformed msgpack: '), JSON.stringify(trailing));
  });

  it('frames up to frame_events consecutive events of a shard; a lone event stays an entry of its own', function () {
    const json = encodeShardBatch(events.slice(0, 7), { encoding: 'json', frameEvents: 3 });
    assert.equal(json.length, 3);
    assert.deepEqual(json[0], { frame: events.slice(0, 3).map((e) => JSON.stringify(e)) });
    assert.equal(json[2], JSON.stringify(events[6]));
    const packed = encodeShardBatch(events.slice(0, 4), { encoding: 'msgpack', frameEvents: 4 });
    assert.equal(packed.length, 1);
    assert.deepEqual(
      encodeShardBatch(events.slice(0, 2), { encoding: 'json', frameEvents: 1 }),
      events.slice(0, 2).map((e) => JSON.stringify(e)),
    );

    const texts = events.slice(0, 3).map((e) => JSON.stringify(e));
    assert.deepEqual(splitJsonFrame(texts.join('\n')), texts);
    const split = splitPackedFrame(packFrame(events.slice(0, 3)));
    assert.ok(split.ok);
    assert.deepEqual(split.values, events.slice(0, 3), 'a frame of records decodes to the events, exactly');
    assert.ok(
      packFrame(events.slice(0, 3)).length < events.slice(0, 3).reduce((n, e) => n + (encodeEvent(e, 'msgpack') as Uint8Array).length, 0),
      'records name the fields once per frame',
    );
    const broken = splitPackedFrame(Buffer.from([0x93, 0xc4]));
    assert.ok(!broken.ok && broken.reason.startsWith('malformed msgpack frame: '), JSON.stringify(broken));
    const notFrame = splitPackedFrame(encodeEvent(events[0], 'msgpack') as Uint8Array);
    assert.deepEqual(notFrame, { ok: false, reason: 'malformed msgpack frame: not a non-empty array of events' });
  });

  it('orders the ids of a frame`s events between their entry and the next one', function () {
    const e = '1700000000000-3';
    const ids = ['1700000000000-2', frameEventId(e, 0), frameEventId(e, 1), frameEventId(e, 10), '1700000000000-4', '1700000000001-0'];
    for (let i = 0; i < ids.length; i++) {
      for (let j = 0; j < ids.length; j++) assert.equal(Math.sign(compareStreamIds(ids[i], ids[j])), Math.sign(i - j), `${ids[i]} vs ${ids[j]}`);
    }
    assert.ok(compareStreamIds(e, frameEventId(e, 0)) < 0, 'a plain entry id sorts before its events');
    assert.equal(compareStreamIds('5', '5-0'), 0);
    assert.equal(entryIdOf(frameEventId(e, 2)), e);
    assert.equal(entryIdOf(e), e);
  });
});
