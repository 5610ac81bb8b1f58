/**
 * An in-memory {@link Bus} with Redis Streams' consumer-group semantics (pending lists per
 * consumer, delivery counts that grow on every re-read or claim, acknowledgements, checkpoints,
 * retention: trimming below what every group acknowledged, capping streams no group reads, counting
 * entries removed before a group read them), for unit tests of the activities without a Redis
 * server. The integration tests run the same activities on the real `RedisBus`.
 */
import type { Bus, BusEntry, DeadLetter, GroupLag, PendingEntry, StreamBacklog, UnreadLoss } from '../../pipeline/bus/index.js';
import { OwnerFencedError } from '../../pipeline/contracts/index.js';
import { compareStreamIds as compareIds, deadLetterFields, fieldsAsText, streamIdMs } from '../../pipeline/bus/index.js';

interface StoredEntry {
  readonly id: string;
  /** Null once deleted (e.g. trimmed while pending). */
  fields: Record<string, string> | null;
}

interface Pending {
  consumer: string;
  deliveries: number;
  deliveredAtMs: number;
}

interface Group {
  lastDelivered: string;
  readonly pending: Map<string, Pending>;
  /** Entries removed (trimmed, deleted) while still after `lastDelivered`: the group never reads them. */
  removedUnread: number;
}

/** What the last `takeUnreadLoss` saw of a group; outlives the stream, as Redis' memo does. */
interface LossMemo {
  readonly reported: number;
  readonly undelivered: number;
  readonly pending: number;
}

interface Stream {
  readonly entries: StoredEntry[];
  readonly groups: Map<string, Group>;
  added: number;
}

function toEntry(entry: StoredEntry): BusEntry {
  if (!entry.fields) return { id: entry.id, payload: undefined };
  if (entry.fields.d !== undefined) return { id: entry.id, payload: entry.fields.d };
  return { id: entry.id, payload: undefined, foreign: JSON.stringify(entry.fields) };
}

export class MemoryBus implements Bus {
  readonly kind = 'redis' as const;
  readonly #streams = new Map<string, Stream>();
  readonly #checkpoints = new Map<string, number>();
  readonly #fences = new Map<string, number>();
  readonly #lossMemos = new Map<string, LossMemo>();
  /** The retention bound (`bus.redis.maxlen`). */
  readonly retention: number;
  #lastMs = 0;
  #seq = 0;
  /** How often `close()` was called (tests check every path closes the bus). */
  closed = 0;

  constructor(options: { readonly retention?: number } = {}) {
    this.retention = options.retention ?? 1_000_000;
  }

