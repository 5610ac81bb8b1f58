import { Redis } from 'ioredis';
import type { Bus, BusEntry, DeadLetter, GroupLag, PendingEntry, StreamBacklog, UnreadLoss } from './bus.js';
import { deadLetterFields } from './bus.js';
import { redactSecrets } from '../config/redact.js';
import { compareStreamIds, streamIdMs } from './sharding.js';
import { FENCED_READ_SCRIPT } from './fenced-read.js';
import { LuaScript } from './lua-script.js';
import { OwnerFencedError } from '../contracts/index.js';
import { entriesRemovedSoFar, streamBacklog, takeUnreadLoss, trimAcknowledged } from './redis-retention.js';
import { OutageLog, SILENT_LOGGER } from '../telemetry/index.js';
import type { Logger } from '../telemetry/index.js';

export interface RedisBusOptions {
  /**
   * The retention bound per stream (`bus.redis.maxlen`): producers wait when a group's unacknowledged
   * backlog nears it; a stream no group reads is capped at it (`XADD MAXLEN ~`).
   */
  readonly maxLen: number;
  /** Hash where releases before 0.5 kept consumer checkpoints (read for upgrades only). */
  readonly checkpointKey?: string;
  /**
   * Where connection errors are reported (throttled, see {@link OutageLog}). Pass one to every bus
   * of a process so an outage is logged once; by default each bus has its own, on `log`.
   */
  readonly connectionErrors?: OutageLog;
  /** The process's logger (component `bus.redis`); by default nothing is logged. */
  readonly log?: Logger;
}

/** The fenced read (see {@link FENCED_READ_SCRIPT}), sent by SHA. */
const FENCED_READ = new LuaScript(FENCED_READ_SCRIPT);

/** How often a fenced read polls for new entries while it waits. */
const FENCED_POLL_MS = 20;

/** Where the read fence of (stream, group) lives: the newest epoch that read it. */
function fenceKey(stream: string, group: string): string {
  return `mdp:fence:${stream}|${group}`;
}

/** Field carrying the encoded event in every entry. */
const PAYLOAD_FIELD = 'd';
/** How long `publish` trusts what it saw of a stream's groups (whether to cap it). */
const GROUPS_SEEN_MS = 5000;

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

/** The fields of an entry as stored: its payload, or all the fields of a foreign entry. */
function entryFields(entry: BusEntry): string[] {
  if (entry.payload !== undefined) return [PAYLOAD_FIELD, entry.payload];
  const fields = JSON.parse(entry.foreign ?? '{}') as Record<string, string>;
  return Object.entries(fields).flat();
}

/**
 * Redis Streams implementation of {@link Bus} over ioredis. Commands share one connection;
 * blocking reads get their own, so `close()` can interrupt them and other commands never wait
 * behind a `BLOCK`.
 */
export class RedisBus implements Bus {
  readonly kind = 'redis' as const;
  readonly #cmd: Redis;
  readonly #blocking: Redis;
  readonly #options: Required<Omit<RedisBusOptions, 'connectionErrors' | 'log'>>;
  /** Per stream: whether it had consumer groups, and until when that is trusted. */
  readonly #groupsSeen = new Map<string, { readonly grouped: boolean; readonly untilMs: number }>();
  #closing: Promise<void> | undefined;

