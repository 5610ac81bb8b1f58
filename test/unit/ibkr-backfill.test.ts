import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateEvent } from '../../pipeline/contracts/index.js';
import {
  BACKFILL_MANIFEST,
  backfillChunk,
  backfillChunkCount,
  backfillChunkFile,
  backfillRange,
  chunkFileBars,
  claimBackfillDir,
  FileDataset,
  loadDatasetCatalog,
  registerBackfillDataset,
  removeTempFiles,
  writeJsonlAtomically,
} from '../../pipeline/datasets/index.js';
import {
  BackfillInputError,
  backfillProvider,
  chunkBarsToEvents,
  classifyHistoricalError,
  HISTORICAL_BAR_SIZES,
  HistoricalDataError,
  historicalChunkRequest,
  historicalRequestKey,
  parseBackfillRequest,
} from '../../pipeline/producers/ibkr/index.js';
import type { IbkrBackfillProgress } from '../../workflows/index.js';
import { ibkrBackfillWorkflowId } from '../../workflows/index.js';
import { backfillInputFromFlags, formatBackfillProgress } from '../../client/fetch-command.js';
import { IB_PACING_LIMITS, Pacer, recordPastRequests } from '../../pipeline/producers/ibkr/index.js';
import { ManualClock } from '../helpers/manual-clock.js';

const NOW = Date.UTC(2026, 0, 1);
const T = (iso: string) => Date.parse(iso);

