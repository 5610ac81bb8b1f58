/**
 * The fake TWS against the real, unmodified @stoqey/ib client (`IBApi`) over loopback: every
 * message it claims to speak is decoded by the client without a decoding error, the data equals
 * what the tape says (computed here, independently of the fake's own aggregation), and every
 * pacing rule is answered with the error TWS sends.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { resolve } from 'node:path';
import type { Contract, ContractDetails } from '@stoqey/ib';
import { BarSizeSetting, EventName, IBApi, SecType, TickByTickDataType } from '@stoqey/ib';
import type { FakeTwsOptions, Tape, TapeTick } from '../helpers/fake-tws/index.js';
import { FakeTws, generateTape, readTapeFile, TWS_MESSAGES, writeTapeFile } from '../helpers/fake-tws/index.js';
import { REPO_ROOT } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const LOG_DIR = resolve(REPO_ROOT, '.data/test/logs');
mkdirSync(LOG_DIR, { recursive: true });
const LOG_FILE = resolve(LOG_DIR, 'fake-tws.test.log');
const log = (line: string) => appendFileSync(LOG_FILE, line + '\n');

const SPY: Contract = { symbol: 'SPY', secType: SecType.STK, exchange: 'SMART', currency: 'USD' };
const AAPL: Contract = { symbol: 'AAPL', secType: SecType.STK, exchange: 'SMART', currency: 'USD' };

/** A busy two-symbol tape starting now (the fake shifts it to its live start anyway). */
function busyTape(seconds = 120, ticksPerSecond = 12): Tape {
  return generateTape({ symbols: ['SPY', 'AAPL'], startSec: 1_761_314_400, durationSec: seconds, seed: 11, ticksPerSecond });
}

interface Recorded {
  readonly errors: { code: number; reqId: number; message: string }[];
  readonly infos: { code: number; message: string }[];
}

/** A connected IBApi client with its errors and infos recorded; `ready` resolves on nextValidId. */
async function connect(tws: FakeTws, clientId: number, options: { maxReqPerSec?: number } = {}): Promise<{ ib: IBApi } & Recorded> {
  const ib = new IBApi({ host: tws.host, port: tws.port, clientId, maxReqPerSec: options.maxReqPerSec ?? 1000 });
  const rec: Recorded = { errors: [], infos: [] };
  ib.on(EventName.error, (err: Error, code: number, reqId: number) => rec.errors.push({ code, reqId, message: err.message }));
  ib.on(EventName.info, (message: string, code: number) => rec.infos.push({ code, message }));
  const ready = new Promise<void>((done, fail) => {
    ib.once(EventName.nextValidId, () => done());
    setTimeout(() => fail(new Error(`client ${clientId} got no nextValidId: ${JSON.stringify(rec)}`)), 5000);
  });
  ib.connect();
  await ready;
  return { ib, ...rec };
}

/** Client-side decoding problems (@stoqey/ib reports them as errors with code 505). */
function decodingErrors(rec: Recorded): string[] {
  return rec.errors.filter((e) => e.code === 505).map((e) => e.message);
}

/** Polls a condition on what was recorded (no I/O) until it holds. */
const waitUntil = <T>(what: string, timeoutMs: number, check: () => T | undefined): Promise<T> => waitFor(what, timeoutMs, () => Promise.resolve(check()));

const liveTicks = (tws: FakeTws, symbol: string, fromSec: number, toSec: number): TapeTick[] =>
  tws.options.tape.ticks.filter((t) => t.symbol === symbol && tws.liveTime(t) >= fromSec && tws.liveTime(t) < toSec);

