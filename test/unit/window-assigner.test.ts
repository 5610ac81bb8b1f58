import assert from 'node:assert/strict';
import type { MarketEvent } from '../../pipeline/contracts/index.js';
import { MicroBatcher, windowStartMs } from '../../pipeline/windowing/index.js';

// 2025-10-24T14:02:00Z, aligned to 2 s and to 1 min windows.
const T0_US = 1_761_314_520_000_000;
const T0_MS = T0_US / 1000;
const SEC_US = 1_000_000;

let nextSeq = 0;

/** A tick at `srcTsUs` (epoch µs); eventId follows the producer's provider|symbol|src_ts|seq shape. */
function tick(srcTsUs: number, price = 100, v = 1, symbol = 'AAPL', provider = 'synthetic'): MarketEvent {
  const seq = nextSeq++;
  return {
    eventId: `${provider}|${symbol}|${srcTsUs}|${seq}`,
    provider,
    symbol,
    kind: 'tick',
    srcTsUs,
    ingestTsUs: srcTsUs,
    seq,
    o: price,
    h: price,
    l: price,
    c: price,
    v,
  };
}

const NOW = 1_000_000_000;

function newBatcher(overrides: Partial<ConstructorParameters<typeof MicroBatcher>[0]> = {}): MicroBatcher<string> {
  return new MicroBatcher<string>({ windowMs: 2000, allowLateMs: 500, flushTimeoutMs: 1000, maxBufferedEvents: 5000, ...overrides });
}

describe('windowStartMs', () => {
  it('aligns windows to the epoch', () => {
    assert.equal(windowStartMs(T0_US + 1_234_567, 2000), T0_MS);
    assert.equal(windowStartMs(T0_US + 3_234_567, 2000), T0_MS + 2000);
    assert.equal(windowStartMs(T0_US + 59 * SEC_US, 60_000), T0_MS);
    assert.equal(windowStartMs(T0_US + 750_000, 500), T0_MS + 500);
  });

  it('puts an event exactly at a window end into the next window', () => {
    assert.equal(windowStartMs(2 * SEC_US, 2000), 2000);
    assert.equal(windowStartMs(T0_US + 2 * SEC_US, 2000), T0_MS + 2000);
    assert.equal(windowStartMs(T0_US, 2000), T0_MS);
  });

  it('keeps the microsecond just before the end in the same window', () => {
    assert.equal(windowStartMs(2 * SEC_US - 1, 2000), 0);
    assert.equal(windowStartMs(T0_US + 2 * SEC_US - 1, 2000), T0_MS);
    assert.equal(windowStartMs(T0_US + 500_000 - 1, 500), T0_MS);
  });

  it('matches exact integer arithmetic for arbitrary microsecond timestamps', () => {
    let state = 12345;
    const random = (): number => {
      state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
      return state / 2 ** 32;
    };
    for (const windowMs of [1, 500, 1000, 2000, 5000, 60_000]) {
      for (let i = 0; i < 2000; i++) {
        // Up to 2^53 - 1 µs, plus values right at and around window ends.
        const base = Math.floor(random() * Number.MAX_SAFE_INTEGER);
        for (const srcTsUs of [base, base - (base % (windowMs * 1000)), base - (base % (windowMs * 1000)) - 1]) {
          if (srcTsUs < 0) continue;
          const expected = Number((BigInt(srcTsUs) / BigInt(windowMs * 1000)) * BigInt(windowMs));
          assert.equal(windowStartMs(srcTsUs, windowMs), expected, `srcTsUs=${srcTsUs} windowMs=${windowMs}`);
        }
      }
    }
  });
});

