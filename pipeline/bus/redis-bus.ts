import { Redis } from 'ioredis';
import type { Bus, BusEntry, DeadLetter, GroupLag, PendingEntry, StreamBacklog, UnreadLoss } from './bus.js';
import { deadLetterFields, fieldsAsText, fieldsFromText } from './bus.js';
import { redactSecrets } from '../config/redact.js';
import type { BusPayload, EventFormat } from './event-codec.js';
import { DEFAULT_EVENT_FORMAT, encodeEvent, isFrame, joinJsonFrame, packFrame, splitJsonFrame, splitPackedFrame } from './event-codec.js';
import { compareStreamIds, entryIdOf, frameEventId, streamIdMs } from './sharding.js';
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
  /** How `ShardPublisher` encodes events on this bus (default JSON, one event per entry). */
  readonly eventFormat?: EventFormat;
}

/** The fenced read (see {@link FENCED_READ_SCRIPT}), sent by SHA. */
const FENCED_READ = new LuaScript(FENCED_READ_SCRIPT);

/** How often a fenced read polls for new entries while it waits. */
const FENCED_POLL_MS = 20;

/** Where the read fence of (stream, group) lives: the newest epoch that read it. */
function fenceKey(stream: string, group: string): string {
  return `mdp:fence:${stream}|${group}`;
}

/**
 * Fields naming an entry's format (one per entry): `d` an event as JSON text, `m` an event as
 * msgpack, `f` a frame of JSON events (texts joined by `\n`), `F` a frame of msgpack events (one
 * array packed as records, see `packFrame`). An entry with none of them is foreign (a dead letter…).
 */
const JSON_FIELD = 'd';
const PACKED_FIELD = 'm';
const JSON_FRAME_FIELD = 'f';
const PACKED_FRAME_FIELD = 'F';
const CHAR = { d: 0x64, m: 0x6d, f: 0x66, F: 0x46 } as const;
/** How long `publish` trusts what it saw of a stream's groups (whether to cap it). */
const GROUPS_SEEN_MS = 5000;

/** An entry as Redis replies with Buffers: binary fields (msgpack) arrive intact. */
type RawEntry = [id: Buffer, fields: Buffer[] | null];
type ReadReply = [stream: Buffer, entries: RawEntry[]][] | null;

/** A field value kept beyond the reply: ioredis may hand out slices of a parser buffer it reuses. */
function ownBytes(value: Buffer): Buffer {
  return Buffer.from(value);
}

/**
 * An event of a msgpack frame: decoded already (the frame is one records array), with its own
 * msgpack bytes made only when asked for (a dead letter, the late stream, a requeue, `tail`).
 */
class PackedFrameEvent implements BusEntry {
  readonly payload = undefined;
  #packed: Uint8Array | undefined;

  constructor(
    readonly id: string,
    readonly value: unknown,
    readonly frame: { readonly entryId: string; readonly index: number },
    readonly deliveries?: number,
  ) {}

