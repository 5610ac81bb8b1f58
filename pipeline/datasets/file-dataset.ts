import { createReadStream } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import type { StreamEventV1 } from '../contracts/index.js';
import type { FileFormat } from './event-rows.js';
import { csvHeader, parseRow, rowTimeUs, rowToEvent } from './event-rows.js';
import { lineBatches } from './source-lines.js';

export type { FileFormat } from './event-rows.js';

/** Where a file dataset's rows live and how to read them. */
export interface FileDatasetOptions {
  readonly format: FileFormat;
  /** Files or directories (every `*.jsonl`/`*.ndjson`/`*.csv` inside, by name). */
  readonly path: string;
  /** Provider for rows that name none. */
  readonly provider?: string;
  /** Only these symbols (all when omitted). */
  readonly symbols?: readonly string[];
}

/** A line that could not be placed in time (no parseable `src_ts`/`ts`): skipped and reported. */
export interface SkippedLine {
  readonly file: string;
  readonly line: number;
  readonly reason: string;
}

/** What a range of a dataset holds (from the minute index; edges are exact to the minute). */
export interface DatasetSummary {
  readonly files: number;
  readonly events: number;
  /** First and last minute with events in the range (epoch ms), or null when it is empty. */
  readonly firstMs: number | null;
  readonly lastMs: number | null;
  /** Chunks of `chunkSpanMs` holding at least one event. */
  readonly chunks: number;
  readonly skippedLines: number;
  readonly skippedSample: readonly SkippedLine[];
}

const MINUTE_MS = 60_000;
const SKIPPED_SAMPLE = 5;

/** Per-file minute index: one pass over the file, then chunk reads touch only their bytes. */
interface FileIndex {
  readonly file: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly header: string[] | undefined;
  /** Rows in non-decreasing minute order: then `offsets` give each minute's byte range. */
  readonly sorted: boolean;
  /** Minutes with kept rows, ascending, and their counts. */
  readonly minutes: number[];
  readonly counts: number[];
  /** For sorted files: byte offset and 0-based row index of each minute's first row. */
  readonly offsets: number[];
  readonly rowIndexes: number[];
  readonly skipped: SkippedLine[];
  readonly skippedCount: number;
}

const indexCache = new Map<string, Promise<FileIndex>>();

/** Lines of a file with their byte offsets, streamed (files larger than memory are fine). */
async function* linesWithOffsets(file: string, start = 0, end?: number): AsyncGenerator<{ text: string; offset: number }> {
  const stream = createReadStream(file, { start, ...(end !== undefined ? { end: end - 1 } : {}), highWaterMark: 1 << 20 });
  for await (const batch of lineBatches(stream as AsyncIterable<Buffer>, { offset: start })) {
    for (const line of batch.lines) yield line;
  }
}