describe('fake TWS (real @stoqey/ib client over loopback)', function () {
  this.timeout(60_000);
  let tws: FakeTws | undefined;
  const clients: IBApi[] = [];

  async function start(options: Partial<FakeTwsOptions> = {}): Promise<FakeTws> {
    tws = await FakeTws.start({ tape: busyTape(), log, ...options });
    return tws;
  }

  afterEach(async () => {
    for (const ib of clients.splice(0)) ib.disconnect();
    await tws?.stop();
    tws = undefined;
  });

  for (const serverVersion of [176, 187, 193]) {
    it(`handshake at server version ${serverVersion}: version, accounts, next id, farm status; contract details decode`, async () => {
      const server = await start({ serverVersion });
      const c = await connect(server, 7);
      clients.push(c.ib);
      assert.equal(c.ib.serverVersion, serverVersion);
      const accounts = new Promise<string>((done) => c.ib.once(EventName.managedAccounts, done));
      c.ib.reqManagedAccts();
      assert.equal(await accounts, 'DU1234567');
      await waitUntil('farm status messages', 2000, () => (c.infos.length >= 3 ? true : undefined));
      assert.deepEqual(
        c.infos.map((i) => i.code),
        [2104, 2106, 2158],
      );

      const details: ContractDetails[] = [];
      const ended = new Promise<number>((done) => c.ib.once(EventName.contractDetailsEnd, done));
      c.ib.on(EventName.contractDetails, (_reqId: number, d: ContractDetails) => details.push(d));
      c.ib.reqContractDetails(41, SPY);
      assert.equal(await ended, 41);
      assert.equal(details.length, 1);
      const spy = server.contracts.find((k) => k.symbol === 'SPY')!;
      assert.equal(details[0].contract.conId, spy.conId);
      assert.equal(details[0].contract.primaryExch, 'ARCA');
      assert.equal(details[0].minTick, 0.01);
      assert.equal(details[0].timeZoneId, 'US/Eastern');
      assert.equal(details[0].suggestedSizeIncrement, 100);
      assert.deepEqual(decodingErrors(c), []);
      assert.deepEqual(server.unhandled, []);
    });
  }

  it('refuses a version range it does not speak, and a second connection with a client id in use (326)', async () => {
    const server = await start({ serverVersion: 176 });
    // A client that speaks only versions below 176 is closed on, as TWS does.
    const raw = createConnection({ host: server.host, port: server.port });
    const range = Buffer.from('v100..150');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(range.length);
    raw.write(Buffer.concat([Buffer.from('API\0'), length, range]));
    const answer = await new Promise<string>((done) => {
      let got = '';
      raw.on('data', (d) => (got += d.toString('latin1')));
      raw.on('close', () => done(got));
    });
    assert.equal(answer, '', 'closed without a version reply');

    const first = await connect(server, 3);
    clients.push(first.ib);
    const second = new IBApi({ host: server.host, port: server.port, clientId: 3 });
    clients.push(second);
    const refused = new Promise<{ code: number; message: string }>((done) =>
      second.on(EventName.info, (message: string, code: number) => done({ code, message })),
    );
    const closed = new Promise<void>((done) => second.once(EventName.disconnected, () => done()));
    second.connect();
    assert.deepEqual(await refused, { code: 326, message: TWS_MESSAGES.CLIENT_ID_IN_USE.text });
    await closed;
  });

  it('unknown contract: error 200 naming the request', async () => {
    const server = await start();
    const c = await connect(server, 8);
    clients.push(c.ib);
    c.ib.reqContractDetails(5, { symbol: 'NOPE', secType: SecType.STK, exchange: 'SMART', currency: 'USD' });
    await waitUntil('error 200', 2000, () => c.errors.find((e) => e.code === 200));
    assert.deepEqual(c.errors, [{ code: 200, reqId: 5, message: TWS_MESSAGES.NO_SECURITY.text }]);
  });

  it('tick-by-tick AllLast replays the tape live (epoch-second times), Last leaves odd lots out, cancel stops it', async () => {
    const server = await start();
    const c = await connect(server, 9);
    clients.push(c.ib);
    const got: { reqId: number; tickType: number; time: number; price: number; size: number; exchange: string; conditions: string }[] = [];
    c.ib.on(
      EventName.tickByTickAllLast,
      (reqId: number, tickType: number, time: string, price: number, size: number, _a: unknown, exchange: string, conditions: string) =>
        got.push({ reqId, tickType, time: Number(time), price, size, exchange, conditions }),
    );
    c.ib.reqTickByTickData(1, SPY, TickByTickDataType.AllLast, 0, false);
    c.ib.reqTickByTickData(2, AAPL, TickByTickDataType.Last, 0, false);
    await waitUntil('60 ticks', 15_000, () => (got.length >= 60 ? true : undefined));
    c.ib.cancelTickByTickData(1);
    c.ib.cancelTickByTickData(2);
    await waitUntil('the cancels to arrive', 2000, () => (server.activeSubscriptions.length === 0 ? true : undefined));
    const count = got.length;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(got.length, count, 'no tick after the cancel');

    // What the client decoded equals what the fake says it sent, and that is the tape, shifted.
    const sent = server.sentTicks.filter((t) => t.connection === server.connections[0].id);
    assert.deepEqual(
      got.map((t) => [t.reqId, t.time, t.price, t.size, t.exchange, t.conditions]),
      sent.map((t) => [t.reqId, t.time, t.price, t.size, t.exchange, t.conditions]),
    );
    const first = Math.min(...sent.map((t) => t.time));
    const last = Math.max(...sent.map((t) => t.time));
    const spyTape = liveTicks(server, 'SPY', first + 1, last).map((t) => [server.liveTime(t), t.price, t.size]);
    const spyGot = got.filter((t) => t.reqId === 1 && t.time > first && t.time < last).map((t) => [t.time, t.price, t.size]);
    assert.deepEqual(spyGot, spyTape, 'SPY ticks of the whole seconds in between are exactly the tape');
    assert.ok(got.filter((t) => t.reqId === 1).every((t) => t.tickType === 2));
    assert.ok(
      got.filter((t) => t.reqId === 2).every((t) => t.tickType === 1 && t.size >= 100),
      'Last has no odd lots',
    );
    assert.ok(Math.abs(first - Date.now() / 1000) < 20, 'times are epoch seconds of now');
    assert.deepEqual(decodingErrors(c), []);
  });

  it('5-second real-time bars: the tape aggregated over [t, t+5 s), time = bar start', async () => {
    const server = await start();
    const c = await connect(server, 10);
    clients.push(c.ib);
    const bars: { time: number; open: number; high: number; low: number; close: number; volume: number; count: number }[] = [];
    c.ib.on(
      EventName.realtimeBar,
      (_reqId: number, time: number, open: number, high: number, low: number, close: number, volume: number, _wap: number, count: number) =>
        bars.push({ time, open, high, low, close, volume, count }),
    );
    c.ib.reqRealTimeBars(3, SPY, 5, 'TRADES', false);
    await waitUntil('a real-time bar', 15_000, () => (bars.length >= 1 ? true : undefined));
    for (const bar of bars) {
      assert.equal(bar.time % 5, 0);
      const ticks = liveTicks(server, 'SPY', bar.time, bar.time + 5);
      if (ticks.length === 0) {
        assert.equal(bar.count, 0);
        continue;
      }
      assert.deepEqual(bar, {
        time: bar.time,
        open: ticks[0].price,
        high: Math.max(...ticks.map((t) => t.price)),
        low: Math.min(...ticks.map((t) => t.price)),
        close: ticks[ticks.length - 1].price,
        volume: ticks.reduce((n, t) => n + t.size, 0),
        count: ticks.length,
      });
    }
    assert.deepEqual(decodingErrors(c), []);
  });

  it('historical data: 1-min TRADES bars of the tape plus the end marker; a pacing violation is error 162', async () => {
    const startSec = 1_761_314_400; // 2025-10-24 14:00:00 UTC
    const tape = generateTape({ symbols: ['SPY'], startSec, durationSec: 1800, seed: 5, ticksPerSecond: 2 });
    const server = await start({ tape, live: false, pacing: { identicalMs: 2000 } });
    const c = await connect(server, 11);
    clients.push(c.ib);
    const rows: { reqId: number; time: string; open: number; high: number; low: number; close: number; volume: number; count: number | undefined }[] = [];
    c.ib.on(
      EventName.historicalData,
      (reqId: number, time: string, open: number, high: number, low: number, close: number, volume: number, count: number | undefined) =>
        rows.push({ reqId, time, open, high, low, close, volume, count }),
    );
    c.ib.reqHistoricalData(20, SPY, '20251024 14:10:00 UTC', '600 S', BarSizeSetting.MINUTES_ONE, 'TRADES', 0, 2, false);
    await waitUntil('the end marker', 5000, () => rows.find((r) => r.time.startsWith('finished')));
    const bars = rows.filter((r) => !r.time.startsWith('finished'));
    assert.equal(bars.length, 10);
    for (const bar of bars) {
      const sec = Number(bar.time);
      const ticks = tape.ticks.filter((t) => t.time >= sec && t.time < sec + 60);
      assert.deepEqual(
        [bar.open, bar.high, bar.low, bar.close, bar.volume, bar.count],
        [
          ticks[0].price,
          Math.max(...ticks.map((t) => t.price)),
          Math.min(...ticks.map((t) => t.price)),
          ticks.at(-1)!.price,
          ticks.reduce((n, t) => n + t.size, 0),
          ticks.length,
        ],
      );
    }
    assert.equal(bars[0].time, String(startSec));

    // The same request again within identicalMs: the TWS pacing error, counted.
    c.ib.reqHistoricalData(21, SPY, '20251024 14:10:00 UTC', '600 S', BarSizeSetting.MINUTES_ONE, 'TRADES', 0, 2, false);
    await waitUntil('error 162', 2000, () => c.errors.find((e) => e.reqId === 21));
    assert.deepEqual(c.errors, [{ code: 162, reqId: 21, message: TWS_MESSAGES.HISTORICAL_PACING.text }]);
    assert.deepEqual(
      server.violations.map((v) => v.rule),
      ['historical_identical'],
    );
    assert.deepEqual(decodingErrors(c), []);
  });

  it('historical pacing: 6 requests on one contract within the window, more than the 10-minute budget (BID_ASK twice), more than 50 open', async () => {
    const startSec = 1_761_314_400;
    const tape = generateTape({ symbols: ['SPY', 'AAPL'], startSec, durationSec: 3600, seed: 6, ticksPerSecond: 1 });
    const server = await start({ tape, live: false, pacing: { windowMax: 8, windowMs: 60_000, historicalMaxOpen: 3 }, historicalLatencyMs: 400 });
    const c = await connect(server, 12);
    clients.push(c.ib);
    const end = (minute: number) => `20251024 14:${String(minute).padStart(2, '0')}:00 UTC`;
    // Six different SPY TRADES requests at once: the sixth breaks "6 or more within 2 s"; the
    // fourth already finds 3 open (latency 400 ms) and gets 322.
    for (let i = 0; i < 6; i++) c.ib.reqHistoricalData(100 + i, SPY, end(10 + i), '60 S', BarSizeSetting.SECONDS_ONE, 'TRADES', 0, 2, false);
    await waitUntil('three rejections', 3000, () => (c.errors.length >= 3 ? true : undefined));
    assert.deepEqual(
      c.errors.map((e) => [e.reqId, e.code]),
      [
        [103, 322],
        [104, 322],
        [105, 322],
      ],
    );
    await new Promise((r) => setTimeout(r, 500)); // the three open ones answered
    c.errors.length = 0;
    // Two more on SPY TRADES within 2 s of the first three: 5 accepted → fine; then the 6th.
    c.ib.reqHistoricalData(110, SPY, end(20), '60 S', BarSizeSetting.SECONDS_ONE, 'TRADES', 0, 2, false);
    c.ib.reqHistoricalData(111, SPY, end(21), '60 S', BarSizeSetting.SECONDS_ONE, 'TRADES', 0, 2, false);
    await new Promise((r) => setTimeout(r, 450));
    c.ib.reqHistoricalData(112, SPY, end(22), '60 S', BarSizeSetting.SECONDS_ONE, 'TRADES', 0, 2, false);
    await waitUntil('same-contract rejection', 3000, () => c.errors.find((e) => e.reqId === 112));
    assert.deepEqual(c.errors, [{ code: 162, reqId: 112, message: TWS_MESSAGES.HISTORICAL_PACING.text }]);
    // Window: 5 used of 8; AAPL BID_ASK counts 2 → 7; one MIDPOINT → 8; the next is over budget.
    await new Promise((r) => setTimeout(r, 500));
    c.errors.length = 0;
    c.ib.reqHistoricalData(120, AAPL, end(30), '60 S', BarSizeSetting.SECONDS_ONE, 'BID_ASK', 0, 2, false);
    c.ib.reqHistoricalData(121, AAPL, end(31), '60 S', BarSizeSetting.SECONDS_ONE, 'MIDPOINT', 0, 2, false);
    await new Promise((r) => setTimeout(r, 500));
    c.ib.reqHistoricalData(122, AAPL, end(32), '60 S', BarSizeSetting.SECONDS_ONE, 'TRADES', 0, 2, false);
    await waitUntil('window rejection', 3000, () => c.errors.find((e) => e.reqId === 122));
    assert.deepEqual(
      c.errors.map((e) => [e.reqId, e.code]),
      [[122, 162]],
    );
    assert.deepEqual(
      server.violations.map((v) => v.rule),
      ['historical_max_open', 'historical_max_open', 'historical_max_open', 'historical_same_contract', 'historical_window'],
    );
    assert.equal(server.pacingViolations, 5);
  });

  it('more than 50 messages in a second: error 100 (the client library itself would pace at 40/s; here it is told not to)', async () => {
    const server = await start();
    const c = await connect(server, 13, { maxReqPerSec: 10_000 });
    clients.push(c.ib);
    for (let i = 0; i < 60; i++) c.ib.reqCurrentTime();
    await waitUntil('error 100', 3000, () => c.infos.find((e) => e.code === 100));
    // START_API and 60 requests within one second: 11 over the 50.
    assert.equal(server.violations.filter((v) => v.rule === 'message_rate').length, 11);
    assert.equal(c.infos.find((e) => e.code === 100)?.message, TWS_MESSAGES.MAX_RATE.text);
  });

  it('50 messages in a second are fine; reqCurrentTime answers epoch seconds', async () => {
    const server = await start();
    const c = await connect(server, 14, { maxReqPerSec: 10_000 });
    clients.push(c.ib);
    const times: number[] = [];
    c.ib.on(EventName.currentTime, (t: number) => times.push(t));
    // START_API was message 1 of this connection's second; 49 more stay within 50.
    for (let i = 0; i < 49; i++) c.ib.reqCurrentTime();
    await waitUntil('49 answers', 3000, () => (times.length === 49 ? true : undefined));
    assert.equal(server.pacingViolations, 0);
    assert.ok(Math.abs(times[0] - Date.now() / 1000) < 5);
  });

  it('market data lines: the subscription beyond the budget gets error 101', async () => {
    const server = await start({ marketDataLines: 2 });
    const c = await connect(server, 15);
    clients.push(c.ib);
    c.ib.reqTickByTickData(1, SPY, TickByTickDataType.AllLast, 0, false);
    c.ib.reqRealTimeBars(2, AAPL, 5, 'TRADES', false);
    c.ib.reqTickByTickData(3, AAPL, TickByTickDataType.AllLast, 0, false);
    await waitUntil('error 101', 2000, () => c.errors.find((e) => e.code === 101));
    assert.deepEqual(c.errors, [{ code: 101, reqId: 3, message: TWS_MESSAGES.MAX_TICKERS.text }]);
    assert.equal(server.activeSubscriptions.length, 2);
  });

  it('faults: dropped connections, a TWS that is down and comes back, connectivity 1100 → 1101 (data lost) / 1102 (kept)', async () => {
    const server = await start();
    let c = await connect(server, 16);
    clients.push(c.ib);
    const disconnected = new Promise<void>((done) => c.ib.once(EventName.disconnected, () => done()));
    server.dropConnections();
    await disconnected;

    await server.goDown();
    const refused = new IBApi({ host: server.host, port: server.port, clientId: 16 });
    clients.push(refused);
    const failed = new Promise<number>((done) => refused.once(EventName.error, (_e: Error, code: number) => done(code)));
    refused.connect();
    assert.equal(await failed, 502, 'connection refused is 502 on the client');
    await server.comeBack();
    c = await connect(server, 16);
    clients.push(c.ib);

    let ticks = 0;
    c.ib.on(EventName.tickByTickAllLast, () => ticks++);
    c.ib.reqTickByTickData(1, SPY, TickByTickDataType.AllLast, 0, false);
    await waitUntil('ticks', 10_000, () => (ticks > 5 ? true : undefined));
    server.connectivityLost();
    await waitUntil('1100', 2000, () => c.infos.find((i) => i.code === 1100));
    const during = ticks;
    await new Promise((r) => setTimeout(r, 600));
    assert.ok(ticks - during <= 1, 'no ticks while connectivity is lost');
    server.connectivityRestored({ dataLost: false });
    await waitUntil('1102 and ticks again', 5000, () => (c.infos.some((i) => i.code === 1102) && ticks > during + 3 ? true : undefined));
    server.connectivityLost();
    server.connectivityRestored({ dataLost: true });
    await waitUntil('1101', 2000, () => c.infos.find((i) => i.code === 1101));
    assert.equal(server.activeSubscriptions.length, 0, 'data lost: the subscription is gone until requested again');
    assert.equal(c.infos.find((i) => i.code === 1101)?.message, TWS_MESSAGES.RESTORED_DATA_LOST.text);
  });

  it('tape files: round trip, and a malformed line is an error naming file, line and column', () => {
    const dir = resolve(REPO_ROOT, '.data/test');
    mkdirSync(dir, { recursive: true });
    const file = resolve(dir, 'fake-tws-tape.csv');
    const tape = generateTape({ symbols: ['SPY', 'MSFT'], startSec: 1_761_314_400, durationSec: 30, seed: 3 });
    writeTapeFile(file, tape);
    assert.deepEqual(readTapeFile(file), tape);
    assert.deepEqual(generateTape({ symbols: ['SPY', 'MSFT'], startSec: 1_761_314_400, durationSec: 30, seed: 3 }), tape, 'deterministic');
    writeFileSync(
      file,
      'symbol,time,ms,price,size,exchange,conditions,bid,ask\nSPY,1761314400,5,425.1,100,ARCA,,425.1,425.11\nSPY,1761314400,1200,425.1,100,ARCA,,425.1,425.11\n',
    );
    assert.throws(() => readTapeFile(file), { message: `${file}:3: column ms must be an integer 0..999 (got "1200")` });
  });
});
