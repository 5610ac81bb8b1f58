import assert from 'node:assert/strict';
import type { BusEntry } from '../../pipeline/bus/index.js';
import type { MarketEvent, StreamEventV1 } from '../../pipeline/contracts/index.js';
import { DEAD_LETTER_CODES, deadLetterReason, makeEventId } from '../../pipeline/contracts/index.js';
import type { PayloadKind } from '../../pipeline/routing/index.js';
import {
  EVENT_PAYLOADS,
  PositionTracker,
  rejectedBarLetters,
  ResumeGuard,
  routeEntries,
  routeEvents,
  SNAPSHOT_PAYLOADS,
} from '../../pipeline/routing/index.js';
import { MicroBatcher } from '../../pipeline/windowing/index.js';

const SRC = 'mdp.events.0';

function tick(second: number, seq = 0): StreamEventV1 {
  const srcTs = new Date(Date.UTC(2025, 9, 24, 14, 2, second)).toISOString().replace('Z', '000Z');
  return {
    ver: 1,
    provider: 'p',
    symbol: 'AAA',
    kind: 'tick',
    src_ts: srcTs,
    ingest_ts: srcTs,
    o: 10,
    h: 10,
    l: 10,
    c: 10,
    v: 1,
    seq,
    event_id: makeEventId('p', 'AAA', srcTs, seq),
  };
}

const entry = (id: string, payload: string | undefined, extra: Partial<BusEntry> = {}): BusEntry => ({ id, payload, ...extra });

