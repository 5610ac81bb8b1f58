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

/** Orders two Redis stream ids (`ms-seq`): negative when `a` was appended before `b`. */
export function compareStreamIds(a: string, b: string): number {
  const da = a.indexOf('-'),
    db = b.indexOf('-');
  const msA = Number(da < 0 ? a : a.slice(0, da)),
    msB = Number(db < 0 ? b : b.slice(0, db));
  if (msA !== msB) return msA - msB;
  return Number(da < 0 ? 0 : a.slice(da + 1)) - Number(db < 0 ? 0 : b.slice(db + 1));
}
