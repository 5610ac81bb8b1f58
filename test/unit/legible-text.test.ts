/**
 * What the Web UI and `temporal workflow describe` show of mdp's workflows: the summaries built at
 * start, the exchange-time labels of chunk activities, the current-details lines, and the search
 * attributes the local stack registers (the same list as the code's).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { TypedSearchAttributes } from '@temporalio/common';
import {
  backfillLegibility,
  consumerLegibility,
  modelReloadLegibility,
  producerLegibility,
  rangeLabel,
  recoveryLegibility,
  replayLegibility,
  shardSymbols,
} from '../../client/workflow-summaries.js';
import { shardOf } from '../../pipeline/bus/index.js';
import { formatCount, formatNewYorkRange, formatPercent, formatSpan, newYorkOffsetAt } from '../../pipeline/contracts/index.js';
import { chunkedDetails, chunkRange, loopDetails, loopTotals } from '../../workflows/current-details.js';
import { MDP_SEARCH_ATTRIBUTES, mdpSearchAttributes } from '../../workflows/index.js';
import { REPO_ROOT, testConfig } from '../helpers/services.js';

const at = (iso: string) => Date.parse(iso);

describe('legible workflows', () => {
  describe('New York time', () => {
    it('switches to daylight time at 02:00 local on the second Sunday of March, back on the first Sunday of November', () => {
      assert.equal(newYorkOffsetAt(at('2025-03-09T06:59:59Z')), -5);
      assert.equal(newYorkOffsetAt(at('2025-03-09T07:00:00Z')), -4);
      assert.equal(newYorkOffsetAt(at('2025-11-02T05:59:59Z')), -4);
      assert.equal(newYorkOffsetAt(at('2025-11-02T06:00:00Z')), -5);
    });

    it('writes a chunk as 09:30–09:45 ET, with seconds and dates only when needed', () => {
      assert.equal(formatNewYorkRange(at('2025-10-01T13:30:00Z'), at('2025-10-01T13:45:00Z')), '09:30–09:45 ET');
      assert.equal(formatNewYorkRange(at('2025-12-01T14:30:00Z'), at('2025-12-01T14:45:00Z')), '09:30–09:45 ET', 'EST in December');
      assert.equal(formatNewYorkRange(at('2025-10-01T13:30:00Z'), at('2025-10-01T13:30:02Z')), '09:30:00–09:30:02 ET');
      assert.equal(formatNewYorkRange(at('2025-10-01T13:30:00Z'), at('2025-10-01T13:45:00Z'), { dates: true }), '2025-10-01 09:30–09:45 ET');
      assert.equal(formatNewYorkRange(at('2025-10-01T00:00:00Z'), at('2025-10-02T00:00:00Z')), '2025-09-30 20:00 – 10-01 20:00 ET');
    });

    it('dates a chunk when the job covers more than one New York day', () => {
      const chunk = { fromMs: at('2025-10-01T13:30:00Z'), toMs: at('2025-10-01T13:45:00Z') };
      assert.equal(chunkRange({ fromMs: at('2025-10-01T13:30:00Z'), toMs: at('2025-10-01T20:00:00Z') }, chunk), '09:30–09:45 ET');
      assert.equal(chunkRange({ fromMs: at('2025-10-01T13:30:00Z'), toMs: at('2025-10-03T00:00:00Z') }, chunk), '2025-10-01 09:30–09:45 ET');
    });
  });

  it('writes counts, spans and shares one way', () => {
    assert.deepEqual([formatCount(0), formatCount(999), formatCount(12_340), formatCount(1_234_567)], ['0', '999', '12,340', '1,234,567']);
    assert.deepEqual(
      [formatSpan(500), formatSpan(2000), formatSpan(1500), formatSpan(60_000), formatSpan(7_200_000)],
      ['500 ms', '2 s', '1.5 s', '1 min', '2 h'],
    );
    assert.deepEqual([formatPercent(0), formatPercent(0.554), formatPercent(0.999), formatPercent(1)], ['0 %', '55 %', '99 %', '100 %']);
  });

  describe('static summaries', () => {
    const config = testConfig('tlegible', { bus: { shards: 4 }, producers: { synthetic: { provider: 'synthetic', symbols: ['SPY', 'AAPL', 'MSFT', 'QQQ'] } } });

    it('a micro-batch consumer names its shard, the symbols shardOf puts there, and its window', () => {
      for (let shard = 0; shard < 4; shard++) {
        const symbols = ['SPY', 'AAPL', 'MSFT', 'QQQ'].filter((s) => shardOf('synthetic', s, 4) === shard);
        assert.deepEqual(shardSymbols(config, shard), symbols);
        const legible = consumerLegibility(config, { role: 'microbatch', shard, windowMs: 2000 });
        assert.equal(legible.summary, `micro-batch · shard ${shard} · ${symbols.join(', ') || 'no configured symbol'} · 2 s windows`);
        assert.deepEqual(legible.labels, { role: 'microbatch', shard });
      }
    });

    it('inference consumers, producers, replays, backfills, reloads and the recovery sweep', () => {
      assert.equal(consumerLegibility(config, { role: 'inference', shard: 0, adapter: 'rules' }).summary, 'inference · shard 0 · rules');
      assert.equal(
        consumerLegibility(config, { role: 'inference', shard: 3, adapter: 'sklearn' }).summary,
        'inference · shard 3 · sklearn models/signal_model.onnx',
      );
      const producer = producerLegibility(config, { provider: 'synthetic', tickRate: 12.5 });
      assert.equal(producer.summary, 'producer · synthetic · 4 symbols · 50 ticks/s');
      assert.deepEqual(producer.labels, { role: 'producer', provider: 'synthetic' });
      assert.equal(
        producerLegibility(config, { provider: 'synthetic', count: 10_000, startTs: '2025-10-01T13:30:00Z' }).summary.split(' · ')[3],
        '10,000 events from 2025-10-01T13:30:00Z',
      );
      const replay = replayLegibility(config, { dataset: 'spy_1day_history', from: '2025-10-01', to: '2025-10-02' });
      assert.equal(replay.summary, 'replay spy_1day_history 2025-10-01 → 10-02');
      assert.deepEqual(replay.labels, { role: 'replay', dataset: 'spy_1day_history' });
      const backfill = backfillLegibility(config, { symbol: 'SPY', bar: '1m', what: 'TRADES', from: '2025-10-01', to: '2025-10-03' });
      assert.equal(backfill.summary, 'IBKR backfill SPY 1 min bars 2025-10-01 → 10-03');
      assert.deepEqual(backfill.labels, { role: 'backfill', provider: 'ibkr', dataset: 'ibkr_spy_1m_trades' });
      assert.equal(
        backfillLegibility(config, { symbol: 'SPY', bar: '1s', what: 'MIDPOINT', from: '2025-10-01', to: '2025-10-02', useRth: true }).summary,
        'IBKR backfill SPY 1 s bars MIDPOINT 2025-10-01 → 10-02 (RTH)',
      );
      assert.equal(modelReloadLegibility({ modelPath: 'models/x.onnx' }).summary, 'model reload → models/x.onnx');
      assert.equal(recoveryLegibility(config).summary, 'recovery sweep · every 5m · redis');
      assert.equal(rangeLabel('2025-10-01T13:30:00Z', '2025-10-01T14:00:00Z'), '2025-10-01T13:30:00Z → 14:00:00Z');
      assert.equal(rangeLabel('2025-12-31', '2026-01-02'), '2025-12-31 → 2026-01-02');
    });
  });

  describe('current details', () => {
    it('a loop: the run in progress, the totals of the finished runs, how the last one ended', () => {
      const totals = loopTotals('microbatch', { events: 12_340, bars: 5300, late: 3, invalid: 0 });
      assert.deepEqual(loopDetails({ runs: 2, runningSinceMs: at('2025-10-01T14:02:01Z'), draining: false, totals, lastRun: '14:01:59 UTC (max_run)' }), [
        'run 3 since 14:02:01 UTC',
        '12,340 events → 5,300 bars · 3 late · 0 invalid in 2 finished runs',
        'last run ended 14:01:59 UTC (max_run)',
      ]);
      assert.deepEqual(loopDetails({ runs: 0, runningSinceMs: at('2025-10-01T14:02:01Z'), draining: false, totals }), [
        'run 1 since 14:02:01 UTC',
        'no run finished yet',
      ]);
      assert.equal(loopDetails({ runs: 1, draining: true, totals: loopTotals('producer', { published: 7 }) })[0], 'drained after 1 run');
    });

    it('a chunked job: chunk N of T, share and ETA, the chunk in flight, the counts', () => {
      const state = { chunksDone: 13, chunksTotal: 26, fraction: 0.554, etaMs: 39_000, activeMs: 48_000, counts: '31,200 of 57,000 events · 9,800 bars' };
      assert.deepEqual(chunkedDetails({ ...state, phase: 'running', current: '12:45–13:00 ET' }), [
        'chunk 14 of 26 · 55 % · ETA 0:39',
        'now 12:45–13:00 ET',
        '31,200 of 57,000 events · 9,800 bars',
      ]);
      assert.deepEqual(chunkedDetails({ ...state, phase: 'finished', chunksDone: 26 }), ['finished: 26 of 26 chunks in 0:48', state.counts]);
      assert.equal(chunkedDetails({ ...state, phase: 'failed', error: 'no dataset x' })[0], 'failed after 13 of 26 chunks: no dataset x');
    });
  });

  describe('search attributes', () => {
    it('scripts/stack-start.sh registers exactly the attributes the code sets, with their types', () => {
      const script = readFileSync(resolve(REPO_ROOT, 'scripts/stack-start.sh'), 'utf8');
      const registered = [...script.matchAll(/--search-attribute (\w+)=(\w+)/g)].map((m) => `${m[1]}=${m[2]}`).sort();
      const expected = MDP_SEARCH_ATTRIBUTES.map((key) => `${key.name}=${TypedSearchAttributes.toMetadataType(key.type)}`).sort();
      assert.deepEqual(registered, expected);
    });

    it('sets only the labels that apply to the role', () => {
      assert.deepEqual(
        mdpSearchAttributes({ role: 'microbatch', shard: 2 }).map((p) => [p.key.name, p.value]),
        [
          ['MdpRole', 'microbatch'],
          ['MdpShard', 2],
        ],
      );
      assert.deepEqual(
        mdpSearchAttributes({ role: 'backfill', provider: 'ibkr', dataset: 'd' }).map((p) => p.key.name),
        ['MdpRole', 'MdpProvider', 'MdpDataset'],
      );
    });
  });
});
