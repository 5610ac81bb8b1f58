import assert from 'node:assert/strict';
import type { BusEntry } from '../../pipeline/bus/index.js';
import type { StreamEventV1 } from '../../pipeline/contracts/index.js';
import { DEAD_LETTER_CODES, deadLetterReason, makeEventId } from '../../pipeline/contracts/index.js';
import type { PayloadKind } from '../../pipeline/routing/index.js';
import { EVENT_PAYLOADS, routeEntries, routeEvents, SNAPSHOT_PAYLOADS } from '../../pipeline/routing/index.js';
import { MicroBatcher } from '../../pipeline/windowing/index.js';

const SRC = 'mdp.events.0';

function tick(second: number, seq = 0): StreamEventV1 {
  const srcTs = new Date(Date.UTC(2025, 9, 24, 14, 2, second)).toISOString().replace('Z', '000Z');
  return { ver: 1, provider: 'p', symbol: 'AAA', kind: 'tick', src_ts: srcTs, ingest_ts: srcTs, o: 10, h: 10, l: 10, c: 10, v: 1, seq, event_id: makeEventId('p', 'AAA', srcTs, seq) };
}

const entry = (id: string, payload: string | undefined, extra: Partial<BusEntry> = {}): BusEntry => ({ id, payload, ...extra });

describe('entry router', function () {
  it('derives every code\'s message from the code alone (and the validator\'s words for invalid payloads)', function () {
    assert.deepEqual([...DEAD_LETTER_CODES], ['max_deliveries', 'no_payload', 'invalid_event', 'invalid_snapshot']);
    assert.equal(deadLetterReason({ code: 'max_deliveries', deliveries: 6, maxDeliveries: 5 }), 'delivered 6 times (max_deliveries 5)');
    assert.equal(deadLetterReason({ code: 'no_payload' }), 'entry has no payload field "d" (deleted or foreign entry)');
    assert.equal(deadLetterReason({ code: 'invalid_event', detail: 'field "v" must be >= 0 (got -1)' }), 'field "v" must be >= 0 (got -1)');
  });

  it('routes each entry once: over-delivered first, then no payload, then invalid; valid ones decoded in order', function () {
    const good = [tick(1), tick(2)];
    const routed = routeEntries([
      entry('1-0', JSON.stringify(good[0])),
      entry('2-0', 'not json', { deliveries: 9 }),
      entry('3-0', undefined, { foreign: '{"x":"1"}', deliveries: 2 }),
      entry('4-0', undefined),
      entry('5-0', JSON.stringify({ ...good[1], v: -1 }), { deliveries: 1 }),
      entry('6-0', JSON.stringify(good[1])),
    ], EVENT_PAYLOADS, { sourceStream: SRC, maxDeliveries: 5 });
    assert.deepEqual(routed.decoded.map((d) => [d.entry.id, d.value.eventId]), [['1-0', good[0].event_id], ['6-0', good[1].event_id]]);
    assert.deepEqual(routed.dead.map((l) => [l.sourceId, l.code, l.payload, l.deliveries]), [
      ['2-0', 'max_deliveries', 'not json', 9],
      ['3-0', 'no_payload', '{"x":"1"}', 2],
      ['4-0', 'no_payload', undefined, undefined],
      ['5-0', 'invalid_event', JSON.stringify({ ...good[1], v: -1 }), 1],
    ]);
    assert.ok(routed.dead.every((l) => l.sourceStream === SRC));
    assert.equal(routed.dead[0].reason, 'delivered 9 times (max_deliveries 5)');
    assert.match(routed.dead[3].reason, /field "v" must be >= 0/);
  });

  it('keeps an over-delivered foreign entry\'s fields, the same on every kind of stream', function () {
    for (const kind of [EVENT_PAYLOADS, SNAPSHOT_PAYLOADS] as PayloadKind<unknown>[]) {
      const { dead } = routeEntries([entry('1-0', undefined, { foreign: '{"a":"b"}', deliveries: 7 })], kind, { sourceStream: SRC, maxDeliveries: 3 });
      assert.deepEqual(dead.map((l) => [l.code, l.payload]), [['max_deliveries', '{"a":"b"}']]);
    }
    const { dead } = routeEntries([entry('1-0', '{"ver":1}')], SNAPSHOT_PAYLOADS, { sourceStream: SRC, maxDeliveries: 3 });
    assert.deepEqual(dead.map((l) => l.code), ['invalid_snapshot']);
  });

  it('sorts events into accepted, duplicate and late against the batcher, and a dead letter counts as activity', function () {
    const batcher = new MicroBatcher<string>({ windowMs: 1000, allowLateMs: 0, flushTimeoutMs: 1000, maxBufferedEvents: 100, frontierMs: Date.UTC(2025, 9, 24, 14, 2, 2) });
    const routed = routeEvents([
      entry('1-0', JSON.stringify(tick(1))), // before the frontier: late
      entry('2-0', JSON.stringify(tick(3))),
      entry('3-0', JSON.stringify(tick(3))), // same event_id: duplicate
      entry('4-0', 'bad'),
    ], batcher, { sourceStream: SRC, maxDeliveries: 5 }, 5_000);
    assert.deepEqual({ accepted: routed.accepted, duplicates: routed.duplicates, late: routed.late.map((e) => e.id), dead: routed.dead.map((l) => l.sourceId) },
      { accepted: 1, duplicates: 1, late: ['1-0'], dead: ['4-0'] });
    assert.equal(batcher.flush(5_999).length, 0, 'not idle yet: the dead letter at 5000 was activity');
    assert.equal(batcher.flush(6_000).length, 1);
  });
});
