import assert from 'node:assert/strict';
import type { Bar, EventKind, MarketEvent } from '../../pipeline/contracts/index.js';
import { MicroBatcher } from '../../pipeline/windowing/index.js';
import type { MicroBatcherOptions, WindowFlush } from '../../pipeline/windowing/index.js';
import { prng } from '../helpers/prng.js';

// 2025-10-24T14:02:00Z, aligned to 2 s and to 1 min windows.
const T0_US = 1_761_314_520_000_000;
const T0_MS = T0_US / 1000;
const SEC_US = 1_000_000;
const NOW = 1_000_000_000;

interface EventFields {
  readonly srcTsUs: number;
  readonly seq: number;
  readonly provider?: string;
  readonly symbol?: string;
  readonly kind?: EventKind;
  /** Tick price; ignored when `ohlc` is given. */
  readonly price?: number;
  readonly ohlc?: readonly [number, number, number, number];
  readonly v?: number;
}

function marketEvent({ srcTsUs, seq, provider = 'synthetic', symbol = 'AAPL', kind = 'tick', price = 100, ohlc, v = 1 }: EventFields): MarketEvent {
  const [o, h, l, c] = ohlc ?? [price, price, price, price];
  return { eventId: `${provider}|${symbol}|${srcTsUs}|${seq}`, provider, symbol, kind, srcTsUs, ingestTsUs: srcTsUs, seq, o, h, l, c, v };
}

function newBatcher(overrides: Partial<MicroBatcherOptions> = {}): MicroBatcher<string> {
  return new MicroBatcher<string>({ windowMs: 2000, allowLateMs: 500, flushTimeoutMs: 1000, maxBufferedEvents: 5000, ...overrides });
}

/** Independent reference: group, dedupe, sort each group by (srcTs, seq), then read the bar off. */
function bruteForceBars(events: readonly MarketEvent[], windowMs: number): Bar[] {
  const distinct = new Map<string, MarketEvent>();
  for (const event of events) if (!distinct.has(event.eventId)) distinct.set(event.eventId, event);
  const groups = new Map<string, MarketEvent[]>();
  for (const event of distinct.values()) {
    const tsMs = Number((BigInt(event.srcTsUs) / BigInt(windowMs * 1000)) * BigInt(windowMs));
    const key = JSON.stringify([tsMs, event.provider, event.symbol]);
    const group = groups.get(key) ?? [];
    group.push(event);
    groups.set(key, group);
  }
  const bars: Bar[] = [];
  for (const [key, group] of groups) {
    const [tsMs, provider, symbol] = JSON.parse(key) as [number, string, string];
    group.sort((a, b) => a.srcTsUs - b.srcTsUs || a.seq - b.seq);
    const first = group[0];
    const last = group[group.length - 1];
    assert.ok(first && last);
    bars.push({
      provider,
      symbol,
      interval: `${windowMs / 1000}s`,
      tsMs,
      open: first.o,
      high: Math.max(...group.map((e) => e.h)),
      low: Math.min(...group.map((e) => e.l)),
      close: last.c,
      volume: group.reduce((sum, e) => sum + e.v, 0),
      trades: group.length,
    });
  }
  return bars.sort(
    (a, b) => a.tsMs - b.tsMs || (a.provider < b.provider ? -1 : a.provider > b.provider ? 1 : 0) || (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0),
  );
}

