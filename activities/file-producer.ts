import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DeadLetter } from '../pipeline/bus/index.js';
import { BacklogGate, ShardPublisher } from '../pipeline/bus/index.js';
import type { FilePosition, StreamEventV1 } from '../pipeline/contracts/index.js';
import { deadLetterReason, formatMicros } from '../pipeline/contracts/index.js';
import type { LineBatch } from '../pipeline/datasets/index.js';
import { csvHeader, lineBatches, lineBytes } from '../pipeline/datasets/index.js';
import { EventPace, FileSourceError, parseEventLine, sniffFormat } from '../pipeline/producers/index.js';
import type { OutcomeTarget } from './entry-outcomes.js';
import type { EventSource, FileProduceCounts, FileProduceOptions, FileProducerDeps, FileProduceResult, FileProgress } from './file-producer-types.js';
import { sendToDlq } from './entry-outcomes.js';

export type { EventSource, FileProduceCounts, FileProduceOptions, FileProducerDeps, FileProduceResult, FileProgress } from './file-producer-types.js';

/** Reasons of invalid lines kept for the run's summary. */
export const INVALID_SAMPLE = 10;
/** The `group` field of the producer's dead letters. */
export const FILE_PRODUCER_GROUP = 'mdp-producer-file';
const MAX_BATCH = 5000;
/** An event due this close to now goes out with the batch in hand rather than after a sleep of its own. */
const PACE_SLACK_MS = 20;

/**
 * Publishes a file (or stdin) of events through the bus as every producer does: each line is
 * validated with the v1 contract; a valid event goes to its shard stream ({@link ShardPublisher},
 * waiting on the {@link BacklogGate} while the consumers' backlog is near retention), an invalid line
 * to the DLQ as `invalid_event` with a reason naming the source and the line (`ticks.csv line 17:
 * field "h" must be >= "l" (h=100.5, l=101)`) and the line as its payload, counted in
 * `errors_total{component="producer",reason="invalid_event"}`. Nothing is dropped: every line is
 * published, dead-lettered, blank or the CSV header.
 *
 * `speed` replays the recorded pace by `src_ts` ({@link EventPace}); `max` publishes as fast as
 * backpressure allows. For a seekable source, where the run got to is handed to `checkpoint` after
 * every batch, and a run given that position continues after it, provided the file still starts
 * with the same bytes (its hash), so nothing is published twice; a crash between a batch and its
 * checkpoint publishes that one batch again. It is plain Node (no Temporal), so the CLI runs it
 * where the file is.
 */
