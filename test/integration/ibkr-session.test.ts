/**
 * IbSession and the pacer against the fake TWS over loopback, through the real @stoqey/ib client:
 * handshake, request ids, reconnects with backoff, TWS's connectivity messages classified, and
 * pacing proven by the fake's independent referee — 0 violations with the pacer, violations
 * without it (so these tests can fail).
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { BarSizeSetting, EventName, SecType } from '@stoqey/ib';
import { Registry } from 'prom-client';
import type { IbkrPacingConfig } from '../../pipeline/config/index.js';
import type { IbMessage } from '../../pipeline/producers/ibkr/index.js';
import { IB_PACING_LIMITS, IbSession, Pacer } from '../../pipeline/producers/ibkr/index.js';
import { createLogger, createMetrics } from '../../pipeline/telemetry/index.js';
import type { FakeTwsOptions } from '../helpers/fake-tws/index.js';
import { FakeTws, generateTape } from '../helpers/fake-tws/index.js';
import { REPO_ROOT } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const LOG_DIR = resolve(REPO_ROOT, '.data/test/logs');
mkdirSync(LOG_DIR, { recursive: true });
const LOG_FILE = resolve(LOG_DIR, 'ibkr-session.test.log');
const write = (line: string) => appendFileSync(LOG_FILE, line + '\n');

const IB_LIMITS = IB_PACING_LIMITS;

const waitUntil = <T>(what: string, timeoutMs: number, check: () => T | undefined): Promise<T> => waitFor(what, timeoutMs, () => Promise.resolve(check()));

describe('IbSession + pacer against the fake TWS', function () {
  this.timeout(90_000);
  let tws: FakeTws | undefined;
  const sessions: IbSession[] = [];

  async function fake(options: Partial<FakeTwsOptions> = {}): Promise<FakeTws> {
    const startSec = 1_761_314_400;
    tws = await FakeTws.start({
      tape: generateTape({ symbols: ['SPY', 'AAPL'], startSec, durationSec: 3600, seed: 2, ticksPerSecond: 2 }),
      log: write,
      ...options,
    });
    return tws;
  }

  function session(server: FakeTws, options: { limits?: Partial<IbkrPacingConfig>; clientId?: number; metrics?: ReturnType<typeof createMetrics> } = {}) {
    const pacer = new Pacer({ limits: { ...IB_LIMITS, ...options.limits }, metrics: options.metrics });
    const s = new IbSession({
      host: server.host,
      port: server.port,
      clientId: options.clientId ?? 21,
      pacer,
      reconnectInitialMs: 100,
      reconnectMaxMs: 800,
      log: createLogger('DEBUG', write, { test: 'ibkr-session' }),
    });
    sessions.push(s);
    const messages: IbMessage[] = [];
    const events: string[] = [];
    s.on('message', (m) => messages.push(m));
    s.on('ready', (info) => events.push(`ready ${info.connection}${info.reconnect ? ' (reconnect)' : ''}`));
    s.on('down', (info) => events.push(`down ${info.connection}`));
    s.start();
    return { session: s, pacer, messages, events };
  }

  afterEach(async () => {
    for (const s of sessions.splice(0)) await s.close();
    await tws?.stop();
    tws = undefined;
  });

  it('connects (server version 187), hands out request ids, reconnects after a drop and after TWS was down', async () => {
    const server = await fake();
    const { session: s, events } = session(server);
    await s.whenReady();
    assert.equal(s.serverVersion, 187);
    const ids = [s.nextRequestId(), s.nextRequestId()];

    server.dropConnections();
    await waitUntil('a reconnect', 10_000, () => (events.includes('ready 2 (reconnect)') ? true : undefined));
    assert.deepEqual(events, ['ready 1', 'down 1', 'ready 2 (reconnect)']);
    assert.ok(s.nextRequestId() > Math.max(...ids), 'ids keep growing across reconnects');

    await server.goDown();
    await waitUntil('the session to notice', 5000, () => (s.state === 'connecting' ? true : undefined));
    const failedBefore = server.connections.length;
    await new Promise((r) => setTimeout(r, 1500));
    await server.comeBack();
    await s.whenReady();
    assert.deepEqual(events, ['ready 1', 'down 1', 'ready 2 (reconnect)', 'down 2', 'ready 3 (reconnect)']);
    assert.equal(server.connections.length, failedBefore + 1, 'refused attempts never reached TWS; one connection when it came back');
    // While down, attempts back off (100, 200, 400, 800, 800 ms …): a handful in 1.5 s, not hundreds.
    assert.equal(server.pacingViolations, 0);
  });

  it('classifies what TWS says: 1100 / 1102 / 1101, a request error, and a client id in use (retries until free)', async () => {
    const server = await fake();
    const { session: s, messages } = session(server);
    await s.whenReady();
    server.connectivityLost();
    server.connectivityRestored({ dataLost: false });
    server.connectivityRestored({ dataLost: true });
    const reqId = s.nextRequestId();
    await s.send('contract_details', (ib) => ib.reqContractDetails(reqId, { symbol: 'NOPE', secType: SecType.STK, exchange: 'SMART', currency: 'USD' }));
    await waitUntil('four messages', 5000, () =>
      messages.filter((m) => m.code !== 2104 && m.code !== 2106 && m.code !== 2158).length >= 4 ? true : undefined,
    );
    assert.deepEqual(
      messages.filter((m) => ![2104, 2106, 2158].includes(m.code)).map((m) => [m.kind, m.code, m.reqId]),
      [
        ['connectivity_lost', 1100, -1],
        ['restored_data_kept', 1102, -1],
        ['restored_data_lost', 1101, -1],
        ['request_error', 200, reqId],
      ],
    );

    const other = session(server, { clientId: 21 });
    await waitUntil('326', 5000, () => other.messages.find((m) => m.kind === 'client_id_in_use'));
    assert.equal(other.session.state, 'connecting');
    await s.close();
    await other.session.whenReady();
  });

  it('a request whose turn comes while the connection is down is not sent (no burst when it comes back)', async () => {
    const server = await fake();
    const { session: s } = session(server);
    await s.whenReady();
    await server.goDown();
    await waitUntil('down', 5000, () => (s.state === 'connecting' ? true : undefined));
    assert.equal(await s.send('current_time', (ib) => ib.reqCurrentTime()), false);
    await server.comeBack();
    await s.whenReady();
    assert.equal(server.requests.filter((r) => r.name === 'REQ_CURRENT_TIME').length, 0);
  });

  it('a burst of 220 requests stays within 50 messages/s: 0 violations at TWS; the pacer disabled, TWS reports them', async () => {
    for (const enabled of [true, false]) {
      const server = await fake();
      const metrics = createMetrics(new Registry());
      const { session: s } = session(server, { limits: { enabled }, metrics });
      await s.whenReady();
      const started = Date.now();
      let answers = 0;
      s.listen(EventName.currentTime, () => answers++);
      await Promise.all(Array.from({ length: 220 }, () => s.send('current_time', (ib) => ib.reqCurrentTime())));
      await waitUntil('220 answers', 10_000, () => (answers === 220 ? true : undefined));
      const rate = server.violations.filter((v) => v.rule === 'message_rate').length;
      if (enabled) {
        assert.equal(server.pacingViolations, 0, 'no violation reported by TWS');
        assert.ok(Date.now() - started >= 4000, `220 messages (+START_API) at ≤ 50/s take over 4 s (took ${Date.now() - started} ms)`);
        const json = await metrics.registry.getMetricsAsJSON();
        const requests = json.find((m) => m.name === 'ibkr_requests_total')!.values;
        assert.deepEqual(requests.map((v) => [v.labels.kind, v.value]).sort(), [
          ['current_time', 220],
          ['start_api', 1],
        ]);
        const violations = json.find((m) => m.name === 'ibkr_pacing_violations_total')!.values;
        assert.deepEqual(violations, []);
      } else {
        assert.ok(rate > 100, `without the pacer TWS reports violations (got ${rate})`);
        assert.equal(s.options.pacer.stats.violations, rate, 'each one counted as the session heard of it (error 100)');
      }
      await s.close();
      sessions.splice(0);
      await server.stop();
      tws = undefined;
    }
  });

  it('historical requests, 3× the (scaled) 10-minute budget: all answered, 0 violations; without the pacer, 162s', async () => {
    // IB's rules, scaled: 8 requests per 3 s window, 5 per contract per 1 s, identical within 1.5 s.
    const scaled = { historicalMaxOpen: 50, identicalMs: 1500, sameContractMax: 5, sameContractMs: 1000, windowMax: 8, windowMs: 3000 };
    const limits: Partial<IbkrPacingConfig> = {
      historical_identical_ms: 1500,
      historical_same_contract_max: 5,
      historical_same_contract_ms: 1000,
      historical_window_max: 8,
      historical_window_ms: 3000,
    };
    for (const enabled of [true, false]) {
      const server = await fake({ live: false, pacing: scaled, historicalLatencyMs: 30 });
      const { session: s } = session(server, { limits: { ...limits, enabled } });
      await s.whenReady();
      const outcomes = new Map<number, string>();
      const permits = new Map<number, { release(): void }>();
      s.listen(EventName.historicalData, (reqId: number, time: string) => {
        if (!time.startsWith('finished')) return;
        outcomes.set(reqId, 'bars');
        permits.get(reqId)?.release();
      });
      s.on('message', (m) => {
        if (m.reqId < 0) return;
        outcomes.set(m.reqId, `${m.code}`);
        permits.get(m.reqId)?.release();
      });
      const started = Date.now();
      // 24 requests: 3 windows' worth; SPY and AAPL, TRADES and MIDPOINT, each a different minute.
      await Promise.all(
        Array.from({ length: 24 }, async (_, i) => {
          const symbol = i % 2 === 0 ? 'SPY' : 'AAPL';
          const what = i % 4 < 2 ? 'TRADES' : 'MIDPOINT';
          const end = `20251024 14:${String(10 + i).padStart(2, '0')}:00 UTC`;
          const reqId = s.nextRequestId();
          const permit = await s.sendHistorical({ contract: symbol, exchange: 'SMART', whatToShow: what, params: `${end}|60 S|1 secs` }, (ib) =>
            ib.reqHistoricalData(
              reqId,
              { symbol, secType: SecType.STK, exchange: 'SMART', currency: 'USD' },
              end,
              '60 S',
              BarSizeSetting.SECONDS_ONE,
              what,
              0,
              2,
              false,
            ),
          );
          if (permit) permits.set(reqId, permit);
        }),
      );
      await waitUntil('24 outcomes', 15_000, () => (outcomes.size === 24 ? true : undefined));
      if (enabled) {
        assert.equal(server.pacingViolations, 0);
        assert.deepEqual([...new Set(outcomes.values())], ['bars']);
        assert.ok(Date.now() - started >= 6000, `24 requests at 8 per 3 s need two full windows (took ${Date.now() - started} ms)`);
      } else {
        assert.ok(server.pacingViolations >= 10, `without the pacer TWS answers 162 (got ${server.pacingViolations})`);
        assert.ok([...outcomes.values()].includes('162'));
      }
      await s.close();
      sessions.splice(0);
      await server.stop();
      tws = undefined;
    }
  });
});
