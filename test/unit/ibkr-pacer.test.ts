/**
 * The pacer on a manual clock: every grant time is recorded and checked against IB's rules by
 * counting here (not by asking the pacer), and the waits are the shortest the rules allow.
 */
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import type { IbkrPacingConfig } from '../../pipeline/config/index.js';
import type { HistoricalRequestKey } from '../../pipeline/producers/ibkr/index.js';
import { allocateLines, IB_PACING_LIMITS, isPacingViolation, Pacer } from '../../pipeline/producers/ibkr/index.js';
import { createMetrics } from '../../pipeline/telemetry/index.js';
import { ManualClock, settle } from '../helpers/manual-clock.js';

const IB = IB_PACING_LIMITS;
const MARGIN = 50;

/** Most grant times in any half-open window of `windowMs` (the rule "at most N in any W"). */
function densest(times: readonly number[], windowMs: number): number {
  let most = 0;
  for (let i = 0, j = 0; j < times.length; j++) {
    while (times[j] - times[i] >= windowMs) i++;
    most = Math.max(most, j - i + 1);
  }
  return most;
}

const key = (n: number, over: Partial<HistoricalRequestKey> = {}): HistoricalRequestKey => ({
  contract: 'SPY',
  exchange: 'SMART',
  whatToShow: 'TRADES',
  params: `end ${n}`,
  ...over,
});

