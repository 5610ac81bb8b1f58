import assert from 'node:assert/strict';
import type { Bar, FeatureSnapshot } from '../../pipeline/contracts/index.js';
import { FeatureEngine, FeatureError } from '../../pipeline/features/index.js';
import type { FeatureKind, FeatureWindowSpec } from '../../pipeline/features/index.js';

// 2025-10-24T14:02:00Z, aligned to 2 s bars.
const T0 = Date.UTC(2025, 9, 24, 14, 2, 0);
const INTERVAL_MS = 2000;
const DEFAULT_WINDOWS: readonly FeatureWindowSpec[] = [
  { name: 'vwap_1m', horizon: '60s' },
  { name: 'ret_30s', horizon: '30s' },
  { name: 'vol_5m', horizon: '300s' },
];

// ---------------------------------------------------------------------------------------------
// Deterministic random data

/** xorshift32: a tiny seeded generator in [0, 1), plenty for test data. */
function prng(seed: number): () => number {
  let x = seed | 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4_294_967_296;
  };
}

/** Standard normal by Box–Muller. */
function normal(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

interface WalkOptions {
  readonly seed: number;
  readonly n: number;
  readonly symbol?: string;
  readonly provider?: string;
  readonly interval?: string;
  readonly intervalMs?: number;
  readonly startMs?: number;
  /** Added to every price, e.g. 1e6. */
  readonly offset?: number;
  readonly sigma?: number;
  /** Chance of 1–3 missing bars before a bar. */
  readonly skipProbability?: number;
  /** Chance of a gap of `resetGapMs` before a bar. */
  readonly resetProbability?: number;
  readonly resetGapMs?: number;
  readonly zeroVolumeProbability?: number;
  /** Chance of a ±20 % jump. */
  readonly spikeProbability?: number;
}

/** A log-normal random walk of bars with optional missing bars, long gaps, zero volumes and jumps. */
function randomBars(options: WalkOptions): Bar[] {
  const random = prng(options.seed);
  const intervalMs = options.intervalMs ?? INTERVAL_MS;
  const sigma = options.sigma ?? 1e-3;
  const offset = options.offset ?? 0;
  const bars: Bar[] = [];
  let tsMs = options.startMs ?? T0;
  let logPrice = 0;
  for (let i = 0; i < options.n; i++) {
    if (i > 0) {
      tsMs += intervalMs;
      if (random() < (options.skipProbability ?? 0)) tsMs += intervalMs * (1 + Math.floor(random() * 3));
      if (random() < (options.resetProbability ?? 0)) tsMs += options.resetGapMs ?? 0;
    }
    logPrice += sigma * normal(random);
    if (random() < (options.spikeProbability ?? 0)) logPrice += random() < 0.5 ? -0.2 : 0.2;
    const close = offset + 100 * Math.exp(logPrice);
    const spread = 100 * sigma * Math.abs(normal(random));
    const volume = random() < (options.zeroVolumeProbability ?? 0) ? 0 : random() < 0.5 ? Math.floor(1 + 1000 * random()) : 50 * random();
    bars.push({
      provider: options.provider ?? 'synthetic',
      symbol: options.symbol ?? 'SPY',
      interval: options.interval ?? '2s',
      tsMs,
      open: close,
      high: close + spread * random(),
      low: close - spread * random(),
      close,
      volume,
      trades: 1 + Math.floor(random() * 20),
    });
  }
  return bars;
}

/** Contiguous bars with the given closes (high = low = close) and volumes (default 1). */
function barsFromCloses(closes: readonly number[], volumes?: readonly number[], startMs = T0): Bar[] {
  return closes.map((close, i) => ({
    provider: 'synthetic',
    symbol: 'SPY',
    interval: '2s',
    tsMs: startMs + i * INTERVAL_MS,
    open: close,
    high: close,
    low: close,
    close,
    volume: volumes?.[i] ?? 1,
    trades: 1,
  }));
}

// ---------------------------------------------------------------------------------------------
// Brute-force reference: every value recomputed from scratch over the bars of its window.

/** One expected value: a time feature over `horizonMs`, RSI over `period`, or the bar's own price/volume. */
interface Slot {
  readonly name: string;
  readonly kind: FeatureKind | 'price' | 'volume';
  readonly horizonMs?: number;
  readonly period?: number;
}

const typical = (bar: Bar): number => (bar.high + bar.low + bar.close) / 3;
/** ln(b / a), evaluated as log1p of the relative change so tiny moves keep their precision. */
const logReturn = (a: number, b: number): number => Math.log1p((b - a) / a);

/** Biased central moments m₂, m₃, m₄ by two passes. */
function centralMoments(xs: readonly number[]): { mean: number; m2: number; m3: number; m4: number; meanSquare: number } {
  const n = xs.length;
  let sum = 0;
  let sumSquares = 0;
  for (const x of xs) {
    sum += x;
    sumSquares += x * x;
  }
  const mean = sum / n;
  let m2 = 0;
  let m3 = 0;
  let m4 = 0;
  for (const x of xs) {
    const d = x - mean;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  return { mean, m2: m2 / n, m3: m3 / n, m4: m4 / n, meanSquare: sumSquares / n };
}

/** The variance counts as zero below 1e-12 of the mean square (the engine's documented rule). */
const zeroVariance = (m: { m2: number; meanSquare: number }): boolean => m.m2 <= 1e-12 * m.meanSquare;

/** pandas `rolling(n).skew()`: G₁ = sqrt(n(n−1))/(n−2) · m₃/m₂^{3/2}. */
function pandasSkew(xs: readonly number[]): number | null {
  const n = xs.length;
  if (n < 3) return null;
  const m = centralMoments(xs);
  if (zeroVariance(m)) return null;
  return (Math.sqrt(n * (n - 1)) / (n - 2)) * (m.m3 / Math.pow(m.m2, 1.5));
}

/** pandas `rolling(n).kurt()`: G₂ = ((n+1)·g₂ + 6)(n−1)/((n−2)(n−3)), g₂ = m₄/m₂² − 3. */
function pandasKurt(xs: readonly number[]): number | null {
  const n = xs.length;
  if (n < 4) return null;
  const m = centralMoments(xs);
  if (zeroVariance(m)) return null;
  const g2 = m.m4 / (m.m2 * m.m2) - 3;
  return (((n + 1) * g2 + 6) * (n - 1)) / ((n - 2) * (n - 3));
}

/** Sample standard deviation, ddof = 1. */
function sampleStd(xs: readonly number[]): number | null {
  const n = xs.length;
  if (n < 2) return null;
  const m = centralMoments(xs);
  if (zeroVariance(m)) return 0;
  let sum = 0;
  for (const x of xs) sum += (x - m.mean) ** 2;
  return Math.sqrt(sum / (n - 1));
}

/** VWAP, summed as deviations from the first typical price (the same quantity, without cancellation). */
function bruteVwap(window: readonly Bar[]): number | null {
  const reference = typical(window[0]);
  let volume = 0;
  let weighted = 0;
  for (const bar of window) {
    volume += bar.volume;
    weighted += bar.volume * (typical(bar) - reference);
  }
  return volume === 0 ? null : reference + weighted / volume;
}

/** Wilder's RSI after every close, written out directly: seed with the simple mean, then smooth. */
function directWilderRsi(closes: readonly number[], period: number): (number | null)[] {
  const gains = closes.slice(1).map((c, i) => Math.max(c - closes[i], 0));
  const losses = closes.slice(1).map((c, i) => Math.max(closes[i] - c, 0));
  const out: (number | null)[] = closes.map(() => null);
  if (gains.length < period) return out;
  const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  let avgGain = mean(gains.slice(0, period));
  let avgLoss = mean(losses.slice(0, period));
  const rsi = (): number => (avgLoss === 0 ? (avgGain === 0 ? 50 : 100) : 100 - 100 / (1 + avgGain / avgLoss));
  out[period] = rsi();
  for (let k = period; k < gains.length; k++) {
    avgGain = (avgGain * (period - 1) + gains[k]) / period;
    avgLoss = (avgLoss * (period - 1) + losses[k]) / period;
    out[k + 1] = rsi();
  }
  return out;
}

/**
 * Expected values after every bar of one series: a run restarts after a gap > `maxGapMs`; a time
 * window at bar start t holds the run's bars in (t − H, t] and is full once the run's first start
 * is ≤ t − H + interval.
 */
function expectedValues(bars: readonly Bar[], slots: readonly Slot[], maxGapMs: number, intervalMs = INTERVAL_MS): Record<string, number | null>[] {
  const rsi = new Map<number, (number | null)[]>();
  const runStarts: number[] = [];
  let runStart = 0;
  for (let i = 0; i < bars.length; i++) {
    if (i > 0 && bars[i].tsMs - bars[i - 1].tsMs > maxGapMs) runStart = i;
    runStarts.push(runStart);
  }
  for (const period of new Set(slots.flatMap((s) => (s.period === undefined ? [] : [s.period])))) {
    const series: (number | null)[] = [];
    for (let start = 0; start < bars.length;) {
      let end = start + 1;
      while (end < bars.length && runStarts[end] === start) end++;
      series.push(
        ...directWilderRsi(
          bars.slice(start, end).map((b) => b.close),
          period,
        ),
      );
      start = end;
    }
    rsi.set(period, series);
  }

  return bars.map((bar, i) => {
    const run = runStarts[i];
    const since = bars[run].tsMs;
    const values: Record<string, number | null> = {};
    for (const slot of slots) {
      if (slot.kind === 'price') values[slot.name] = bar.close;
      else if (slot.kind === 'volume') values[slot.name] = bar.volume;
      else if (slot.kind === 'rsi') values[slot.name] = rsi.get(slot.period!)![i]!;
      else {
        const horizonMs = slot.horizonMs!;
        let first = i;
        while (first > run && bars[first - 1].tsMs > bar.tsMs - horizonMs) first--;
        const window = bars.slice(first, i + 1);
        const returns = window.slice(1).map((b, j) => logReturn(window[j].close, b.close));
        const oldest = window[0].close;
        const full = since <= bar.tsMs - horizonMs + intervalMs;
        const value = {
          vwap: () => bruteVwap(window),
          returns: () => (window.length < 2 ? null : Math.log(bar.close / oldest)),
          momentum: () => (window.length < 2 ? null : bar.close / oldest - 1),
          volatility: () => sampleStd(returns),
          skewness: () => pandasSkew(returns),
          kurtosis: () => pandasKurt(returns),
        }[slot.kind];
        values[slot.name] = full ? value() : null;
      }
    }
    return values;
  });
}

/** Spread of typical prices over a time window ending at `bar`, the scale of VWAP's rounding. */
function typicalSpread(bars: readonly Bar[], i: number, horizonMs: number): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (let j = i; j >= 0 && bars[j].tsMs > bars[i].tsMs - horizonMs; j--) {
    lo = Math.min(lo, typical(bars[j]));
    hi = Math.max(hi, typical(bars[j]));
  }
  return hi - lo;
}

/** Compares one value with its tolerance: relative 1e-9 with an absolute floor suited to the kind. */
function assertValue(got: number | null | undefined, want: number | null, slot: Slot, where: string, scale = 0): void {
  if (want === null || got === null || got === undefined) {
    assert.equal(got, want, `${where}: ${slot.name}`);
    return;
  }
  let tolerance: number;
  switch (slot.kind) {
    case 'vwap':
      // Relative to the prices' spread in the window, not to the price level.
      tolerance = 1e-9 * scale + 1e-15 * Math.abs(want);
      break;
    case 'skewness':
    case 'kurtosis':
    case 'rsi':
      tolerance = 1e-9 * Math.max(1, Math.abs(want));
      break;
    case 'price':
    case 'volume':
      tolerance = 0;
      break;
    default:
      tolerance = 1e-12 + 1e-9 * Math.abs(want);
  }
  assert.ok(Math.abs(got - want) <= tolerance, `${where}: ${slot.name} = ${got}, brute force ${want} (tolerance ${tolerance})`);
}

/** Feeds `bars` through `engine` and checks every value of every snapshot against brute force. */
function checkAgainstBruteForce(
  engine: FeatureEngine,
  bars: readonly Bar[],
  slots: readonly Slot[],
  maxGapMs: number,
  intervalMs = INTERVAL_MS,
): FeatureSnapshot[] {
  const expected = expectedValues(bars, slots, maxGapMs, intervalMs);
  assert.deepEqual(
    engine.valueNames,
    slots.map((s) => s.name),
  );
  return bars.map((bar, i) => {
    const snapshot = engine.update(bar);
    assert.equal(snapshot.tsMs, bar.tsMs);
    for (const slot of slots) {
      const scale = slot.kind === 'vwap' ? typicalSpread(bars, i, slot.horizonMs!) : 0;
      assertValue(snapshot.values[slot.name], expected[i][slot.name], slot, `${bar.symbol} bar ${i}`, scale);
    }
    return snapshot;
  });
}

/** What the default windows resolve to, written out (the canonical names included). */
const DEFAULT_SLOTS: readonly Slot[] = [
  { name: 'vwap_1m', kind: 'vwap', horizonMs: 60_000 },
  { name: 'ret_30s', kind: 'returns', horizonMs: 30_000 },
  { name: 'vol_5m', kind: 'volatility', horizonMs: 300_000 },
  { name: 'vwap', kind: 'vwap', horizonMs: 60_000 },
  { name: 'returns', kind: 'returns', horizonMs: 30_000 },
  { name: 'volatility', kind: 'volatility', horizonMs: 300_000 },
  { name: 'momentum', kind: 'momentum', horizonMs: 30_000 },
  { name: 'skewness', kind: 'skewness', horizonMs: 300_000 },
  { name: 'kurtosis', kind: 'kurtosis', horizonMs: 300_000 },
  { name: 'rsi', kind: 'rsi', period: 14 },
  { name: 'price', kind: 'price' },
  { name: 'volume', kind: 'volume' },
];

/** Every kind, explicit kinds, horizons that are not a multiple of the interval, a second RSI. */
const ALL_KINDS_WINDOWS: readonly FeatureWindowSpec[] = [
  ...DEFAULT_WINDOWS,
  { name: 'mom_20s', horizon: '20s' },
  { name: 'skew_40s', horizon: '40s' },
  { name: 'kurt_1m', horizon: '1m' },
  { name: 'fast_vol', horizon: '7s', kind: 'volatility' },
  { name: 'fast_kurt', horizon: '9000', kind: 'kurtosis' },
  { name: 'rsi_5', period: 5 },
];
const ALL_KINDS_SLOTS: readonly Slot[] = [
  ...DEFAULT_SLOTS.slice(0, 3),
  { name: 'mom_20s', kind: 'momentum', horizonMs: 20_000 },
  { name: 'skew_40s', kind: 'skewness', horizonMs: 40_000 },
  { name: 'kurt_1m', kind: 'kurtosis', horizonMs: 60_000 },
  { name: 'fast_vol', kind: 'volatility', horizonMs: 7000 },
  { name: 'fast_kurt', kind: 'kurtosis', horizonMs: 9000 },
  { name: 'rsi_5', kind: 'rsi', period: 5 },
  { name: 'vwap', kind: 'vwap', horizonMs: 60_000 },
  { name: 'returns', kind: 'returns', horizonMs: 30_000 },
  { name: 'volatility', kind: 'volatility', horizonMs: 300_000 },
  { name: 'momentum', kind: 'momentum', horizonMs: 20_000 },
  { name: 'skewness', kind: 'skewness', horizonMs: 40_000 },
  { name: 'kurtosis', kind: 'kurtosis', horizonMs: 60_000 },
  { name: 'rsi', kind: 'rsi', period: 5 },
  { name: 'price', kind: 'price' },
  { name: 'volume', kind: 'volume' },
];

// ---------------------------------------------------------------------------------------------

describe('FeatureEngine', () => {
  it('matches brute force at every step for every kind, on three interleaved random symbols', function () {
    this.timeout(60_000);
    const maxGapMs = 120_000;
    const engine = new FeatureEngine({ windows: ALL_KINDS_WINDOWS, maxGapMs });
    const perSymbol = ['SPY', 'AAPL', 'MSFT'].map((symbol, k) =>
      randomBars({
        seed: 11 + k,
        n: 2500,
        symbol,
        skipProbability: 0.05,
        resetProbability: 0.002,
        resetGapMs: maxGapMs,
        zeroVolumeProbability: 0.1,
        spikeProbability: 0.002,
      }),
    );
    const expected = perSymbol.map((bars) => expectedValues(bars, ALL_KINDS_SLOTS, maxGapMs));
    let checked = 0;
    let nonNull = 0;
    for (let i = 0; i < 2500; i++) {
      for (let k = 0; k < perSymbol.length; k++) {
        const bars = perSymbol[k];
        const snapshot = engine.update(bars[i]);
        assert.deepEqual(
          Object.keys(snapshot.values),
          ALL_KINDS_SLOTS.map((s) => s.name),
        );
        for (const slot of ALL_KINDS_SLOTS) {
          const want = expected[k][i][slot.name]!;
          const scale = slot.kind === 'vwap' ? typicalSpread(bars, i, slot.horizonMs!) : 0;
          assertValue(snapshot.values[slot.name], want, slot, `${bars[i].symbol} bar ${i}`, scale);
          checked++;
          if (want !== null) nonNull++;
        }
      }
    }
    // The data really exercise the windows: most values are past warm-up.
    assert.ok(nonNull > checked * 0.6, `${nonNull} of ${checked} values non-null`);
  });

  it('reports values equal to scipy/pandas on a hand-made window', () => {
    // scipy.stats.skew(r, bias=False), kurtosis(r, bias=False) and np.std(r, ddof=1) of these
    // closes' log returns, and Σ c·v / Σ v (high = low = close, so the typical price is the close).
    const closes = [100, 101, 99.5, 102, 101.2, 103.9, 103.1, 100.4];
    const volumes = [5, 0, 7, 3, 0, 2, 9, 4];
    const engine = new FeatureEngine({
      windows: [
        { name: 'vwap_16s', horizon: '16s' },
        { name: 'vol_16s', horizon: '16s' },
        { name: 'skew_16s', horizon: '16s' },
        { name: 'kurt_16s', horizon: '16s' },
      ],
    });
    let snapshot: FeatureSnapshot | undefined;
    for (const bar of barsFromCloses(closes, volumes)) snapshot = engine.update(bar);
    const values = snapshot!.values;
    assert.ok(Math.abs(values['vwap_16s']! - 101.32666666666667) < 1e-12);
    assert.ok(Math.abs(values['vol_16s']! - 0.020230575710137366) < 1e-15);
    assert.ok(Math.abs(values['skew_16s']! - 0.20655237154556394) < 1e-12);
    assert.ok(Math.abs(values['kurt_16s']! - -1.4952332696037063) < 1e-12);
    assert.ok(Math.abs(values['returns']! - Math.log(100.4 / 100)) < 1e-15);
    assert.ok(Math.abs(values['momentum']! - (100.4 / 100 - 1)) < 1e-15);
  });

  it('keeps values null exactly until each window is full', () => {
    const engine = new FeatureEngine({
      windows: [...DEFAULT_WINDOWS, { name: 'fast_vol', horizon: '7s', kind: 'volatility' }, { name: 'kurt_9s', horizon: '9s' }],
    });
    // First non-null bar index: the run must cover the first bar slot of (t − H, t].
    const firstFull: Record<string, number> = {
      vwap_1m: 29, // 30 bars in 60 s
      ret_30s: 14,
      vol_5m: 149,
      fast_vol: 3, // (t − 7 s, t] holds 4 bars of 2 s: 3 returns
      kurt_9s: 4, // 5 bars, 4 returns: the least kurtosis takes
      vwap: 29,
      returns: 14,
      momentum: 14,
      volatility: 149,
      skewness: 149,
      kurtosis: 4, // the first kurtosis window, kurt_9s
      rsi: 14, // 14 changes
      price: 0,
      volume: 0,
    };
    const bars = randomBars({ seed: 5, n: 200 });
    bars.forEach((bar, i) => {
      const snapshot = engine.update(bar);
      for (const [name, first] of Object.entries(firstFull)) {
        assert.equal(snapshot.values[name] === null, i < first, `bar ${i}: ${name} = ${snapshot.values[name]}`);
      }
    });
  });

  it('resets every window after a gap longer than maxGapMs, and only then', () => {
    const run = (gapMs: number, maxGapMs?: number): { after: FeatureSnapshot[]; fresh: FeatureSnapshot[] } => {
      const engine = new FeatureEngine({ windows: DEFAULT_WINDOWS, maxGapMs });
      const before = randomBars({ seed: 8, n: 200 });
      const afterBars = randomBars({ seed: 9, n: 200, startMs: before.at(-1)!.tsMs + gapMs });
      for (const bar of before) engine.update(bar);
      const fresh = new FeatureEngine({ windows: DEFAULT_WINDOWS, maxGapMs });
      return { after: afterBars.map((bar) => engine.update(bar)), fresh: afterBars.map((bar) => fresh.update(bar)) };
    };
    // Default maxGapMs is the longest horizon (300 s): a 302 s gap resets, ...
    const reset = run(302_000);
    assert.deepEqual(reset.after, reset.fresh);
    assert.equal(reset.after[0].values['rsi'], null);
    // ... a 300 s gap does not (RSI carries on; the 60 s window holds just the new bar, but is full).
    const kept = run(300_000);
    assert.notEqual(kept.after[0].values['rsi'], null);
    assert.notEqual(kept.after[0].values['vwap_1m'], null);
    // An explicit maxGapMs.
    const short = run(12_000, 10_000);
    assert.deepEqual(short.after, short.fresh);
  });

  it('answers a re-delivered bar with its original snapshot and changes nothing', () => {
    const bars = randomBars({ seed: 21, n: 400, skipProbability: 0.1 });
    const engine = new FeatureEngine({ windows: ALL_KINDS_WINDOWS });
    const clean = new FeatureEngine({ windows: ALL_KINDS_WINDOWS });
    const originals: FeatureSnapshot[] = [];
    const random = prng(3);
    bars.forEach((bar, i) => {
      const snapshot = engine.update(bar);
      assert.deepEqual(snapshot, clean.update(bar));
      assert.ok(Object.isFrozen(snapshot) && Object.isFrozen(snapshot.values));
      originals.push(snapshot);
      // Re-deliver the same bar, and some recent ones, as after a crash.
      assert.equal(engine.update({ ...bar }), snapshot);
      const back = Math.floor(random() * 20);
      if (i >= back) assert.equal(engine.update(bars[i - back]), originals[i - back]);
    });
    // Older than the last 32 snapshots (the default redeliveryDepth): the newest snapshot,
    // recognisable by its tsMs.
    const latest = originals.at(-1)!;
    assert.equal(engine.update(bars.at(-32)!), originals.at(-32));
    assert.equal(engine.update(bars.at(-33)!), latest);
    assert.equal(engine.update(bars[0]), latest);
    assert.notEqual(latest.tsMs, bars[0].tsMs);
    // A start that never had a bar, between recent bars: also the newest snapshot.
    const missing = bars.findIndex((b, i) => i > 380 && b.tsMs - bars[i - 1].tsMs > INTERVAL_MS);
    assert.equal(engine.update({ ...bars[missing], tsMs: bars[missing].tsMs - INTERVAL_MS }), latest);
    // State untouched: the next bar gives what a never-re-delivered engine gives.
    const next = randomBars({ seed: 22, n: 1, startMs: latest.tsMs + INTERVAL_MS })[0];
    assert.deepEqual(engine.update(next), clean.update(next));
  });

  it('answers re-delivered bars from before a reset, within redeliveryDepth', () => {
    const engine = new FeatureEngine({ windows: DEFAULT_WINDOWS, redeliveryDepth: 4 });
    const before = randomBars({ seed: 23, n: 50 });
    const after = randomBars({ seed: 24, n: 2, startMs: before.at(-1)!.tsMs + 600_000 });
    const originals = [...before, ...after].map((bar) => engine.update(bar));
    assert.equal(originals[50].values['rsi'], null); // the 600 s gap did reset the series
    assert.equal(engine.update(before.at(-1)!), originals[49]); // 3rd newest, across the reset
    assert.equal(engine.update(before.at(-2)!), originals[48]);
    assert.equal(engine.update(before.at(-3)!), originals[51]); // 5th newest: gone
  });

  it('stays exact on prices offset by 1e6', function () {
    this.timeout(30_000);
    const bars = randomBars({ seed: 31, n: 3000, offset: 1e6, sigma: 1e-3, zeroVolumeProbability: 0.05, skipProbability: 0.02 });
    const snapshots = checkAgainstBruteForce(new FeatureEngine({ windows: DEFAULT_WINDOWS }), bars, DEFAULT_SLOTS, 300_000);
    // The moves are ~0.1 on 1e6: 1-bar log returns of ~1e-7, still resolved.
    const last = snapshots.at(-1)!.values;
    assert.ok(last['volatility']! > 1e-8 && last['volatility']! < 1e-6, String(last['volatility']));
  });

  it('does not drift over 100k bars with jumps', function () {
    this.timeout(120_000);
    const bars = randomBars({ seed: 41, n: 100_000, sigma: 2e-3, spikeProbability: 0.001, zeroVolumeProbability: 0.05 });
    const engine = new FeatureEngine({ windows: [...DEFAULT_WINDOWS, { name: 'kurt_1m', horizon: '60s' }] });
    const slots: Slot[] = [...DEFAULT_SLOTS.slice(0, 3), { name: 'kurt_1m', kind: 'kurtosis', horizonMs: 60_000 }, ...DEFAULT_SLOTS.slice(3)];
    slots.splice(
      slots.findIndex((s) => s.name === 'kurtosis'),
      1,
      { name: 'kurtosis', kind: 'kurtosis', horizonMs: 60_000 },
    );
    checkAgainstBruteForce(engine, bars, slots, 300_000);
  });

  it('holds every bar of a dense long window (2000 bars of 100 ms in 200 s)', function () {
    this.timeout(60_000);
    const bars = randomBars({ seed: 45, n: 3000, interval: '100ms', intervalMs: 100, skipProbability: 0.01 });
    const engine = new FeatureEngine({
      windows: [
        { name: 'vwap_200s', horizon: '200s' },
        { name: 'vol_200s', horizon: '200s' },
        { name: 'kurt_200s', horizon: '200s' },
      ],
    });
    const slots: Slot[] = [
      { name: 'vwap_200s', kind: 'vwap', horizonMs: 200_000 },
      { name: 'vol_200s', kind: 'volatility', horizonMs: 200_000 },
      { name: 'kurt_200s', kind: 'kurtosis', horizonMs: 200_000 },
      { name: 'vwap', kind: 'vwap', horizonMs: 200_000 },
      // No returns/momentum/skewness windows: returns and momentum take the first time window,
      // skewness the first volatility window.
      { name: 'returns', kind: 'returns', horizonMs: 200_000 },
      { name: 'volatility', kind: 'volatility', horizonMs: 200_000 },
      { name: 'momentum', kind: 'momentum', horizonMs: 200_000 },
      { name: 'skewness', kind: 'skewness', horizonMs: 200_000 },
      { name: 'kurtosis', kind: 'kurtosis', horizonMs: 200_000 },
      { name: 'rsi', kind: 'rsi', period: 14 },
      { name: 'price', kind: 'price' },
      { name: 'volume', kind: 'volume' },
    ];
    const snapshots = checkAgainstBruteForce(engine, bars, slots, 200_000, 100);
    assert.notEqual(snapshots.at(-1)!.values['kurtosis'], null);
  });

  it('computes RSI as Wilder does, with 100 for pure gains and 50 for a flat price', () => {
    const closes = randomBars({ seed: 51, n: 300, sigma: 5e-3 }).map((b) => b.close);
    for (const period of [1, 2, 14]) {
      const engine = new FeatureEngine({ windows: DEFAULT_WINDOWS, rsiPeriod: period });
      const want = directWilderRsi(closes, period);
      barsFromCloses(closes).forEach((bar, i) => {
        const got = engine.update(bar).values['rsi'];
        assertValue(got, want[i], { name: 'rsi', kind: 'rsi' }, `period ${period} bar ${i}`);
      });
      assert.equal(engine.windows['rsi'], `${period} bars`);
    }
    const last = (closes: number[]): number | null | undefined => {
      const engine = new FeatureEngine({ windows: DEFAULT_WINDOWS, rsiPeriod: 3 });
      return barsFromCloses(closes)
        .map((bar) => engine.update(bar))
        .at(-1)!.values['rsi'];
    };
    assert.equal(last([1, 2, 3, 4, 5]), 100);
    assert.equal(last([7, 7, 7, 7, 7]), 50);
    assert.equal(last([5, 4, 3, 2, 1]), 0);
    assert.equal(last([1, 2, 3]), null);
  });

  it('treats a zero variance as such: volatility 0, skewness and kurtosis null', () => {
    const windows = [
      { name: 'vol_20s', horizon: '20s' },
      { name: 'skew_20s', horizon: '20s' },
      { name: 'kurt_20s', horizon: '20s' },
    ];
    // A flat price (returns exactly 0) after a noisy stretch, and a constant growth rate.
    const noisy = randomBars({ seed: 61, n: 40 }).map((b) => b.close);
    const flat = [...noisy, ...new Array<number>(30).fill(noisy.at(-1)!)];
    const growth = Array.from({ length: 40 }, (_, i) => 100 * Math.pow(1.001, i));
    for (const closes of [flat, growth]) {
      const engine = new FeatureEngine({ windows });
      const values = barsFromCloses(closes)
        .map((bar) => engine.update(bar))
        .at(-1)!.values;
      assert.equal(values['vol_20s'], 0);
      assert.equal(values['skew_20s'], null);
      assert.equal(values['kurt_20s'], null);
    }
  });

  it('reports a null vwap while every bar in its window has zero volume', () => {
    const volumes = [...new Array<number>(40).fill(3), ...new Array<number>(40).fill(0), 5, ...new Array<number>(40).fill(0)];
    const closes = volumes.map((_, i) => 100 + i);
    const engine = new FeatureEngine({ windows: DEFAULT_WINDOWS });
    const vwaps = barsFromCloses(closes, volumes).map((bar) => engine.update(bar).values['vwap_1m']);
    const want = expectedValues(barsFromCloses(closes, volumes), DEFAULT_SLOTS.slice(0, 1), 300_000).map((v) => v['vwap_1m']);
    assert.deepEqual(vwaps, want);
    assert.equal(vwaps[69], null); // bars 40–69 all without volume
    assert.equal(vwaps[80], 180); // only bar 80 has volume
    assert.equal(vwaps[109], 180);
    assert.equal(vwaps[110], null);
  });

  it('keeps series of different symbols, providers and intervals independent', () => {
    const series = [
      randomBars({ seed: 71, n: 300, symbol: 'SPY' }),
      randomBars({ seed: 72, n: 300, symbol: 'AAPL', skipProbability: 0.2 }),
      randomBars({ seed: 73, n: 300, symbol: 'SPY', provider: 'ibkr_primary' }),
      randomBars({ seed: 74, n: 600, symbol: 'SPY', interval: '1s', intervalMs: 1000 }),
    ];
    const shared = new FeatureEngine({ windows: ALL_KINDS_WINDOWS });
    const alone = series.map(() => new FeatureEngine({ windows: ALL_KINDS_WINDOWS }));
    for (let i = 0; i < 600; i++) {
      series.forEach((bars, k) => {
        const bar = bars[i];
        if (bar !== undefined) assert.deepEqual(shared.update(bar), alone[k].update(bar));
      });
    }
    assert.equal(shared.size, 4);
  });

  it('drops the least recently updated series past maxSymbols', () => {
    const engine = new FeatureEngine({ windows: DEFAULT_WINDOWS, maxSymbols: 2 });
    const a = randomBars({ seed: 81, n: 40, symbol: 'A' });
    const b = randomBars({ seed: 82, n: 40, symbol: 'B' });
    const c = randomBars({ seed: 83, n: 40, symbol: 'C' });
    for (let i = 0; i < 20; i++) {
      engine.update(a[i]);
      engine.update(b[i]);
    }
    engine.update(a[20]); // B is now the stalest
    engine.update(c[0]);
    assert.equal(engine.size, 2);
    assert.notEqual(engine.update(a[21]).values['rsi'], null); // A kept its state; C is now the stalest
    // B comes back with no history, warming up like a new series, and pushes C out.
    const fresh = new FeatureEngine({ windows: DEFAULT_WINDOWS });
    assert.deepEqual(engine.update(b[20]).values, fresh.update(b[20]).values);
    assert.notEqual(engine.update(a[22]).values['rsi'], null);
    assert.equal(engine.update(c[1]).values['rsi'], null);
    assert.equal(engine.size, 2);
  });

  it('fills the snapshot envelope: ts, price, windows', () => {
    const engine = new FeatureEngine({ windows: DEFAULT_WINDOWS });
    const bar = barsFromCloses([425.15], [1200], T0 + 2000)[0];
    const snapshot = engine.update(bar);
    assert.deepEqual(
      { ...snapshot, values: undefined },
      {
        ver: 1,
        provider: 'synthetic',
        symbol: 'SPY',
        interval: '2s',
        ts: '2025-10-24T14:02:02Z',
        tsMs: T0 + 2000,
        price: 425.15,
        values: undefined,
        windows: {
          vwap_1m: '60s',
          ret_30s: '30s',
          vol_5m: '300s',
          vwap: '60s',
          returns: '30s',
          volatility: '300s',
          momentum: '30s',
          skewness: '300s',
          kurtosis: '300s',
          rsi: '14 bars',
          price: '1 bar',
          volume: '1 bar',
        },
      },
    );
    assert.equal(snapshot.values['price'], 425.15);
    assert.equal(snapshot.values['volume'], 1200);
    const subSecond = engine.update({ ...bar, interval: '500ms', tsMs: T0 + 2500 });
    assert.equal(subSecond.ts, '2025-10-24T14:02:02.500Z');
    // Any start, across midnight and with odd milliseconds, formats like Date#toISOString.
    const random = prng(7);
    let tsMs = Date.UTC(2025, 11, 31, 23, 58, 0);
    for (let i = 0; i < 2000; i++) {
      tsMs += 1 + Math.floor(random() * (i % 2 === 0 ? 1000 : 100_000));
      const want = new Date(tsMs).toISOString().replace('.000Z', 'Z');
      assert.equal(engine.update({ ...bar, interval: '1ms', tsMs }).ts, want);
    }
  });

  it('rejects bad windows and options with a code and the offending name', () => {
    const rejects = (options: ConstructorParameters<typeof FeatureEngine>[0], code: string, pattern: RegExp): void => {
      assert.throws(
        () => new FeatureEngine(options),
        (err: unknown) => {
          assert.ok(err instanceof FeatureError);
          assert.equal(err.code, code);
          assert.match(err.message, pattern);
          return true;
        },
      );
    };
    rejects({ windows: [{ name: 'volume_1m', horizon: '60s' }] }, 'FEATURE_WINDOW_INVALID', /"volume_1m".*kind/);
    rejects({ windows: [{ name: 'spread', horizon: '60s' }] }, 'FEATURE_WINDOW_INVALID', /"spread"/);
    rejects({ windows: [{ name: 'vwap_1m', horizon: 'a minute' }] }, 'FEATURE_WINDOW_INVALID', /"vwap_1m".*horizon/);
    rejects({ windows: [{ name: 'vwap_1m' }] }, 'FEATURE_WINDOW_INVALID', /"vwap_1m".*horizon/);
    rejects({ windows: [{ name: 'vwap_1m', horizon: '0s' }] }, 'FEATURE_WINDOW_INVALID', /"vwap_1m".*horizon/);
    rejects({ windows: [...DEFAULT_WINDOWS, { name: 'vwap_1m', horizon: '30s' }] }, 'FEATURE_WINDOW_INVALID', /"vwap_1m".*twice/);
    rejects({ windows: [{ name: 'price', horizon: '30s', kind: 'vwap' }] }, 'FEATURE_WINDOW_INVALID', /"price".*reserved/);
    rejects({ windows: [{ name: 'vwap', horizon: '30s', kind: 'returns' }] }, 'FEATURE_WINDOW_INVALID', /"vwap"/);
    rejects({ windows: [{ name: 'ret_30s', horizon: '30s', period: 3 }] }, 'FEATURE_WINDOW_INVALID', /"ret_30s".*period/);
    rejects({ windows: [{ name: 'rsi_x', period: 0 }] }, 'FEATURE_WINDOW_INVALID', /"rsi_x".*period/);
    rejects({ windows: [{ name: 'rsi_9', period: 9 }] }, 'FEATURE_WINDOW_INVALID', /at least one time window/);
    rejects({ windows: DEFAULT_WINDOWS, rsiPeriod: 2.5 }, 'FEATURE_OPTION_INVALID', /rsiPeriod/);
    rejects({ windows: DEFAULT_WINDOWS, maxGapMs: 0 }, 'FEATURE_OPTION_INVALID', /maxGapMs/);
    rejects({ windows: DEFAULT_WINDOWS, maxSymbols: 0 }, 'FEATURE_OPTION_INVALID', /maxSymbols/);
    rejects({ windows: DEFAULT_WINDOWS, redeliveryDepth: 0 }, 'FEATURE_OPTION_INVALID', /redeliveryDepth/);

    const engine = new FeatureEngine({ windows: DEFAULT_WINDOWS, maxGapMs: 1000 });
    assert.throws(
      () => engine.update(barsFromCloses([100])[0]),
      (err: unknown) => err instanceof FeatureError && err.code === 'FEATURE_OPTION_INVALID',
    );
  });

  it('resolves kinds from name prefixes, and canonical names from the first window of each kind', () => {
    const engine = new FeatureEngine({
      windows: [
        { name: 'returns_10s', horizon: '10s' },
        { name: 'momentum_4s', horizon: '4s' },
        { name: 'volatility_1m', horizon: '1m' },
        { name: 'skewness_30s', horizon: '30s' },
        { name: 'kurtosis_30s', horizon: '30s' },
        { name: 'RSI_3', period: 3 },
        { name: 'vwap', horizon: '20s' },
        { name: 'vwap_5s', horizon: '5s' },
      ],
    });
    assert.deepEqual(engine.windows, {
      returns_10s: '10s',
      momentum_4s: '4s',
      volatility_1m: '1m',
      skewness_30s: '30s',
      kurtosis_30s: '30s',
      RSI_3: '3 bars',
      vwap: '20s',
      vwap_5s: '5s',
      returns: '10s',
      volatility: '1m',
      momentum: '4s',
      skewness: '30s',
      kurtosis: '30s',
      rsi: '3 bars',
      price: '1 bar',
      volume: '1 bar',
    });
    // Kinds not configured borrow: vwap from the first time window, skewness/kurtosis from volatility.
    const borrowed = new FeatureEngine({
      windows: [
        { name: 'ret_8s', horizon: '8s' },
        { name: 'vol_12s', horizon: '12s' },
      ],
    });
    assert.deepEqual(
      [borrowed.windows['vwap'], borrowed.windows['momentum'], borrowed.windows['skewness'], borrowed.windows['kurtosis']],
      ['8s', '8s', '12s', '12s'],
    );
  });

  it('rejects an unusable bar without changing any state', () => {
    const engine = new FeatureEngine({ windows: DEFAULT_WINDOWS });
    const clean = new FeatureEngine({ windows: DEFAULT_WINDOWS });
    const bars = randomBars({ seed: 91, n: 60 });
    for (const bar of bars.slice(0, 40)) {
      engine.update(bar);
      clean.update(bar);
    }
    const next = bars[40];
    for (const bad of [{ close: 0 }, { close: Number.NaN }, { volume: -1 }, { high: Number.POSITIVE_INFINITY }, { interval: 'soon', symbol: 'NEW' }]) {
      assert.throws(
        () => engine.update({ ...next, ...bad }),
        (err: unknown) => err instanceof FeatureError && err.code === 'FEATURE_BAR_INVALID',
      );
    }
    for (const bar of bars.slice(40)) assert.deepEqual(engine.update(bar), clean.update(bar));
    assert.equal(engine.size, 1);
  });
});