describe('IBKR backfill (pure parts)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mdp-backfill-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("sizes chunks by IB's step-size table: 1800 S for 1 s bars, 3600 S for 5 s, 1 D for 1 min", () => {
    assert.deepEqual(Object.fromEntries(Object.entries(HISTORICAL_BAR_SIZES).map(([bar, s]) => [bar, [s.ib, s.maxChunkSeconds]])), {
      '1s': ['1 secs', 1800],
      '5s': ['5 secs', 3600],
      '1m': ['1 min', 86_400],
    });
    // Each chunk stays within "a few thousand bars" (IB: requests must not return more).
    for (const s of Object.values(HISTORICAL_BAR_SIZES)) assert.ok(s.maxChunkSeconds / s.seconds <= 2000, `${s.ib}: ${s.maxChunkSeconds / s.seconds} bars`);
  });

  it('splits a range into epoch-aligned chunks clipped to the range; two ranges share their inner chunks', () => {
    const two = backfillRange(T('2025-10-01T00:00:00Z'), T('2025-10-03T00:00:00Z'), 1000, 1800_000);
    assert.equal(backfillChunkCount(two), 96);
    assert.deepEqual(backfillChunk(two, 0), { fromMs: T('2025-10-01T00:00:00Z'), toMs: T('2025-10-01T00:30:00Z') });
    assert.deepEqual(backfillChunk(two, 95), { fromMs: T('2025-10-02T23:30:00Z'), toMs: T('2025-10-03T00:00:00Z') });
    const odd = backfillRange(T('2025-10-01T13:31:00.400Z'), T('2025-10-01T14:45:00Z'), 1000, 1800_000);
    assert.equal(odd.fromMs, T('2025-10-01T13:31:00Z'), 'widened down to a whole bar');
    assert.equal(backfillChunkCount(odd), 3);
    assert.deepEqual(
      [0, 1, 2].map((i) => backfillChunk(odd, i)),
      [
        { fromMs: T('2025-10-01T13:31:00Z'), toMs: T('2025-10-01T14:00:00Z') },
        { fromMs: T('2025-10-01T14:00:00Z'), toMs: T('2025-10-01T14:30:00Z') },
        { fromMs: T('2025-10-01T14:30:00Z'), toMs: T('2025-10-01T14:45:00Z') },
      ],
    );
    assert.deepEqual(backfillChunk(odd, 1), backfillChunk(two, 28), 'the same chunk in both ranges');
    const minutes = backfillRange(T('2025-10-01T00:00:00Z'), T('2025-10-03T00:00:00Z'), 60_000, 86_400_000);
    assert.equal(backfillChunkCount(minutes), 2);
    assert.throws(() => backfillRange(2, 1, 1000, 1800_000), /empty/);
    assert.throws(() => backfillRange(0, 1000, 5000, 1001), /multiple of the bar/);
  });

  it("builds each chunk's reqHistoricalData arguments: UTC end, duration in seconds, IB's bar size", () => {
    const request = historicalChunkRequest({ fromMs: T('2025-10-01T13:30:00Z'), toMs: T('2025-10-01T14:00:00Z') }, '1s', 'TRADES', false);
    assert.deepEqual(request, {
      endDateTime: '20251001-14:00:00',
      durationStr: '1800 S',
      barSizeSetting: '1 secs',
      whatToShow: 'TRADES',
      useRTH: false,
      formatDate: 2,
    });
    assert.equal(historicalChunkRequest({ fromMs: 0, toMs: 86_400_000 }, '1m', 'MIDPOINT', true).durationStr, '86400 S');
  });

  it('refuses bad flags with the flag and the value (CLI) or the field (workflow input)', () => {
    const ok = { symbol: 'SPY', from: '2025-10-01', to: '2025-10-03', bar: '1s' };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ bar: '2s' }, /^--bar must be one of 1s, 5s, 1m \(got "2s"\)$/],
      [{ bar: undefined }, /^--bar must be one of 1s, 5s, 1m \(got undefined\)$/],
      [{ what: 'BID_ASK' }, /^--what must be TRADES or MIDPOINT \(got "BID_ASK"\): BID_ASK bars hold average bid and ask/],
      [{ what: 'trade' }, /^--what must be TRADES or MIDPOINT \(got "trade"\)$/],
      [{ from: '2025-13-01' }, /^--from must be a date \(2025-10-01\) or an ISO-8601 timestamp with zone \(got "2025-13-01"\)$/],
      [{ to: '2025-10-03T10:00:00' }, /^--to must be a date .* \(got "2025-10-03T10:00:00"\)$/],
      [{ to: '2025-10-01' }, /^--to \(2025-10-01\) must be after --from \(2025-10-01\)$/],
      [{ to: '2026-03-01' }, /^--to \(2026-03-01\) is in the future \(now 2026-01-01T00:00:00.000Z\)/],
      [{ symbol: 'SPY|X' }, /^--symbol must be an IB symbol.*\(got "SPY\|X"\)$/],
      [{ dataset: 'my data' }, /^--dataset must use letters, digits.*\(got "my data"\)$/],
    ];
    for (const [change, expected] of cases) {
      assert.throws(
        () => backfillInputFromFlags({ ...ok, ...change }, NOW),
        (err: unknown) => err instanceof BackfillInputError && expected.test(err.message),
        JSON.stringify(change),
      );
    }
    assert.throws(() => parseBackfillRequest({ ...ok, bar: '1h' }, { style: 'field', nowMs: NOW }), { message: /^bar must be one of/ });
    assert.throws(() => parseBackfillRequest({ ...ok, chunkSeconds: 3600 }, { style: 'field', nowMs: NOW }), {
      message: /^chunkSeconds must be a multiple of 1 from 1 to 1800/,
    });
    const input = backfillInputFromFlags({ ...ok, what: 'midpoint' }, NOW);
    assert.deepEqual(input, { symbol: 'SPY', from: '2025-10-01', to: '2025-10-03', bar: '1s', what: 'MIDPOINT' });
    assert.equal(parseBackfillRequest(input, { style: 'field', nowMs: NOW }).dataset, 'ibkr_spy_1s_midpoint');
    assert.equal(ibkrBackfillWorkflowId(input), 'mdp-fetch-ibkr-SPY-1s-MIDPOINT-2025-10-01-2025-10-03');
    assert.equal(backfillProvider('ibkr', 'TRADES'), 'ibkr');
    assert.equal(backfillProvider('ibkr', 'MIDPOINT'), 'ibkr-midpoint');
  });

  it("turns a reply's bars into valid v1 bar events with deterministic ids, dropping bars outside the chunk", () => {
    const fromMs = T('2025-10-01T13:30:00Z');
    const bar = (sec: number, volume = 100) => ({ time: String(fromMs / 1000 + sec), open: 1, high: 2, low: 0.5, close: 1.5, volume });
    const reply = [bar(1), bar(0), bar(-1), bar(1800), bar(1, 7), bar(2, -1)];
    const options = { provider: 'ibkr', symbol: 'SPY', bar: '1s' as const, fromMs, toMs: fromMs + 1800_000, receivedAtMs: NOW };
    const { events, outside, repeated } = chunkBarsToEvents(reply, options);
    assert.deepEqual(
      events.map((e) => [e.src_ts, e.v, e.event_id]),
      [
        ['2025-10-01T13:30:00.000000Z', 100, 'ibkr|SPY|2025-10-01T13:30:00.000000Z|0'],
        ['2025-10-01T13:30:01.000000Z', 100, 'ibkr|SPY|2025-10-01T13:30:01.000000Z|0'],
        ['2025-10-01T13:30:02.000000Z', 0, 'ibkr|SPY|2025-10-01T13:30:02.000000Z|0'],
      ],
    );
    assert.deepEqual([outside, repeated], [2, 1]);
    for (const e of events) {
      assert.equal(e.kind, 'bar');
      assert.equal(e.interval, '1s');
      assert.ok(validateEvent(e).ok, JSON.stringify(e));
    }
    assert.deepEqual(
      chunkBarsToEvents(reply, { ...options, receivedAtMs: NOW + 5 }).events.map((e) => e.event_id),
      events.map((e) => e.event_id),
      'fetched again later: same ids',
    );
    assert.throws(
      () => chunkBarsToEvents([{ ...bar(0), time: '20251001 13:30:00' }], options),
      /bar 1 of the reply has time "20251001 13:30:00", not epoch seconds/,
    );
  });

  it("classifies IB's answers: 162 no data is an empty chunk; pacing, 200 and 321 are failures with their code", () => {
    assert.deepEqual(classifyHistoricalError(162, 'Historical Market Data Service error message:HMDS query returned no data: SPY@SMART Trades'), {
      kind: 'no_data',
    });
    assert.deepEqual(classifyHistoricalError(162, 'Historical Market Data Service error message:Historical data request pacing violation'), {
      kind: 'failure',
      code: 'PACING_VIOLATION',
    });
    assert.deepEqual(classifyHistoricalError(200, 'No security definition has been found for the request'), {
      kind: 'failure',
      code: 'NO_SECURITY_DEFINITION',
    });
    assert.deepEqual(classifyHistoricalError(321, 'Error validating request'), { kind: 'failure', code: 'INVALID_REQUEST' });
    assert.equal(new HistoricalDataError('PACING_VIOLATION', 'x', { ibCode: 162 }).retryable, true);
    assert.equal(new HistoricalDataError('NO_SECURITY_DEFINITION', 'x', { ibCode: 200 }).retryable, false);
  });

  it('writes a chunk file whole or not at all, and clears what a killed writer left', async () => {
    const file = backfillChunkFile(dir, 'BRK B', { bar: '1m', what: 'TRADES' }, { fromMs: 0, toMs: 86_400_000 });
    assert.equal(file, join(dir, 'BRK%20B_1m_TRADES_19700101T000000Z_19700102T000000Z.jsonl'));
    assert.equal(await chunkFileBars(file), undefined);
    writeFileSync(`${file}.tmp-123-abcd`, '{"half":');
    assert.equal(await removeTempFiles(file), 1);
    const fromMs = T('2025-10-01T13:30:00Z');
    const { events } = chunkBarsToEvents([{ time: String(fromMs / 1000), open: 1, high: 1, low: 1, close: 1, volume: 1 }], {
      provider: 'p',
      symbol: 'BRK B',
      bar: '1m',
      fromMs,
      toMs: fromMs + 60_000,
      receivedAtMs: NOW,
    });
    await writeJsonlAtomically(file, events);
    assert.deepEqual(readdirSync(dir), [file.slice(dir.length + 1)], 'no temporary file left');
    assert.equal(await chunkFileBars(file), 1);
    const empty = backfillChunkFile(dir, 'SPY', { bar: '1m', what: 'TRADES' }, { fromMs: 0, toMs: 60_000 });
    await writeJsonlAtomically(empty, []);
    assert.equal(await chunkFileBars(empty), 0, 'an empty chunk is a file with no bars');
    const { events: read } = await new FileDataset({ format: 'jsonl', path: dir }).read(0, NOW);
    assert.deepEqual(read, events, 'the dataset reader reads the chunk files');
  });

  it('registers a new dataset in the catalog where replays find it, keeping the file as it was otherwise', async () => {
    const catalog = join(dir, 'datasets.yaml');
    const original = '# my catalog\nversion: 1\ndatasets:\n    mine:\n        format: jsonl\n        path: data/mine   # a comment\n';
    writeFileSync(catalog, original);
    const registered = await registerBackfillDataset(
      catalog,
      { name: 'ibkr_spy_1s_trades', defaultDir: 'data/ibkr_spy_1s_trades', provider: 'ibkr', description: 'x' },
      dir,
    );
    assert.deepEqual(registered, { dir: join(dir, 'data/ibkr_spy_1s_trades'), added: true });
    const text = readFileSync(catalog, 'utf8');
    assert.ok(text.startsWith(original), 'appended, nothing rewritten');
    assert.match(text, /\n {4}ibkr_spy_1s_trades:\n {8}description: "x"\n {8}format: jsonl\n {8}path: "data\/ibkr_spy_1s_trades"\n/);
    const def = loadDatasetCatalog(catalog, dir).get('ibkr_spy_1s_trades');
    assert.deepEqual(def && { format: def.format, path: def.format === 'store' ? '' : def.path }, {
      format: 'jsonl',
      path: join(dir, 'data/ibkr_spy_1s_trades'),
    });
    assert.deepEqual(
      await registerBackfillDataset(catalog, { name: 'ibkr_spy_1s_trades', defaultDir: 'elsewhere', provider: 'ibkr', description: 'x' }, dir),
      { dir: join(dir, 'data/ibkr_spy_1s_trades'), added: false },
      'found the second time',
    );
    assert.equal(
      (await registerBackfillDataset(catalog, { name: 'mine', defaultDir: 'elsewhere', provider: 'ibkr', description: 'x' }, dir)).dir,
      join(dir, 'data/mine'),
    );

    const trailing = join(dir, 'trailing.yaml');
    const layout = 'datasets:\n  a: { format: jsonl, path: a }\nversion: 1\n';
    writeFileSync(trailing, layout);
    await assert.rejects(
      registerBackfillDataset(trailing, { name: 'b', defaultDir: 'b', provider: 'ibkr', description: 'x' }, dir),
      /could not append dataset b .*add it under "datasets:" in .* by hand:\n {2}b:\n/s,
    );
    assert.equal(readFileSync(trailing, 'utf8'), layout, 'restored');
  });

  it('refuses to mix bar sizes, data types or providers in one dataset directory', async () => {
    const target = join(dir, 'ds');
    const kind = { source: 'ibkr', bar: '1s', what: 'TRADES', provider: 'ibkr' };
    await claimBackfillDir(target, 'ds', kind);
    assert.ok(existsSync(join(target, BACKFILL_MANIFEST)));
    await claimBackfillDir(target, 'ds', kind);
    await assert.rejects(
      claimBackfillDir(target, 'ds', { ...kind, bar: '1m' }),
      /dataset ds \(.*\) holds ibkr 1s TRADES bars \(provider ibkr\); fetching ibkr 1m TRADES bars/,
    );
    mkdirSync(join(dir, 'plain'));
    writeFileSync(join(dir, 'file.jsonl'), '');
    await assert.rejects(claimBackfillDir(join(dir, 'file.jsonl'), 'f', kind), /is a file/);
  });

  it('shows progress as chunks done/total, bars, requests, pacing wait and ETA', () => {
    const p = {
      symbol: 'SPY',
      bar: '1s',
      what: 'TRADES',
      from: '2025-10-01',
      to: '2025-10-03',
      phase: 'fetching',
      plan: null,
      chunksDone: 24,
      chunksTotal: 96,
      redoneChunks: 0,
      currentChunk: null,
      counts: { requests: 20, cached: 4, empty: 10, bars: 36_000, dropped: 0, pacingWaitMs: 41_000 },
      startedAtMs: 0,
      activeMs: 60_000,
      requestMs: 60_000,
      barsPerSecond: 600,
      etaMs: 190_000,
      jobRunId: 1,
    } satisfies IbkrBackfillProgress;
    assert.equal(formatBackfillProgress(p, 8), '[##------]  25% | 24/96 chunks (4 on disk, 10 empty) | 36000 bars | 20 requests, pacing wait 0:41 | ETA 3:10');
  });

  it("counts another worker's requests: a fresh pacer told of them waits as if it had sent them (each counted once)", async () => {
    const limits = IB_PACING_LIMITS;
    const clock = new ManualClock();
    const pacer = new Pacer({ limits, clock, marginMs: 0 });
    const contract = { symbol: 'SPY', secType: 'STK', exchange: 'SMART', currency: 'USD' };
    const at = (i: number) => historicalChunkRequest({ fromMs: i * 1800_000, toMs: (i + 1) * 1800_000 }, '1s', 'TRADES', false);
    const t0 = clock.now();
    // Another worker sent 60 requests over the last 5 minutes, the last one (chunk 59) just now.
    const past = Array.from({ length: 60 }, (_, i) => ({ id: `other|${i}`, request: at(i), atMs: t0 - 300_000 + i * 5_000 + 5_000 }));
    const recorded = new Set<string>();
    recordPastRequests(pacer, recorded, contract, past);
    recordPastRequests(pacer, recorded, contract, past);
    assert.equal(recorded.size, 60);
    const times: number[] = [];
    const next = pacer.acquireHistorical(historicalRequestKey(contract, at(60))).then(() => times.push(clock.now()));
    const again = pacer.acquireHistorical(historicalRequestKey(contract, at(59))).then(() => times.push(clock.now()));
    await clock.advance(900_000);
    await Promise.all([next, again]);
    // The 10-minute window is full: the next request goes when the oldest of the 60 (t0 - 295 s)
    // leaves it, at t0 + 305 s; the one after (identical to chunk 59, so 15 s after t0 at the
    // earliest) when the second oldest does, at t0 + 310 s. A pacer not told waits for neither.
    assert.deepEqual(
      times.map((t) => t - t0),
      [305_000, 310_000],
    );
  });
});