export async function produceFromSource(deps: FileProducerDeps, source: EventSource, options: FileProduceOptions): Promise<FileProduceResult> {
  const { bus, metrics, log } = deps;
  const signal = options.signal;
  const maxBatch = options.maxBatch ?? MAX_BATCH;
  const gate = new BacklogGate({ bus, metrics, log, component: 'producer' });
  const publisher = new ShardPublisher({ bus, metrics, stream: deps.stream, shards: deps.shards, gate });
  const target: OutcomeTarget = { component: 'producer', stream: source.dlqSource, group: FILE_PRODUCER_GROUP, dlqStream: deps.dlqStream, acknowledge: false };
  metrics.errors.inc({ component: 'producer', reason: 'invalid_event' }, 0);
  const pace = new EventPace(options.speed);
  const counts: FileProduceCounts = { lines: 0, published: 0, invalid: 0, blank: 0, header: 0 };
  const invalidSample: string[] = [];

  // Where the source stands: every line before `consumed` is published, in hand, dead-lettered or skipped.
  let runHash: Hash | undefined = source.seekable ? createHash('sha256') : undefined;
  let format = source.format;
  const sniffed = format === undefined;
  let headerLine: string | undefined;
  let header: string[] | undefined;
  let consumed = { bytes: 0, line: 0, rows: 0 };
  let restartReason: string | undefined;
  const from = source.seekable ? options.resumeFrom : undefined;
  if (from) {
    const prefix = createHash('sha256');
    restartReason =
      format !== undefined && format !== from.format ? `it was read as ${from.format} before, as ${format} now` : await verifyPrefix(source, from, prefix);
    if (restartReason === undefined) {
      runHash = prefix;
      format = from.format;
      headerLine = from.header;
      header = headerLine !== undefined ? csvHeader(headerLine) : undefined;
      consumed = { bytes: from.bytes, line: from.lines, rows: from.rows };
    }
  }
  const resumedAfterLine = consumed.line;
  options.onStart?.({ resumedAfterLine, ...(restartReason ? { restartReason } : {}) });

  let events: StreamEventV1[] = [];
  let dead: DeadLetter[] = [];
  let lastLine = consumed.line;
  const progress = (waiting?: FileProgress['waiting']) => options.onProgress?.({ counts: { ...counts }, line: lastLine, ...(waiting ? { waiting } : {}) });
  const position = (): FilePosition => ({
    bytes: consumed.bytes,
    lines: consumed.line,
    rows: consumed.rows,
    format: format ?? 'jsonl',
    ...(headerLine !== undefined ? { header: headerLine } : {}),
    prefixSha256: runHash!.copy().digest('hex'),
  });
  let recorded = consumed.bytes;
  // Not cut short by the signal: a batch in hand is published and recorded before the run stops.
  const flush = async () => {
    for (let i = 0; i < events.length;) {
      const rest = i === 0 ? events : events.slice(i);
      const room = await gate.waitForRoom(publisher.streamsOf(rest), { untilMs: Number.POSITIVE_INFINITY, onWait: () => progress('room') });
      const batch = rest.slice(0, Math.min(room, rest.length));
      await publisher.publish(batch);
      counts.published += batch.length;
      i += batch.length;
    }
    events = [];
    if (dead.length > 0) {
      await sendToDlq(bus, metrics, log, target, dead);
      counts.invalid += dead.length;
      dead = [];
    }
    if (runHash && options.checkpoint && consumed.bytes !== recorded) {
      await options.checkpoint(position(), { ...counts });
      recorded = consumed.bytes;
    }
    progress();
  };
  const consume = (batch: LineBatch, line: LineBatch['lines'][number], row: boolean) => {
    runHash?.update(lineBytes(batch, line));
    consumed = { bytes: line.end, line: line.number, rows: consumed.rows + (row ? 1 : 0) };
    counts.lines++;
  };

  const batches = lineBatches(source.read(consumed.bytes), { offset: consumed.bytes, line: consumed.line })[Symbol.asyncIterator]();
  // A pipe can stay silent for ever: the signal ends the wait. (One listener per read, removed
  // after it: racing every read against one long-lived promise would keep every batch alive.)
  const nextBatch = async (): Promise<IteratorResult<LineBatch> | 'aborted'> => {
    if (!signal) return batches.next();
    if (signal.aborted) return 'aborted';
    let onAbort: () => void = () => undefined;
    const aborted = new Promise<'aborted'>((done) => {
      onAbort = () => done('aborted');
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([batches.next(), aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  };
  let interrupted = false;
  try {
    reading: for (;;) {
      let next: IteratorResult<LineBatch> | 'aborted';
      try {
        next = await nextBatch();
      } catch (err) {
        throw new FileSourceError('unreadable', `cannot read ${source.label} after line ${consumed.line}: ${(err as Error).message}`, { cause: err });
      }
      if (next === 'aborted') {
        interrupted = true;
        break;
      }
      if (next.done) break;
      const batch = next.value;
      for (const line of batch.lines) {
        if (signal?.aborted) {
          interrupted = true;
          break reading;
        }
        lastLine = line.number;
        const text = line.text.endsWith('\r') ? line.text.slice(0, -1) : line.text;
        if (text.trim() === '') {
          counts.blank++;
          consume(batch, line, false);
          continue;
        }
        format ??= sniffFormat(text);
        if (format === 'csv' && header === undefined) {
          try {
            header = csvHeader(text);
          } catch (err) {
            const hint = sniffed ? ' (the format was taken from the first line: pass --format jsonl or --format csv)' : '';
            throw new FileSourceError('bad_header', `${source.label} line ${line.number}: ${(err as Error).message}${hint}`);
          }
          headerLine = text;
          counts.header++;
          consume(batch, line, false);
          continue;
        }
        const parsed = parseEventLine(text, {
          format,
          header,
          rowIndex: consumed.rows,
          provider: options.provider,
          ingestTs: formatMicros(Date.now() * 1000),
        });
        if (!parsed.ok) {
          const reason = deadLetterReason({ code: 'invalid_event', detail: `${source.label} line ${line.number}: ${parsed.reason}` });
          dead.push({ sourceStream: source.dlqSource, sourceId: String(line.number), payload: text, code: 'invalid_event', reason });
          if (invalidSample.length < INVALID_SAMPLE) invalidSample.push(reason);
          consume(batch, line, true);
        } else {
          const waitMs = pace.dueMs(parsed.srcTsUs, Date.now()) - Date.now();
          if (waitMs > PACE_SLACK_MS) {
            await flush();
            progress('pace');
            await sleep(waitMs, undefined, signal ? { signal } : {}).catch(() => undefined);
            if (signal?.aborted) {
              interrupted = true;
              break reading;
            }
          }
          events.push(parsed.event);
          consume(batch, line, true);
        }
        if (events.length + dead.length >= maxBatch) await flush();
      }
      // What a read brought in goes out before the next read: a pipe's lines are not held back.
      await flush();
    }
    await flush();
  } finally {
    gate.close();
    // Closes the file; a pipe still waited on is left to the process's exit.
    void batches.return?.(undefined).catch(() => undefined);
  }
  return { counts, format, resumedAfterLine, ...(restartReason ? { restartReason } : {}), line: lastLine, interrupted, invalidSample };
}

/**
 * Hashes the source's first `from.bytes` bytes into `hash`; undefined when they are the bytes
 * `from` was recorded after, else why the position no longer applies.
 */
async function verifyPrefix(source: EventSource, from: FilePosition, hash: Hash): Promise<string | undefined> {
  let read = 0;
  if (from.bytes > 0) {
    try {
      for await (const chunk of source.read(0, from.bytes)) {
        hash.update(chunk);
        read += chunk.length;
      }
    } catch (err) {
      throw new FileSourceError('unreadable', `cannot read ${source.label}: ${(err as Error).message}`, { cause: err });
    }
  }
  if (read < from.bytes) return `it is shorter (${read} bytes) than what was read before (${from.bytes} bytes)`;
  if (hash.copy().digest('hex') !== from.prefixSha256) return `its first ${from.bytes} bytes are not the ones read before`;
  return undefined;
}