describe('entry router', function () {
  it("derives every code's message from the code alone (and the validator's words for invalid payloads)", function () {
    assert.deepEqual([...DEAD_LETTER_CODES], ['max_deliveries', 'no_payload', 'invalid_event', 'invalid_snapshot', 'future_event', 'store_rejected']);
    assert.equal(deadLetterReason({ code: 'max_deliveries', deliveries: 6, maxDeliveries: 5 }), 'delivered 6 times (max_deliveries 5)');
    assert.equal(deadLetterReason({ code: 'no_payload' }), 'entry has no payload field "d" (deleted or foreign entry)');
    assert.equal(deadLetterReason({ code: 'invalid_event', detail: 'field "v" must be >= 0 (got -1)' }), 'field "v" must be >= 0 (got -1)');
    assert.equal(
      deadLetterReason({ code: 'future_event', srcTsUs: Date.UTC(2026, 0, 2) * 1000 + 1, nowMs: Date.UTC(2026, 0, 1), maxFutureMs: 5000 }),
      'src_ts 2026-01-02T00:00:00.000001Z is 86400000.001 ms ahead of the wall clock (max_future_ms 5000)',
    );
  });

  it('routes each entry once: over-delivered first, then no payload, then invalid; valid ones decoded in order', function () {
    const good = [tick(1), tick(2)];
    const routed = routeEntries(
      [
        entry('1-0', JSON.stringify(good[0])),
        entry('2-0', 'not json', { deliveries: 9 }),
        entry('3-0', undefined, { foreign: '{"x":"1"}', deliveries: 2 }),
        entry('4-0', undefined),
        entry('5-0', JSON.stringify({ ...good[1], v: -1 }), { deliveries: 1 }),
        entry('6-0', JSON.stringify(good[1])),
      ],
      EVENT_PAYLOADS,
      { sourceStream: SRC, maxDeliveries: 5 },
    );
    assert.deepEqual(
      routed.decoded.map((d) => [d.entry.id, d.value.eventId]),
      [
        ['1-0', good[0].event_id],
        ['6-0', good[1].event_id],
      ],
    );
    assert.deepEqual(
      routed.dead.map((l) => [l.sourceId, l.code, l.payload, l.deliveries]),
      [
        ['2-0', 'max_deliveries', 'not json', 9],
        ['3-0', 'no_payload', '{"x":"1"}', 2],
        ['4-0', 'no_payload', undefined, undefined],
        ['5-0', 'invalid_event', JSON.stringify({ ...good[1], v: -1 }), 1],
      ],
    );
    assert.ok(routed.dead.every((l) => l.sourceStream === SRC));
    assert.equal(routed.dead[0].reason, 'delivered 9 times (max_deliveries 5)');
    assert.match(routed.dead[3].reason, /field "v" must be >= 0/);
  });

  it("keeps an over-delivered foreign entry's fields, the same on every kind of stream", function () {
    for (const kind of [EVENT_PAYLOADS, SNAPSHOT_PAYLOADS] as PayloadKind<unknown>[]) {
      const { dead } = routeEntries([entry('1-0', undefined, { foreign: '{"a":"b"}', deliveries: 7 })], kind, { sourceStream: SRC, maxDeliveries: 3 });
      assert.deepEqual(
        dead.map((l) => [l.code, l.payload]),
        [['max_deliveries', '{"a":"b"}']],
      );
    }
    const { dead } = routeEntries([entry('1-0', '{"ver":1}')], SNAPSHOT_PAYLOADS, { sourceStream: SRC, maxDeliveries: 3 });
    assert.deepEqual(
      dead.map((l) => l.code),
      ['invalid_snapshot'],
    );
  });

  it('sorts events into accepted, duplicate and late against the batcher, and a dead letter counts as activity', function () {
    const batcher = new MicroBatcher<BusEntry>({
      windowMs: 1000,
      allowLateMs: 0,
      flushTimeoutMs: 1000,
      maxBufferedEvents: 100,
      frontierMs: Date.UTC(2025, 9, 24, 14, 2, 2),
    });
    const routed = routeEvents(
      [
        entry('1-0', JSON.stringify(tick(1))), // before the frontier: late
        entry('2-0', JSON.stringify(tick(3))),
        entry('3-0', JSON.stringify(tick(3))), // same event_id: duplicate
        entry('4-0', 'bad'),
      ],
      batcher,
      { sourceStream: SRC, maxDeliveries: 5, maxFutureMs: Infinity },
      5_000,
    ); // nowMs here only drives the idle rule
    assert.deepEqual(
      { accepted: routed.accepted, duplicates: routed.duplicates, late: routed.late.map((e) => e.id), dead: routed.dead.map((l) => l.sourceId) },
      { accepted: 1, duplicates: 1, late: ['1-0'], dead: ['4-0'] },
    );
    assert.equal(batcher.flush(5_999).length, 0, 'not idle yet: the dead letter at 5000 was activity');
    assert.equal(batcher.flush(6_000).length, 1);
  });

  describe('bounded event time (max_future_ms)', function () {
    const NOW_MS = Date.UTC(2025, 9, 24, 14, 2, 10);
    const at = (srcTs: string, seq = 0): string =>
      JSON.stringify({ ...tick(0, seq), src_ts: srcTs, ingest_ts: srcTs, event_id: makeEventId('p', 'AAA', srcTs, seq) });
    const batcher = () => new MicroBatcher<BusEntry>({ windowMs: 1000, allowLateMs: 0, flushTimeoutMs: 1000, maxBufferedEvents: 100 });

    it('dead-letters an event a day ahead as future_event, payload kept, and it moves no watermark or frontier', function () {
      const b = batcher();
      const tomorrow = at('2025-10-25T14:02:10.000000Z');
      const routed = routeEvents(
        [entry('1-0', JSON.stringify(tick(8))), entry('2-0', tomorrow, { deliveries: 1 }), entry('3-0', JSON.stringify(tick(9)))],
        b,
        { sourceStream: SRC, maxDeliveries: 5, maxFutureMs: 5000 },
        NOW_MS,
      );
      assert.deepEqual(
        routed.dead.map((l) => [l.sourceId, l.code, l.reason, l.payload, l.deliveries]),
        [['2-0', 'future_event', 'src_ts 2025-10-25T14:02:10.000000Z is 86400000 ms ahead of the wall clock (max_future_ms 5000)', tomorrow, 1]],
      );
      assert.equal(routed.accepted, 2, 'its neighbours are accepted');
      assert.equal(b.watermarkMs, Date.UTC(2025, 9, 24, 14, 2, 9), 'watermark from the neighbours only');
      const flushed = b.flush(NOW_MS + 1000); // idle: the watermark follows the wall clock, not tomorrow
      assert.deepEqual(
        flushed.map((f) => f.windowStartMs),
        [Date.UTC(2025, 9, 24, 14, 2, 8), Date.UTC(2025, 9, 24, 14, 2, 9)],
      );
      assert.equal(b.frontierMs, Date.UTC(2025, 9, 24, 14, 2, 10));
      // The next event of the shard is on time, not late.
      const next = routeEvents([entry('4-0', JSON.stringify(tick(10)))], b, { sourceStream: SRC, maxDeliveries: 5, maxFutureMs: 5000 }, NOW_MS + 1000);
      assert.deepEqual([next.accepted, next.late.length, next.dead.length], [1, 0, 0]);
    });

    it('accepts exactly max_future_ms ahead and rejects one microsecond more', function () {
      const b = batcher();
      const routed = routeEvents(
        [entry('1-0', at('2025-10-24T14:02:15.000000Z')), entry('2-0', at('2025-10-24T14:02:15.000001Z'))],
        b,
        { sourceStream: SRC, maxDeliveries: 5, maxFutureMs: 5000 },
        NOW_MS,
      );
      assert.equal(routed.accepted, 1);
      assert.deepEqual(
        routed.dead.map((l) => [l.sourceId, l.reason]),
        [['2-0', 'src_ts 2025-10-24T14:02:15.000001Z is 5000.001 ms ahead of the wall clock (max_future_ms 5000)']],
      );
      const zero = routeEvents(
        [entry('3-0', at('2025-10-24T14:02:10.000000Z', 1)), entry('4-0', at('2025-10-24T14:02:10.001000Z'))],
        batcher(),
        { sourceStream: SRC, maxDeliveries: 5, maxFutureMs: 0 },
        NOW_MS,
      );
      assert.deepEqual([zero.accepted, zero.dead.map((l) => l.sourceId)], [1, ['4-0']], 'max_future_ms 0: up to the wall clock itself');
    });

    it('applies no bound with maxFutureMs Infinity (replays), whatever nowMs', function () {
      const routed = routeEvents(
        [entry('1-0', at('2099-01-01T00:00:00.000000Z'))],
        batcher(),
        { sourceStream: SRC, maxDeliveries: 5, maxFutureMs: Infinity },
        0,
      );
      assert.deepEqual([routed.accepted, routed.dead.length], [1, 0]);
    });
  });

  describe('bars the store refuses', function () {
    it("are traced back to exactly their entries, duplicates included, with the store's reason; a foreign bar throws", function () {
      const b = new MicroBatcher<BusEntry>({ windowMs: 1000, allowLateMs: 0, flushTimeoutMs: 1000, maxBufferedEvents: 100 });
      const other = { ...tick(1, 1), symbol: 'BBB', event_id: makeEventId('p', 'BBB', tick(1, 1).src_ts, 1) };
      const entries = [
        entry('1-0', JSON.stringify(tick(1))),
        entry('2-0', JSON.stringify(other)),
        entry('3-0', JSON.stringify(tick(1)), { deliveries: 2 }),
        entry('4-0', JSON.stringify(tick(1, 2))),
      ];
      routeEvents(entries, b, { sourceStream: SRC, maxDeliveries: 5, maxFutureMs: Infinity }, 0);
      const flushes = b.flush(10_000);
      const [aaa, bbb] = flushes[0].bars;
      assert.deepEqual([aaa.symbol, bbb.symbol], ['AAA', 'BBB']);

      const { dead, deadIds, refused } = rejectedBarLetters(flushes, [{ bar: aaa, code: '22021', reason: 'invalid byte sequence (SQLSTATE 22021)' }], SRC);
      assert.deepEqual(
        dead.map((l) => [l.sourceId, l.code, l.payload, l.deliveries]),
        [
          ['1-0', 'store_rejected', entries[0].payload, undefined],
          ['3-0', 'store_rejected', entries[2].payload, 2],
          ['4-0', 'store_rejected', entries[3].payload, undefined],
        ],
      );
      assert.equal(dead[0].reason, 'the store rejected its 1s bar at 2025-10-24T14:02:01.000Z: invalid byte sequence (SQLSTATE 22021)');
      assert.deepEqual([...deadIds], ['1-0', '3-0', '4-0']);
      assert.deepEqual([...refused], [aaa]);
      assert.throws(() => rejectedBarLetters(flushes, [{ bar: { ...aaa }, code: '22021', reason: 'x' }], SRC), /not one of the flush's/);
    });
  });
});

describe('position tracker and resume guard', function () {
  const order = (a: string, b: string) => Number(a) - Number(b);

  it('stores the read point, the oldest open entry and only the marks a successor can still need', function () {
    const tracker = new PositionTracker(undefined, order);
    tracker.read('10');
    assert.deepEqual(tracker.next(2000, ['7', '9'], 1000), {
      frontierMs: 2000,
      readId: '10',
      oldestOpenId: '7',
      marks: [{ frontierMs: 2000, readId: '10' }],
      lastCommitFromMs: 1000,
    });
    tracker.read('8'); // a re-read of an older entry moves nothing
    tracker.read('20');
    // Entry 7 committed: the first mark (read point 10) is still at or past the oldest open entry 9.
    assert.deepEqual(tracker.next(3000, ['9'], 2000).marks, [
      { frontierMs: 2000, readId: '10' },
      { frontierMs: 3000, readId: '20' },
    ]);
    tracker.read('30');
    assert.deepEqual(tracker.next(4000, ['25'], 3000).marks, [{ frontierMs: 4000, readId: '30' }], 'marks before the oldest open entry are dropped');
    assert.deepEqual(tracker.next(5000, [], 4000), { frontierMs: 5000, readId: '30', oldestOpenId: undefined, marks: [], lastCommitFromMs: 4000 });
  });

  it('tells a restarted owner which entries are settled, which are in stored bars, and which are truly late', function () {
    const windowMs = 1000;
    const base = Date.UTC(2025, 9, 24, 14, 2, 0);
    const event = (second: number) => ({ srcTsUs: (base + second * 1000) * 1000 }) as MarketEvent;
    // Windows up to base+3 s committed; the commit that flushed [base+2, base+3) had read up to 20;
    // entry 15 was still open then.
    const guard = new ResumeGuard(
      { frontierMs: base + 3000, readId: '30', oldestOpenId: '15', marks: [{ frontierMs: base + 3000, readId: '20' }], lastCommitFromMs: base + 2000 },
      windowMs,
      order,
    );
    assert.equal(guard.settled('14'), true);
    assert.equal(guard.settled('15'), false);
    assert.equal(guard.persisted('18', event(2)), true, 'read before its window was committed: in the bar');
    assert.equal(guard.persisted('25', event(2)), false, 'read after: it was late then, and is late now');
    assert.equal(guard.persisted('18', event(3)), false, 'a window after the frontier is routed as usual');
    assert.equal(guard.persisted('31', event(1)), false, 'an entry never read before the restart is routed as usual');
  });
});
