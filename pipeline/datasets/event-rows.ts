import type { StreamEventV1 } from '../contracts/index.js';
import { formatMicros, makeEventId, parseIsoToMicros } from '../contracts/index.js';

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