/** Events over 5 windows for 2 providers × 3 symbols, with bars, ticks, boundary times and duplicates. */
function randomEvents(seed: number, count: number): MarketEvent[] {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const events: MarketEvent[] = [];
  for (let seq = 0; seq < count; seq++) {
    const provider = pick(['ibkr', 'synthetic']);
    const kind: EventKind = provider === 'ibkr' ? 'bar' : 'tick';
    // A tenth of the events sit exactly on, or a microsecond before, a window boundary.
    const boundary = T0_US + Math.floor(random() * 5) * 2 * SEC_US;
    const srcTsUs = random() < 0.1 ? (random() < 0.5 ? boundary : Math.max(T0_US, boundary - 1)) : T0_US + Math.floor(random() * 10 * SEC_US);
    // Integer volumes keep sums exact, so any addition order gives the same total.
    const v = 1 + Math.floor(random() * 500);
    // A few events share srcTs with another (same µs) and differ only by seq.
    const ts = random() < 0.05 && events.length > 0 ? events[events.length - 1].srcTsUs : srcTsUs;
    if (kind === 'tick') {
      events.push(marketEvent({ srcTsUs: ts, seq, provider, symbol: pick(['AAPL', 'MSFT', 'SPY']), price: 100 + Math.round(random() * 1000) / 100, v }));
    } else {
      const low = 100 + Math.round(random() * 1000) / 100;
      const high = low + Math.round(random() * 200) / 100;
      const within = (): number => Math.round((low + random() * (high - low)) * 100) / 100;
      events.push(marketEvent({ srcTsUs: ts, seq, provider, symbol: pick(['AAPL', 'MSFT', 'SPY']), kind, ohlc: [within(), high, low, within()], v }));
    }
  }
  const duplicates = Array.from({ length: Math.floor(count / 10) }, () => pick(events));
  return [...events, ...duplicates.map((event) => ({ ...event }))];
}

function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Feeds events with an allowance wider than their span (nothing late), then closes everything. */
function aggregate(events: readonly MarketEvent[]): WindowFlush<number>[] {
  const batcher = new MicroBatcher<number>({ windowMs: 2000, allowLateMs: 60_000, flushTimeoutMs: 1000, maxBufferedEvents: 1_000_000 });
  events.forEach((event, index) => assert.notEqual(batcher.add(event, index, NOW), 'late'));
  const flushes = batcher.flush(NOW + 3_600_000);
  assert.equal(batcher.openWindowCount, 0);
  return flushes;
}

