import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { parseIsoToMicros, validateEvent } from '../../pipeline/contracts/index.js';
import type { StreamEventV1 } from '../../pipeline/contracts/index.js';
import { SeededRandom, SyntheticProducer, TRADING_SECONDS_PER_YEAR } from '../../pipeline/producers/index.js';
import type { SyntheticProducerOptions, SyntheticProducerState } from '../../pipeline/producers/index.js';

const T0 = Date.UTC(2025, 9, 24, 14, 0, 0) * 1000; // 2025-10-24T14:00:00Z in µs
const OPTIONS: SyntheticProducerOptions = { symbols: ['SPY', 'AAPL', 'MSFT'], seed: 42, tickRate: 1, priceVolatility: 0.2 };

const micros = (iso: string): number => {
  const us = parseIsoToMicros(iso);
  assert.ok(us !== undefined, `unparseable timestamp ${iso}`);
  return us;
};

function bySymbol(events: readonly StreamEventV1[]): Map<string, StreamEventV1[]> {
  const groups = new Map<string, StreamEventV1[]>();
  for (const e of events) {
    const list = groups.get(e.symbol) ?? [];
    list.push(e);
    groups.set(e.symbol, list);
  }
  return groups;
}

/** JSON round trip, as a Temporal heartbeat would do. */
const viaJson = (state: SyntheticProducerState): SyntheticProducerState => JSON.parse(JSON.stringify(state)) as SyntheticProducerState;

describe('SeededRandom', () => {
  it('resumes the same sequence from a JSON-serialized state, including the cached normal', () => {
    const rng = SeededRandom.fromSeed(7);
    for (let i = 0; i < 10; i++) rng.next();
    rng.nextNormal(); // leaves a spare behind
    const copy = SeededRandom.fromState(JSON.parse(JSON.stringify(rng.state())) as number[]);
    for (let i = 0; i < 100; i++) {
      assert.equal(copy.nextNormal(), rng.nextNormal());
      assert.equal(copy.next(), rng.next());
    }
  });

  it('draws uniforms in [0, 1) and standard normals with the right moments', () => {
    const rng = SeededRandom.fromSeed(1);
    let sum = 0,
      sumSq = 0,
      usum = 0;
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const u = rng.next();
      assert.ok(u >= 0 && u < 1);
      usum += u;
      const z = rng.nextNormal();
      sum += z;
      sumSq += z * z;
    }
    assert.ok(Math.abs(usum / n - 0.5) < 0.01);
    assert.ok(Math.abs(sum / n) < 0.02, `normal mean ${sum / n}`);
    assert.ok(Math.abs(sumSq / n - 1) < 0.03, `normal variance ${sumSq / n}`);
  });

  it('gives different sequences for different seeds and rejects malformed states', () => {
    assert.notEqual(SeededRandom.fromSeed(1).nextUint32(), SeededRandom.fromSeed(2).nextUint32());
    assert.throws(() => SeededRandom.fromState([0, 0, 0, 0, 0, 0]), TypeError);
    assert.throws(() => SeededRandom.fromState([1, 2, 3]), TypeError);
    assert.throws(() => SeededRandom.fromSeed(1.5), RangeError);
  });
});