async function buildIndex(file: string, options: FileDatasetOptions, size: number, mtimeMs: number): Promise<FileIndex> {
  const symbols = options.symbols ? new Set(options.symbols) : undefined;
  let header: string[] | undefined;
  let sorted = true;
  const minutes: number[] = [],
    counts: number[] = [],
    offsets: number[] = [],
    rowIndexes: number[] = [];
  const outOfOrder = new Map<number, number>();
  const skipped: SkippedLine[] = [];
  let skippedCount = 0;
  let lineNo = 0;
  let rowIndex = -1;
  for await (const { text, offset } of linesWithOffsets(file)) {
    lineNo++;
    if (text.trim() === '') continue;
    if (options.format === 'csv' && header === undefined) {
      try {
        header = csvHeader(text);
      } catch (err) {
        throw new Error(`${file}: ${(err as Error).message}`);
      }
      continue;
    }
    rowIndex++;
    const row = parseRow(text, options.format, header);
    const us = typeof row === 'string' ? undefined : rowTimeUs(row);
    if (us === undefined) {
      skippedCount++;
      if (skipped.length < SKIPPED_SAMPLE)
        skipped.push({ file, line: lineNo, reason: typeof row === 'string' ? row : 'no parseable src_ts/ts (ISO-8601 with zone)' });
      continue;
    }
    if (symbols && !symbols.has(String((row as Record<string, unknown>).symbol))) continue;
    const minute = Math.floor(us / 1000 / MINUTE_MS) * MINUTE_MS;
    const last = minutes.length - 1;
    if (last >= 0 && minute === minutes[last]) counts[last]++;
    else if (last < 0 || minute > minutes[last]) {
      minutes.push(minute);
      counts.push(1);
      offsets.push(offset);
      rowIndexes.push(rowIndex);
    } else {
      sorted = false;
      outOfOrder.set(minute, (outOfOrder.get(minute) ?? 0) + 1);
    }
  }
  if (!sorted) {
    // Merge the out-of-order rows into the minute counts; offsets are meaningless now.
    const all = new Map<number, number>();
    minutes.forEach((m, i) => all.set(m, counts[i]));
    for (const [m, n] of outOfOrder) all.set(m, (all.get(m) ?? 0) + n);
    const merged = [...all].sort((a, b) => a[0] - b[0]);
    minutes.length = 0;
    counts.length = 0;
    offsets.length = 0;
    rowIndexes.length = 0;
    for (const [m, n] of merged) {
      minutes.push(m);
      counts.push(n);
    }
  }
  return { file, size, mtimeMs, header, sorted, minutes, counts, offsets, rowIndexes, skipped, skippedCount };
}

/** First index `i` with `values[i] >= target` (binary search; `values.length` when none). */
function lowerBound(values: readonly number[], target: number): number {
  let lo = 0,
    hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid] < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A dataset of JSONL or CSV files of ticks or bars (see {@link rowToEvent} for the row format).
 * The first use of a file builds a minute index (cached per process while the file's size and
 * mtime stay the same); reads of a time range then touch only that range's bytes when the file
 * is in time order, and scan the file otherwise.
 *
 * @example
 * ```ts
 * const ds = new FileDataset({ format: 'jsonl', path: '.data/datasets/spy_1day_history' });
 * const { events } = await ds.read(Date.UTC(2025, 9, 1, 13, 30), Date.UTC(2025, 9, 1, 13, 45));
 * ```
 */
export class FileDataset {
  readonly #options: FileDatasetOptions;

  constructor(options: FileDatasetOptions) {
    this.#options = options;
  }

  /** The dataset's files, sorted by name. */
  async files(): Promise<string[]> {
    const path = this.#options.path;
    let info;
    try {
      info = await stat(path);
    } catch {
      throw new Error(`dataset path ${path} does not exist`);
    }
    if (!info.isDirectory()) return [path];
    const names = (await readdir(path)).filter((n) => ['.jsonl', '.ndjson', '.csv'].includes(extname(n).toLowerCase())).sort();
    return names.map((n) => join(path, n));
  }

  async #indexes(): Promise<FileIndex[]> {
    const indexes: FileIndex[] = [];
    for (const file of await this.files()) {
      const info = await stat(file);
      const key = `${this.#options.format}|${(this.#options.symbols ?? []).join(',')}|${this.#options.provider ?? ''}|${file}`;
      let cached = indexCache.get(key);
      let index = cached ? await cached.catch(() => undefined) : undefined;
      if (!index || index.size !== info.size || index.mtimeMs !== info.mtimeMs) {
        cached = buildIndex(file, this.#options, info.size, info.mtimeMs);
        indexCache.set(key, cached);
        cached.catch(() => indexCache.delete(key));
        index = await cached;
      }
      indexes.push(index);
    }
    return indexes;
  }

