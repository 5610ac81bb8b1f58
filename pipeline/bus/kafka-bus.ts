import { createHash } from 'node:crypto';
import type { Broker, ClusterMetadata, Connection } from '@platformatic/kafka';
import {
  Admin,
  Consumer,
  ConnectionPool,
  FindCoordinatorKeyTypes,
  findErrorBy,
  offsetCommitV8,
  ProduceAcks,
  Producer,
  stringSerializer,
} from '@platformatic/kafka';
import type { Bus, BusEntry, DeadLetter, GroupLag, PendingEntry, StreamBacklog, UnreadLoss } from './bus.js';
import { deadLetterFields, fieldsAsText } from './bus.js';
import type { BusPayload, EventFormat } from './event-codec.js';
import { DEFAULT_EVENT_FORMAT, encodeEvent, isFrame } from './event-codec.js';
import { OwnerFencedError } from '../contracts/index.js';
import type { CursorMeta } from './kafka-cursor.js';
import { decodeCursorMeta, encodeCursorMeta, PartitionCursor } from './kafka-cursor.js';

export interface KafkaBusOptions {
  /** Bootstrap brokers, `host:port`. */
  readonly brokers: readonly string[];
  readonly clientId: string;
  /** Partitions of a sharded topic (`bus.shards`). */
  readonly partitions: number;
  /** Base names of the sharded streams: `<base>.<n>` is partition n of topic `<base>`. */
  readonly sharded: readonly string[];
  readonly replicationFactor: number;
  /** `retention.ms` of the topics this bus creates. */
  readonly retentionMs: number;
  /** Most records a group may have unconsumed on a partition (producers wait at 90% of it). */
  readonly maxBacklog: number;
  /** How `ShardPublisher` encodes events (frames are written as one record per event: Kafka batches records itself). */
  readonly eventFormat?: EventFormat;
}

/** Where a stream lives on Kafka. */
interface Location {
  readonly topic: string;
  readonly partition: number;
  /** Partitions the topic is created with. */
  readonly partitions: number;
}

interface RawRecord {
  readonly offset: bigint;
  readonly timestampMs: number;
  readonly entry: BusEntry;
}

/** Header marking a record whose value is a JSON object of fields (a dead letter), not an event. */
const FIELDS_HEADER = 'mdp-fields';
/** Header saying how a record's value is encoded: `msgpack`; absent, JSON text. */
const ENCODING_HEADER = 'mdp-encoding';
const MSGPACK = 'msgpack';

/** A record value as produced: JSON text, or msgpack bytes (with the encoding header). */
type RecordValue = string | Uint8Array;

/** Strings as UTF-8, bytes as they are. */
const SERIALIZERS = {
  key: stringSerializer,
  value: (value?: RecordValue): Buffer | undefined =>
    value === undefined ? undefined : typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value.buffer, value.byteOffset, value.byteLength),
  headerKey: stringSerializer,
  headerValue: stringSerializer,
};

/**
 * Most value bytes of one produce request. The broker refuses a partition's record batch above its
 * `message.max.bytes` (1 MiB by default), which one window's feature snapshots of 2,500 symbols
 * exceed: every send is cut into requests of at most this much, sent in order.
 */
export const PRODUCE_MAX_BYTES = 512 * 1024;

type OutRecord = { topic: string; partition: number; value: RecordValue; headers?: Record<string, string> };

