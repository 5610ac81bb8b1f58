/** The IBKR producer's pure parts: event ids, the feed plan, and the meaning of TWS's codes. */
import assert from 'node:assert/strict';
import type { IbkrProducerConfig } from '../../pipeline/config/index.js';
import { validateEvent } from '../../pipeline/contracts/index.js';
import { classifyIbMessage, IbkrEventBuilder, planIbkrFeed, refusedLinesMessage } from '../../pipeline/producers/ibkr/index.js';

const T = 1_761_314_521; // 2025-10-24T14:02:01Z
const SPY = { symbol: 'SPY', sec_type: 'STK', exchange: 'SMART', currency: 'USD', primary_exchange: 'ARCA' };
const AAPL = { symbol: 'AAPL', sec_type: 'STK', exchange: 'SMART', currency: 'USD' };

function ibkr(over: Partial<IbkrProducerConfig> = {}): IbkrProducerConfig {
  return {
    enabled: true,
    provider: 'ibkr',
    host: '127.0.0.1',
    port: 7497,
    client_id: 17,
    contracts: [SPY, AAPL],
    data: 'trades',
    market_data_lines: 100,
    reconnect_initial_ms: 1000,
    reconnect_max_ms: 30000,
    backfill_dir: '.data/datasets',
    backfill_client_id: 18,
    pacing: {
      enabled: true,
      messages_per_second: 50,
      historical_max_open: 50,
      historical_identical_ms: 15000,
      historical_same_contract_max: 5,
      historical_same_contract_ms: 2000,
      historical_window_max: 60,
      historical_window_ms: 600000,
    },
    ...over,
  };
}

describe('IBKR events: ids unique and deterministic', () => {
  it('a tick: src_ts is IB epoch second, seq its index within (symbol, second) as delivered, a valid v1 event', () => {
    const b = new IbkrEventBuilder({ provider: 'ibkr', barsProvider: 'ibkr' });
    const events = [
      b.tick('SPY', T, 425.1, 100, T * 1000 + 310),
      b.tick('SPY', T, 425.11, 37, T * 1000 + 320),
      b.tick('AAPL', T, 190, 5, 0),
      b.tick('SPY', T + 1, 425.12, 200, 0),
    ];
    assert.deepEqual(
      events.map((e) => e.event_id),
      [
        'ibkr|SPY|2025-10-24T14:02:01.000000Z|0',
        'ibkr|SPY|2025-10-24T14:02:01.000000Z|1',
        'ibkr|AAPL|2025-10-24T14:02:01.000000Z|0',
        'ibkr|SPY|2025-10-24T14:02:02.000000Z|0',
      ],
    );
    assert.equal(events[0].ingest_ts, '2025-10-24T14:02:01.310000Z');
    assert.deepEqual([events[1].o, events[1].h, events[1].l, events[1].c, events[1].v, events[1].kind], [425.11, 425.11, 425.11, 425.11, 37, 'tick']);
    for (const e of events) assert.ok(validateEvent(e).ok, JSON.stringify(validateEvent(e)));
  });

  it('a late print of an earlier second continues that second, not the current one', () => {
    const b = new IbkrEventBuilder({ provider: 'ibkr', barsProvider: 'ibkr' });
    b.tick('SPY', T, 1, 1, 0);
    b.tick('SPY', T + 1, 1, 1, 0);
    assert.equal(b.tick('SPY', T, 1, 1, 0).seq, 1);
  });

  it('resumes from its state: a restarted attempt continues the counts of the seconds it knew', () => {
    const b = new IbkrEventBuilder({ provider: 'ibkr', barsProvider: 'ibkr' });
    for (let i = 0; i < 3; i++) b.tick('SPY', T, 1, 1, 0);
    b.tick('SPY', T - 120, 1, 1, 0); // older than the snapshot keeps
    const state = JSON.parse(JSON.stringify(b.state())) as ReturnType<IbkrEventBuilder['state']>;
    assert.deepEqual(state, { ver: 1, seconds: { SPY: [[T, 3]] } });
    const resumed = new IbkrEventBuilder({ provider: 'ibkr', barsProvider: 'ibkr', state });
    assert.equal(resumed.tick('SPY', T, 1, 1, 0).seq, 3);
    assert.throws(() => new IbkrEventBuilder({ provider: 'ibkr', barsProvider: 'ibkr', state: { ver: 1, seconds: { SPY: [[T, -1]] } } }), {
      message: 'IBKR producer state of SPY has a malformed entry [1761314521,-1]',
    });
  });

  it('a 5-second bar: src_ts its start, seq 0, interval 5s; an empty bar is no event', () => {
    const b = new IbkrEventBuilder({ provider: 'ibkr', barsProvider: 'ibkr-bars' });
    const bar = b.bar('SPY', T - 1, { open: 1, high: 2, low: 0.5, close: 1.5, volume: 900, count: 7 }, 0)!;
    assert.equal(bar.event_id, 'ibkr-bars|SPY|2025-10-24T14:02:00.000000Z|0');
    assert.deepEqual([bar.kind, bar.interval, bar.o, bar.h, bar.l, bar.c, bar.v], ['bar', '5s', 1, 2, 0.5, 1.5, 900]);
    assert.ok(validateEvent(bar).ok);
    assert.equal(b.bar('SPY', T + 4, { open: 1, high: 1, low: 1, close: 1, volume: 0, count: 0 }, 0), undefined);
  });
});

