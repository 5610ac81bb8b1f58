import { Redis } from 'ioredis';
import type { Bus, BusEntry, DeadLetter, GroupLag, PendingEntry } from './bus.js';
import { redactSecrets } from '../config/redact.js';
import { createLogger, OutageLog } from '../telemetry/index.js';
import { streamIdMs } from './sharding.js';

export interface RedisBusOptions {
  /** Approximate retention per stream (`XADD MAXLEN ~`). */
  readonly maxLen: number;
  /** Hash holding consumer checkpoints. */
  readonly checkpointKey?: string;
  /**
   * Where connection errors are reported (throttled, see {@link OutageLog}). Pass one to every bus
   * of a process so an outage is logged once; by default each bus has its own, on stderr.
   */
  readonly connectionErrors?: OutageLog;
}

/** Field carrying the encoded event in every entry. */
const PAYLOAD_FIELD = 'd';

type RawEntry = [id: string, fields: string[] | null];

function toEntry([id, fields]: RawEntry): BusEntry {
  if (!fields) return { id, payload: undefined };
  const all: Record<string, string | undefined> = {};
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === PAYLOAD_FIELD) return { id, payload: fields[i + 1] };
    all[fields[i]] = fields[i + 1];
  }
  return { id, payload: undefined, foreign: JSON.stringify(all) };
}

/**
 * Redis Streams implementation of {@link Bus} over ioredis. Commands share one connection;
 * blocking reads get their own, so `close()` can interrupt them and other commands never wait
 * behind a `BLOCK`.
 */
export class RedisBus implements Bus {
  readonly #cmd: Redis;
  readonly #blocking: Redis;
  readonly #options: Required<Omit<RedisBusOptions, 'connectionErrors'>>;
  #closing: Promise<void> | undefined;