/** Records cut into consecutive runs of at most {@link PRODUCE_MAX_BYTES} of values (a larger record alone). */
export function produceChunks<T extends { readonly value: RecordValue }>(records: readonly T[], maxBytes = PRODUCE_MAX_BYTES): T[][] {
  const chunks: T[][] = [];
  let chunk: T[] = [];
  let bytes = 0;
  for (const record of records) {
    const size = typeof record.value === 'string' ? Buffer.byteLength(record.value) : record.value.byteLength;
    if (chunk.length > 0 && bytes + size > maxBytes) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(record);
    bytes += size;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/** The records of payloads: a frame's events one record each (Kafka carries record batches already). */
function recordsOf(loc: Location, payloads: readonly BusPayload[]): OutRecord[] {
  const out: OutRecord[] = [];
  const add = (value: RecordValue) =>
    out.push(
      typeof value === 'string'
        ? { topic: loc.topic, partition: loc.partition, value }
        : { topic: loc.topic, partition: loc.partition, value, headers: { [ENCODING_HEADER]: MSGPACK } },
    );
  for (const payload of payloads) {
    if (isFrame(payload)) for (const event of 'frame' in payload ? payload.frame : payload.values.map((v) => encodeEvent(v, 'msgpack'))) add(event);
    else add(payload);
  }
  return out;
}
/** How long the list of consumer groups is trusted (backlog). */
const GROUPS_SEEN_MS = 5000;
/** Bytes fetched per partition and round: ~4,000 typical events. */
const FETCH_MAX_BYTES = 1 << 20;
const EARLIEST = -2n;
const LATEST = -1n;

/** A Kafka topic name for a stream name: Kafka allows letters, digits, `.`, `_` and `-`, at most 249 characters. */
export function topicName(stream: string): string {
  const clean = stream.replace(/[^A-Za-z0-9._-]/g, '_');
  if (clean.length <= 200) return clean;
  return `${clean.slice(0, 180)}-${createHash('sha256').update(stream).digest('hex').slice(0, 16)}`;
}

const cursorKey = (topic: string, partition: number, group: string) => `${topic}\u0000${partition}\u0000${group}`;

function fenced(loc: Location, group: string, consumer: string, epoch: number, newer: number): OwnerFencedError {
  return new OwnerFencedError({ stream: `${loc.topic}[${loc.partition}]`, group, owner: consumer, epoch }, { owner: '(a newer attempt)', epoch: newer });
}

/**
 * Kafka implementation of {@link Bus} over `@platformatic/kafka`. A shard's stream is a partition
 * of its topic (`mdp.events.3` → topic `mdp.events`, partition 3); every other stream is a
 * one-partition topic. Ids are offsets. Partitions are assigned explicitly, never by group
 * rebalancing: the shard's Temporal workflow is the one owner. The group's committed offset is the
 * first record not yet acknowledged, and its metadata ({@link CursorMeta}) holds what Redis keeps
 * in a group's pending list: how far records were delivered, how often, and which were
 * acknowledged out of order. So a restarted owner re-reads exactly its unacknowledged records
 * first, with delivery counts, and `kafka-consumer-groups --describe` shows every group's lag.
 * Producing is idempotent with `acks=all`.
 */
export class KafkaBus implements Bus {
  readonly kind = 'kafka' as const;
  readonly eventFormat: EventFormat;
  readonly #o: KafkaBusOptions;
  readonly #admin: Admin;
  readonly #producer: Producer<string, RecordValue, string, string>;
  readonly #consumer: Consumer;
  readonly #pool: ConnectionPool;
  readonly #topics = new Map<string, Promise<void>>();
  readonly #cursors = new Map<string, PartitionCursor>();
  /** Per cursor: the next offset `readNew` fetches, and records fetched past what was returned. */
  readonly #next = new Map<string, bigint>();
  readonly #buffered = new Map<string, RawRecord[]>();
  /** Per cursor: records skipped because retention deleted them before they were read, not yet reported. */
  readonly #skipped = new Map<string, number>();
  readonly #coordinators = new Map<string, Broker>();
  #groups: { readonly names: readonly string[]; readonly untilMs: number } | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: KafkaBusOptions) {
    this.#o = options;
    this.eventFormat = options.eventFormat ?? DEFAULT_EVENT_FORMAT;
    const base = { clientId: options.clientId, bootstrapBrokers: [...options.brokers], retries: 3, retryDelay: 250 };
    this.#admin = new Admin(base);
    // The idempotent producer needs the transaction coordinator, which a restarted broker loads a
    // few seconds after it answers: the producer waits that long rather than fail the publish.
    this.#producer = new Producer({ ...base, retries: 12, retryDelay: 300, serializers: SERIALIZERS, idempotent: true, acks: ProduceAcks.ALL });
    this.#consumer = new Consumer({ ...base, groupId: `${options.clientId}-reader` });
    this.#pool = new ConnectionPool(options.clientId);
  }

  /** The topic and partition of a stream. */
  locate(stream: string): Location {
    for (const base of this.#o.sharded) {
      if (!stream.startsWith(`${base}.`)) continue;
      const rest = stream.slice(base.length + 1);
      if (/^\d+$/.test(rest) && Number(rest) < this.#o.partitions) return { topic: topicName(base), partition: Number(rest), partitions: this.#o.partitions };
    }
    return { topic: topicName(stream), partition: 0, partitions: 1 };
  }

  /** Creates the topic when missing; checks a sharded topic has a partition per shard. */
  #ensureTopic(loc: Location): Promise<void> {
    let ready = this.#topics.get(loc.topic);
    if (!ready) {
      ready = this.#createTopic(loc);
      this.#topics.set(loc.topic, ready);
      ready.catch(() => this.#topics.delete(loc.topic));
    }
    return ready;
  }

  async #createTopic(loc: Location): Promise<void> {
    try {
      await this.#admin.createTopics({
        topics: [loc.topic],
        partitions: loc.partitions,
        replicas: this.#o.replicationFactor,
        configs: [
          { name: 'retention.ms', value: String(this.#o.retentionMs) },
          // acks=all then means every in-sync replica, at least two of them when there are three.
          { name: 'min.insync.replicas', value: String(Math.min(2, this.#o.replicationFactor)) },
        ],
      });
    } catch (err) {
      if (!findErrorBy(err as Error, 'apiId', 'TOPIC_ALREADY_EXISTS')) throw err;
    }
    const metadata = await this.#metadata([loc.topic], true);
    const have = metadata.topics.get(loc.topic)?.partitionsCount ?? 0;
    if (have < loc.partitions) {
      throw new Error(
        `Kafka topic ${loc.topic} has ${have} partition(s) but bus.shards is ${loc.partitions}: one partition per shard is needed ` +
          `(add partitions with kafka-topics --alter --partitions ${loc.partitions}, knowing symbols then move to other shards)`,
      );
    }
  }

  #metadata(topics: string[], forceUpdate = false): Promise<ClusterMetadata> {
    return this.#consumer.metadata({ topics, forceUpdate });
  }

  async #topicExists(topic: string): Promise<boolean> {
    return (await this.#admin.listTopics()).includes(topic);
  }

  // ---------------------------------------------------------------------------------------------
  // Producing

  async publish(stream: string, payloads: readonly BusPayload[]): Promise<string[]> {
    if (payloads.length === 0) return [];
    const loc = this.locate(stream);
    await this.#ensureTopic(loc);
    const ids: string[] = [];
    for (const messages of produceChunks(recordsOf(loc, payloads))) {
      const result = await this.#producer.send({ messages });
      const base = result.offsets?.find((o) => o.topic === loc.topic && o.partition === loc.partition)?.offset;
      if (base === undefined) throw new Error(`Kafka did not report the offsets of ${messages.length} record(s) sent to ${loc.topic}[${loc.partition}]`);
      for (let i = 0; i < messages.length; i++) ids.push(String(base + BigInt(i)));
    }
    return ids;
  }

  async publishMany(batches: ReadonlyMap<string, readonly BusPayload[]>): Promise<void> {
    const messages: OutRecord[] = [];
    for (const [stream, payloads] of batches) {
      if (payloads.length === 0) continue;
      const loc = this.locate(stream);
      await this.#ensureTopic(loc);
      messages.push(...recordsOf(loc, payloads));
    }
    for (const chunk of produceChunks(messages)) await this.#producer.send({ messages: chunk });
  }

  // ---------------------------------------------------------------------------------------------
  // Offsets and the group's cursor

  async #offsets(loc: Location, timestamp: bigint): Promise<bigint> {
    const [topic] = await this.#admin.listOffsets({ topics: [{ name: loc.topic, partitions: [{ partitionIndex: loc.partition, timestamp }] }] });
    return topic?.partitions.find((p) => p.partitionIndex === loc.partition)?.offset ?? 0n;
  }

  /** The log's first and next offsets. */
  async #bounds(loc: Location): Promise<{ start: bigint; end: bigint }> {
    const [start, end] = await Promise.all([this.#offsets(loc, EARLIEST), this.#offsets(loc, LATEST)]);
    return { start, end };
  }

  /** The group's committed offset (undefined: none) and its metadata. */
  async #committed(loc: Location, group: string): Promise<{ offset: bigint | undefined; meta: string | null }> {
    const [g] = await this.#admin.listConsumerGroupOffsets({ groups: [{ groupId: group, topics: [{ name: loc.topic, partitionIndexes: [loc.partition] }] }] });
    const p = g?.topics.find((t) => t.name === loc.topic)?.partitions.find((x) => x.partitionIndex === loc.partition);
    return { offset: p === undefined || p.committedOffset < 0n ? undefined : p.committedOffset, meta: p?.metadata ?? null };
  }

  /** The group's cursor on the partition: cached, or read from the group's committed offset (`fresh`: always read). */
  async #cursor(loc: Location, group: string, fresh = false): Promise<PartitionCursor> {
    const key = cursorKey(loc.topic, loc.partition, group);
    const known = this.#cursors.get(key);
    if (known && !fresh) return known;
    const committed = await this.#committed(loc, group);
    const start = committed.offset ?? (await this.#offsets(loc, EARLIEST));
    const cursor = new PartitionCursor(start, decodeCursorMeta(committed.meta, start));
    this.#cursors.set(key, cursor);
    this.#next.set(key, cursor.high);
    this.#buffered.delete(key);
    return cursor;
  }

  async #coordinator(group: string, refresh = false): Promise<Broker> {
    const known = this.#coordinators.get(group);
    if (known && !refresh) return known;
    const [found] = await this.#admin.findCoordinator({ keyType: FindCoordinatorKeyTypes.GROUP, keys: [group] });
    if (!found) throw new Error(`Kafka found no coordinator for consumer group ${group}`);
    const broker = { host: found.host, port: found.port };
    this.#coordinators.set(group, broker);
    return broker;
  }

  /**
   * Commits the cursor as the group's offset, with its metadata, like a consumer outside any group
   * generation (explicit assignment): `kafka-consumer-groups` shows it.
   */
  async #commit(loc: Location, group: string, cursor: PartitionCursor, extra: { consumer?: string } = {}): Promise<void> {
    if (cursor.epoch !== undefined) {
      // Kafka cannot compare-and-set an offset: an owner looks before it commits, so one that was
      // superseded (it froze, a retry took the shard) stops instead of rewinding its successor's
      // position. What is left is a race of one round trip, and a rewind only re-delivers records
      // the store's position recognises; the store's own fence keeps every row right.
      const held = await this.#committed(loc, group);
      const heldEpoch = held.offset === undefined ? undefined : decodeCursorMeta(held.meta, held.offset).epoch;
      if (heldEpoch !== undefined && heldEpoch > cursor.epoch) {
        const mine = cursor.epoch;
        cursor.epoch = heldEpoch;
        throw fenced(loc, group, extra.consumer ?? cursor.consumer ?? '(this owner)', mine, heldEpoch);
      }
    }
    const meta = encodeCursorMeta(cursor.meta(), { ...extra, atMs: Date.now() });
    for (let attempt = 0; ; attempt++) {
      const connection: Connection = await this.#pool.get(await this.#coordinator(group, attempt > 0));
      try {
        const reply = await offsetCommitV8.api.async(connection, group, -1, '', null, [
          {
            name: loc.topic,
            partitions: [{ partitionIndex: loc.partition, committedOffset: cursor.committed, committedLeaderEpoch: -1, committedMetadata: meta }],
          },
        ]);
        const code = reply.topics[0]?.partitions[0]?.errorCode ?? 0;
        if (code !== 0) throw new Error(`Kafka refused the offset commit of group ${group} on ${loc.topic}[${loc.partition}] (error code ${code})`);
        return;
      } catch (err) {
        // The coordinator moved (or was not ready yet): find it again once.
        if (attempt >= 2) throw err;
        await new Promise((done) => setTimeout(done, 100 * (attempt + 1)));
      }
    }
  }

  async ensureGroup(stream: string, group: string): Promise<void> {
    const loc = this.locate(stream);
    await this.#ensureTopic(loc);
    const committed = await this.#committed(loc, group);
    if (committed.offset !== undefined) return;
    // A new group starts at the log's first record, like a Redis group created at 0; committing it
    // makes the group visible to Kafka's tools at once.
    const start = await this.#offsets(loc, EARLIEST);
    await this.#commit(loc, group, new PartitionCursor(start, decodeCursorMeta(null, start)));
  }

  // ---------------------------------------------------------------------------------------------
  // Reading

  /** Records of the partition from `from`, at most `maxBytes` worth, waiting up to `waitMs` for the first. */
  async #fetch(loc: Location, from: bigint, waitMs: number, maxBytes = FETCH_MAX_BYTES): Promise<RawRecord[]> {
    const metadata = await this.#metadata([loc.topic]);
    const topic = metadata.topics.get(loc.topic);
    if (!topic) throw new Error(`Kafka topic ${loc.topic} does not exist`);
    const partition = { partition: loc.partition, fetchOffset: from, partitionMaxBytes: maxBytes, currentLeaderEpoch: -1, lastFetchedEpoch: -1 };
    const response = await this.#consumer.fetch({
      node: topic.partitions[loc.partition].leader,
      maxWaitTime: waitMs,
      minBytes: 1,
      maxBytes,
      topics: [{ topicId: topic.id, partitions: [partition] }],
    });
    const out: RawRecord[] = [];
    for (const t of response.responses) {
      for (const p of t.partitions) {
        if (p.partitionIndex !== loc.partition) continue;
        for (const batch of p.records ?? []) {
          for (const record of batch.records) {
            const offset = batch.firstOffset + BigInt(record.offsetDelta);
            if (offset < from) continue;
            const asFields = record.headers.some(([k]) => k?.toString() === FIELDS_HEADER);
            const packed = record.headers.some(([k, v]) => k?.toString() === ENCODING_HEADER && v?.toString() === MSGPACK);
            const id = String(offset);
            let entry: BusEntry;
            if (record.value === undefined || record.value === null) entry = { id, payload: undefined, foreign: '{}' };
            else if (packed && !asFields) entry = { id, payload: undefined, packed: Buffer.from(record.value) };
            else if (asFields) entry = { id, payload: undefined, foreign: record.value.toString('utf8') };
            else entry = { id, payload: record.value.toString('utf8') };
            out.push({ offset, timestampMs: Number(batch.firstTimestamp + record.timestampDelta), entry });
          }
        }
      }
    }
    return out;
  }

  /**
   * Like {@link KafkaBus.#fetch}, but when the offset is no longer in the log (retention deleted it
   * before the group read it) moves the cursor to the log's start and counts the records skipped,
   * which {@link KafkaBus.takeUnreadLoss} reports.
   */
  async #fetchFor(loc: Location, group: string, cursor: PartitionCursor, from: bigint, waitMs: number): Promise<{ records: RawRecord[]; from: bigint }> {
    try {
      return { records: await this.#fetch(loc, from, waitMs), from };
    } catch (err) {
      if (!findErrorBy(err as Error, 'apiId', 'OFFSET_OUT_OF_RANGE')) throw err;
      const { start, end } = await this.#bounds(loc);
      if (from >= start && from <= end) throw err;
      const key = cursorKey(loc.topic, loc.partition, group);
      if (from < start) {
        this.#skipped.set(key, (this.#skipped.get(key) ?? 0) + Number(start - cursor.committed));
        cursor.skipTo(start);
        return { records: await this.#fetch(loc, start, waitMs), from: start };
      }
      throw new Error(
        `the group ${group} is at offset ${from} of ${loc.topic}[${loc.partition}], past its end ${end}: the topic was deleted and created again`,
      );
    }
  }

  #check(loc: Location, group: string, consumer: string, cursor: PartitionCursor, epoch: number | undefined): void {
    if (epoch === undefined) return;
    if (cursor.epoch !== undefined && cursor.epoch > epoch) throw fenced(loc, group, consumer, epoch, cursor.epoch);
    cursor.epoch = epoch;
  }

  async readPending(stream: string, group: string, consumer: string, afterId: string, count: number, epoch?: number): Promise<BusEntry[]> {
    const loc = this.locate(stream);
    const fromStart = afterId === '0' || afterId === '0-0';
    // A new run starts from what Kafka holds: that is what the previous attempt left.
    const cursor = await this.#cursor(loc, group, fromStart);
    this.#check(loc, group, consumer, cursor, epoch);
    if (cursor.high <= cursor.committed) return [];
    if (fromStart) {
      // These records are delivered once more: counted (and committed) before anyone sees them,
      // so a record that crashes its consumer every time reaches bus.max_deliveries.
      cursor.deliveries = Math.max(1, cursor.deliveries) + 1;
      await this.#commit(loc, group, cursor, { consumer });
    }
    const out: BusEntry[] = [];
    let from = fromStart ? cursor.committed : BigInt(afterId) + 1n;
    while (out.length < count && from < cursor.high) {
      const got = await this.#fetchFor(loc, group, cursor, from < cursor.committed ? cursor.committed : from, 0);
      if (got.records.length === 0) break;
      for (const r of got.records) {
        if (r.offset >= cursor.high || out.length >= count) break;
        if (!cursor.isAcked(r.offset)) out.push({ ...r.entry, deliveries: cursor.deliveries });
      }
      from = got.records[got.records.length - 1].offset + 1n;
    }
    return out;
  }

  async readNew(stream: string, group: string, consumer: string, count: number, blockMs: number, epoch?: number): Promise<BusEntry[]> {
    const loc = this.locate(stream);
    const cursor = await this.#cursor(loc, group);
    this.#check(loc, group, consumer, cursor, epoch);
    const key = cursorKey(loc.topic, loc.partition, group);
    let records = this.#buffered.get(key) ?? [];
    if (records.length === 0) {
      const next = this.#next.get(key) ?? cursor.high;
      const got = await this.#fetchFor(loc, group, cursor, next < cursor.high ? cursor.high : next, blockMs);
      records = got.records;
    }
    const taken = records.slice(0, count);
    this.#buffered.set(key, records.slice(count));
    if (taken.length === 0) return [];
    const last = taken[taken.length - 1].offset;
    this.#next.set(key, last + 1n);
    cursor.delivered(last);
    // The delivery is recorded before the records are handed over: after a crash they are pending.
    await this.#commit(loc, group, cursor, { consumer });
    return taken.map((r) => ({ ...r.entry, deliveries: 1 }));
  }

  async ack(stream: string, group: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const loc = this.locate(stream);
    const cursor = await this.#cursor(loc, group);
    if (cursor.ack(ids.map((id) => BigInt(id)))) await this.#commit(loc, group, cursor);
  }

  readCheckpoint(): Promise<number | undefined> {
    // Releases before 0.5 kept checkpoints on Redis only.
    return Promise.resolve(undefined);
  }

  async deadLetter(dlqStream: string, group: string, letters: readonly DeadLetter[], options: { readonly ack?: boolean } = {}): Promise<void> {
    if (letters.length === 0) return;
    const loc = this.locate(dlqStream);
    await this.#ensureTopic(loc);
    const records = letters.map((l) => ({
      topic: loc.topic,
      partition: loc.partition,
      headers: { [FIELDS_HEADER]: '1' },
      value: JSON.stringify(fieldsAsText(Object.entries(deadLetterFields(l, group)))),
    }));
    for (const messages of produceChunks(records)) await this.#producer.send({ messages });
    // Acknowledged only once every dead letter is in the DLQ topic (acks=all).
    if (options.ack === false) return;
    const bySource = new Map<string, string[]>();
    for (const l of letters) bySource.set(l.sourceStream, [...(bySource.get(l.sourceStream) ?? []), l.sourceId]);
    for (const [stream, ids] of bySource) await this.ack(stream, group, ids);
  }

  async pendingEntries(stream: string, group: string, count: number, consumer?: string): Promise<PendingEntry[]> {
    const loc = this.locate(stream);
    const committed = await this.#committed(loc, group);
    if (committed.offset === undefined) return [];
    const meta = decodeCursorMeta(committed.meta, committed.offset);
    const cursor = new PartitionCursor(committed.offset, meta);
    const owner = meta.consumer ?? '';
    if (consumer !== undefined && consumer !== owner) return [];
    const idleMs = meta.atMs === undefined ? 0 : Math.max(0, Date.now() - meta.atMs);
    const out: PendingEntry[] = [];
    for (let o = cursor.committed; o < cursor.high && out.length < count; o++) {
      if (!cursor.isAcked(o)) out.push({ id: String(o), consumer: owner, idleMs, deliveries: Math.max(1, meta.deliveries) });
    }
    return out;
  }

  claim(stream: string): Promise<BusEntry[]> {
    return Promise.reject(new Error(`claim on ${stream}: a Kafka partition has one owner, which re-reads its own unacknowledged records; nothing is claimed`));
  }

  requeue(stream: string): Promise<string[]> {
    return Promise.reject(
      new Error(`requeue on ${stream}: a Kafka partition has one owner, which re-reads its own unacknowledged records; nothing is requeued`),
    );
  }

  async lag(stream: string, group: string, nowMs: number): Promise<GroupLag> {
    const loc = this.locate(stream);
    if (!(await this.#topicExists(loc.topic))) return { lagMs: 0, pending: 0, undelivered: 0, length: 0 };
    const [{ start, end }, committed] = await Promise.all([this.#bounds(loc), this.#committed(loc, group)]);
    const length = Number(end - start);
    if (committed.offset === undefined) return { lagMs: 0, pending: 0, undelivered: length, length };
    const at = committed.offset < start ? start : committed.offset;
    const meta = decodeCursorMeta(committed.meta, at);
    // A newer owner committed since: this one is stale and stops at its next read.
    const mine = this.#cursors.get(cursorKey(loc.topic, loc.partition, group));
    if (mine?.epoch !== undefined && meta.epoch !== undefined && meta.epoch > mine.epoch) mine.epoch = meta.epoch;
    const cursor = new PartitionCursor(at, meta);
    const high = cursor.high > end ? end : cursor.high;
    let lagMs = 0;
    if (at < end) {
      const [oldest] = await this.#fetch(loc, at, 0, 64 * 1024);
      if (oldest) lagMs = Math.max(0, nowMs - oldest.timestampMs);
    }
    return { lagMs, pending: Math.max(0, cursor.pending), undelivered: Number(end - high), length };
  }

  /**
   * Nothing: Kafka removes records by age (`retention.ms` of the topic, `bus.kafka.retention`),
   * never by acknowledgement. What retention deletes before a group read it is reported by
   * {@link KafkaBus.takeUnreadLoss}; the backlog's age is watched against retention.
   */
  trimAcknowledged(): Promise<number> {
    return Promise.resolve(0);
  }

  async #groupNames(): Promise<readonly string[]> {
    if (this.#groups && this.#groups.untilMs > Date.now()) return this.#groups.names;
    const names = [...(await this.#admin.listGroups()).keys()];
    this.#groups = { names, untilMs: Date.now() + GROUPS_SEEN_MS };
    return names;
  }

  async backlog(stream: string): Promise<StreamBacklog> {
    const loc = this.locate(stream);
    const retention = this.#o.maxBacklog;
    if (!(await this.#topicExists(loc.topic))) return { entries: 0, retention, groups: new Map() };
    const [{ start, end }, names] = await Promise.all([this.#bounds(loc), this.#groupNames()]);
    const groups = new Map<string, number>();
    let slowest: bigint | undefined;
    if (names.length > 0) {
      const listed = await this.#admin.listConsumerGroupOffsets({
        groups: names.map((groupId) => ({ groupId, topics: [{ name: loc.topic, partitionIndexes: [loc.partition] }] })),
      });
      for (const g of listed) {
        const p = g.topics.find((t) => t.name === loc.topic)?.partitions.find((x) => x.partitionIndex === loc.partition);
        if (!p || p.committedOffset < 0n) continue;
        const at = p.committedOffset < start ? start : p.committedOffset;
        groups.set(g.groupId, Number(end > at ? end - at : 0n));
        if (slowest === undefined || at < slowest) slowest = at;
      }
    }
    const entries = groups.size === 0 ? Number(end - start) : Math.max(...groups.values());
    // How old the slowest group's next record is, against the topic's retention.
    let ageMs: number | undefined;
    const from = slowest ?? start;
    if (from < end) {
      const [oldest] = await this.#fetch(loc, from, 0, 64 * 1024);
      if (oldest) ageMs = Math.max(0, Date.now() - oldest.timestampMs);
    }
    return { entries, retention, groups, ...(ageMs === undefined ? {} : { ageMs, retentionMs: this.#o.retentionMs }) };
  }

  async takeUnreadLoss(stream: string, group: string): Promise<UnreadLoss> {
    const loc = this.locate(stream);
    const key = cursorKey(loc.topic, loc.partition, group);
    let removed = this.#skipped.get(key) ?? 0;
    this.#skipped.delete(key);
    const committed = await this.#committed(loc, group);
    if (!(await this.#topicExists(loc.topic))) {
      if (committed.offset === undefined) return { removed };
      // The topic was deleted under the group: report it once, then forget the group's offset.
      const meta = decodeCursorMeta(committed.meta, committed.offset);
      await this.#admin.deleteConsumerGroupOffsets({ groupId: group, topics: [{ name: loc.topic, partitionIndexes: [loc.partition] }] });
      this.#cursors.delete(key);
      return { removed, deleted: { undelivered: null, pending: Math.max(0, new PartitionCursor(committed.offset, meta).pending) } };
    }
    if (committed.offset === undefined) return { removed };
    const { start, end } = await this.#bounds(loc);
    const meta = decodeCursorMeta(committed.meta, committed.offset);
    const cursor = new PartitionCursor(committed.offset, meta);
    if (committed.offset > end) {
      // The topic was deleted and created again: what the group had not read is gone.
      const restarted = new PartitionCursor(start, decodeCursorMeta(null, start));
      await this.#commit(loc, group, restarted);
      this.#cursors.set(key, restarted);
      this.#next.set(key, start);
      return { removed, deleted: { undelivered: null, pending: Math.max(0, cursor.pending) } };
    }
    if (committed.offset < start) {
      // Retention deleted records the group never acknowledged: count them once, move past them.
      let lost = 0;
      for (let o = committed.offset; o < start; o++) if (!cursor.isAcked(o)) lost++;
      removed += lost;
      // The owner's own cursor when it runs in this process (it is at least as new as the commit).
      const mine = this.#cursors.get(key) ?? cursor;
      mine.skipTo(start);
      await this.#commit(loc, group, mine);
    }
    return { removed };
  }

  async added(stream: string): Promise<number> {
    const loc = this.locate(stream);
    if (!(await this.#topicExists(loc.topic))) return 0;
    return Number(await this.#offsets(loc, LATEST));
  }

  async length(stream: string): Promise<number> {
    const loc = this.locate(stream);
    if (!(await this.#topicExists(loc.topic))) return 0;
    const { start, end } = await this.#bounds(loc);
    return Number(end - start);
  }

  async tail(stream: string, limit: number): Promise<BusEntry[]> {
    const loc = this.locate(stream);
    if (limit <= 0 || !(await this.#topicExists(loc.topic))) return [];
    const { start, end } = await this.#bounds(loc);
    let from = end - BigInt(limit) < start ? start : end - BigInt(limit);
    const out: BusEntry[] = [];
    while (from < end) {
      const records = await this.#fetch(loc, from, 0);
      if (records.length === 0) break;
      for (const r of records) if (r.offset < end) out.push(r.entry);
      from = records[records.length - 1].offset + 1n;
    }
    return out.slice(-limit);
  }

  async readAfter(stream: string, afterId: string | undefined, count: number): Promise<BusEntry[]> {
    const loc = this.locate(stream);
    if (count <= 0 || !(await this.#topicExists(loc.topic))) return [];
    const { start, end } = await this.#bounds(loc);
    const after = afterId === undefined ? start : BigInt(afterId) + 1n;
    const from = after < start ? start : after;
    if (from >= end) return [];
    const records = await this.#fetch(loc, from, 0);
    return records
      .filter((r) => r.offset < end)
      .slice(0, count)
      .map((r) => r.entry);
  }

  compareIds(a: string, b: string): number {
    const x = BigInt(a),
      y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }

  async dropStream(stream: string): Promise<void> {
    const loc = this.locate(stream);
    for (const key of [...this.#cursors.keys()]) {
      if (key.startsWith(`${loc.topic}\u0000${loc.partition}\u0000`)) {
        this.#cursors.delete(key);
        this.#next.delete(key);
        this.#buffered.delete(key);
      }
    }
    this.#topics.delete(loc.topic);
    if (!(await this.#topicExists(loc.topic))) return;
    if (loc.partitions === 1) {
      await this.#admin.deleteTopics({ topics: [loc.topic] });
      // Deletion is asynchronous on the broker: wait until the name is free to be created again.
      for (let i = 0; i < 100 && (await this.#topicExists(loc.topic)); i++) await new Promise((done) => setTimeout(done, 50));
      return;
    }
    // One shard of a sharded topic: its records go, the partition stays.
    const end = await this.#offsets(loc, LATEST);
    await this.#admin.deleteRecords({ topics: [{ name: loc.topic, partitions: [{ partition: loc.partition, offset: end }] }] });
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([this.#consumer.close(true), this.#producer.close(true), this.#admin.close()]);
      await this.#pool.close().catch(() => undefined);
    })();
    return this.#closing;
  }
}

export type { CursorMeta };