describe('IBKR feed plan', () => {
  it('trades: one line per contract; beyond the budget, contracts are refused by name', () => {
    const plan = planIbkrFeed(ibkr({ market_data_lines: 1 }), { allow_late_ms: 500, window_ms: 2000 });
    assert.deepEqual(plan.errors, []);
    assert.deepEqual(
      plan.lines.granted.map((c) => c.symbol),
      ['SPY'],
    );
    assert.equal(
      refusedLinesMessage(plan, 1),
      'producers.ibkr.market_data_lines is 1 and each contract takes 1 (trades): subscribing 1 of 2 contracts; refused: AAPL (STK SMART USD)',
    );
  });

  it('both: two lines per contract, bars under <provider>-bars', () => {
    const plan = planIbkrFeed(ibkr({ data: 'both', market_data_lines: 3 }), { allow_late_ms: 5000, window_ms: 1000 });
    assert.deepEqual([plan.provider, plan.barsProvider, plan.linesEach, plan.lines.refused.length], ['ibkr', 'ibkr-bars', 2, 1]);
  });

  it('config errors name the key: no contracts, a repeated symbol, bars that would be late', () => {
    assert.deepEqual(planIbkrFeed(ibkr({ contracts: [] }), { allow_late_ms: 500, window_ms: 2000 }).errors, [
      'producers.ibkr.contracts is empty: there is nothing to subscribe (add { symbol, sec_type, exchange, currency })',
    ]);
    assert.deepEqual(planIbkrFeed(ibkr({ contracts: [SPY, AAPL, { ...SPY, exchange: 'ARCA' }] }), { allow_late_ms: 500, window_ms: 2000 }).errors, [
      'producers.ibkr.contracts[2] repeats symbol SPY of entry 0: events are keyed by provider and symbol, so two contracts would mix into one bar',
    ]);
    assert.deepEqual(planIbkrFeed(ibkr({ data: 'bars' }), { allow_late_ms: 500, window_ms: 2000 }).errors, [
      'producers.ibkr.data "bars" publishes each 5-second bar when it ends, stamped with its start (IB\'s time): micro_batch.allow_late_ms + micro_batch.window_ms must be at least 6000 ms or every bar is late (got 500 + 2000)',
    ]);
  });
});

describe("TWS's codes, classified", () => {
  for (const [code, reqId, text, kind] of [
    [502, -1, "Couldn't connect to TWS.", 'connection_failed'],
    [504, -1, 'Not connected', 'not_connected'],
    [326, -1, 'Unable to connect as the client id is already in use.', 'client_id_in_use'],
    [1100, -1, 'Connectivity between IB and Trader Workstation has been lost.', 'connectivity_lost'],
    [1101, -1, '… restored - data lost.', 'restored_data_lost'],
    [1102, -1, '… restored - data maintained.', 'restored_data_kept'],
    [2103, -1, 'Market data farm connection is broken:usfarm', 'market_farm_broken'],
    [2104, -1, 'Market data farm connection is OK:usfarm', 'market_farm_ok'],
    [100, -1, 'Max rate of messages per second has been exceeded.', 'pacing_violation'],
    [162, 4, 'Historical Market Data Service error message:Historical data request pacing violation', 'pacing_violation'],
    [162, 4, 'Historical Market Data Service error message:HMDS query returned no data', 'request_error'],
    [420, 4, 'Invalid Real-time Query:Historical data request pacing violation', 'pacing_violation'],
    [200, 4, 'No security definition has been found for the request', 'request_error'],
    [2106, -1, 'HMDS data farm connection is OK:ushmds', 'notice'],
  ] as const) {
    it(`${code}${reqId >= 0 ? ` (request ${reqId})` : ''} → ${kind}`, () => assert.equal(classifyIbMessage(code, reqId, text), kind));
  }
});
