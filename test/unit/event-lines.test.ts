import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { csvHeader, lineBatches, lineBytes } from '../../pipeline/datasets/index.js';
import type { EventLine } from '../../pipeline/producers/index.js';
import { EventPace, parseEventLine, parsePublishSpeed, sniffFormat } from '../../pipeline/producers/index.js';

const INGEST = '2025-10-01T14:00:00.000000Z';
const HEADER = csvHeader('symbol,ts,o,h,l,c,v');
const csv = (text: string, rowIndex = 0): EventLine => parseEventLine(text, { format: 'csv', header: HEADER, rowIndex, provider: 'file', ingestTs: INGEST });
const jsonl = (value: unknown, rowIndex = 0): EventLine =>
  parseEventLine(typeof value === 'string' ? value : JSON.stringify(value), { format: 'jsonl', rowIndex, provider: 'file', ingestTs: INGEST });
const reason = (line: EventLine) => (line.ok ? 'ok' : line.reason);

describe('event lines (file provider)', () => {
  it('turns a CSV row into a validated v1 event with the dataset rules (µs time, seq = row index, ingest_ts stamped)', () => {
    const line = csv('SPY,2025-10-01T13:30:00.5Z,101,102,100.5,101.5,300', 7);
    assert.ok(line.ok, reason(line));
    assert.deepEqual(line.event, {
      ver: 1,
      provider: 'file',
      symbol: 'SPY',
      kind: 'bar',
      src_ts: '2025-10-01T13:30:00.500000Z',
      ingest_ts: INGEST,
      o: 101,
      h: 102,
      l: 100.5,
      c: 101.5,
      v: 300,
      seq: 7,
      event_id: 'file|SPY|2025-10-01T13:30:00.500000Z|7',
    });
    assert.equal(line.srcTsUs, Date.UTC(2025, 9, 1, 13, 30, 0, 500) * 1000);
  });

  it('keeps a full v1 JSONL event as sent and refuses what the contract refuses', () => {
    const event = {
      ver: 1,
      provider: 'ibkr',
      symbol: 'SPY',
      kind: 'tick',
      src_ts: '2025-10-01T13:30:00.000001Z',
      ingest_ts: '2025-10-01T13:30:00.000100Z',
      o: 1,
      h: 1,
      l: 1,
      c: 1,
      v: 5,
      seq: 3,
      event_id: 'ibkr|SPY|2025-10-01T13:30:00.000001Z|3',
    };
    const ok = jsonl(event);
    assert.ok(ok.ok, reason(ok));
    assert.deepEqual(ok.event, event);
    assert.equal(reason(jsonl({ ...event, ver: 2 })), 'field "ver" must be 1 (got 2)');
    assert.equal(reason(jsonl({ ...event, h: 0.5 })), 'field "h" must be >= "l" (h=0.5, l=1)');
  });

  it('names what is wrong with a bad line in the terms the user wrote it in', () => {
    assert.equal(reason(csv('SPY,2025-10-01T13:30:00Z,101,100.5,101,101,5')), 'field "h" must be >= "l" (h=100.5, l=101)');
    assert.equal(reason(csv('SPY,2025-10-01T13:30:00Z,101,abc,101,101,5')), '"h" is not a number (got "abc")');
    assert.equal(reason(csv('SPY,2025-10-01T13:30:00Z,101,102')), 'has 4 comma-separated values, the header names 7 (symbol,ts,o,h,l,c,v)');
    assert.equal(reason(csv('SPY,2025-02-30T13:30:00Z,101,102,100,101,5')), 'field "src_ts" is not an ISO-8601 timestamp (got "2025-02-30T13:30:00Z")');
    assert.equal(reason(csv('SPY,,101,102,100,101,5')), 'field "src_ts" must be a non-empty string');
    assert.equal(reason(csv(',2025-10-01T13:30:00Z,101,102,100,101,5')), 'field "symbol" must be a non-empty string');
    assert.match(reason(jsonl('{"symbol": "SPY", "ts": ')), /^malformed JSON: /);
    assert.equal(reason(jsonl('[1,2]')), 'line is not a JSON object');
    assert.equal(reason(jsonl({ symbol: 'SPY', ts: '2025-10-01T13:30:00Z' })), 'no price: a tick needs "price", a bar "o", "h", "l" and "c"');
    assert.equal(reason(jsonl({ symbol: 'SPY', ts: '2025-10-01T13:30:00Z', o: 1, h: 1, l: 1 })), 'missing "c" (or "close")');
    assert.equal(reason(jsonl({ symbol: 'SPY', ts: '2025-10-01T13:30:00Z', price: 1, v: -3 })), 'field "v" must be >= 0 (got -3)');
  });

  it('reads a CSV header with a byte-order mark and refuses one without a time column', () => {
    assert.deepEqual(csvHeader('\uFEFFSymbol,SRC_TS,Price'), ['symbol', 'src_ts', 'price']);
    assert.throws(() => csvHeader('symbol,time,price'), /CSV header must name a src_ts \(or ts\) column \(got "symbol,time,price"\)/);
    assert.equal(sniffFormat('  {"symbol":"SPY"}'), 'jsonl');
    assert.equal(sniffFormat('symbol,ts,price'), 'csv');
  });

  it('splits any byte stream into numbered lines with their exact bytes, across chunk boundaries', async () => {
    const chunks = ['a,b\n12', '3\n\n', 'x\r\nlast'].map((s) => Buffer.from(s));
    const lines: [number, string, number, number, string][] = [];
    for await (const batch of lineBatches(Readable.from(chunks), { offset: 100, line: 4 })) {
      for (const l of batch.lines) lines.push([l.number, l.text, l.offset, l.end, lineBytes(batch, l).toString()]);
    }
    assert.deepEqual(lines, [
      [5, 'a,b', 100, 104, 'a,b\n'],
      [6, '123', 104, 108, '123\n'],
      [7, '', 108, 109, '\n'],
      [8, 'x\r', 109, 112, 'x\r\n'],
      [9, 'last', 112, 116, 'last'],
    ]);
  });

  it('paces events by their recorded gaps, `speed` times faster, or not at all at max', () => {
    const s = 1_000_000;
    const pace = new EventPace(10);
    assert.equal(pace.dueMs(100 * s, 5_000), 5_000, 'the first event anchors');
    assert.equal(pace.dueMs(110 * s, 5_500), 6_000, '10 s of event time is 1 s of wall time at speed 10');
    assert.equal(pace.dueMs(90 * s, 7_000), 4_000, 'an earlier event is due at once (its time has passed)');
    const recorded = new EventPace(1);
    recorded.dueMs(0, 0);
    assert.equal(recorded.dueMs(2 * s, 0), 2_000, 'speed 1 is the recorded pace');
    assert.equal(new EventPace('max').dueMs(7 * s, 42), 42, 'max: always due now');
    assert.equal(parsePublishSpeed('max'), 'max');
    assert.equal(parsePublishSpeed('10'), 10);
    assert.equal(parsePublishSpeed('0.5'), 0.5);
    for (const bad of ['0', '-1', 'fast', '']) assert.equal(parsePublishSpeed(bad), undefined, bad);
    assert.throws(() => new EventPace(0), /positive number or "max"/);
  });
});