  get packed(): Uint8Array {
    return (this.#packed ??= encodeEvent(this.value, 'msgpack') as Uint8Array);
  }
}

/** The entry with its delivery count (a spread would drop a frame event's `packed` getter). */
function withDeliveries(entry: BusEntry, deliveries: number): BusEntry {
  return entry instanceof PackedFrameEvent ? new PackedFrameEvent(entry.id, entry.value, entry.frame, deliveries) : { ...entry, deliveries };
}

/** The events of stream entries as read: one {@link BusEntry} per event, a frame expanded in order. */
function toEntries(rows: readonly RawEntry[]): BusEntry[] {
  const out: BusEntry[] = [];
  for (const [rawId, fields] of rows) {
    const id = rawId.toString('latin1');
    if (!fields) {
      out.push({ id, payload: undefined });
      continue;
    }
    let known = false;
    for (let i = 0; i + 1 < fields.length && !known; i += 2) {
      const name = fields[i];
      if (name.length !== 1) continue;
      const value = fields[i + 1];
      known = true;
      switch (name[0]) {
        case CHAR.d:
          out.push({ id, payload: value.toString('utf8') });
          break;
        case CHAR.m:
          out.push({ id, payload: undefined, packed: ownBytes(value) });
          break;
        case CHAR.f:
          splitJsonFrame(value.toString('utf8')).forEach((text, index) =>
            out.push({ id: frameEventId(id, index), payload: text, frame: { entryId: id, index } }),
          );
          break;
        case CHAR.F: {
          const bytes = ownBytes(value);
          const split = splitPackedFrame(bytes);
          if (split.ok) split.values.forEach((value, index) => out.push(new PackedFrameEvent(frameEventId(id, index), value, { entryId: id, index })));
          else out.push({ id, payload: undefined, packed: bytes, undecodable: split.reason });
          break;
        }
        default:
          known = false;
      }
    }
    if (!known) {
      const pairs: [string, Buffer][] = [];
      for (let i = 0; i + 1 < fields.length; i += 2) pairs.push([fields[i].toString('utf8'), fields[i + 1]]);
      out.push({ id, payload: undefined, foreign: JSON.stringify(fieldsAsText(pairs)) });
    }
  }
  return out;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The fields an entry of a payload is stored with, and how many events it carries. */
function payloadFields(payload: BusPayload): [fields: [string, string | Buffer], events: number] {
  if (typeof payload === 'string') return [[JSON_FIELD, payload], 1];
  if (!isFrame(payload)) return [[PACKED_FIELD, asBuffer(payload)], 1];
  const events = 'frame' in payload ? payload.frame.length : payload.values.length;
  if (events === 0) throw new Error('an event frame needs at least one event');
  return ['frame' in payload ? [JSON_FRAME_FIELD, joinJsonFrame(payload.frame)] : [PACKED_FRAME_FIELD, asBuffer(packFrame(payload.values))], events];
}

/** The fields of an entry as stored (an event of a frame as an entry of its own), or all the fields of a foreign entry. */
function entryFields(entry: BusEntry): (string | Buffer)[] {
  if (entry.undecodable !== undefined && entry.packed !== undefined) return [PACKED_FRAME_FIELD, asBuffer(entry.packed)];
  if (entry.payload !== undefined) return [JSON_FIELD, entry.payload];
  if (entry.packed !== undefined) return [PACKED_FIELD, asBuffer(entry.packed)];
  const fields = JSON.parse(entry.foreign ?? '{}') as Record<string, string>;
  return fieldsFromText(fields).flat();
}

/**
 * Redis Streams implementation of {@link Bus} over ioredis. Commands share one connection;
 * blocking reads get their own, so `close()` can interrupt them and other commands never wait
 * behind a `BLOCK`.
 */
export class RedisBus implements Bus {
  readonly kind = 'redis' as const;
  readonly eventFormat: EventFormat;
  readonly #cmd: Redis;
  readonly #blocking: Redis;
  readonly #options: Required<Omit<RedisBusOptions, 'connectionErrors' | 'log' | 'eventFormat'>>;
  /** Per stream: whether it had consumer groups, and until when that is trusted. */
  readonly #groupsSeen = new Map<string, { readonly grouped: boolean; readonly untilMs: number }>();
  /**
   * Per (stream, group): the frame entries this bus delivered and the indexes of their events not
   * acknowledged yet. An entry is XACKed when its last event is.
   */
  readonly #openFrames = new Map<string, Map<string, Set<number>>>();
  /** Per stream: the most events one entry was seen to carry (reads ask for `count` / that entries). */
  readonly #eventsPerEntry = new Map<string, number>();
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
    this.eventFormat = options.eventFormat ?? DEFAULT_EVENT_FORMAT;
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

  async publish(stream: string, payloads: readonly BusPayload[], options: { readonly trim?: boolean } = {}): Promise<string[]> {
    if (payloads.length === 0) return [];
    const capped = options.trim !== false && (await this.#capped(stream));
    const pipe = this.#cmd.pipeline();
    const sizes: number[] = [];
    for (const payload of payloads) {
      const [fields, events] = payloadFields(payload);
      sizes.push(events);
      if (capped) pipe.xadd(stream, 'MAXLEN', '~', this.#options.maxLen, '*', ...fields);
      else pipe.xadd(stream, '*', ...fields);
    }
    const results = (await pipe.exec()) ?? [];
    return results.flatMap(([err, id], i) => {
      if (err) throw err;
      const entryId = id as string;
      return isFrame(payloads[i]) ? Array.from({ length: sizes[i] }, (_, k) => frameEventId(entryId, k)) : [entryId];
    });
  }

  async publishMany(batches: ReadonlyMap<string, readonly BusPayload[]>): Promise<void> {
    const capped = new Map<string, boolean>();
    for (const [stream, payloads] of batches) if (payloads.length > 0) capped.set(stream, await this.#capped(stream));
    const pipe = this.#cmd.pipeline();
    for (const [stream, payloads] of batches) {
      for (const payload of payloads) {
        const [fields] = payloadFields(payload);
        if (capped.get(stream)) pipe.xadd(stream, 'MAXLEN', '~', this.#options.maxLen, '*', ...fields);
        else pipe.xadd(stream, '*', ...fields);
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

  /**
   * Stream entries to ask for so that about `count` events come back (frames carry several): by the
   * largest frame seen on the stream, so a read exceeds `count` by less than one frame. Before the
   * first read of a stream, its newest entry tells (the writer's frame size is not the reader's config).
   */
  async #entriesFor(stream: string, count: number): Promise<number> {
    let perEntry = this.#eventsPerEntry.get(stream);
    if (perEntry === undefined) {
      const newest = (await this.#cmd.callBuffer('XREVRANGE', stream, '+', '-', 'COUNT', 1)) as RawEntry[];
      perEntry = Math.max(1, this.eventFormat.frameEvents, toEntries(newest).length);
      this.#eventsPerEntry.set(stream, perEntry);
    }
    return Math.max(1, Math.floor(count / perEntry));
  }

  /** The open frames of (stream, group) (see {@link RedisBus.#openFrames}), made when `create` and missing. */
  #framesOf(stream: string, group: string, create: true): Map<string, Set<number>>;
  #framesOf(stream: string, group: string, create: false): Map<string, Set<number>> | undefined;
  #framesOf(stream: string, group: string, create: boolean): Map<string, Set<number>> | undefined {
    const key = `${stream}\u0000${group}`;
    let frames = this.#openFrames.get(key);
    if (frames === undefined && create) this.#openFrames.set(key, (frames = new Map<string, Set<number>>()));
    return frames;
  }

  /**
   * The events of entries delivered to the group: frames expanded, their events recorded as open
   * until acknowledged (see {@link RedisBus.ack}).
   */
  #delivered(stream: string, group: string, rows: readonly RawEntry[] | undefined): BusEntry[] {
    if (!rows || rows.length === 0) return [];
    const entries = toEntries(rows);
    let open: Map<string, Set<number>> | undefined;
    const known = this.#eventsPerEntry.get(stream) ?? 1;
    let most = known;
    for (const entry of entries) {
      if (!entry.frame) continue;
      open ??= this.#framesOf(stream, group, true);
      let events = open.get(entry.frame.entryId);
      if (!events) open.set(entry.frame.entryId, (events = new Set()));
      events.add(entry.frame.index);
      most = Math.max(most, entry.frame.index + 1);
    }
    if (known !== most) this.#eventsPerEntry.set(stream, most);
    return entries;
  }

  async readNew(stream: string, group: string, consumer: string, count: number, blockMs: number, epoch?: number): Promise<BusEntry[]> {
    const entries = await this.#entriesFor(stream, count);
    if (epoch === undefined) {
      const reply = (await this.#blocking.callBuffer(
        'XREADGROUP',
        'GROUP',
        group,
        consumer,
        'COUNT',
        entries,
        'BLOCK',
        blockMs,
        'STREAMS',
        stream,
        '>',
      )) as ReadReply;
      return this.#delivered(stream, group, reply?.[0]?.[1]);
    }
    // A fenced read cannot block (it runs as a script): poll until entries come or blockMs is up.
    const until = Date.now() + blockMs;
    for (;;) {
      const read = await this.#fencedRead(stream, group, consumer, entries, '>', epoch);
      if (read.length > 0 || Date.now() >= until || this.#closing) return read;
      await new Promise((done) => setTimeout(done, Math.min(FENCED_POLL_MS, Math.max(1, until - Date.now()))));
    }
  }

  /** Reads whole entries (every event of a frame): `afterId` of a frame's event continues after that frame. */
  async readPending(stream: string, group: string, consumer: string, afterId: string, count: number, epoch?: number): Promise<BusEntry[]> {
    const from = entryIdOf(afterId);
    const size = await this.#entriesFor(stream, count);
    const entries =
      epoch === undefined
        ? this.#delivered(
            stream,
            group,
            ((await this.#cmd.callBuffer('XREADGROUP', 'GROUP', group, consumer, 'COUNT', size, 'STREAMS', stream, from)) as ReadReply)?.[0]?.[1],
          )
        : await this.#fencedRead(stream, group, consumer, size, from, epoch);
    if (entries.length === 0) return entries;
    // Reading pending entries again counts as a delivery; XPENDING tells how many so far (one count per entry, shared by a frame's events).
    const first = entryIdOf(entries[0].id),
      last = entryIdOf(entries[entries.length - 1].id);
    const details = (await this.#cmd.xpending(stream, group, first, last, entries.length, consumer)) as [string, string, number, number][];
    const deliveries = new Map(details.map(([id, , , times]) => [id, times]));
    return entries.map((e) => withDeliveries(e, deliveries.get(e.frame?.entryId ?? e.id) ?? 1));
  }

  async #fencedRead(stream: string, group: string, consumer: string, count: number, from: string, epoch: number): Promise<BusEntry[]> {
    let reply: ReadReply;
    try {
      reply = (await FENCED_READ.runBuffer(this.#cmd, [fenceKey(stream, group), stream], [epoch, group, consumer, count, from])) as ReadReply;
    } catch (err) {
      const fenced = /^FENCED (\d+)/.exec((err as Error).message);
      if (fenced) throw new OwnerFencedError({ stream, group, owner: consumer, epoch }, { owner: '(a newer attempt)', epoch: Number(fenced[1]) });
      throw err;
    }
    return this.#delivered(stream, group, reply?.[0]?.[1]);
  }

  /** The entry ids to XACK for these acknowledged ids: plain ids as they are, a frame's once its last open event is acknowledged. */
  #settled(stream: string, group: string, ids: readonly string[]): string[] {
    const open = this.#framesOf(stream, group, false);
    const out: string[] = [];
    for (const id of ids) {
      const slash = id.indexOf('/');
      if (slash < 0) {
        out.push(id);
        open?.delete(id);
        continue;
      }
      const entryId = id.slice(0, slash);
      const events = open?.get(entryId);
      // Not open here: acknowledged already (a double ack), or never delivered to this bus.
      if (!events) continue;
      events.delete(Number(id.slice(slash + 1)));
      if (events.size === 0) {
        open!.delete(entryId);
        out.push(entryId);
      }
    }
    return out;
  }

  async ack(stream: string, group: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const entries = this.#settled(stream, group, ids);
    if (entries.length > 0) await this.#cmd.xack(stream, group, ...entries);
  }

  async readCheckpoint(stream: string, group: string): Promise<number | undefined> {
    const value = await this.#cmd.hget(this.#options.checkpointKey, `${stream}|${group}`);
    return value === null ? undefined : Number(value);
  }

  async deadLetter(dlqStream: string, group: string, letters: readonly DeadLetter[], options: { readonly ack?: boolean } = {}): Promise<void> {
    if (letters.length === 0) return;
    const pipe = this.#cmd.pipeline();
    for (const l of letters) {
      // Never trimmed: a dead letter is the only copy of what failed (msgpack bytes kept as bytes).
      pipe.xadd(dlqStream, '*', ...Object.entries(deadLetterFields(l, group)).flatMap(([k, v]) => [k, typeof v === 'string' ? v : asBuffer(v)]));
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
    const reply = (await this.#cmd.callBuffer('XCLAIM', stream, group, consumer, minIdleMs, ...ids.map(entryIdOf))) as RawEntry[];
    return this.#delivered(stream, group, reply);
  }

  async requeue(stream: string, group: string, entries: readonly BusEntry[]): Promise<string[]> {
    if (entries.length === 0) return [];
    const tx = this.#cmd.multi();
    for (const entry of entries) tx.xadd(stream, '*', ...entryFields(entry));
    const originals = [...new Set(entries.map((e) => e.frame?.entryId ?? e.id))];
    tx.xack(stream, group, ...originals);
    const results = (await tx.exec()) ?? [];
    for (const [err] of results) if (err) throw err;
    const open = this.#framesOf(stream, group, false);
    for (const id of originals) open?.delete(id);
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
    const next = (await this.#cmd.xrange(stream, `(${lastDelivered}`, '+', 'COUNT', 1)) as [string, string[]][];
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
    const rows = (await this.#cmd.callBuffer('XREVRANGE', stream, '+', '-', 'COUNT', limit)) as RawEntry[];
    return toEntries(rows.reverse());
  }

  async readAfter(stream: string, afterId: string | undefined, count: number): Promise<BusEntry[]> {
    // After an event of a frame: after its whole entry (a read returns whole frames).
    const rows = (await this.#cmd.callBuffer('XRANGE', stream, afterId === undefined ? '-' : `(${entryIdOf(afterId)}`, '+', 'COUNT', count)) as RawEntry[];
    return toEntries(rows);
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