describe('SyntheticProducer', () => {
  it('produces identical events for the same seed and different ones for another seed', () => {
    const a = new SyntheticProducer(OPTIONS).generateFinite({ count: 600, startUs: T0 });
    const b = new SyntheticProducer(OPTIONS).generateFinite({ count: 600, startUs: T0 });
    const c = new SyntheticProducer({ ...OPTIONS, seed: 43 }).generateFinite({ count: 600, startUs: T0 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(
      a.map((e) => e.c),
      c.map((e) => e.c),
    );
    assert.notDeepEqual(
      a.map((e) => e.v),
      c.map((e) => e.v),
    );
  });

  it('emits valid v1 tick events with the deterministic event_id', () => {
    const events = new SyntheticProducer({ ...OPTIONS, provider: 'synth_a' }).generateFinite({ count: 300, startUs: T0, ingestTsUs: T0 + 5_000_000 });
    for (const e of events) {
      const result = validateEvent(e);
      assert.ok(result.ok, result.ok ? '' : result.reason);
      assert.equal(e.kind, 'tick');
      assert.equal(e.provider, 'synth_a');
      assert.equal(e.event_id, `synth_a|${e.symbol}|${e.src_ts}|${e.seq}`);
      assert.match(e.src_ts, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
      assert.equal(e.ingest_ts, '2025-10-24T14:00:05.000000Z');
      assert.ok(e.o === e.h && e.h === e.l && e.l === e.c);
      assert.equal(Math.round(e.c * 100) / 100, e.c, 'prices are whole cents');
    }
  });

  it('numbers each symbol from seq 0 upwards with strictly increasing src_ts, round-robin', () => {
    const events = new SyntheticProducer(OPTIONS).generateFinite({ count: 900, startUs: T0 });
    assert.deepEqual(
      events.slice(0, 4).map((e) => e.symbol),
      ['SPY', 'AAPL', 'MSFT', 'SPY'],
    );
    const groups = bySymbol(events);
    assert.equal(groups.size, 3);
    for (const [symbol, list] of groups) {
      assert.equal(list.length, 300, symbol);
      list.forEach((e, i) => assert.equal(e.seq, i));
      for (let i = 1; i < list.length; i++) {
        const gap = micros(list[i].src_ts) - micros(list[i - 1].src_ts);
        // 1/tickRate apart, give or take the sub-slot jitter (slot = 1 s / 3 symbols).
        assert.ok(gap > 1_000_000 - 1_000_000 / 6 && gap < 1_000_000 + 1_000_000 / 6, `${symbol} gap ${gap}`);
      }
    }
    // The whole array is in event-time order, so a consumer never sees the producer's own events late.
    for (let i = 1; i < events.length; i++) assert.ok(micros(events[i].src_ts) > micros(events[i - 1].src_ts));
    assert.ok(micros(events[0].src_ts) >= T0);
  });

  it('starts from the documented default prices', () => {
    const first = new SyntheticProducer({ ...OPTIONS, symbols: ['SPY', 'AAPL', 'MSFT', 'ZZZ'] }).generateFinite({ count: 4, startUs: T0 });
    assert.deepEqual(
      first.slice(0, 3).map((e) => e.c),
      [425, 190, 410],
    );
    const zzz = first[3].c;
    assert.ok(zzz >= 20 && zzz < 500);
    const again = new SyntheticProducer({ ...OPTIONS, seed: 9, symbols: ['ZZZ'], startPrices: { SPY: 1 } }).generateFinite({ count: 1, startUs: T0 });
    assert.equal(again[0].c, zzz, 'default start price depends only on the symbol');
    const custom = new SyntheticProducer({ ...OPTIONS, startPrices: { AAPL: 12.34 } }).generateFinite({ count: 2, startUs: T0 });
    assert.equal(custom[1].c, 12.34);
  });

  it('resumes from a JSON snapshot exactly where it stopped', () => {
    for (const [n, m] of [
      [0, 50],
      [1, 50],
      [7, 200],
      [500, 333],
    ] as const) {
      const oneGo = new SyntheticProducer(OPTIONS).generateFinite({ count: n + m, startUs: T0 });
      const first = new SyntheticProducer(OPTIONS);
      const head = first.generateFinite({ count: n, startUs: T0 });
      const resumed = SyntheticProducer.fromState(OPTIONS, viaJson(first.state()));
      const tail = resumed.generateFinite({ count: m });
      assert.deepEqual([...head, ...tail], oneGo, `split ${n}+${m}`);
    }
  });

  it('resumes live mode from a snapshot too', () => {
    const times = Array.from({ length: 40 }, (_, i) => T0 + i * 333_333);
    const whole = new SyntheticProducer(OPTIONS);
    const oneGo = times.flatMap((t) => whole.ticksDue(t));
    let producer = new SyntheticProducer(OPTIONS);
    const split: StreamEventV1[] = [];
    times.forEach((t, i) => {
      if (i % 7 === 3) producer = SyntheticProducer.fromState(OPTIONS, viaJson(producer.state()));
      split.push(...producer.ticksDue(t));
    });
    assert.deepEqual(split, oneGo);
    assert.ok(oneGo.length > 30);
  });

  it('refuses a snapshot made with another seed', () => {
    const state = new SyntheticProducer(OPTIONS).state();
    assert.throws(() => SyntheticProducer.fromState({ ...OPTIONS, seed: 1 }, state), RangeError);
  });

  it('needs startUs for the first finite batch and continues the schedule without it', () => {
    const producer = new SyntheticProducer(OPTIONS);
    assert.throws(() => producer.generateFinite({ count: 1 }), RangeError);
    const a = producer.generateFinite({ count: 3, startUs: T0 });
    const b = producer.generateFinite({ count: 3 });
    assert.deepEqual(
      b.map((e) => e.seq),
      [1, 1, 1],
    );
    assert.ok(micros(b[0].src_ts) > micros(a[2].src_ts));
  });

  it('ticksDue emits tickRate per symbol, only timestamps up to now, stamped with now', () => {
    const producer = new SyntheticProducer({ ...OPTIONS, tickRate: 2 });
    let last = T0;
    let total = 0;
    assert.ok(producer.ticksDue(T0).every((e) => micros(e.src_ts) <= T0));
    for (let now = T0 + 250_000; now <= T0 + 10_000_000; now += 250_000) {
      const events = producer.ticksDue(now);
      for (const e of events) {
        const src = micros(e.src_ts);
        assert.ok(src > last && src <= now, `src ${src} outside (${last}, ${now}]`);
        assert.equal(micros(e.ingest_ts), now);
      }
      total += events.length;
      last = now;
    }
    // 10 s × 2 ticks/s × 3 symbols, ± one round for the jittered edges.
    assert.ok(Math.abs(total - 60) <= 3, `total ${total}`);
    assert.equal(producer.skippedTicks, 0);
  });

  it('ticksDue caps the backlog after a long pause', () => {
    const producer = new SyntheticProducer({ ...OPTIONS, tickRate: 10, maxBacklogMs: 10_000 });
    producer.ticksDue(T0);
    const now = T0 + 3_600_000_000; // one hour later
    const events = producer.ticksDue(now);
    assert.ok(events.length <= 10 * 3 * 10 + 1, `emitted ${events.length}`);
    assert.ok(events.length >= 10 * 3 * 10 - 3, `emitted ${events.length}`);
    for (const e of events) assert.ok(micros(e.src_ts) >= now - 10_000_000 && micros(e.src_ts) <= now);
    assert.ok(producer.skippedTicks > 100_000);
    // Per-symbol order and seq survive the jump.
    for (const list of bySymbol(events).values()) {
      for (let i = 1; i < list.length; i++) {
        assert.ok(micros(list[i].src_ts) > micros(list[i - 1].src_ts));
        assert.equal(list[i].seq, list[i - 1].seq + 1);
      }
    }
  });

  it('ticksForRate produces a total events/s across symbols', () => {
    const producer = new SyntheticProducer(OPTIONS);
    producer.ticksForRate(1000, T0);
    let total = 0;
    for (let now = T0 + 100_000; now <= T0 + 2_000_000; now += 100_000) total += producer.ticksForRate(1000, now).length;
    assert.ok(Math.abs(total - 2000) <= 3, `total ${total}`);
    // Switching the rate keeps event time continuous.
    const slower = producer.ticksForRate(10, T0 + 3_000_000);
    assert.ok(Math.abs(slower.length - 10) <= 2, `after rate change ${slower.length}`);
  });

  it('keeps prices positive and moves them with the configured volatility', () => {
    const sigma = 0.3;
    const producer = new SyntheticProducer({ symbols: ['SPY'], seed: 5, tickRate: 1, priceVolatility: sigma });
    const events = producer.generateFinite({ count: 20_000, startUs: T0 });
    let sumSq = 0,
      sumDtYears = 0;
    for (let i = 1; i < events.length; i++) {
      const r = Math.log(events[i].c / events[i - 1].c);
      sumSq += r * r;
      sumDtYears += (micros(events[i].src_ts) - micros(events[i - 1].src_ts)) / 1e6 / TRADING_SECONDS_PER_YEAR;
    }
    const estimated = Math.sqrt(sumSq / sumDtYears);
    assert.ok(Math.abs(estimated / sigma - 1) < 0.05, `estimated sigma ${estimated}`);

    const penny = new SyntheticProducer({ symbols: ['PNY'], seed: 5, tickRate: 1, priceVolatility: 20, startPrices: { PNY: 0.03 } });
    for (const e of penny.generateFinite({ count: 5000, startUs: T0 })) {
      assert.ok(e.c >= 0.01, `price ${e.c}`);
      assert.ok(validateEvent(e).ok);
    }
  });

  it('draws realistic integer trade sizes: mostly round lots, some odd lots', () => {
    const events = new SyntheticProducer(OPTIONS).generateFinite({ count: 5000, startUs: T0 });
    const sizes = events.map((e) => e.v);
    assert.ok(sizes.every((v) => Number.isInteger(v) && v >= 1 && v <= 5000));
    const roundLots = sizes.filter((v) => v % 100 === 0).length / sizes.length;
    assert.ok(roundLots > 0.75 && roundLots < 0.95, `round-lot share ${roundLots}`);
    assert.ok(new Set(sizes).size > 30);
  });

  it('nextTick rejects unknown symbols and non-increasing timestamps', () => {
    const producer = new SyntheticProducer(OPTIONS);
    producer.nextTick('SPY', T0, T0);
    assert.throws(() => producer.nextTick('SPY', T0, T0), RangeError);
    assert.throws(() => producer.nextTick('QQQ', T0 + 1, T0), RangeError);
    assert.equal(producer.nextTick('SPY', T0 + 1, T0).seq, 1);
  });

  it('validates its options', () => {
    assert.throws(() => new SyntheticProducer({ ...OPTIONS, symbols: [] }), RangeError);
    assert.throws(() => new SyntheticProducer({ ...OPTIONS, symbols: ['A|B'] }), RangeError);
    assert.throws(() => new SyntheticProducer({ ...OPTIONS, symbols: ['SPY', 'SPY'] }), RangeError);
    assert.throws(() => new SyntheticProducer({ ...OPTIONS, tickRate: 0 }), RangeError);
    assert.throws(() => new SyntheticProducer({ ...OPTIONS, priceVolatility: -1 }), RangeError);
    assert.throws(() => new SyntheticProducer({ ...OPTIONS, startPrices: { SPY: 0 } }), RangeError);
  });
});

describe('SyntheticProducer output is pinned', () => {
  // The digest was taken from the producer before its hot-path rework (commit 2094804): the same
  // seed must keep giving the same events, in every mode, across a JSON state round trip.
  it('gives, for seed 20251024, exactly the 53,024 events (and final state) it always gave', () => {
    const options: SyntheticProducerOptions = { symbols: ['SPY', 'AAPL', 'MSFT', 'BRK.B', 'X'], seed: 20251024, tickRate: 50, priceVolatility: 0.3 };
    const events: StreamEventV1[] = [];
    const producer = new SyntheticProducer(options);
    events.push(...producer.generateFinite({ count: 20_000, startUs: T0 }));
    events.push(...producer.generateFinite({ count: 3000, ingestTsUs: T0 + 999_999_999 }));
    const resumed = SyntheticProducer.fromState(options, viaJson(producer.state()));
    for (let i = 1; i <= 50; i++) events.push(...resumed.ticksForRate(i % 2 ? 100_000 : 3000, T0 + 92_100_000 + i * 7777));
    events.push(...resumed.ticksDue(T0 + 93_000_000));
    events.push(resumed.nextTick('X', T0 + 99_000_000, T0 + 99_000_123));
    const digest = createHash('sha256');
    for (const event of events) digest.update(JSON.stringify(event) + '\n');
    digest.update(JSON.stringify(resumed.state()));
    assert.equal(events.length, 53_024);
    assert.deepEqual(events[12_345], {
      ver: 1,
      provider: 'synthetic',
      symbol: 'SPY',
      kind: 'tick',
      src_ts: '2025-10-24T14:00:49.380360Z',
      ingest_ts: '2025-10-24T14:00:49.380360Z',
      o: 424.98,
      h: 424.98,
      l: 424.98,
      c: 424.98,
      v: 100,
      seq: 2469,
      event_id: 'synthetic|SPY|2025-10-24T14:00:49.380360Z|2469',
    });
    assert.equal(digest.digest('hex'), '753fb0b45ec0432c695cb37fbdfe2788014b1a691d8c3a46fb6f05edc68a51be');
  });
});
