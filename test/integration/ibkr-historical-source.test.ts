/**
 * PacedHistoricalSource over a real IbSession and the fake TWS (through @stoqey/ib): the failure
 * paths a backfill chunk meets — TWS not reachable, the connection dropping under a request, no
 * answer in time (the request is cancelled at TWS) — each a HistoricalDataError with its code.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { HistoricalDataError } from '../../pipeline/producers/ibkr/index.js';
import { historicalChunkRequest, IB_PACING_LIMITS, IbSession, PacedHistoricalSource, Pacer } from '../../pipeline/producers/ibkr/index.js';
import { createLogger } from '../../pipeline/telemetry/index.js';
import { FakeTws, generateTape } from '../helpers/fake-tws/index.js';
import { REPO_ROOT } from '../helpers/services.js';
import { freePort, waitFor } from '../helpers/wait.js';

const LOG_DIR = resolve(REPO_ROOT, '.data/test/logs');
mkdirSync(LOG_DIR, { recursive: true });
const write = (line: string) => appendFileSync(resolve(LOG_DIR, 'ibkr-historical-source.test.log'), line + '\n');

const LIMITS = IB_PACING_LIMITS;
const START_SEC = Date.UTC(2025, 9, 1, 13, 30) / 1000;
const SPY = { symbol: 'SPY', secType: 'STK', exchange: 'SMART', currency: 'USD' };
const CHUNK = historicalChunkRequest({ fromMs: START_SEC * 1000, toMs: (START_SEC + 60) * 1000 }, '1s', 'TRADES', false);

describe('PacedHistoricalSource over IbSession (fake TWS)', function () {
  this.timeout(60_000);
  const stops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const stop of stops) await stop().catch(() => undefined);
  });

  function source(port: number, options: { replyTimeoutMs?: number; readyTimeoutMs?: number } = {}) {
    const pacer = new Pacer({ limits: LIMITS });
    const session = new IbSession({
      host: '127.0.0.1',
      port,
      clientId: 41,
      pacer,
      reconnectInitialMs: 100,
      reconnectMaxMs: 200,
      log: createLogger('DEBUG', write),
    });
    stops.push(() => session.close());
    session.start();
    return new PacedHistoricalSource({ session, pacer, requesterId: 'test', endpoint: `127.0.0.1:${port} (client id 41)`, ...options });
  }

  async function fake(latencyMs: number): Promise<FakeTws> {
    const tws = await FakeTws.start({
      tape: generateTape({ symbols: ['SPY'], startSec: START_SEC, durationSec: 120, seed: 3 }),
      live: false,
      historicalLatencyMs: latencyMs,
      log: write,
    });
    stops.push(() => tws.stop());
    return tws;
  }

  const failure = (code: string, message: RegExp) => (err: unknown) => (err as HistoricalDataError).code === code && message.test((err as Error).message);

  it('TWS not reachable: DISCONNECTED naming where it looked and why', async function () {
    const port = await freePort();
    await assert.rejects(
      source(port, { readyTimeoutMs: 800 }).request(SPY, CHUNK),
      failure('DISCONNECTED', new RegExp(`^TWS / IB Gateway not reachable at 127\\.0\\.0\\.1:${port} \\(client id 41\\) within 1 s \\(last: .+\\)$`)),
    );
  });

  it('the connection drops under a request: DISCONNECTED, and the next request goes out once it is back', async function () {
    const tws = await fake(1500);
    const s = source(tws.port);
    const pending = s.request(SPY, CHUNK);
    await waitFor('the request at TWS', 10_000, () => Promise.resolve(tws.requests.some((r) => r.name === 'REQ_HISTORICAL_DATA') || undefined));
    tws.dropConnections();
    await assert.rejects(pending, failure('DISCONNECTED', /^the connection to TWS dropped before the reply was complete/));
    const again = await s.request(SPY, { ...CHUNK, endDateTime: '20251001-13:32:00' });
    assert.ok(again.bars.length > 0);
    assert.deepEqual(tws.violations, []);
  });

  it('no answer in time: TIMEOUT, and the request is cancelled at TWS', async function () {
    const tws = await fake(3000);
    await assert.rejects(
      source(tws.port, { replyTimeoutMs: 500 }).request(SPY, CHUNK),
      failure('TIMEOUT', /^no complete reply from TWS within 1 s \(request cancelled\)$/),
    );
    await waitFor('the cancel at TWS', 5_000, () => Promise.resolve(tws.requests.some((r) => r.name === 'CANCEL_HISTORICAL_DATA') || undefined));
  });
});
