/**
 * What a consumer group's committed offset on one Kafka partition carries besides the offset, in
 * the commit's metadata string: enough to give Kafka the pending-entry semantics of a Redis group.
 * - `high`: one past the last offset ever delivered to the group (records in `[offset, high)` not
 *   acknowledged are its pending entries: a restarted owner re-reads them first);
 * - `deliveries`: how many times those pending records have been delivered (a record that keeps
 *   crashing its consumer reaches `bus.max_deliveries` and is dead-lettered);
 * - `acked`: records at or past the committed offset acknowledged out of order, as
 *   `[first, count]` runs relative to the offset (never re-delivered);
 * - `epoch`: the fencing token of the owner that committed last (a stale owner notices a newer one).
 */
export interface CursorMeta {
  readonly high: bigint;
  readonly deliveries: number;
  readonly acked: readonly (readonly [number, number])[];
  readonly epoch: number | undefined;
  /** The consumer that committed last, and when (epoch ms). */
  readonly consumer?: string;
  readonly atMs?: number;
}

/** Kafka's default `offset.metadata.max.bytes` is 4096: stay well under it. */
const MAX_META_CHARS = 3000;

export function encodeCursorMeta(meta: CursorMeta, extra: { readonly consumer?: string; readonly atMs?: number } = {}): string {
  const runs = [...meta.acked];
  const consumer = extra.consumer ?? meta.consumer;
  const encode = () =>
    JSON.stringify({
      v: 1,
      h: String(meta.high),
      d: meta.deliveries,
      a: runs,
      ...(meta.epoch === undefined ? {} : { e: meta.epoch }),
      ...(consumer === undefined ? {} : { c: consumer.slice(0, 200) }),
      ...(extra.atMs === undefined ? {} : { t: extra.atMs }),
    });
  let text = encode();
  // Too many runs: the last ones are left out, so those records are re-delivered after a restart,
  // where the owner's resume position recognises them (see ResumeGuard); nothing is lost.
  while (text.length > MAX_META_CHARS && runs.length > 0) {
    runs.splice(Math.floor(runs.length / 2));
    text = encode();
  }
  return text;
}

/** The metadata of a committed offset; an empty or foreign one (another tool committed) means nothing pending. */
export function decodeCursorMeta(text: string | null | undefined, offset: bigint): CursorMeta {
  const none: CursorMeta = { high: offset, deliveries: 0, acked: [], epoch: undefined };
  if (!text) return none;
  try {
    const o = JSON.parse(text) as { v?: number; h?: string; d?: number; a?: [number, number][]; e?: number; c?: string; t?: number };
    if (o.v !== 1 || typeof o.h !== 'string') return none;
    const high = BigInt(o.h);
    return {
      high: high < offset ? offset : high,
      deliveries: Number(o.d ?? 0),
      acked: Array.isArray(o.a) ? o.a : [],
      epoch: o.e,
      ...(o.c === undefined ? {} : { consumer: o.c }),
      ...(o.t === undefined ? {} : { atMs: o.t }),
    };
  } catch {
    return none;
  }
}

/**
 * One owner's view of a group on a partition: the committed offset (everything before it is
 * acknowledged), what was delivered and not acknowledged yet, and what was acknowledged out of order.
 */
export class PartitionCursor {
  /** First offset not acknowledged: the group's committed offset. */
  committed: bigint;
  /** One past the last offset delivered. */
  high: bigint;
  /** Deliveries of the pending range `[committed, high)` so far. */
  deliveries: number;
  epoch: number | undefined;
  readonly consumer: string | undefined;
  /** Offsets at or past `committed` acknowledged out of order. */
  readonly #acked = new Set<bigint>();

  constructor(committed: bigint, meta: CursorMeta) {
    this.committed = committed;
    this.high = meta.high;
    this.deliveries = meta.deliveries;
    this.epoch = meta.epoch;
    this.consumer = meta.consumer;
    for (const [first, count] of meta.acked) for (let i = 0; i < count; i++) this.#acked.add(committed + BigInt(first + i));
  }

  isAcked(offset: bigint): boolean {
    return offset < this.committed || this.#acked.has(offset);
  }

  /** Records were delivered up to `lastOffset`. */
  delivered(lastOffset: bigint): void {
    if (lastOffset + 1n > this.high) this.high = lastOffset + 1n;
  }

  /**
   * Acknowledges offsets; moves the committed offset past every acknowledged one in a row (mdp's
   * topics have no offset gaps: no transactions, no compaction). Returns whether anything changed.
   */
  ack(offsets: Iterable<bigint>): boolean {
    let changed = false;
    for (const o of offsets) {
      if (o < this.committed || o >= this.high || this.#acked.has(o)) continue;
      this.#acked.add(o);
      changed = true;
    }
    while (this.#acked.has(this.committed)) {
      this.#acked.delete(this.committed);
      this.committed++;
    }
    if (this.committed >= this.high) this.deliveries = 0;
    return changed;
  }

  /** Moves the committed offset forward to `offset` (records before it are gone from the log). */
  skipTo(offset: bigint): void {
    if (offset <= this.committed) return;
    for (const o of this.#acked) if (o < offset) this.#acked.delete(o);
    this.committed = offset;
    if (this.high < offset) this.high = offset;
  }

  /** Pending records: delivered, not acknowledged. */
  get pending(): number {
    return Number(this.high - this.committed) - this.#acked.size;
  }

  meta(): CursorMeta {
    const sorted = [...this.#acked].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const runs: [number, number][] = [];
    for (const o of sorted) {
      const rel = Number(o - this.committed);
      const last = runs[runs.length - 1];
      if (last && last[0] + last[1] === rel) last[1]++;
      else runs.push([rel, 1]);
    }
    return {
      high: this.high,
      deliveries: this.deliveries,
      acked: runs,
      epoch: this.epoch,
      ...(this.consumer === undefined ? {} : { consumer: this.consumer }),
    };
  }
}