  constructor(uri: string, options: RedisBusOptions) {
    const redisOptions = { lazyConnect: false, maxRetriesPerRequest: 3, enableOfflineQueue: true, connectionName: 'mdp' };
    this.#cmd = new Redis(uri, redisOptions);
    // Reads fail like every other command when the server is gone: a read that waited forever would
    // never return to see a cancellation, so a worker could not shut down during an outage.
    this.#blocking = new Redis(uri, redisOptions);
    // ioredis retries by itself; without a listener an unreachable server would crash the process.
    // A closed bus reports nothing: its connections are going away on purpose.
    const errors = options.connectionErrors ?? new OutageLog((options.log ?? SILENT_LOGGER).child({ component: 'bus.redis' }), 'redis');
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

  /**
   * Whether appends to `stream` may cap it at the retention bound: only while no group reads it.
   * Seen at most {@link GROUPS_SEEN_MS} ago: a group created within that time can see `MAXLEN` trim
   * entries it has not read, which `takeUnreadLoss` then counts.
   */
  async #capped(stream: string): Promise<boolean> {
    const seen = this.#groupsSeen.get(stream);
    if (seen && seen.untilMs > Date.now()) return !seen.grouped;
    let grouped = false;
    try {
      grouped = ((await this.#cmd.xinfo('GROUPS', stream)) as unknown[]).length > 0;
    } catch (err) {
      if (!(err as Error).message.includes('no such key')) throw err;
    }
    this.#groupsSeen.set(stream, { grouped, untilMs: Date.now() + GROUPS_SEEN_MS });
    return !grouped;
  }

  async publish(stream: string, payloads: readonly string[], options: { readonly trim?: boolean } = {}): Promise<string[]> {
    if (payloads.length === 0) return [];
    const capped = options.trim !== false && (await this.#capped(stream));
    const pipe = this.#cmd.pipeline();
    for (const payload of payloads) {
      if (capped) pipe.xadd(stream, 'MAXLEN', '~', this.#options.maxLen, '*', PAYLOAD_FIELD, payload);
      else pipe.xadd(stream, '*', PAYLOAD_FIELD, payload);
    }
    const results = (await pipe.exec()) ?? [];
    return results.map(([err, id]) => {
      if (err) throw err;
      return id as string;
    });
  }

  async publishMany(batches: ReadonlyMap<string, readonly string[]>): Promise<void> {
    const capped = new Map<string, boolean>();
    for (const [stream, payloads] of batches) if (payloads.length > 0) capped.set(stream, await this.#capped(stream));
    const pipe = this.#cmd.pipeline();
    for (const [stream, payloads] of batches) {
      for (const payload of payloads) {
        if (capped.get(stream)) pipe.xadd(stream, 'MAXLEN', '~', this.#options.maxLen, '*', PAYLOAD_FIELD, payload);
        else pipe.xadd(stream, '*', PAYLOAD_FIELD, payload);
      }
    }
    if (pipe.length === 0) return;
    for (const [err] of (await pipe.exec()) ?? []) if (err) throw err;
  }

  async ensureGroup(stream: string, group: string): Promise<void> {
    try {
      // With a known read counter Redis can tell entries removed before the group read them.
      await this.#cmd.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM', 'ENTRIESREAD', await entriesRemovedSoFar(this.#cmd, stream));
      this.#groupsSeen.delete(stream);
    } catch (err) {
      if (!(err as Error).message.includes('BUSYGROUP')) throw err;
    }
  }

  async readNew(stream: string, group: string, consumer: string, count: number, blockMs: number, epoch?: number): Promise<BusEntry[]> {
    if (epoch === undefined) {
      const reply = (await this.#blocking.xreadgroup('GROUP', group, consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', stream, '>')) as
        [string, RawEntry[]][] | null;
      return reply?.[0]?.[1].map(toEntry) ?? [];
    }
    // A fenced read cannot block (it runs as a script): poll until entries come or blockMs is up.
    const until = Date.now() + blockMs;
    for (;;) {
      const entries = await this.#fencedRead(stream, group, consumer, count, '>', epoch);
      if (entries.length > 0 || Date.now() >= until || this.#closing) return entries;
      await new Promise((done) => setTimeout(done, Math.min(FENCED_POLL_MS, Math.max(1, until - Date.now()))));
    }
  }

  async readPending(stream: string, group: string, consumer: string, afterId: string, count: number, epoch?: number): Promise<BusEntry[]> {
    const entries =
      epoch === undefined
        ? (((await this.#cmd.xreadgroup('GROUP', group, consumer, 'COUNT', count, 'STREAMS', stream, afterId)) as [string, RawEntry[]][] | null)?.[0]?.[1].map(
            toEntry,
          ) ?? [])
        : await this.#fencedRead(stream, group, consumer, count, afterId, epoch);
    if (entries.length === 0) return entries;
    // Reading pending entries again counts as a delivery; XPENDING tells how many so far.
    const first = entries[0].id,
      last = entries[entries.length - 1].id;
    const details = (await this.#cmd.xpending(stream, group, first, last, entries.length, consumer)) as [string, string, number, number][];
    const deliveries = new Map(details.map(([id, , , times]) => [id, times]));
    return entries.map((e) => ({ ...e, deliveries: deliveries.get(e.id) ?? 1 }));
  }

  async #fencedRead(stream: string, group: string, consumer: string, count: number, from: string, epoch: number): Promise<BusEntry[]> {
    let reply: [string, RawEntry[]][] | null;
    try {
      reply = (await FENCED_READ.run(this.#cmd, [fenceKey(stream, group), stream], [epoch, group, consumer, count, from])) as [string, RawEntry[]][] | null;
    } catch (err) {
      const fenced = /^FENCED (\d+)/.exec((err as Error).message);
      if (fenced) throw new OwnerFencedError({ stream, group, owner: consumer, epoch }, { owner: '(a newer attempt)', epoch: Number(fenced[1]) });
      throw err;
    }
    return reply?.[0]?.[1].map(toEntry) ?? [];
  }

  async ack(stream: string, group: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.#cmd.xack(stream, group, ...ids);
  }

  async readCheckpoint(stream: string, group: string): Promise<number | undefined> {
    const value = await this.#cmd.hget(this.#options.checkpointKey, `${stream}|${group}`);
    return value === null ? undefined : Number(value);
  }

  async deadLetter(dlqStream: string, group: string, letters: readonly DeadLetter[], options: { readonly ack?: boolean } = {}): Promise<void> {
    if (letters.length === 0) return;
    const pipe = this.#cmd.pipeline();
    for (const l of letters) {
      // Never trimmed: a dead letter is the only copy of what failed.
      pipe.xadd(dlqStream, '*', ...Object.entries(deadLetterFields(l, group)).flat());
    }
    for (const [err] of (await pipe.exec()) ?? []) if (err) throw err;
    // Acknowledge only after every dead letter is durable in the DLQ stream.
    if (options.ack === false) return;
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

  async requeue(stream: string, group: string, entries: readonly BusEntry[]): Promise<string[]> {
    if (entries.length === 0) return [];
    const tx = this.#cmd.multi();
    for (const entry of entries) tx.xadd(stream, '*', ...entryFields(entry));
    tx.xack(stream, group, ...entries.map((e) => e.id));
    const results = (await tx.exec()) ?? [];
    for (const [err] of results) if (err) throw err;
    return results.slice(0, entries.length).map(([, id]) => id as string);
  }

  async lag(stream: string, group: string, nowMs: number): Promise<GroupLag> {
    const length = await this.#cmd.xlen(stream);
    if (length === 0) return { lagMs: 0, pending: 0, undelivered: 0, length };
    const groups = (await this.#cmd.xinfo('GROUPS', stream)) as (string | number | null)[][];
    const info = groups
      .map((g) => {
        const o: Record<string, string | number | null> = {};
        for (let i = 0; i < g.length; i += 2) o[String(g[i])] = g[i + 1] ?? null;
        return o;
      })
      .find((g) => g.name === group);
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
      // Redis' lag also counts entries removed before the group read them: never more than the stream holds.
      undelivered = info.lag === null || info.lag === undefined ? 1 : Math.min(Number(info.lag), length);
    }
    return { lagMs: Number.isFinite(oldestMs) ? Math.max(0, nowMs - oldestMs) : 0, pending, undelivered, length };
  }

  trimAcknowledged(stream: string): Promise<number> {
    return trimAcknowledged(this.#cmd, stream);
  }

  backlog(stream: string): Promise<StreamBacklog> {
    return streamBacklog(this.#cmd, stream, this.#options.maxLen);
  }

  takeUnreadLoss(stream: string, group: string): Promise<UnreadLoss> {
    return takeUnreadLoss(this.#cmd, stream, group);
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

  async readAfter(stream: string, afterId: string | undefined, count: number): Promise<BusEntry[]> {
    const rows = (await this.#cmd.xrange(stream, afterId === undefined ? '-' : `(${afterId}`, '+', 'COUNT', count)) as RawEntry[];
    return rows.map(toEntry);
  }

  compareIds(a: string, b: string): number {
    return compareStreamIds(a, b);
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