describe('MicroBatcher aggregation', () => {
  it('dedupes by eventId within a window but still returns the duplicate ref for ack', () => {
    const batcher = newBatcher();
    const event = marketEvent({ srcTsUs: T0_US + 100, seq: 7, price: 101, v: 10 });
    assert.equal(batcher.add(event, 'first', NOW), 'accepted');
    assert.equal(batcher.add({ ...event }, 'redelivery', NOW), 'duplicate');
    assert.equal(batcher.add(marketEvent({ srcTsUs: T0_US + 200, seq: 8, price: 102, v: 1 }), 'second', NOW), 'accepted');
    assert.equal(batcher.bufferedRefs, 3);
    const [window] = batcher.flush(NOW + 10_000);
    assert.ok(window);
    assert.deepEqual(window.refs, ['first', 'redelivery', 'second']);
    assert.deepEqual(window.barRefs, [['first', 'redelivery', 'second']], "a duplicate's ref goes with its bar");
    assert.equal(window.events, 2);
    assert.equal(window.duplicates, 1);
    assert.deepEqual(
      window.bars.map((bar) => [bar.volume, bar.trades, bar.close]),
      [[11, 2, 102]],
    );
    assert.equal(batcher.bufferedRefs, 0);
    assert.deepEqual([batcher.snapshot().accepted, batcher.snapshot().duplicates], [2, 1]);
  });

  it('recognises a redelivery that arrives after later events of its bar, and repeats of it', () => {
    // In-order events are never hashed (a later event cannot repeat an earlier one); the first
    // event out of (srcTs, seq) order must still find every id the bar has seen.
    const batcher = newBatcher();
    const events = [1, 2, 3].map((seq) => marketEvent({ srcTsUs: T0_US + seq * 1000, seq, price: 100 + seq, v: seq }));
    events.forEach((event, i) => assert.equal(batcher.add(event, `r${i + 1}`, NOW), 'accepted'));
    assert.equal(batcher.add({ ...events[0] }, 'again1', NOW), 'duplicate');
    assert.equal(batcher.add({ ...events[2] }, 'again3', NOW), 'duplicate');
    assert.equal(batcher.add(marketEvent({ srcTsUs: T0_US + 4000, seq: 4, price: 104, v: 4 }), 'r4', NOW), 'accepted');
    assert.equal(batcher.add({ ...events[1] }, 'again2', NOW), 'duplicate');
    assert.equal(batcher.add(marketEvent({ srcTsUs: T0_US + 4000, seq: 4, price: 104, v: 4 }), 'again4', NOW), 'duplicate');
    // Same (srcTs, seq) as r4 but another eventId (src_ts written differently): a distinct event.
    assert.equal(
      batcher.add({ ...marketEvent({ srcTsUs: T0_US + 4000, seq: 4, price: 105, v: 5 }), eventId: 'synthetic|AAPL|other-text|4' }, 'r5', NOW),
      'accepted',
    );
    const [window] = batcher.flush(NOW + 10_000);
    assert.ok(window);
    assert.equal(window.events, 5);
    assert.equal(window.duplicates, 4);
    assert.deepEqual(window.barRefs, [['r1', 'r2', 'r3', 'again1', 'again3', 'r4', 'again2', 'again4', 'r5']]);
    assert.deepEqual(
      window.bars.map((bar) => [bar.open, bar.close, bar.volume, bar.trades]),
      [[101, 105, 15, 5]], // r5 closes: the same (srcTs, seq) as r4, and the greater eventId
    );
  });

  it('aggregates kind "bar" events: open of the first, close of the last, max high, min low, summed volume', () => {
    const batcher = newBatcher({ windowMs: 60_000 });
    const bar = (secs: number, seq: number, ohlc: [number, number, number, number], v: number): MarketEvent =>
      marketEvent({ srcTsUs: T0_US + secs * SEC_US, seq, provider: 'ibkr', symbol: 'SPY', kind: 'bar', ohlc, v });
    // Arrives out of order; the window is still open for all of them.
    batcher.add(bar(20, 2, [10.5, 12.0, 10.1, 11.0], 300), 'b', NOW);
    batcher.add(bar(40, 3, [11.0, 11.5, 9.5, 9.9], 200), 'c', NOW);
    batcher.add(bar(0, 1, [10.0, 10.8, 9.8, 10.4], 100), 'a', NOW);
    const [window] = batcher.flush(NOW + 120_000);
    assert.ok(window);
    assert.deepEqual(window.bars, [
      { provider: 'ibkr', symbol: 'SPY', interval: '1m', tsMs: T0_MS, open: 10.0, high: 12.0, low: 9.5, close: 9.9, volume: 600, trades: 3 },
    ]);
  });

  it('orders events of the same microsecond by seq', () => {
    const batcher = newBatcher();
    batcher.add(marketEvent({ srcTsUs: T0_US + 5, seq: 2, price: 102 }), 'b', NOW);
    batcher.add(marketEvent({ srcTsUs: T0_US + 5, seq: 3, price: 103 }), 'c', NOW);
    batcher.add(marketEvent({ srcTsUs: T0_US + 5, seq: 1, price: 101 }), 'a', NOW);
    const [window] = batcher.flush(NOW + 10_000);
    assert.deepEqual(
      window?.bars.map((bar) => [bar.open, bar.close]),
      [[101, 103]],
    );
  });

  it('breaks exact (srcTs, seq) ties by eventId, whatever the arrival order', () => {
    // Same instant written two ways (`Z` vs `+00:00`) gives two ids with the same (srcTs, seq).
    const z = { ...marketEvent({ srcTsUs: T0_US, seq: 1, price: 101 }), eventId: 'synthetic|AAPL|2025-10-24T14:02:00Z|1' };
    const offset = { ...marketEvent({ srcTsUs: T0_US, seq: 1, price: 102 }), eventId: 'synthetic|AAPL|2025-10-24T14:02:00+00:00|1' };
    const bars = [
      [z, offset],
      [offset, z],
    ].map(([first, second]) => {
      const batcher = newBatcher();
      batcher.add(first, 'x', NOW);
      batcher.add(second, 'y', NOW);
      return batcher.flush(NOW + 10_000)[0]?.bars;
    });
    assert.deepEqual(bars[0], bars[1]);
    assert.deepEqual(
      bars[0]?.map((bar) => [bar.open, bar.close, bar.trades]),
      [[102, 101, 2]],
    );
  });

  it('builds one bar per (provider, symbol) in a window, sorted by provider then symbol', () => {
    const batcher = newBatcher();
    const at = (ms: number, provider: string, symbol: string, price: number, seq: number): MarketEvent =>
      marketEvent({ srcTsUs: T0_US + ms * 1000, seq, provider, symbol, price, v: 2 });
    batcher.add(at(10, 'synthetic', 'MSFT', 400, 1), 'r1', NOW);
    batcher.add(at(20, 'ibkr', 'SPY', 600, 2), 'r2', NOW);
    batcher.add(at(30, 'ibkr', 'AAPL', 200, 3), 'r3', NOW);
    batcher.add(at(40, 'synthetic', 'MSFT', 401, 4), 'r4', NOW);
    batcher.add(at(50, 'ibkr', 'AAPL', 199, 5), 'r5', NOW);
    const [window] = batcher.flush(NOW + 10_000);
    assert.ok(window);
    assert.deepEqual(
      window.bars.map((bar) => [bar.provider, bar.symbol, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trades]),
      [
        ['ibkr', 'AAPL', 200, 200, 199, 199, 4, 2],
        ['ibkr', 'SPY', 600, 600, 600, 600, 2, 1],
        ['synthetic', 'MSFT', 400, 401, 400, 401, 4, 2],
      ],
    );
    assert.equal(window.events, 5);
    assert.deepEqual(window.barRefs, [['r3', 'r5'], ['r2'], ['r1', 'r4']], 'refs per bar, aligned with bars');
  });

  for (const seed of [1, 2, 3, 42, 2025]) {
    it(`gives the same bars for shuffled arrival as a brute-force aggregation (seed ${seed})`, () => {
      const events = randomEvents(seed, 3000);
      const expected = bruteForceBars(events, 2000);
      const inOrder = aggregate([...events].sort((a, b) => a.srcTsUs - b.srcTsUs || a.seq - b.seq));
      const arrival = shuffle(events, prng(seed * 7919));
      const shuffled = aggregate(arrival);
      assert.deepEqual(
        shuffled.flatMap((f) => f.bars),
        expected,
      );
      assert.deepEqual(
        inOrder.flatMap((f) => f.bars),
        expected,
      );
      assert.equal(
        shuffled.reduce((n, f) => n + f.refs.length, 0),
        events.length,
        'every ref comes back once',
      );
      for (const f of shuffled) {
        // barRefs partitions the window's refs, each with the bar of its own provider and symbol.
        assert.deepEqual(
          f.barRefs.flat().sort((a, b) => a - b),
          [...f.refs].sort((a, b) => a - b),
        );
        f.barRefs.forEach((refs, i) => {
          assert.ok(refs.every((ref) => arrival[ref].provider === f.bars[i].provider && arrival[ref].symbol === f.bars[i].symbol));
        });
      }
      assert.equal(
        shuffled.reduce((n, f) => n + f.duplicates, 0),
        events.length - new Set(events.map((e) => e.eventId)).size,
      );
    });
  }

  it('produces no bar for an empty window', () => {
    const batcher = newBatcher();
    batcher.add(marketEvent({ srcTsUs: T0_US + 1 * SEC_US, seq: 1 }), 'a', NOW);
    batcher.add(marketEvent({ srcTsUs: T0_US + 7 * SEC_US, seq: 2 }), 'b', NOW);
    const flushes = batcher.flush(NOW + 10_000);
    assert.deepEqual(
      flushes.map((f) => f.windowStartMs),
      [T0_MS, T0_MS + 6000],
    );
  });
});

