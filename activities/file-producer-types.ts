import type { Bus } from '../pipeline/bus/index.js';
import type { FilePosition } from '../pipeline/contracts/index.js';
import type { FileFormat } from '../pipeline/datasets/index.js';
import type { PublishSpeed } from '../pipeline/producers/index.js';
import type { Logger, Metrics } from '../pipeline/telemetry/index.js';

// What `produceFromSource` (file-producer.ts) takes and returns.

/** A file, or a pipe such as stdin, of events: one v1 event or plain row per line (JSONL or CSV). */
export interface EventSource {
  /** What reasons and progress call it: the path as the user gave it, or `stdin`. */
  readonly label: string;
  /** The `stream` field of its dead letters: `file:<absolute path>`, or `stdin`. */
  readonly dlqSource: string;
  /** From the user or the file's name; undefined: told by its first data line. */
  readonly format?: FileFormat;
  /** A file can be read again, so where a run got to is recorded and a later run continues after it; a pipe cannot. */
  readonly seekable: boolean;
  /** Its bytes from `offset` (a pipe: from where it is), up to `end` (exclusive) when given. */
  read(offset: number, end?: number): AsyncIterable<Buffer>;
}

export interface FileProducerDeps {
  readonly bus: Bus;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Base event stream and shard count: events go where every producer's go (`ShardPublisher`). */
  readonly stream: string;
  readonly shards: number;
  readonly dlqStream: string;
}

export interface FileProduceOptions {
  readonly speed: PublishSpeed;
  /** Provider of plain rows that name none. */
  readonly provider: string;
  /** Where an earlier run of this file stopped: continued after, if the file still starts with the same bytes. */
  readonly resumeFrom?: FilePosition;
  /** Called after every published batch of a seekable source: record it to continue from there. */
  readonly checkpoint?: (position: FilePosition, counts: FileProduceCounts) => Promise<void>;
  /** Aborted: stop after the batch in flight (its position is recorded). */
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: FileProgress) => void;
  /** Called once before the first line is read: where the run starts, and why not where `resumeFrom` said. */
  readonly onStart?: (start: { readonly resumedAfterLine: number; readonly restartReason?: string }) => void;
  /** Most events published in one round trip (default 5000). */
  readonly maxBatch?: number;
}

/** What a run did with the lines it read: each is published, dead-lettered, blank or the CSV header. */
export interface FileProduceCounts {
  lines: number;
  published: number;
  invalid: number;
  blank: number;
  header: number;
}

export interface FileProgress {
  readonly counts: Readonly<FileProduceCounts>;
  /** The last line read. */
  readonly line: number;
  /** What the run is waiting for, if anything: room on the bus (backpressure), or the recorded pace. */
  readonly waiting?: 'room' | 'pace';
}

export interface FileProduceResult {
  readonly counts: FileProduceCounts;
  readonly format: FileFormat | undefined;
  /** The line this run continued after (0: it read from the start). */
  readonly resumedAfterLine: number;
  /** Why `resumeFrom` was not used (the file changed), when it was given. */
  readonly restartReason?: string;
  /** The last line read. */
  readonly line: number;
  /** Stopped by the signal before the end of the source. */
  readonly interrupted: boolean;
  /** Reasons of the first dead-lettered lines (at most `INVALID_SAMPLE`). */
  readonly invalidSample: readonly string[];
}
