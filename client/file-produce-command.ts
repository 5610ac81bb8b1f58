import { withBus } from './cli-bus.js';
import { constants, createReadStream } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { extname, resolve } from 'node:path';
import type { FileProduceCounts, FileProduceResult, FileProgress } from '../activities/file-producer.js';
import { produceFromSource } from '../activities/file-producer.js';
import type { EventSource } from '../activities/file-producer.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { busNames } from '../pipeline/config/index.js';
import { formatClock } from '../pipeline/contracts/index.js';
import type { FileFormat } from '../pipeline/datasets/index.js';
import type { PublishSpeed } from '../pipeline/producers/index.js';
import { FileSourceError } from '../pipeline/producers/index.js';
import { createMetrics, createProcessLogger } from '../pipeline/telemetry/index.js';
import { createDb, FileRuns, migrateToLatest } from '../store/index.js';

/** Provider of plain rows (no `provider` field or column) published by the file provider. */
export const FILE_PROVIDER = 'file';
/** Exit code of a run stopped by Ctrl-C (128 + SIGINT): run the same command again to continue. */
export const INTERRUPTED_EXIT = 130;

export interface FileProduceCommand {
  /** A file, or `-` for stdin. */
  readonly path: string;
  readonly speed: PublishSpeed;
  /** `--format`; else from the file's extension, else from its first data line. */
  readonly format?: FileFormat;
  /** Read a file from line 1 even if an earlier run published part of it. */
  readonly fromStart: boolean;
  readonly stdin: NodeJS.ReadableStream;
  readonly write: (text: string) => void;
}

/** The job name of a file's runs in `job_runs`: one per file per machine (the path is the machine's). */
export function fileJobName(absolutePath: string): string {
  return `mdp-producer-file:${hostname()}:${absolutePath}`;
}

/** The format a file's name says (`.csv`; `.jsonl`, `.ndjson`, `.json`), if any. */
function formatOfName(path: string): FileFormat | undefined {
  const ext = extname(path).toLowerCase();
  return ext === '.csv' ? 'csv' : ['.jsonl', '.ndjson', '.json'].includes(ext) ? 'jsonl' : undefined;
}