describe('IBKR pacer (manual clock)', function () {
  let clock: ManualClock;
  let metrics: ReturnType<typeof createMetrics>;
  const pacer = (limits: Partial<IbkrPacingConfig> = {}) => new Pacer({ limits: { ...IB, ...limits }, clock, metrics, marginMs: MARGIN });

  beforeEach(() => {
    clock = new ManualClock();
    metrics = createMetrics(new Registry());
  });

  /** Starts `count` acquisitions at once and records when each is granted. */
  function grantTimes<T>(count: number, acquire: (i: number) => Promise<T>): { times: number[]; results: T[]; all: Promise<void> } {
    const times: number[] = [];
    const results: T[] = [];
    const all = Promise.all(
      Array.from({ length: count }, (_, i) =>
        acquire(i).then((r) => {
          times[i] = clock.now();
          results[i] = r;
        }),
      ),
    ).then(() => undefined);
    return { times, results, all };
  }

  it('messages: at most 50 in any second, granted in call order, the 51st as soon as the first leaves the window', async () => {
    const p = pacer();
    const run = grantTimes(130, () => p.acquire('contract_details'));
    await clock.advance(5000);
    await run.all;
    assert.equal(densest(run.times, 1000), 50);
    assert.deepEqual(
      run.times,
      [...run.times].sort((a, b) => a - b),
      'FIFO',
    );
    const t0 = run.times[0];
    assert.equal(run.times[49], t0, 'a burst of 50 goes at once');
    assert.equal(run.times[50], t0 + 1000 + MARGIN, 'the 51st waits for the first to leave the window (plus the margin)');
    assert.equal(run.times[129], t0 + 2 * (1000 + MARGIN));
    const json = await metrics.registry.getMetricsAsJSON();
    const requests = json.find((m) => m.name === 'ibkr_requests_total')!.values;
    assert.deepEqual(
      requests.map((v) => [v.labels.kind, v.value]),
      [['contract_details', 130]],
    );
    const waits = json.find((m) => m.name === 'ibkr_pacing_wait_seconds')!.values;
    const sum = waits.find((v) => (v as { metricName?: string }).metricName === 'ibkr_pacing_wait_seconds_sum')!.value;
    // 50 waited one window, 30 two.
    assert.equal(Math.round(sum * 1000), 50 * 1050 + 30 * 2100, 'time spent waiting is measured');
    assert.equal(p.stats.waitedMs, 50 * 1050 + 30 * 2100);
  });

  it('disabled (tests only): nothing waits, everything is counted', async () => {
    const p = pacer({ enabled: false });
    const run = grantTimes(200, () => p.acquire('current_time'));
    await clock.advance(0);
    await run.all;
    assert.equal(densest(run.times, 1000), 200);
    assert.equal(p.stats.granted, 200);
  });

  it('historical: an identical request waits 15 s; a different one does not', async () => {
    const p = pacer();
    const a = await p.acquireHistorical(key(1));
    a.release();
    const start = clock.now();
    const run = grantTimes(2, (i) => p.acquireHistorical(key(i === 0 ? 2 : 1)));
    await clock.advance(20_000);
    await run.all;
    assert.equal(run.times[0], start, 'a different request goes at once');
    assert.equal(run.times[1], start + 15_000 + MARGIN, 'the identical one 15 s after the first');
  });

  it('historical: the 6th request for one contract, exchange and tick type waits until the 1st is 2 s old; other tick types do not', async () => {
    const p = pacer();
    const run = grantTimes(12, (i) => p.acquireHistorical(key(i, i >= 10 ? { whatToShow: 'MIDPOINT' } : {})));
    await clock.advance(10_000);
    await run.all;
    for (const permit of run.results) permit.release();
    const t0 = run.times[0];
    // Queued in order: 5 at once, the 6th..10th one rule-window later, then the MIDPOINT ones.
    assert.deepEqual(
      run.times.slice(0, 10).map((t) => t - t0),
      [0, 0, 0, 0, 0, 2050, 2050, 2050, 2050, 2050],
    );
    assert.equal(densest(run.times.slice(0, 10), 2000), 5, 'never 6 within 2 s');
    assert.deepEqual(
      run.times.slice(10).map((t) => t - t0),
      [2050, 2050],
      'MIDPOINT waited only for its turn in the historical queue',
    );
  });

  it('historical: at most 60 in any 10 minutes, BID_ASK counting twice (a scaled-down window behaves the same)', async () => {
    const p = pacer({ historical_window_max: 6, historical_window_ms: 60_000 });
    // BID_ASK (2) on different contracts so the same-contract rule stays out of the way.
    const run = grantTimes(8, (i) => p.acquireHistorical(key(i, { contract: `C${i}`, whatToShow: i < 2 ? 'BID_ASK' : 'TRADES' })));
    await clock.advance(200_000);
    await run.all;
    for (const permit of run.results) permit.release();
    const t0 = run.times[0];
    // 2 + 2 + 1 + 1 = 6 at once; the other four when those leave the window together.
    assert.deepEqual(
      run.times.map((t) => t - t0),
      [0, 0, 0, 0, 60_050, 60_050, 60_050, 60_050],
    );
    const weights = run.times.map((t, i) => ({ t, w: i < 2 ? 2 : 1 }));
    for (const { t } of weights) {
      const inWindow = weights.filter((x) => x.t <= t && x.t > t - 60_000).reduce((n, x) => n + x.w, 0);
      assert.ok(inWindow <= 6, `at ${t - t0}: ${inWindow} in the window`);
    }
  });

  it('historical: at most 50 open; the 51st goes when one is released', async () => {
    const p = pacer({ historical_same_contract_max: 1000 });
    const run = grantTimes(51, (i) => p.acquireHistorical(key(i, { contract: `C${i}` })));
    await clock.advance(3000);
    assert.equal(run.times.filter((t) => t !== undefined).length, 50);
    assert.equal(p.openHistorical, 50);
    run.results[7].release();
    run.results[7].release(); // idempotent
    await clock.advance(0);
    await run.all;
    assert.equal(p.openHistorical, 50);
  });

  it('a historical request waiting for its window does not hold up other messages; an aborted wait leaves the queue', async () => {
    const p = pacer({ historical_window_max: 1, historical_window_ms: 60_000 });
    (await p.acquireHistorical(key(1))).release();
    const abort = new AbortController();
    const waiting = p.acquireHistorical(key(2), { signal: abort.signal });
    let cancelGranted = false;
    void p.acquire('cancel_tick_by_tick').then(() => (cancelGranted = true));
    await clock.advance(10);
    assert.ok(cancelGranted, 'the cancel went while the historical request waits');
    abort.abort(new Error('activity cancelled'));
    await assert.rejects(waiting, { name: 'AbortError' });
    await settle();
    assert.equal(clock.pending, 0, 'no timer left behind');
  });

  it('real-time bars share the long historical window', async () => {
    const p = pacer({ historical_window_max: 3, historical_window_ms: 60_000 });
    const run = grantTimes(4, (i) => (i < 2 ? p.acquireRealTimeBars() : p.acquireHistorical(key(i)).then((permit) => permit.release())));
    await clock.advance(70_000);
    await run.all;
    assert.deepEqual(
      run.times.map((t) => t - run.times[0]),
      [0, 0, 0, 60_050],
    );
  });

  it('violations: 100, 322, 420 and the pacing 162 count; other 162s do not', async () => {
    assert.ok(isPacingViolation(162, 'Historical Market Data Service error message:Historical data request pacing violation'));
    assert.ok(!isPacingViolation(162, 'Historical Market Data Service error message:HMDS query returned no data: SPY@SMART Trades'));
    for (const code of [100, 322, 420]) assert.ok(isPacingViolation(code, ''));
    assert.ok(!isPacingViolation(200, 'No security definition has been found for the request'));
    const p = pacer();
    p.reportViolation(162);
    const values = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'ibkr_pacing_violations_total')!.values;
    assert.deepEqual(
      values.map((v) => [v.labels.code, v.value]),
      [['162', 1]],
    );
    assert.equal(p.stats.violations, 1);
  });

  it('market data lines: whole contracts within the budget, the rest refused by name', () => {
    assert.deepEqual(allocateLines(['SPY', 'AAPL', 'MSFT', 'QQQ'], 2, 5), { granted: ['SPY', 'AAPL'], refused: ['MSFT', 'QQQ'], used: 4 });
    assert.deepEqual(allocateLines(['SPY'], 1, 100), { granted: ['SPY'], refused: [], used: 1 });
    assert.throws(() => allocateLines(['SPY'], 0, 5), /lines per contract must be an integer ≥ 1/);
  });

  it('bad limits are refused naming the key', () => {
    assert.throws(() => pacer({ messages_per_second: 0 }), /producers\.ibkr\.pacing\.messages_per_second must be an integer ≥ 1 \(got 0\)/);
  });
});
