/**
 * A dead letter as stored (see `deadLetterFields`), read back for people and for redrive.
 * `id` and `timeMs` are the DLQ entry's; the other fields are what the writer recorded.
 */
export interface StoredDeadLetter {
  /** The DLQ entry id (Redis stream id). */
  readonly id: string;
  /** When it was dead-lettered (the id's milliseconds). */
  readonly timeMs: number;
  /** The closed-list code (`max_deliveries`, `invalid_event`, …); `unknown` for an entry without one. */
  readonly code: string;
  readonly reason: string;
  /** Where it came from: a stream (`mdp.events.0`), `file:<path>` or `stdin`. */
  readonly sourceStream: string;
  /** The source entry id, or the line number for a file. */
  readonly sourceId: string;
  readonly group: string;
  readonly deliveries: number;
  /**
   * The payload as read (usually a v1 event as JSON text); for a msgpack payload, its JSON rendering
   * (`base64:<bytes>` when the bytes do not decode), the bytes themselves in `packed`.
   */
  readonly original: string;
  /** How the source entry carried the payload. */
  readonly encoding: 'json' | 'msgpack';
  /** The original msgpack bytes, intact (encoding `msgpack`). */
  readonly packed?: Uint8Array;
  /** Set once `mdp dlq redrive` re-published it. */
  readonly redriven?: RedriveMark;
}

/** What a redrive recorded for one dead letter. */
export interface RedriveMark {
  readonly atMs: number;
  /** The stream it was re-published on (the event's shard stream). */
  readonly stream: string;
}

/** Which dead letters to read: all of them by default. */
export interface DeadLetterFilter {
  /** Only entries dead-lettered at or after this time (epoch ms). */
  readonly sinceMs?: number;
  /** Only entries whose code equals this, or whose reason contains it (case-insensitive). */
  readonly reason?: string;
}

/**
 * The dead-letter stream of a bus, read back: listing, one entry, and the marks `mdp dlq redrive`
 * keeps so that redriving an entry twice publishes it once. Entries are never deleted here: a dead
 * letter stays the record of what failed, and a redrive only marks it.
 */
export interface DeadLetterStore {
  /** Connects (once); methods connect on first use too. Throws `DeadLetterStoreError` when the server is unreachable. */
  connect(): Promise<void>;
  /** The newest `limit` entries matching `filter`, oldest first. */
  newest(filter: DeadLetterFilter, limit: number): Promise<StoredDeadLetter[]>;
  /** Every entry matching `filter`, oldest first, a page at a time. */
  scan(filter: DeadLetterFilter): AsyncIterable<readonly StoredDeadLetter[]>;
  /** One entry by id; `undefined` when the DLQ has no such entry. */
  get(id: string): Promise<StoredDeadLetter | undefined>;
  /** Records that these entries were re-published (never removes them). */
  markRedriven(marks: ReadonlyMap<string, RedriveMark>): Promise<void>;
  close(): Promise<void>;
}

/** Whether a dead letter passes `filter`. */
export function matchesDeadLetter(letter: StoredDeadLetter, filter: DeadLetterFilter): boolean {
  if (filter.sinceMs !== undefined && letter.timeMs < filter.sinceMs) return false;
  if (filter.reason !== undefined) {
    const wanted = filter.reason.toLowerCase();
    return letter.code.toLowerCase() === wanted || letter.reason.toLowerCase().includes(wanted);
  }
  return true;
}
