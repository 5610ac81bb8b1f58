import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FileDatasetDefinition } from '../../pipeline/datasets/index.js';
import {
  chunkAt,
  FileDataset,
  generateSampleDay,
  loadDatasetCatalog,
  nextCursor,
  parseDatasetDefinition,
  parseReplayBound,
  replayRange,
  sessionBounds,
} from '../../pipeline/datasets/index.js';
import { validateEvent } from '../../pipeline/contracts/index.js';

describe('datasets', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mdp-ds-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('widens a replay range to whole windows and aligns chunks to window boundaries', () => {
    const from = parseReplayBound('2025-10-01T13:30:00.700Z')!,
      to = parseReplayBound('2025-10-01T13:40:00.300Z')!;
    const range = replayRange(from, to, 1000, 250_500);
    assert.equal(range.fromMs, Date.UTC(2025, 9, 1, 13, 30));
    assert.equal(range.toMs, Date.UTC(2025, 9, 1, 13, 40, 1));
    assert.equal(range.chunkSpanMs, 251_000);
    const first = chunkAt(range, range.fromMs);
    assert.equal(first.fromMs, range.fromMs);
    assert.equal(first.toMs % 1000, 0);
    assert.equal(nextCursor(range, first.toMs, null), range.toMs);
    assert.equal(parseReplayBound('2025-10-01'), Date.UTC(2025, 9, 1));
    assert.equal(parseReplayBound('2025-02-30'), undefined);
    assert.throws(() => replayRange(to, from, 1000, 60_000), /empty/);
  });

  it('generates the same realistic session for the same seed (09:30-16:00 New York, U-shaped volume)', () => {
    const a = generateSampleDay({ date: '2025-10-01', provider: 'h', symbols: ['SPY'], seed: 1, ticksPerDay: 20_000 });
    const b = generateSampleDay({ date: '2025-10-01', provider: 'h', symbols: ['SPY'], seed: 1, ticksPerDay: 20_000 });
    assert.deepEqual(a, b);
    const { openMs, closeMs } = sessionBounds('2025-10-01');
    assert.equal(openMs, Date.UTC(2025, 9, 1, 13, 30));
    assert.equal(sessionBounds('2025-12-01').openMs, Date.UTC(2025, 11, 1, 14, 30), 'EST in December');
    assert.throws(() => sessionBounds('2025-10-04'), /Saturday/);
    const ts = a.map((e) => Date.parse(e.src_ts));
    assert.ok(ts[0] >= openMs && ts[ts.length - 1] < closeMs);
    assert.ok(Math.abs(a.length - 20_000) < 600, `about 20000 ticks (got ${a.length})`);
    for (const e of a) assert.ok(validateEvent(e).ok);
    const perHalfHour = (k: number) => ts.filter((t) => t >= openMs + k * 1_800_000 && t < openMs + (k + 1) * 1_800_000).length;
    assert.ok(perHalfHour(0) > 2 * perHalfHour(6), 'the open is busier than midday');
    assert.ok(perHalfHour(12) > 1.5 * perHalfHour(6), 'the close is busier than midday');
  });

  it('reads a range of a CSV file of ticks and bars, in event-time order, with stable event ids', async () => {
    const file = join(dir, 'ticks.csv');
    writeFileSync(
      file,
      [
        'symbol,src_ts,price,v',
        'SPY,2025-10-01T13:30:00.5Z,668.1,100',
        'SPY,2025-10-01T13:30:01Z,668.2,200',
        'SPY,not-a-time,1,1',
        'SPY,2025-10-01T13:31:00Z,668.3,300',
        'SPY,2025-10-01T13:32:00Z,668.4,400',
      ].join('\n'),
    );
    const ds = new FileDataset({ format: 'csv', path: file, provider: 'p' });
    const summary = await ds.summary(Date.UTC(2025, 9, 1), Date.UTC(2025, 9, 2), 60_000);
    assert.equal(summary.events, 4);
    assert.equal(summary.skippedLines, 1);
    assert.equal(summary.chunks, 3);
    const { events } = await ds.read(Date.UTC(2025, 9, 1, 13, 30, 1), Date.UTC(2025, 9, 1, 13, 32));
    assert.deepEqual(
      events.map((e) => [e.c, e.v, e.kind, e.event_id]),
      [
        [668.2, 200, 'tick', 'p|SPY|2025-10-01T13:30:01.000000Z|1'],
        [668.3, 300, 'tick', 'p|SPY|2025-10-01T13:31:00.000000Z|3'],
      ],
    );
    // A lower bound (minute resolution) on the next event time, never past it.
    const next = await ds.nextDataMs(Date.UTC(2025, 9, 1, 13, 31, 30), Date.UTC(2025, 9, 2));
    assert.ok(next !== null && next >= Date.UTC(2025, 9, 1, 13, 31, 30) && next <= Date.UTC(2025, 9, 1, 13, 32));
    assert.equal(await ds.nextDataMs(Date.UTC(2025, 9, 1, 13, 33), Date.UTC(2025, 9, 2)), null);
  });

  it('reads JSONL bars that are out of order by scanning, and sorts them', async () => {
    const file = join(dir, 'bars.jsonl');
    const bar = (ts: string, c: number) => JSON.stringify({ provider: 'p', symbol: 'AAPL', ts, o: c, h: c + 1, l: c - 0.5, c, v: 10 });
    writeFileSync(file, [bar('2025-10-01T13:35:00Z', 3), bar('2025-10-01T13:30:00Z', 1), bar('2025-10-01T13:31:00Z', 2)].join('\n') + '\n');
    const ds = new FileDataset({ format: 'jsonl', path: file });
    const { events } = await ds.read(Date.UTC(2025, 9, 1, 13, 30), Date.UTC(2025, 9, 1, 13, 36));
    assert.deepEqual(
      events.map((e) => [e.kind, e.c]),
      [
        ['bar', 1],
        ['bar', 2],
        ['bar', 3],
      ],
    );
    for (const e of events) assert.ok(validateEvent(e).ok);
  });

  it('resolves relative dataset paths against the catalog file, not the working directory', () => {
    const catalog = join(dir, 'catalogs', 'datasets.yaml');
    mkdirSync(join(dir, 'catalogs'), { recursive: true });
    writeFileSync(catalog, 'datasets:\n  rel:\n    format: jsonl\n    path: ../data/day\n  abs:\n    format: csv\n    path: /srv/x.csv\n');
    const loaded = loadDatasetCatalog(catalog);
    assert.equal((loaded.get('rel') as FileDatasetDefinition).path, join(dir, 'data', 'day'));
    assert.equal((loaded.get('abs') as FileDatasetDefinition).path, '/srv/x.csv');
  });

  it('checks a dataset definition carried in a replay input: absolute paths only, keys named', () => {
    const def = parseDatasetDefinition('day', { name: 'day', format: 'jsonl', path: '/data/day', provider: 'history' }, 'input.definition', undefined);
    assert.deepEqual(
      { ...def },
      { name: 'day', format: 'jsonl', description: undefined, path: '/data/day', provider: 'history', symbols: undefined, generate: undefined },
    );
    assert.throws(
      () => parseDatasetDefinition('day', { format: 'jsonl', path: 'data/day' }, 'input.definition', undefined),
      /input\.definition\.path: must be an absolute path \(got "data\/day"\)/,
    );
    assert.throws(
      () => parseDatasetDefinition('day', { format: 'parquet', path: '/x' }, 'input.definition', undefined),
      /input\.definition\.format: must be jsonl, csv or store/,
    );
  });
});