  /** Counts of `[fromMs, toMs)` from the index (minute resolution at the edges). */
  async summary(fromMs: number, toMs: number, chunkSpanMs: number): Promise<DatasetSummary> {
    const indexes = await this.#indexes();
    let events = 0,
      skippedLines = 0;
    let firstMs: number | null = null,
      lastMs: number | null = null;
    const chunks = new Set<number>();
    const skippedSample: SkippedLine[] = [];
    for (const index of indexes) {
      skippedLines += index.skippedCount;
      skippedSample.push(...index.skipped.slice(0, SKIPPED_SAMPLE - skippedSample.length));
      for (let i = lowerBound(index.minutes, Math.floor(fromMs / MINUTE_MS) * MINUTE_MS); i < index.minutes.length && index.minutes[i] < toMs; i++) {
        const minute = index.minutes[i];
        events += index.counts[i];
        firstMs = firstMs === null ? minute : Math.min(firstMs, minute);
        lastMs = lastMs === null ? minute : Math.max(lastMs, minute);
        chunks.add(Math.floor(Math.max(minute, fromMs) / chunkSpanMs));
      }
    }
    return { files: indexes.length, events, firstMs, lastMs, chunks: chunks.size, skippedLines, skippedSample };
  }

  /** Start of the first minute at or after `afterMs` (and before `toMs`) holding events, or null. */
  async nextDataMs(afterMs: number, toMs: number): Promise<number | null> {
    let next: number | null = null;
    for (const index of await this.#indexes()) {
      const i = lowerBound(index.minutes, Math.floor(afterMs / MINUTE_MS) * MINUTE_MS);
      // A minute straddling afterMs may hold only earlier rows; the caller's chunk math tolerates that.
      if (i < index.minutes.length && index.minutes[i] < toMs) next = next === null ? index.minutes[i] : Math.min(next, index.minutes[i]);
    }
    return next === null ? null : Math.max(next, afterMs);
  }

  /**
   * Every row with event time in `[fromMs, toMs)` as a v1 event, ordered by (src_ts, seq, event_id)
   * — the order a live feed would have delivered them in.
   */
  async read(fromMs: number, toMs: number): Promise<{ events: StreamEventV1[] }> {
    const keyed: { us: number; event: StreamEventV1 }[] = [];
    const symbols = this.#options.symbols ? new Set(this.#options.symbols) : undefined;
    const fromUs = fromMs * 1000,
      toUs = toMs * 1000;
    for (const index of await this.#indexes()) {
      let start = 0,
        end: number | undefined,
        rowIndex = 0;
      if (index.sorted) {
        const first = lowerBound(index.minutes, Math.floor(fromMs / MINUTE_MS) * MINUTE_MS);
        if (first >= index.minutes.length || index.minutes[first] >= toMs) continue;
        const last = lowerBound(index.minutes, toMs);
        start = index.offsets[first];
        rowIndex = index.rowIndexes[first];
        end = last < index.minutes.length ? index.offsets[last] : undefined;
      }
      // A full scan starts at the CSV header line; a ranged read starts past it.
      let skipHeader = this.#options.format === 'csv' && start === 0;
      for await (const { text } of linesWithOffsets(index.file, start, end)) {
        if (text.trim() === '') continue;
        if (skipHeader) {
          skipHeader = false;
          continue;
        }
        const row = parseRow(text, this.#options.format, index.header);
        const currentRow = rowIndex++;
        if (typeof row === 'string') continue;
        const us = rowTimeUs(row);
        if (us === undefined || us < fromUs || us >= toUs) continue;
        if (symbols && !symbols.has(String(row.symbol))) continue;
        keyed.push({ us, event: rowToEvent(row, { provider: this.#options.provider, rowIndex: currentRow }) });
      }
    }
    keyed.sort((a, b) => a.us - b.us || a.event.seq - b.event.seq || (a.event.event_id < b.event.event_id ? -1 : a.event.event_id > b.event.event_id ? 1 : 0));
    return { events: keyed.map((k) => k.event) };
  }
}

/** Writes events as JSONL (one v1 event per line), creating the directory. */
export async function writeJsonl(file: string, events: readonly StreamEventV1[]): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, events.map((e) => JSON.stringify(e)).join('\n') + (events.length ? '\n' : ''));
}

/** `2025-10-01.jsonl` → `2025-10-01` (for listings). */
export function fileLabel(file: string): string {
  return basename(file, extname(file));
}
