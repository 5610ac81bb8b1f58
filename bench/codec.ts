/**
 * Microbench of the bus encodings (`bus.encoding`, `bus.redis.frame_events`): µs per event to
 * encode what a producer publishes, and to decode + validate what a consumer reads, for JSON,
 * msgpack, a JSON frame and a msgpack frame, on the synthetic producer's events. No services: the
 * codec alone (what the Redis round trip costs is the throughput bench's to measure).
 *
 *   node dist/bench/codec.js [--events 200000] [--frame 32] [--rounds 5]
 */
import { parseArgs } from 'node:util';
import type { BusEncoding, BusPayload } from '../pipeline/bus/index.js';
import { encodeShardBatch, isFrame, packFrame, splitJsonFrame, splitPackedFrame } from '../pipeline/bus/index.js';
import type { StreamEventV1 } from '../pipeline/contracts/index.js';
import { SyntheticProducer } from '../pipeline/producers/index.js';
import { EVENT_PAYLOADS } from '../pipeline/routing/index.js';

interface Variant {
  readonly name: string;
  readonly encoding: BusEncoding;
  readonly frameEvents: number;
}

/** Decodes and validates every event of the payloads as a consumer does (frames split first); returns the valid count. */
function decodeAll(payloads: readonly BusPayload[], wire: readonly (string | Buffer)[]): number {
  let valid = 0;
  for (let i = 0; i < payloads.length; i++) {
    const value = wire[i];
    if (!isFrame(payloads[i])) {
      if (EVENT_PAYLOADS.decode(value).ok) valid++;
    } else if (typeof value === 'string') {
      for (const text of splitJsonFrame(value)) if (EVENT_PAYLOADS.decode(text).ok) valid++;
    } else {
      const split = splitPackedFrame(value);
      if (split.ok) for (const value of split.values) if (EVENT_PAYLOADS.check!(value).ok) valid++;
    }
  }
  return valid;
}

/** A payload as a reader gets it off the wire: JSON text, or one Buffer (a frame packed as a Redis field holds it). */
function onTheWire(payload: BusPayload): string | Buffer {
  if (typeof payload === 'string') return payload;
  if (!isFrame(payload)) return Buffer.from(payload);
  if ('frame' in payload) return payload.frame.join('\n');
  return Buffer.from(packFrame(payload.values));
}

function best(times: readonly number[]): number {
  return Math.min(...times);
}

function run(): void {
  const { values } = parseArgs({
    options: { events: { type: 'string', default: '200000' }, frame: { type: 'string', default: '32' }, rounds: { type: 'string', default: '5' } },
  });
  const count = Number(values.events);
  const frame = Number(values.frame);
  const rounds = Number(values.rounds);
  const symbols = Array.from({ length: 100 }, (_, i) => `SYM${i}`);
  const events: StreamEventV1[] = new SyntheticProducer({ provider: 'synthetic', symbols, seed: 1, tickRate: 1000, priceVolatility: 0.02 }).generateFinite({
    count,
    startUs: Date.now() * 1000,
  });
  const variants: Variant[] = [
    { name: 'json', encoding: 'json', frameEvents: 1 },
    { name: 'msgpack', encoding: 'msgpack', frameEvents: 1 },
    { name: `json frame ×${frame}`, encoding: 'json', frameEvents: frame },
    { name: `msgpack frame ×${frame}`, encoding: 'msgpack', frameEvents: frame },
  ];
  console.log(`${count} synthetic events (100 symbols), best of ${rounds} rounds, node ${process.version}`);
  console.log('variant                 encode µs/ev   decode+validate µs/ev   bytes/ev');
  for (const v of variants) {
    const format = { encoding: v.encoding, frameEvents: v.frameEvents };
    const enc: number[] = [];
    const dec: number[] = [];
    let payloads: BusPayload[] = [];
    let wire: (string | Buffer)[] = [];
    for (let r = 0; r < rounds; r++) {
      let t = process.hrtime.bigint();
      payloads = encodeShardBatch(events, format);
      // A frame is packed into its field by the bus at XADD: part of the producer's cost.
      wire = payloads.map(onTheWire);
      enc.push(Number(process.hrtime.bigint() - t) / 1000 / count);
      t = process.hrtime.bigint();
      const valid = decodeAll(payloads, wire);
      dec.push(Number(process.hrtime.bigint() - t) / 1000 / count);
      if (valid !== count) throw new Error(`${v.name}: ${valid} of ${count} events decoded valid`);
    }
    const bytes = wire.reduce((n, w) => n + (typeof w === 'string' ? Buffer.byteLength(w) : w.length), 0) / count;
    console.log(`${v.name.padEnd(22)}  ${best(enc).toFixed(3).padStart(12)}   ${best(dec).toFixed(3).padStart(21)}   ${bytes.toFixed(1).padStart(8)}`);
  }
}

try {
  run();
} catch (err) {
  console.error(err);
  process.exit(1);
}