  #stream(name: string): Stream {
    let stream = this.#streams.get(name);
    if (!stream) this.#streams.set(name, (stream = { entries: [], groups: new Map(), added: 0 }));
    return stream;
  }

  #nextId(): string {
    const now = Date.now();
    if (now > this.#lastMs) {
      this.#lastMs = now;
      this.#seq = 0;
    } else {
      this.#seq++;
    }
    return `${this.#lastMs}-${this.#seq}`;
  }

  #group(stream: string, group: string): Group {
    const g = this.#streams.get(stream)?.groups.get(group);
    if (!g) throw new Error(`NOGROUP No such key '${stream}' or consumer group '${group}'`);
    return g;
  }

  /** Appends an entry with arbitrary fields (a foreign entry has no `d`). */
  appendRaw(stream: string, fields: Record<string, string>): string {
    const s = this.#stream(stream);
    const id = this.#nextId();
    s.entries.push({ id, fields: { ...fields } });
    s.added++;
    return id;
  }

  /** Deletes an entry's content, as trimming does to an entry still pending (or XDEL to any). */
  deleteEntry(stream: string, id: string): void {
    const s = this.#streams.get(stream);
    const entry = s?.entries.find((e) => e.id === id);
    if (!s || !entry?.fields) return;
    this.#countRemoved(s, [entry]);
    entry.fields = null;
  }

  /** Removes the oldest `count` entries whatever the groups read, as an operator's `XTRIM` or an old `MAXLEN` would. */
  trimOldest(stream: string, count: number): number {
    const s = this.#streams.get(stream);
    if (!s) return 0;
    const removed = s.entries.splice(0, count);
    this.#countRemoved(s, removed);
    return removed.filter((e) => e.fields).length;
  }

  /** Counts, per group, the removed entries it had not been delivered yet. */
  #countRemoved(s: Stream, removed: readonly StoredEntry[]): void {
    for (const g of s.groups.values()) {
      g.removedUnread += removed.filter((e) => e.fields && compareIds(e.id, g.lastDelivered) > 0).length;
    }
  }

  /**
   * Forgets the group's delivery state (last delivered id, pending entries), as a Redis that lost
   * its last second of writes forgets acknowledgements: every entry left is delivered again.
   */
  rewindGroup(stream: string, group: string): void {
    const g = this.#group(stream, group);
    g.lastDelivered = '0-0';
    g.pending.clear();
  }

  /** Every entry of a stream with its fields, oldest first. */
  entries(stream: string): { id: string; fields: Record<string, string> | null }[] {
    return (this.#streams.get(stream)?.entries ?? []).map((e) => ({ id: e.id, fields: e.fields && { ...e.fields } }));
  }

  publish(stream: string, payloads: readonly string[], options: { readonly trim?: boolean } = {}): Promise<string[]> {
    const ids = payloads.map((payload) => this.appendRaw(stream, { d: payload }));
    // Only a stream no group reads is capped at retention.
    const s = this.#stream(stream);
    if (options.trim !== false && s.groups.size === 0) {
      const live = s.entries.filter((e) => e.fields).length;
      if (live > this.retention) this.trimOldest(stream, live - this.retention);
    }
    return Promise.resolve(ids);
  }

  async publishMany(batches: ReadonlyMap<string, readonly string[]>): Promise<void> {
    for (const [stream, payloads] of batches) await this.publish(stream, payloads);
  }

  ensureGroup(stream: string, group: string): Promise<void> {
    const s = this.#stream(stream);
    if (!s.groups.has(group)) s.groups.set(group, { lastDelivered: '0-0', pending: new Map(), removedUnread: 0 });
    return Promise.resolve();
  }

  /** The read fence of (stream, group): only the newest epoch reads (see `RedisBus`' fenced read). */
  #fence(stream: string, group: string, consumer: string, epoch: number | undefined): void {
    if (epoch === undefined) return;
    const key = `${stream}|${group}`;
    const current = this.#fences.get(key);
    if (current !== undefined && current > epoch)
      throw new OwnerFencedError({ stream, group, owner: consumer, epoch }, { owner: '(a newer attempt)', epoch: current });
    this.#fences.set(key, epoch);
  }

  async readNew(stream: string, group: string, consumer: string, count: number, blockMs: number, epoch?: number): Promise<BusEntry[]> {
    this.#fence(stream, group, consumer, epoch);
    const g = this.#group(stream, group);
    const fresh = this.#stream(stream)
      .entries.filter((e) => compareIds(e.id, g.lastDelivered) > 0 && e.fields)
      .slice(0, count);
    if (fresh.length === 0) {
      // A short block keeps the consume loop's pace without slowing the tests down.
      await new Promise((done) => setTimeout(done, Math.min(blockMs, 10)));
      return [];
    }
    for (const entry of fresh) g.pending.set(entry.id, { consumer, deliveries: 1, deliveredAtMs: Date.now() });
    g.lastDelivered = fresh[fresh.length - 1].id;
    return fresh.map(toEntry);
  }

  async readPending(stream: string, group: string, consumer: string, afterId: string, count: number, epoch?: number): Promise<BusEntry[]> {
    await Promise.resolve();
    this.#fence(stream, group, consumer, epoch);
    const g = this.#group(stream, group);
    const byId = new Map(this.#stream(stream).entries.map((e) => [e.id, e]));
    const ids = [...g.pending]
      .filter(([id, p]) => p.consumer === consumer && compareIds(id, afterId) > 0)
      .map(([id]) => id)
      .sort(compareIds)
      .slice(0, count);
    return ids.map((id) => {
      const p = g.pending.get(id)!;
      p.deliveries++;
      p.deliveredAtMs = Date.now();
      return { ...toEntry(byId.get(id) ?? { id, fields: null }), deliveries: p.deliveries };
    });
  }

  ack(stream: string, group: string, ids: readonly string[]): Promise<void> {
    const g = this.#streams.get(stream)?.groups.get(group);
    for (const id of ids) g?.pending.delete(id);
    return Promise.resolve();
  }

  readCheckpoint(stream: string, group: string): Promise<number | undefined> {
    return Promise.resolve(this.#checkpoints.get(`${stream}|${group}`));
  }

  /** Sets a checkpoint as a previous owner would have left it. */
  setCheckpoint(stream: string, group: string, checkpoint: number): void {
    this.#checkpoints.set(`${stream}|${group}`, checkpoint);
  }

  async deadLetter(dlqStream: string, group: string, letters: readonly DeadLetter[], options: { readonly ack?: boolean } = {}): Promise<void> {
    for (const l of letters) {
      this.appendRaw(dlqStream, fieldsAsText(Object.entries(deadLetterFields(l, group))));
    }
    if (options.ack === false) return;
    for (const l of letters) await this.ack(l.sourceStream, group, [l.sourceId]);
  }

  pendingEntries(stream: string, group: string, count: number, consumer?: string): Promise<PendingEntry[]> {
    const g = this.#group(stream, group);
    const now = Date.now();
    return Promise.resolve(
      [...g.pending]
        .filter(([, p]) => consumer === undefined || p.consumer === consumer)
        .sort(([a], [b]) => compareIds(a, b))
        .slice(0, count)
        .map(([id, p]) => ({ id, consumer: p.consumer, idleMs: now - p.deliveredAtMs, deliveries: p.deliveries })),
    );
  }

  claim(stream: string, group: string, consumer: string, minIdleMs: number, ids: readonly string[]): Promise<BusEntry[]> {
    const g = this.#group(stream, group);
    const byId = new Map(this.#stream(stream).entries.map((e) => [e.id, e]));
    const now = Date.now();
    const moved: BusEntry[] = [];
    for (const id of ids) {
      const p = g.pending.get(id);
      if (!p || now - p.deliveredAtMs < minIdleMs) continue;
      Object.assign(p, { consumer, deliveries: p.deliveries + 1, deliveredAtMs: now });
      moved.push(toEntry(byId.get(id) ?? { id, fields: null }));
    }
    return Promise.resolve(moved);
  }

  async requeue(stream: string, group: string, entries: readonly BusEntry[]): Promise<string[]> {
    const ids = entries.map((e) =>
      this.appendRaw(stream, e.payload !== undefined ? { d: e.payload } : (JSON.parse(e.foreign ?? '{}') as Record<string, string>)),
    );
    await this.ack(
      stream,
      group,
      entries.map((e) => e.id),
    );
    return ids;
  }

  lag(stream: string, group: string, nowMs: number): Promise<GroupLag> {
    const s = this.#stream(stream);
    const g = s.groups.get(group);
    const live = s.entries.filter((e) => e.fields);
    if (!g) return Promise.resolve({ lagMs: 0, pending: 0, undelivered: live.length, length: live.length });
    const undelivered = live.filter((e) => compareIds(e.id, g.lastDelivered) > 0);
    const oldest = [...g.pending.keys(), ...undelivered.map((e) => e.id)].sort(compareIds)[0];
    return Promise.resolve({
      lagMs: oldest === undefined ? 0 : Math.max(0, nowMs - streamIdMs(oldest)),
      pending: g.pending.size,
      undelivered: undelivered.length,
      length: live.length,
    });
  }

  trimAcknowledged(stream: string): Promise<number> {
    const s = this.#streams.get(stream);
    if (!s || s.groups.size === 0) return Promise.resolve(0);
    // Below the lowest id a group still needs: its oldest pending one, or the first after its last delivered one.
    const acknowledged = (id: string) =>
      [...s.groups.values()].every((g) => compareIds(id, g.lastDelivered) <= 0 && [...g.pending.keys()].every((pending) => compareIds(id, pending) < 0));
    let cut = 0;
    while (cut < s.entries.length && acknowledged(s.entries[cut].id)) cut++;
    return Promise.resolve(s.entries.splice(0, cut).filter((e) => e.fields).length);
  }

  backlog(stream: string): Promise<StreamBacklog> {
    const s = this.#streams.get(stream);
    const live = s?.entries.filter((e) => e.fields) ?? [];
    const groups = new Map(
      [...(s?.groups ?? [])].map(([name, g]) => [name, g.pending.size + live.filter((e) => compareIds(e.id, g.lastDelivered) > 0).length]),
    );
    return Promise.resolve({ entries: groups.size === 0 ? live.length : Math.max(...groups.values()), retention: this.retention, groups });
  }

  takeUnreadLoss(stream: string, group: string): Promise<UnreadLoss> {
    const key = `${stream}|${group}`;
    const memo = this.#lossMemos.get(key);
    const s = this.#streams.get(stream);
    const g = s?.groups.get(group);
    if (!s || !g) {
      this.#lossMemos.delete(key);
      return Promise.resolve(memo ? { removed: 0, deleted: { undelivered: memo.undelivered, pending: memo.pending } } : { removed: 0 });
    }
    const undelivered = s.entries.filter((e) => e.fields && compareIds(e.id, g.lastDelivered) > 0).length;
    this.#lossMemos.set(key, { reported: g.removedUnread, undelivered, pending: g.pending.size });
    return Promise.resolve({ removed: g.removedUnread - (memo?.reported ?? 0) });
  }

  added(stream: string): Promise<number> {
    return Promise.resolve(this.#streams.get(stream)?.added ?? 0);
  }

  length(stream: string): Promise<number> {
    return Promise.resolve((this.#streams.get(stream)?.entries ?? []).filter((e) => e.fields).length);
  }

  readAfter(stream: string, afterId: string | undefined, count: number): Promise<BusEntry[]> {
    return Promise.resolve(
      (this.#streams.get(stream)?.entries ?? [])
        .filter((e) => e.fields && (afterId === undefined || this.compareIds(e.id, afterId) > 0))
        .slice(0, count)
        .map(toEntry),
    );
  }

  tail(stream: string, limit: number): Promise<BusEntry[]> {
    return Promise.resolve(
      (this.#streams.get(stream)?.entries ?? [])
        .filter((e) => e.fields)
        .slice(-limit)
        .map(toEntry),
    );
  }

  compareIds(a: string, b: string): number {
    return compareIds(a, b);
  }

  dropStream(stream: string): Promise<void> {
    this.#streams.delete(stream);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closed++;
    return Promise.resolve();
  }
}
