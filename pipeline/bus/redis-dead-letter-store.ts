import { Redis } from 'ioredis';
import { redactSecrets } from '../config/redact.js';
import { DeadLetterStoreError } from './dead-letter-store-error.js';
import type { DeadLetterFilter, DeadLetterStore, RedriveMark, StoredDeadLetter } from './dead-letter-store.js';
import { matchesDeadLetter } from './dead-letter-store.js';
import { packedAsJson } from './event-codec.js';
import { streamIdMs } from './sharding.js';

/** Entries read per round trip while scanning the DLQ stream. */
const PAGE = 500;

/** Read with Buffer replies: a msgpack original stays intact. */
type RawEntry = [id: Buffer, fields: Buffer[]];

/**
 * Where the redrive marks of a DLQ stream live: a hash beside it (`mdp.dlq` → `mdp.dlq.redriven`),
 * field = DLQ entry id, value = the {@link RedriveMark} as JSON.
 */
export function redriveMarksKey(dlqStream: string): string {
  return `${dlqStream}.redriven`;
}

/**
 * {@link DeadLetterStore} over a Redis dead-letter stream (`bus.redis.dlq_stream`) and the hash of
 * its redrive marks ({@link redriveMarksKey}).
 */
export class RedisDeadLetterStore implements DeadLetterStore {
  readonly #redis: Redis;
  readonly #stream: string;
  readonly #marks: string;
  readonly #uriForMessages: string;
  #connecting: Promise<void> | undefined;
  #lastError: Error | undefined;
  #closing: Promise<void> | undefined;

  constructor(uri: string, dlqStream: string) {
    // Used by commands: one connection attempt, and a failure is the command's one error line
    // (see `connect`) rather than ioredis retrying and logging every attempt.
    this.#redis = new Redis(uri, { lazyConnect: true, maxRetriesPerRequest: 1, connectionName: 'mdp-dlq', retryStrategy: () => null });
    // Reported by `connect` or the command that failed; kept, as ioredis rejects with "Connection is closed."
    this.#redis.on('error', (err: Error) => (this.#lastError = err));
    this.#stream = dlqStream;
    this.#marks = redriveMarksKey(dlqStream);
    this.#uriForMessages = redactSecrets(uri, [uri]);
  }

  /**
   * Connects once; throws {@link DeadLetterStoreError} `UNREACHABLE` naming Redis and its masked
   * URL. Every other method calls it first, so callers may skip it.
   */
  connect(): Promise<void> {
    this.#connecting ??= this.#redis.connect().catch((err: unknown) => {
      const cause = this.#lastError ?? err;
      const reason = cause instanceof Error && cause.message !== '' ? cause.message : String(cause);
      throw new DeadLetterStoreError(`cannot reach Redis at ${this.#uriForMessages}: ${reason}`, 'UNREACHABLE', { cause: err });
    });
    return this.#connecting;
  }

  async newest(filter: DeadLetterFilter, limit: number): Promise<StoredDeadLetter[]> {
    await this.connect();
    const found: StoredDeadLetter[] = [];
    const start = filter.sinceMs === undefined ? '-' : `${filter.sinceMs}-0`;
    let end = '+';
    while (found.length < limit) {
      const rows = (await this.#redis.callBuffer('XREVRANGE', this.#stream, end, start, 'COUNT', PAGE)) as RawEntry[];
      if (rows.length === 0) break;
      for (const letter of await this.#withMarks(rows)) {
        if (matchesDeadLetter(letter, filter)) found.push(letter);
        if (found.length === limit) break;
      }
      if (rows.length < PAGE) break;
      end = `(${rows[rows.length - 1][0].toString('latin1')}`;
    }
    return found.reverse();
  }

  async *scan(filter: DeadLetterFilter): AsyncIterable<readonly StoredDeadLetter[]> {
    await this.connect();
    let start = filter.sinceMs === undefined ? '-' : `${filter.sinceMs}-0`;
    for (;;) {
      const rows = (await this.#redis.callBuffer('XRANGE', this.#stream, start, '+', 'COUNT', PAGE)) as RawEntry[];
      if (rows.length === 0) return;
      const page = (await this.#withMarks(rows)).filter((l) => matchesDeadLetter(l, filter));
      if (page.length > 0) yield page;
      if (rows.length < PAGE) return;
      start = `(${rows[rows.length - 1][0].toString('latin1')}`;
    }
  }

  async get(id: string): Promise<StoredDeadLetter | undefined> {
    await this.connect();
    if (!/^\d+-\d+$/.test(id)) return undefined;
    const rows = (await this.#redis.callBuffer('XRANGE', this.#stream, id, id)) as RawEntry[];
    return rows.length === 0 ? undefined : (await this.#withMarks(rows))[0];
  }

  async markRedriven(marks: ReadonlyMap<string, RedriveMark>): Promise<void> {
    await this.connect();
    if (marks.size === 0) return;
    await this.#redis.hset(this.#marks, Object.fromEntries([...marks].map(([id, mark]) => [id, JSON.stringify(mark)])));
  }

  close(): Promise<void> {
    // Never connected (or failed to): nothing to say goodbye to.
    this.#closing ??=
      this.#redis.status === 'ready'
        ? this.#redis.quit().then(
            () => undefined,
            () => this.#redis.disconnect(),
          )
        : Promise.resolve(this.#redis.disconnect());
    return this.#closing;
  }

  async #withMarks(rows: readonly RawEntry[]): Promise<StoredDeadLetter[]> {
    const ids = rows.map(([id]) => id.toString('latin1'));
    const marks = await this.#redis.hmget(this.#marks, ...ids);
    return rows.map(([, fields], i) => toLetter(ids[i], fields, marks[i] ?? null));
  }
}

function toLetter(id: string, fields: readonly Buffer[], mark: string | null): StoredDeadLetter {
  const f: Record<string, string> = {};
  let originalBytes: Buffer | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const key = fields[i].toString('utf8');
    if (key === 'original') originalBytes = Buffer.from(fields[i + 1]);
    f[key] = fields[i + 1].toString('utf8');
  }
  const deliveries = Number(f.deliveries);
  const packed = f.encoding === 'msgpack' && originalBytes !== undefined ? originalBytes : undefined;
  return {
    id,
    timeMs: streamIdMs(id),
    code: f.code ?? 'unknown',
    reason: f.reason ?? '',
    sourceStream: f.stream ?? '',
    sourceId: f.id ?? '',
    group: f.group ?? '',
    deliveries: Number.isFinite(deliveries) ? deliveries : 1,
    original: packed ? (packedAsJson(packed) ?? `base64:${packed.toString('base64')}`) : (f.original ?? ''),
    encoding: packed ? 'msgpack' : 'json',
    ...(packed ? { packed } : {}),
    ...(mark === null ? {} : { redriven: JSON.parse(mark) as RedriveMark }),
  };
}
