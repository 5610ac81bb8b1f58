/**
 * The oracle of the IBKR producer tests: what the producer must have published, computed from what
 * the fake TWS put on the wire (its send log), independently of the producer's code — the v1
 * event of each trade (`seq` = its index within its symbol's second, in the order TWS sent them to
 * the producer's client id) and of each non-empty 5-second bar — and a comparison with what the
 * shard streams hold.
 */
import { appendFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { shardOf, shardStream } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import type { StreamEventV1 } from '../../pipeline/contracts/index.js';
import type { ProducedEntry } from './accounting.js';
import type { FakeTws, SentTick } from './fake-tws/index.js';

const iso = (sec: number) => `${new Date(sec * 1000).toISOString().slice(0, 19)}.000000Z`;

/** Each trade the fake TWS sent to `clientId`, with the event the producer must publish for it. */
export function expectedTicks(fake: FakeTws, options: { clientId: number; provider: string }): { tick: SentTick; event: StreamEventV1 }[] {
  const out: { tick: SentTick; event: StreamEventV1 }[] = [];
  const perSecond = new Map<string, number>();
  for (const t of fake.sentTicks) {
    if (t.clientId !== options.clientId) continue;
    const key = `${t.symbol}|${t.time}`;
    const seq = perSecond.get(key) ?? 0;
    perSecond.set(key, seq + 1);
    out.push({ tick: t, event: tickEvent(options.provider, t, seq) });
  }
  return out;
}

/** The events the producer must publish for the trades and bars the fake TWS sent to `clientId`. */
export function expectedIbkrEvents(fake: FakeTws, options: { clientId: number; provider: string; barsProvider?: string }): StreamEventV1[] {
  const out: StreamEventV1[] = expectedTicks(fake, options).map((t) => t.event);
  for (const b of fake.sentBars) {
    if (b.clientId !== options.clientId || b.count <= 0) continue;
    const provider = options.barsProvider ?? options.provider;
    out.push({
      ver: 1,
      provider,
      symbol: b.symbol,
      kind: 'bar',
      interval: '5s',
      src_ts: iso(b.time),
      ingest_ts: iso(b.time + 5),
      o: b.open,
      h: b.high,
      l: b.low,
      c: b.close,
      v: b.volume,
      seq: 0,
      event_id: `${provider}|${b.symbol}|${iso(b.time)}|0`,
    });
  }
  return out;
}

function tickEvent(provider: string, t: SentTick, seq: number): StreamEventV1 {
  return {
    ver: 1,
    provider,
    symbol: t.symbol,
    kind: 'tick',
    src_ts: iso(t.time),
    ingest_ts: iso(t.time),
    o: t.price,
    h: t.price,
    l: t.price,
    c: t.price,
    v: t.size,
    seq,
    event_id: `${provider}|${t.symbol}|${iso(t.time)}|${seq}`,
  };
}

/** Every event on the run's shard streams (field `d`), in stream order. */
export async function busEvents(redis: Redis, config: StreamingConfig): Promise<StreamEventV1[]> {
  const events: StreamEventV1[] = [];
  for (let shard = 0; shard < config.bus.shards; shard++) {
    for (const [, fields] of (await redis.xrange(shardStream(config.bus.redis.stream, shard), '-', '+')) as [string, string[]][]) {
      const i = fields.indexOf('d');
      if (i >= 0) events.push(JSON.parse(fields[i + 1]) as StreamEventV1);
    }
  }
  return events;
}

export interface BusComparison {
  /** Event ids published more than once. */
  readonly duplicates: string[];
  /** Published events the fake TWS never sent (or with other values). */
  readonly unexpected: string[];
  /** Expected events not published. */
  readonly missing: StreamEventV1[];
  /** Expected events that were published (with their values checked). */
  readonly published: StreamEventV1[];
}

/** Compares the published events with the expected ones by event id and values (o/h/l/c/v, kind, interval, src_ts). */
export function compareWithBus(expected: readonly StreamEventV1[], onBus: readonly StreamEventV1[]): BusComparison {
  const want = new Map(expected.map((e) => [e.event_id, e]));
  const seen = new Map<string, number>();
  const unexpected: string[] = [];
  for (const e of onBus) {
    seen.set(e.event_id, (seen.get(e.event_id) ?? 0) + 1);
    const w = want.get(e.event_id);
    if (!w) unexpected.push(`${e.event_id} (never sent by TWS)`);
    else if (
      w.o !== e.o ||
      w.h !== e.h ||
      w.l !== e.l ||
      w.c !== e.c ||
      w.v !== e.v ||
      w.kind !== e.kind ||
      w.interval !== e.interval ||
      w.src_ts !== e.src_ts
    ) {
      unexpected.push(`${e.event_id}: published ${JSON.stringify([e.o, e.h, e.l, e.c, e.v])}, TWS sent ${JSON.stringify([w.o, w.h, w.l, w.c, w.v])}`);
    }
  }
  return {
    duplicates: [...seen].filter(([, n]) => n > 1).map(([id, n]) => `${id} ×${n}`),
    unexpected,
    missing: expected.filter((e) => !seen.has(e.event_id)),
    published: expected.filter((e) => seen.has(e.event_id)),
  };
}

/** Published events as the accounting oracle takes them (the pipeline's producer published them: no XADD id). */
export function asProduced(events: readonly StreamEventV1[], config: StreamingConfig): ProducedEntry[] {
  return events.map((event) => ({
    stream: shardStream(config.bus.redis.stream, shardOf(event.provider, event.symbol, config.bus.shards)),
    payload: JSON.stringify(event),
    event,
    expect: 'valid' as const,
  }));
}

/** A log writer appending to `file` (test logs go to files, not the test output). */
export function fileLog(file: string): (line: string) => void {
  return (line) => appendFileSync(file, line + '\n');
}
