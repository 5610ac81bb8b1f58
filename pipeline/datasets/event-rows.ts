import type { StreamEventV1 } from '../contracts/index.js';
import { formatMicros, makeEventId, parseIsoToMicros } from '../contracts/index.js';

/** How a dataset or event file holds its rows: one JSON object per line, or CSV with a header row. */
export type FileFormat = 'jsonl' | 'csv';

/**
 * Turns one row of a dataset file into a v1 event. A row is either a full v1 event (`"ver": 1`,
 * kept as is) or a plain record of a tick or a bar:
 *
 * | field        | required | meaning                                                         |
 * |--------------|----------|-----------------------------------------------------------------|
 * | `provider`   | unless the dataset sets `provider`                                     |
 * | `symbol`     | yes      |                                                                  |
 * | `kind`       | no       | `tick` or `bar`; default `tick` when only `price` is given, else `bar` |
 * | `src_ts`/`ts`| yes      | ISO-8601 with zone, e.g. `2025-10-01T13:30:00.000123Z`          |
 * | `price`      | for ticks without o/h/l/c: o = h = l = c = price                         |
 * | `o,h,l,c`    | for bars (and ticks)                                                    |
 * | `v`/`volume` | no       | default 0                                                       |
 * | `seq`        | no       | default: the row's position in its file (so ids stay stable)    |
 * | `interval`   | no       | the provider's bar interval, e.g. `1m`                          |
 *
 * Values may be strings (CSV) or numbers (JSON). The result is not validated here: the replay's
 * consumer validates every event against the v1 contract like the live one, and dead-letters
 * invalid ones with the reason.
 */
export function rowToEvent(row: Record<string, unknown>, defaults: { provider?: string; rowIndex: number }): StreamEventV1 {
  if (row.ver === 1 || row.ver === '1') {
    return (row.ver === 1 ? row : { ...row, ver: 1 }) as unknown as StreamEventV1;
  }
  const text = (key: string): string | undefined => {
    const value = row[key];
    return typeof value === 'string' ? (value === '' ? undefined : value) : typeof value === 'number' ? String(value) : undefined;
  };
  const num = (key: string): number | undefined => {
    const value = row[key];
    if (value === undefined || value === null || value === '') return undefined;
    return typeof value === 'number' ? value : Number(value);
  };
  const provider = text('provider') ?? defaults.provider ?? '';
  const symbol = text('symbol') ?? '';
  const rawTs = text('src_ts') ?? text('ts') ?? '';
  // Normalise to the pipeline's own µs form, so the same instant always gives the same event_id.
  const us = parseIsoToMicros(rawTs);
  const srcTs = us === undefined ? rawTs : formatMicros(us);
  const price = num('price');
  const o = num('o') ?? num('open') ?? price ?? NaN;
  const h = num('h') ?? num('high') ?? price ?? NaN;
  const l = num('l') ?? num('low') ?? price ?? NaN;
  const c = num('c') ?? num('close') ?? price ?? NaN;
  const kind = (text('kind') ?? (price !== undefined && num('o') === undefined ? 'tick' : 'bar')) as StreamEventV1['kind'];
  const seqValue = num('seq');
  const seq = seqValue === undefined ? defaults.rowIndex : seqValue;
  const interval = text('interval');
  return {
    ver: 1,
    provider,
    symbol,
    kind,
    ...(interval ? { interval } : {}),
    src_ts: srcTs,
    ingest_ts: srcTs,
    o,
    h,
    l,
    c,
    v: num('v') ?? num('volume') ?? 0,
    seq,
    event_id: makeEventId(provider, symbol, srcTs, seq),
  };
}

/** Splits one CSV line (RFC 4180 quotes supported, no embedded newlines). */
export function splitCsvLine(line: string): string[] {
  if (!line.includes('"')) return line.split(',').map((s) => s.trim());
  const out: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(field.trim());
      field = '';
    } else field += ch;
  }
  out.push(field.trim());
  return out;
}

/** Event time of a row in epoch µs (`src_ts` or `ts`), or `undefined` when it has none that parses. */
export function rowTimeUs(row: Record<string, unknown>): number | undefined {
  const ts = row.src_ts ?? row.ts;
  return typeof ts === 'string' ? parseIsoToMicros(ts.trim()) : undefined;
}

/**
 * The column names of a CSV header line, lower-cased (a UTF-8 byte-order mark before the first is
 * ignored). Throws when no column holds the event time, since no row could then be placed.
 */
export function csvHeader(text: string): string[] {
  const columns = splitCsvLine(text.replace(/^\uFEFF/, '')).map((h) => h.toLowerCase());
  if (!columns.includes('src_ts') && !columns.includes('ts')) throw new Error(`CSV header must name a src_ts (or ts) column (got ${JSON.stringify(text)})`);
  return columns;
}

/** A CSV row's cells by column name. */
export function csvRow(header: readonly string[], cells: readonly string[]): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  header.forEach((name, i) => {
    row[name] = cells[i];
  });
  return row;
}

/** One line of a dataset or event file as a row, or why it is none (JSONL that is not a JSON object). */
export function parseRow(text: string, format: FileFormat, header: readonly string[] | undefined): Record<string, unknown> | string {
  if (format === 'jsonl') {
    try {
      const value: unknown = JSON.parse(text);
      return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : 'line is not a JSON object';
    } catch (err) {
      return `malformed JSON: ${(err as Error).message}`;
    }
  }
  return csvRow(header!, splitCsvLine(text));
}

const NUMERIC_FIELDS = ['price', 'o', 'h', 'l', 'c', 'open', 'high', 'low', 'close', 'v', 'volume', 'seq'] as const;
const PRICE_FIELDS = [
  ['o', 'open'],
  ['h', 'high'],
  ['l', 'low'],
  ['c', 'close'],
] as const;

/**
 * What keeps a plain row (not a full v1 event) from becoming an event, in the row's own terms, or
 * `undefined`: a value that is not a number (`"price" is not a number (got "abc")`), or no prices at
 * all. {@link rowToEvent} would turn either into NaN, which the v1 contract then rejects in the
 * event's terms ("o" must be a finite number (got NaN)), far from what the user wrote.
 */
export function rowProblem(row: Record<string, unknown>): string | undefined {
  for (const key of NUMERIC_FIELDS) {
    const value = row[key];
    if (value === undefined || value === null || value === '') continue;
    if (typeof value === 'string' ? !Number.isFinite(Number(value)) : typeof value !== 'number') {
      return `"${key}" is not a number (got ${JSON.stringify(value)})`;
    }
  }
  const present = (key: string) => row[key] !== undefined && row[key] !== null && row[key] !== '';
  if (present('price')) return undefined;
  const missing = PRICE_FIELDS.filter(([short, long]) => !present(short) && !present(long)).map(([short, long]) => `"${short}" (or "${long}")`);
  if (missing.length === PRICE_FIELDS.length) return 'no price: a tick needs "price", a bar "o", "h", "l" and "c"';
  if (missing.length > 0) return `missing ${missing.join(', ')}`;
  return undefined;
}
