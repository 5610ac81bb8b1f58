import type { StreamEventV1 } from '../contracts/index.js';
import { validateEvent } from '../contracts/index.js';
import type { FileFormat } from '../datasets/event-rows.js';
import { csvRow, parseRow, rowProblem, rowToEvent, splitCsvLine } from '../datasets/event-rows.js';

/** How to read the data lines of one source. */
export interface EventLineOptions {
  readonly format: FileFormat;
  /** CSV: the header's column names (see `csvHeader`). */
  readonly header?: readonly string[];
  /** 0-based index of the line among the source's data rows: a plain row's default `seq`, as in datasets. */
  readonly rowIndex: number;
  /** Provider of plain rows that name none. */
  readonly provider: string;
  /** `ingest_ts` stamped on plain rows (a full v1 event keeps its own). */
  readonly ingestTs: string;
}

export type EventLine = { readonly ok: true; readonly event: StreamEventV1; readonly srcTsUs: number } | { readonly ok: false; readonly reason: string };

/**
 * One data line of a JSONL or CSV event file as a v1 event, validated by the v1 contract, or why
 * it is not one. A line is a full v1 event (`"ver": 1`, kept as is) or a plain row of a tick or a
 * bar in the dataset format ({@link rowToEvent}), so any file a replay dataset accepts is accepted
 * here, and an event gets the same `event_id` either way.
 *
 * @example
 * ```ts
 * parseEventLine('SPY,2025-10-01T13:30:00Z,101,100.5,101,101,5', { format: 'csv', header: ['symbol', 'ts', 'o', 'h', 'l', 'c', 'v'], … })
 * // { ok: false, reason: 'field "h" must be >= "l" (h=100.5, l=101)' }
 * ```
 */
export function parseEventLine(text: string, options: EventLineOptions): EventLine {
  let row: Record<string, unknown> | string;
  if (options.format === 'csv') {
    const header = options.header ?? [];
    const cells = splitCsvLine(text);
    if (cells.length !== header.length) {
      return { ok: false, reason: `has ${cells.length} comma-separated values, the header names ${header.length} (${header.join(',')})` };
    }
    row = csvRow(header, cells);
  } else {
    row = parseRow(text, 'jsonl', undefined);
  }
  if (typeof row === 'string') return { ok: false, reason: row };
  // A line naming its contract version is a full event, checked as sent (a "ver": 2 is refused, not converted).
  if (row.ver !== undefined && row.ver !== '') {
    const event = (row.ver === '1' ? { ...row, ver: 1 } : row) as unknown as StreamEventV1;
    const checked = validateEvent(event);
    return checked.ok ? { ok: true, event, srcTsUs: checked.event.srcTsUs } : { ok: false, reason: checked.reason };
  }
  const problem = rowProblem(row);
  if (problem !== undefined) return { ok: false, reason: problem };
  const event = { ...rowToEvent(row, { provider: options.provider, rowIndex: options.rowIndex }), ingest_ts: options.ingestTs };
  const checked = validateEvent(event);
  return checked.ok ? { ok: true, event, srcTsUs: checked.event.srcTsUs } : { ok: false, reason: checked.reason };
}

/** The format of a source whose name does not say: JSONL when its first data line is a JSON object. */
export function sniffFormat(firstLine: string): FileFormat {
  return firstLine.trimStart().startsWith('{') ? 'jsonl' : 'csv';
}