/** The source behind `--path`: stdin for `-`, else a readable file or pipe; throws `unreadable` naming why not. */
async function openSource(path: string, format: FileFormat | undefined, stdin: NodeJS.ReadableStream): Promise<EventSource> {
  if (path === '-') return { label: 'stdin', dlqSource: 'stdin', seekable: false, ...(format ? { format } : {}), read: () => stdin as AsyncIterable<Buffer> };
  const absolute = resolve(path);
  let info;
  try {
    info = await stat(absolute);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FileSourceError('unreadable', `cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { cause: err });
  }
  if (info.isDirectory()) throw new FileSourceError('unreadable', `cannot read ${path}: it is a directory (give one .jsonl or .csv file)`);
  // A named pipe (e.g. `<(zcat ticks.csv.gz)`) is read like stdin: once, not resumable.
  const seekable = info.isFile();
  const chosen = format ?? formatOfName(path);
  const source: EventSource = {
    label: path,
    dlqSource: `file:${absolute}`,
    seekable,
    ...(chosen ? { format: chosen } : {}),
    read: (offset, end) =>
      createReadStream(absolute, {
        highWaterMark: 1 << 20,
        ...(seekable ? { start: offset } : {}),
        ...(seekable && end !== undefined ? { end: end - 1 } : {}),
      }) as AsyncIterable<Buffer>,
  };
  try {
    await access(absolute, constants.R_OK);
  } catch (err) {
    throw new FileSourceError(
      'unreadable',
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code === 'EACCES' ? 'permission denied' : (err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  return source;
}

const number = (n: number) => n.toLocaleString('en-US');

/** One progress line, e.g. `14:02:03 | ticks.csv line 5,000 | published 4,990 (2,500/s) | invalid 10 | waiting for room`. */
export function formatFileProgress(label: string, p: FileProgress, previous: { atMs: number; published: number } | undefined, nowMs: number): string {
  const secs = previous ? Math.max(0.001, (nowMs - previous.atMs) / 1000) : 0;
  const rate = previous ? ` (${number(Math.round((p.counts.published - previous.published) / secs))}/s)` : '';
  return [
    formatClock(nowMs),
    `${label} line ${number(p.line)}`,
    `published ${number(p.counts.published)}${rate}`,
    `invalid ${number(p.counts.invalid)}`,
    ...(p.waiting === 'room' ? ['waiting for room (consumers behind)'] : p.waiting === 'pace' ? ['at the recorded pace'] : []),
  ].join(' | ');
}

/** Where a file run starts, when not simply at line 1. */
export function formatFileStart(label: string, start: { readonly resumedAfterLine: number; readonly restartReason?: string }): string | undefined {
  if (start.restartReason) return `${label}: reading it from line 1 again: ${start.restartReason} (since an earlier run)`;
  if (start.resumedAfterLine > 0)
    return `${label}: continuing after line ${number(start.resumedAfterLine)} (published by an earlier run; --from-start publishes the file again)`;
  return undefined;
}

/** The run's summary: what became of every line read, and the first invalid lines' reasons. */
export function formatFileSummary(
  label: string,
  result: FileProduceResult,
  names: { stream: string; dlq: string; shards: number },
  elapsedMs: number,
): string[] {
  const c = result.counts;
  const out: string[] = [];
  const secs = elapsedMs / 1000;
  const parts = [
    `${number(c.published)} events published to ${names.stream} (${names.shards} shards)`,
    `${number(c.invalid)} invalid lines dead-lettered to ${names.dlq} (invalid_event)`,
    ...(c.blank > 0 ? [`${number(c.blank)} blank`] : []),
    ...(c.header > 0 ? [`${c.header} header`] : []),
  ];
  const done = result.interrupted ? `interrupted after line ${number(result.resumedAfterLine + c.lines)}` : c.lines === 0 ? 'nothing new' : 'done';
  out.push(
    `${label}: ${done}: ${number(c.lines)} lines read: ${parts.join(', ')}; ${secs.toFixed(1)} s, ${number(Math.round(c.lines / Math.max(secs, 0.001)))} lines/s`,
  );
  for (const reason of result.invalidSample) out.push(`  ${reason}`);
  if (c.invalid > result.invalidSample.length) out.push(`  … and ${number(c.invalid - result.invalidSample.length)} more in ${names.dlq}`);
  if (result.interrupted) out.push(`${label}: run the same command again to continue after line ${number(result.resumedAfterLine + c.lines)}`);
  return out;
}

/**
 * `mdp stream produce --provider file --path FILE|- [--speed 1|10|max] [--format jsonl|csv] [--from-start]`:
 * this process reads the file (or stdin) and publishes it through the configured bus itself, with
 * the producer's sharding, backpressure and DLQ ({@link produceFromSource}); a file's position is
 * recorded in `job_runs` after every batch, so running the command again continues after the last
 * line published. Returns the exit code: 0 when every line was published or dead-lettered, 130
 * when Ctrl-C stopped it (after the batch in flight; a second Ctrl-C quits at once).
 */
export async function produceFile(config: StreamingConfig, command: FileProduceCommand): Promise<number> {
  const { write } = command;
  const source = await openSource(command.path, command.format, command.stdin);
  const names = busNames(config);
  const metrics = createMetrics();
  // Warnings (backlog near retention, DLQ writes) are summed up in the progress and the summary.
  const log = createProcessLogger({ level: 'ERROR', format: config.telemetry.log_format, stream: process.stderr, env: process.env, component: 'cli' });
  const db = source.seekable ? createDb(config.store.url, { log }) : undefined;
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(INTERRUPTED_EXIT);
    write(`${source.label}: stopping after the batch in flight (Ctrl-C again quits at once; the batch is then published again next time)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  let runId: number | undefined;
  const runs = db ? new FileRuns(db) : undefined;
  let counts: FileProduceCounts | undefined;
  try {
    // An unreachable Redis is one line naming it (withBus), not the driver's retry message.
    return await withBus(config, async (bus) => {
      let resumeFrom;
      const jobName = source.seekable ? fileJobName(resolve(command.path)) : undefined;
      if (runs && jobName) {
        await migrateToLatest(db!);
        resumeFrom = command.fromStart ? undefined : await runs.lastPosition(jobName);
        runId = await runs.start(jobName, { path: resolve(command.path), speed: command.speed }, resumeFrom);
      }
      const started = Date.now();
      let shown: { atMs: number; published: number } | undefined;
      const result = await produceFromSource({ bus, metrics, log, stream: names.stream, shards: config.bus.shards, dlqStream: names.dlq_stream }, source, {
        speed: command.speed,
        provider: FILE_PROVIDER,
        ...(resumeFrom ? { resumeFrom } : {}),
        signal: controller.signal,
        ...(runs && runId !== undefined ? { checkpoint: (position, c) => runs.record(runId!, position, { ...c }) } : {}),
        onStart: (start) => {
          const line = formatFileStart(source.label, start);
          if (line) write(line + '\n');
        },
        onProgress: (p) => {
          counts = p.counts;
          const now = Date.now();
          if (shown && now - shown.atMs < 1000) return;
          write(formatFileProgress(source.label, p, shown, now) + '\n');
          shown = { atMs: now, published: p.counts.published };
        },
      });
      counts = result.counts;
      for (const line of formatFileSummary(
        source.label,
        result,
        { stream: names.stream, dlq: names.dlq_stream, shards: config.bus.shards },
        Date.now() - started,
      ))
        write(line + '\n');
      if (runs && runId !== undefined)
        await runs.finish(runId, result.interrupted ? 'failure' : 'success', { ...result.counts }, result.interrupted ? 'interrupted' : undefined);
      return result.interrupted ? INTERRUPTED_EXIT : 0;
    });
  } catch (err) {
    if (runs && runId !== undefined) await runs.finish(runId, 'failure', { ...(counts ?? {}) }, (err as Error).message).catch(() => undefined);
    throw err;
  } finally {
    process.removeListener('SIGINT', onSigint);
    await db?.destroy();
  }
}