describe('MicroBatcher flushing', () => {
  it('flushes windows in ascending order even when they opened out of order', () => {
    const batcher = newBatcher({ allowLateMs: 10_000 });
    batcher.add(marketEvent({ srcTsUs: T0_US + 5 * SEC_US, seq: 1 }), 'w2', NOW);
    batcher.add(marketEvent({ srcTsUs: T0_US + 1 * SEC_US, seq: 2 }), 'w0', NOW);
    batcher.add(marketEvent({ srcTsUs: T0_US + 3 * SEC_US, seq: 3 }), 'w1', NOW);
    batcher.add(marketEvent({ srcTsUs: T0_US + 7 * SEC_US, seq: 4 }), 'w3', NOW);
    assert.equal(batcher.openWindowCount, 4);
    batcher.add(marketEvent({ srcTsUs: T0_US + 16 * SEC_US, seq: 5 }), 'w8', NOW); // watermark = T0 + 6 s
    const flushes = batcher.flush(NOW);
    assert.deepEqual(
      flushes.map((f) => [f.windowStartMs, f.refs]),
      [
        [T0_MS, ['w0']],
        [T0_MS + 2000, ['w1']],
        [T0_MS + 4000, ['w2']],
      ],
    );
    assert.equal(batcher.frontierMs, T0_MS + 6000);
    assert.equal(batcher.openWindowCount, 2);
  });

  it('flushes an idle stream after flushTimeoutMs of wall clock, and not before', () => {
    const batcher = newBatcher();
    batcher.add(marketEvent({ srcTsUs: T0_US + 1_500_000, seq: 1 }), 'a', NOW);
    assert.deepEqual(batcher.flush(NOW + 999), []);
    assert.equal(batcher.watermarkMs, T0_MS + 1000);
    const [window] = batcher.flush(NOW + 1000); // watermark = 1.5 s + 1 s idle − 0.5 s = window end
    assert.deepEqual([window?.windowStartMs, window?.refs], [T0_MS, ['a']]);
    assert.equal(batcher.watermarkMs, T0_MS + 2000);
  });

  it('restarts the idle clock on late and duplicate events too: a busy shard is not idle', () => {
    const batcher = newBatcher();
    batcher.add(marketEvent({ srcTsUs: T0_US + 1_500_000, seq: 1 }), 'a', NOW);
    assert.equal(batcher.flush(NOW + 1000).length, 1, 'idle: the window flushes');
    // A backlog of old events keeps arriving: late ones must not let the watermark run ahead.
    batcher.add(marketEvent({ srcTsUs: T0_US + 2_100_000, seq: 2 }), 'b', NOW + 1000);
    batcher.add(marketEvent({ srcTsUs: T0_US + 100_000, seq: 3 }), 'c', NOW + 1900);
    assert.deepEqual(batcher.flush(NOW + 2500), [], 'a late event 600 ms ago: not idle');
    batcher.touch(NOW + 3000);
    assert.deepEqual(batcher.flush(NOW + 3500), [], 'an invalid entry 500 ms ago: not idle');
    // Idle since NOW + 3000: the watermark reaches the window end (4 s) at 2.1 s + idle − 0.5 s.
    assert.deepEqual(batcher.flush(NOW + 5300), []);
    assert.equal(batcher.flush(NOW + 5400).length, 1);
  });

  it('restarts the idle clock on every accepted event', () => {
    const batcher = newBatcher();
    batcher.add(marketEvent({ srcTsUs: T0_US + 1_500_000, seq: 1 }), 'a', NOW);
    batcher.add(marketEvent({ srcTsUs: T0_US + 1_400_000, seq: 2 }), 'b', NOW + 600);
    assert.deepEqual(batcher.flush(NOW + 1000), [], 'only 400 ms since the last accepted event');
    assert.equal(batcher.flush(NOW + 1600).length, 1);
  });

  it('keeps the idle advance of the watermark once wall clock moved it', () => {
    const batcher = newBatcher();
    batcher.add(marketEvent({ srcTsUs: T0_US + 1_500_000, seq: 1 }), 'a', NOW);
    batcher.flush(NOW + 1700);
    assert.equal(batcher.watermarkMs, T0_MS + 2700);
    // Newer event time, but behind the idle watermark: the watermark does not go back.
    assert.equal(batcher.add(marketEvent({ srcTsUs: T0_US + 3 * SEC_US, seq: 2 }), 'b', NOW + 1800), 'accepted');
    assert.equal(batcher.watermarkMs, T0_MS + 2700);
    assert.equal(batcher.add(marketEvent({ srcTsUs: T0_US + 1_999_999, seq: 3 }), 'c', NOW + 1800), 'late');
  });

  it('forceFlushOldest closes the oldest window now and makes later events for it late', () => {
    const batcher = newBatcher({ maxBufferedEvents: 3, allowLateMs: 2000 });
    batcher.add(marketEvent({ srcTsUs: T0_US + 1 * SEC_US, seq: 1, price: 100 }), 'a', NOW);
    batcher.add(marketEvent({ srcTsUs: T0_US + 3 * SEC_US, seq: 2 }), 'b', NOW);
    assert.equal(batcher.isFull, false);
    batcher.add(marketEvent({ srcTsUs: T0_US + 1_100_000, seq: 3, price: 101 }), 'c', NOW);
    assert.equal(batcher.bufferedRefs, 3);
    assert.equal(batcher.isFull, true);
    const oldest = batcher.forceFlushOldest();
    assert.ok(oldest);
    assert.equal(oldest.windowStartMs, T0_MS);
    assert.deepEqual(oldest.refs, ['a', 'c']);
    assert.deepEqual(
      oldest.bars.map((bar) => [bar.open, bar.close, bar.trades]),
      [[100, 101, 2]],
    );
    assert.equal(batcher.bufferedRefs, 1);
    assert.equal(batcher.isFull, false);
    assert.equal(batcher.frontierMs, T0_MS + 2000);
    assert.equal(batcher.watermarkMs, T0_MS + 2000);
    assert.equal(batcher.openWindowCount, 1);
    assert.equal(batcher.add(marketEvent({ srcTsUs: T0_US + 1_200_000, seq: 4 }), 'd', NOW), 'late');
    assert.equal(batcher.forceFlushOldest()?.windowStartMs, T0_MS + 2000);
    assert.equal(batcher.forceFlushOldest(), undefined);
  });

  it('reports the wall clock of the latest event kept in each window', () => {
    const batcher = newBatcher({ allowLateMs: 2000 });
    const first = marketEvent({ srcTsUs: T0_US + 1 * SEC_US, seq: 1 });
    batcher.add(first, 'a', NOW);
    batcher.add(marketEvent({ srcTsUs: T0_US + 3 * SEC_US, seq: 2 }), 'b', NOW + 100);
    batcher.add({ ...first }, 'a-again', NOW + 200);
    batcher.add(marketEvent({ srcTsUs: T0_US + 9 * SEC_US, seq: 3 }), 'c', NOW + 300); // watermark = T0 + 7 s
    const flushes = batcher.flush(NOW + 300);
    assert.deepEqual(
      flushes.map((f) => [f.windowStartMs, f.lastArrivalMs]),
      [
        [T0_MS, NOW + 200],
        [T0_MS + 2000, NOW + 100],
      ],
    );
  });

  it('snapshot is plain JSON-safe numbers', () => {
    const batcher = newBatcher();
    assert.deepEqual(batcher.snapshot(), {
      watermarkMs: null,
      frontierMs: null,
      openWindows: 0,
      bufferedRefs: 0,
      accepted: 0,
      duplicates: 0,
      late: 0,
      flushedWindows: 0,
      flushedBars: 0,
    });
    batcher.add(marketEvent({ srcTsUs: T0_US + 3 * SEC_US, seq: 1 }), 'a', NOW);
    const snapshot = batcher.snapshot();
    assert.deepEqual(JSON.parse(JSON.stringify(snapshot)), snapshot);
    assert.equal(snapshot.watermarkMs, T0_MS + 2500);
  });

  it('rejects invalid options with a message naming the key', () => {
    assert.throws(() => newBatcher({ windowMs: 0 }), /"windowMs" must be a positive integer/);
    assert.throws(() => newBatcher({ windowMs: 1.5 }), /"windowMs"/);
    assert.throws(() => newBatcher({ allowLateMs: -1 }), /"allowLateMs"/);
    assert.throws(() => newBatcher({ flushTimeoutMs: Number.NaN }), /"flushTimeoutMs"/);
    assert.throws(() => newBatcher({ maxBufferedEvents: 0 }), /"maxBufferedEvents"/);
    assert.throws(() => newBatcher({ frontierMs: Number.POSITIVE_INFINITY }), /"frontierMs"/);
  });
});