  constructor(uri: string, options: RedisBusOptions) {
    const redisOptions = { lazyConnect: false, maxRetriesPerRequest: 3, enableOfflineQueue: true, connectionName: 'mdp' };
    this.#cmd = new Redis(uri, redisOptions);
    // Reads fail like every other command when the server is gone: a read that waited forever would
    // never return to see a cancellation, so a worker could not shut down during an outage.
    this.#blocking = new Redis(uri, redisOptions);
    // ioredis retries by itself; without a listener an unreachable server would crash the process.
    // A closed bus reports nothing: its connections are going away on purpose.
    const errors = options.connectionErrors ?? new OutageLog(createLogger('INFO', (line) => console.error(line)), 'redis');
    const uriForLogs = redactSecrets(uri, [uri]);
    for (const conn of [this.#cmd, this.#blocking]) {
      conn.on('error', (err: Error) => {
        if (!this.#closing) errors.error(err, { uri: uriForLogs });
      });
      conn.on('ready', () => {
        if (!this.#closing) errors.recovered({ uri: uriForLogs });
      });
    }
    this.#options = { maxLen: options.maxLen, checkpointKey: options.checkpointKey ?? 'mdp:checkpoints' };
  }

  async publish(stream: string, payloads: readonly string[], options: { readonly trim?: boolean } = {}): Promise<string[]> {
    if (payloads.length === 0) return [];
    const pipe = this.#cmd.pipeline();
    for (const payload of payloads) {
      if (options.trim === false) pipe.xadd(stream, '*', PAYLOAD_FIELD, payload);
      else pipe.xadd(stream, 'MAXLEN', '~', this.#options.maxLen, '*', PAYLOAD_FIELD, payload);
    }
    const results = (await pipe.exec()) ?? [];
    return results.map(([err, id]) => {
      if (err) throw err;
      return id as string;
    });
  }

  async publishMany(batches: ReadonlyMap<string, readonly string[]>): Promise<void> {
    const pipe = this.#cmd.pipeline();
    for (const [stream, payloads] of batches) {
      for (const payload of payloads) pipe.xadd(stream, 'MAXLEN', '~', this.#options.maxLen, '*', PAYLOAD_FIELD, payload);
    }
    if (pipe.length === 0) return;
    for (const [err] of (await pipe.exec()) ?? []) if (err) throw err;
  }

  async ensureGroup(stream: string, group: string): Promise<void> {
    try {
      await this.#cmd.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
    } catch (err) {
      if (!(err as Error).message.includes('BUSYGROUP')) throw err;
    }
  }

  async readNew(stream: string, group: string, consumer: string, count: number, blockMs: number): Promise<BusEntry[]> {
    const reply = (await this.#blocking.xreadgroup(
      'GROUP', group, consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', stream, '>',
    )) as [string, RawEntry[]][] | null;
    return reply?.[0]?.[1].map(toEntry) ?? [];
  }

  async readPending(stream: string, group: string, consumer: string, afterId: string, count: number): Promise<BusEntry[]> {
    const reply = (await this.#cmd.xreadgroup(
      'GROUP', group, consumer, 'COUNT', count, 'STREAMS', stream, afterId,
    )) as [string, RawEntry[]][] | null;
    const entries = reply?.[0]?.[1].map(toEntry) ?? [];
    if (entries.length === 0) return entries;
    // Reading pending entries again counts as a delivery; XPENDING tells how many so far.
    const first = entries[0].id, last = entries[entries.length - 1].id;
    const details = (await this.#cmd.xpending(stream, group, first, last, entries.length, consumer)) as [string, string, number, number][];
    const deliveries = new Map(details.map(([id, , , times]) => [id, times]));
    return entries.map((e) => ({ ...e, deliveries: deliveries.get(e.id) ?? 1 }));
  }

  async ack(stream: string, group: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.#cmd.xack(stream, group, ...ids);
  }

  async ackWithCheckpoint(stream: string, group: string, ids: readonly string[], checkpoint: number): Promise<void> {
    const tx = this.#cmd.multi();
    if (ids.length > 0) tx.xack(stream, group, ...ids);
    tx.hset(this.#options.checkpointKey, `${stream}|${group}`, String(checkpoint));
    const results = await tx.exec();
    for (const [err] of results ?? []) if (err) throw err;
  }

  async readCheckpoint(stream: string, group: string): Promise<number | undefined> {
    const value = await this.#cmd.hget(this.#options.checkpointKey, `${stream}|${group}`);
    return value === null ? undefined : Number(value);
  }

  async deadLetter(dlqStream: string, group: string, letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    const pipe = this.#cmd.pipeline();
    for (const l of letters) {
      // Never trimmed: a dead letter is the only copy of what failed.
      pipe.xadd(dlqStream, '*',
        'reason', l.reason, 'code', l.code, 'stream', l.sourceStream, 'id', l.sourceId, 'group', group,
        'deliveries', String(l.deliveries ?? 1), 'original', l.payload ?? '');
    }
    for (const [err] of (await pipe.exec()) ?? []) if (err) throw err;
    // Acknowledge only after every dead letter is durable in the DLQ stream.
    const bySource = new Map<string, string[]>();
    for (const l of letters) bySource.set(l.sourceStream, [...(bySource.get(l.sourceStream) ?? []), l.sourceId]);
    for (const [stream, ids] of bySource) await this.ack(stream, group, ids);
  }

  async pendingEntries(stream: string, group: string, count: number, consumer?: string): Promise<PendingEntry[]> {
    const args: (string | number)[] = [stream, group, 'IDLE', 0, '-', '+', count];
    if (consumer) args.push(consumer);
    const rows = (await this.#cmd.call('XPENDING', ...args)) as [string, string, number, number][];
    return rows.map(([id, owner, idleMs, deliveries]) => ({ id, consumer: owner, idleMs, deliveries }));
  }

  async claim(stream: string, group: string, consumer: string, minIdleMs: number, ids: readonly string[]): Promise<BusEntry[]> {
    if (ids.length === 0) return [];
    const reply = (await this.#cmd.xclaim(stream, group, consumer, minIdleMs, ...ids)) as RawEntry[];
    return reply.map(toEntry);
  }

  async lag(stream: string, group: string, nowMs: number): Promise<GroupLag> {
    const length = await this.#cmd.xlen(stream);
    if (length === 0) return { lagMs: 0, pending: 0, undelivered: 0, length };
    const groups = (await this.#cmd.xinfo('GROUPS', stream)) as (string | number | null)[][];
    const info = groups.map((g) => {
      const o: Record<string, string | number | null> = {};
      for (let i = 0; i < g.length; i += 2) o[String(g[i])] = g[i + 1] ?? null;
      return o;
    }).find((g) => g.name === group);
    if (!info) return { lagMs: 0, pending: 0, undelivered: length, length };
    const pending = Number(info.pending ?? 0);
    let oldestMs = Number.POSITIVE_INFINITY;
    if (pending > 0) {
      const summary = (await this.#cmd.xpending(stream, group)) as [number, string | null, string | null, unknown];
      if (summary[1]) oldestMs = streamIdMs(summary[1]);
    }
    const lastDelivered = String(info['last-delivered-id'] ?? '0-0');
    const next = (await this.#cmd.xrange(stream, `(${lastDelivered}`, '+', 'COUNT', 1)) as RawEntry[];
    let undelivered = 0;
    if (next.length > 0) {
      oldestMs = Math.min(oldestMs, streamIdMs(next[0][0]));
      undelivered = info.lag === null || info.lag === undefined ? 1 : Number(info.lag);
    }
    return { lagMs: Number.isFinite(oldestMs) ? Math.max(0, nowMs - oldestMs) : 0, pending, undelivered, length };
  }

  async added(stream: string): Promise<number> {
    try {
      const info = (await this.#cmd.xinfo('STREAM', stream)) as (string | number)[];
      const at = info.indexOf('entries-added');
      return at >= 0 ? Number(info[at + 1]) : Number(info[info.indexOf('length') + 1]);
    } catch (err) {
      if ((err as Error).message.includes('no such key')) return 0;
      throw err;
    }
  }

  async length(stream: string): Promise<number> {
    return this.#cmd.xlen(stream);
  }

  async tail(stream: string, limit: number): Promise<BusEntry[]> {
    const rows = (await this.#cmd.xrevrange(stream, '+', '-', 'COUNT', limit)) as RawEntry[];
    return rows.map(toEntry).reverse();
  }

  async dropStream(stream: string): Promise<void> {
    await this.#cmd.del(stream);
  }

  close(): Promise<void> {
    // One stored promise: concurrent and repeated calls all wait for the same shutdown.
    this.#closing ??= (async () => {
      this.#blocking.disconnect(); // interrupts a pending BLOCK read deliberately
      await this.#cmd.quit().catch(() => this.#cmd.disconnect());
    })();
    return this.#closing;
  }
}
