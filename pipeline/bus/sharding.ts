/**
 * Shard of an instrument: FNV-1a 32-bit over `provider|symbol`, mixed with murmur3's finalizer,
 * modulo the shard count. Stable across processes and releases, so one symbol always lands on the
 * same stream and owner. The finalizer matters: FNV-1a's low bits depend only on the characters'
 * low bits, so without it a power-of-two shard count would split symbols by character parity.
 */
export function shardOf(provider: string, symbol: string, shards: number): number {
  let hash = 0x811c9dc5;
  const key = `${provider}|${symbol}`;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return (hash >>> 0) % shards;
}

/** Name of a shard's stream: `mdp.events` + shard 3 → `mdp.events.3`. */
export function shardStream(baseStream: string, shard: number): string {
  return `${baseStream}.${shard}`;
}

/** Milliseconds part of a Redis stream id (`1700000000000-3` → 1700000000000). */
export function streamIdMs(id: string): number {
  const dash = id.indexOf('-');
  return Number(dash < 0 ? id : id.slice(0, dash));
}

/**
 * The id of the `index`-th event of a frame entry (see `bus.redis.frame_events`): `<entry id>/<index>`,
 * e.g. `1700000000000-3/2`. Ordered by {@link compareStreamIds} between its entry and the next one.
 */
export function frameEventId(entryId: string, index: number): string {
  return `${entryId}/${index}`;
}

/** The stream entry an id belongs to: the id itself, or the entry part of a frame event's id. */
export function entryIdOf(id: string): string {
  const slash = id.indexOf('/');
  return slash < 0 ? id : id.slice(0, slash);
}

/** Splits `ms-seq` or `ms-seq/index` (index -1 for a plain entry id, so it sorts before its events). */
function parseStreamId(id: string): [ms: number, seq: number, index: number] {
  const dash = id.indexOf('-');
  const slash = id.indexOf('/');
  const end = slash < 0 ? id.length : slash;
  const ms = Number(dash < 0 ? id.slice(0, end) : id.slice(0, dash));
  const seq = dash < 0 ? 0 : Number(id.slice(dash + 1, end));
  return [ms, seq, slash < 0 ? -1 : Number(id.slice(slash + 1))];
}

/**
 * Orders two Redis stream ids (`ms-seq`), or ids of events in frame entries (`ms-seq/index`):
 * negative when `a` was appended before `b`; `E/0 < E/1 < …` before the next entry.
 */
export function compareStreamIds(a: string, b: string): number {
  const [msA, seqA, iA] = parseStreamId(a);
  const [msB, seqB, iB] = parseStreamId(b);
  return msA - msB || seqA - seqB || iA - iB;
}