describe('MicroBatcher window assignment and lateness', () => {
  it('starts a new bar for an event exactly at the window end', () => {
    const batcher = newBatcher();
    assert.equal(batcher.add(tick(T0_US + 2 * SEC_US - 1, 101), 'a', NOW), 'accepted');
    assert.equal(batcher.add(tick(T0_US + 2 * SEC_US, 102), 'b', NOW), 'accepted');
    const flushes = batcher.flush(NOW + 10_000);
    assert.deepEqual(
      flushes.map((f) => [f.windowStartMs, f.windowEndMs, f.bars.map((bar) => [bar.tsMs, bar.interval, bar.close]), f.refs]),
      [
        [T0_MS, T0_MS + 2000, [[T0_MS, '2s', 101]], ['a']],
        [T0_MS + 2000, T0_MS + 4000, [[T0_MS + 2000, '2s', 102]], ['b']],
      ],
    );
  });

  it('accepts an out-of-order event while its window is within the late allowance', () => {
    const batcher = newBatcher();
    batcher.add(tick(T0_US + 1 * SEC_US, 100), 'a', NOW);
    batcher.add(tick(T0_US + 2_400_000, 110), 'b', NOW); // watermark = T0 + 1.9 s
    assert.equal(batcher.watermarkMs, T0_MS + 1900);
    assert.equal(batcher.add(tick(T0_US + 500_000, 90), 'c', NOW), 'accepted');
    assert.deepEqual(batcher.flush(NOW), [], 'the first window has not passed the watermark yet');
    batcher.add(tick(T0_US + 2_600_000, 111), 'd', NOW); // watermark = T0 + 2.1 s
    const [first] = batcher.flush(NOW);
    assert.ok(first);
    assert.equal(first.windowStartMs, T0_MS);
    assert.deepEqual(first.refs, ['a', 'c']);
    const [bar] = first.bars;
    assert.ok(bar);
    assert.deepEqual([bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trades], [90, 100, 90, 100, 2, 2]);
  });

  it('judges lateness against the watermark exactly at the allowance edge', () => {
    const batcher = newBatcher();
    batcher.add(tick(T0_US + 2_500_000 - 1), 'a', NOW); // watermark 1 µs before the first window's end
    assert.equal(batcher.add(tick(T0_US + 2 * SEC_US - 1), 'b', NOW), 'accepted');
    batcher.add(tick(T0_US + 2_500_000), 'c', NOW); // watermark reaches the end of the first window
    assert.equal(batcher.add(tick(T0_US + 2 * SEC_US - 1), 'd', NOW), 'late');
    assert.equal(batcher.add(tick(T0_US + 2 * SEC_US), 'e', NOW), 'accepted');
  });

  it('routes a too-late event as late and does not aggregate or keep it', () => {
    const batcher = newBatcher();
    batcher.add(tick(T0_US + 1 * SEC_US, 100, 5), 'a', NOW);
    batcher.add(tick(T0_US + 3 * SEC_US, 100, 5), 'b', NOW); // watermark = T0 + 2.5 s
    const buffered = batcher.bufferedRefs;
    assert.equal(batcher.add(tick(T0_US + 1_500_000, 999, 1000), 'late-ref', NOW), 'late');
    assert.equal(batcher.bufferedRefs, buffered);
    const [first] = batcher.flush(NOW);
    assert.ok(first);
    assert.deepEqual(first.refs, ['a']);
    assert.deepEqual(
      first.bars.map((bar) => [bar.high, bar.volume, bar.trades]),
      [[100, 5, 1]],
    );
    assert.equal(batcher.snapshot().late, 1);
  });

  it('treats events of a force-flushed window as late even with a generous allowance', () => {
    const batcher = newBatcher({ allowLateMs: 60_000 });
    batcher.add(tick(T0_US + 1 * SEC_US), 'a', NOW);
    assert.equal(batcher.forceFlushOldest()?.windowStartMs, T0_MS);
    assert.equal(batcher.frontierMs, T0_MS + 2000);
    assert.equal(batcher.add(tick(T0_US + 1_999_999), 'b', NOW), 'late');
    assert.equal(batcher.add(tick(T0_US + 2 * SEC_US), 'c', NOW), 'accepted');
  });

  it('advances the frontier to the end of the last flushed window', () => {
    const batcher = newBatcher();
    assert.equal(batcher.frontierMs, undefined);
    batcher.add(tick(T0_US + 1 * SEC_US), 'a', NOW);
    batcher.add(tick(T0_US + 3 * SEC_US), 'b', NOW);
    batcher.add(tick(T0_US + 7 * SEC_US), 'c', NOW); // watermark = T0 + 6.5 s
    assert.deepEqual(
      batcher.flush(NOW).map((f) => f.windowStartMs),
      [T0_MS, T0_MS + 2000],
    );
    assert.equal(batcher.frontierMs, T0_MS + 4000);
    assert.equal(batcher.openWindowCount, 1);
  });

  it('after a restart with a durable frontier, treats earlier windows as flushed', () => {
    const batcher = newBatcher({ frontierMs: T0_MS + 4000 });
    assert.equal(batcher.frontierMs, T0_MS + 4000);
    assert.equal(batcher.watermarkMs, undefined);
    assert.equal(batcher.add(tick(T0_US + 3_999_999), 'redelivered-old', NOW), 'late');
    assert.equal(batcher.watermarkMs, undefined, 'a late event keeps nothing, not even its time');
    assert.equal(batcher.add(tick(T0_US + 4 * SEC_US, 104), 'pending', NOW), 'accepted');
    assert.equal(batcher.watermarkMs, T0_MS + 3500);
    const flushes = batcher.flush(NOW + 5000);
    assert.deepEqual(
      flushes.map((f) => [f.windowStartMs, f.refs]),
      [[T0_MS + 4000, ['pending']]],
    );
    assert.deepEqual(batcher.snapshot(), {
      watermarkMs: T0_MS + 4000 + 5000 - 500,
      frontierMs: T0_MS + 6000,
      openWindows: 0,
      bufferedRefs: 0,
      accepted: 1,
      duplicates: 0,
      late: 1,
      flushedWindows: 1,
      flushedBars: 1,
    });
  });
});
