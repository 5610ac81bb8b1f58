/**
 * CPU per event of the hot path, stage by stage, without Redis, PostgreSQL or Temporal: the bench
 * publisher's generation (`SyntheticProducer.generateFinite`, `formatMicros`) and the worker's
 * routing (`decodeEvent` = JSON.parse + `validateEvent`, `parseIsoToMicros`, `MicroBatcher.add`).
 *
 *   node dist/bench/hotpath.js [--events 1000000] [--symbols 3] [--rounds 3] [--stage NAME]...
 *
 * Each stage runs once untimed (warm-up, so the JIT has compiled it), then `--rounds` timed times
 * over the same inputs; the best round is reported (the others are other engineers' CPU). GC is the
 * pause time `PerformanceObserver('gc')` saw over all timed rounds, per event.
 */
import { parseArgs } from 'node:util';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { decodeEvent, formatMicros, parseIsoToMicros, validateEvent } from '../pipeline/contracts/index.js';
import type { MarketEvent, StreamEventV1 } from '../pipeline/contracts/index.js';
import { SyntheticProducer } from '../pipeline/producers/index.js';
import { MicroBatcher } from '../pipeline/windowing/index.js';

/** Events per `generateFinite` call, as the bench publisher's default `--publish-batch`. */
const GENERATE_BATCH = 1000;
/** Events per routed read, as a consumer's XREADGROUP COUNT; the batcher flushes after each. */
const READ_BATCH = 1000;
const T0_US = Date.UTC(2025, 9, 24, 14, 0, 0) * 1000;

interface Stage {
  readonly name: string;
  readonly what: string;
  /** Runs the stage over every event once; returns a checksum so the work cannot be optimised away. */
  readonly run: () => number;
}

function symbolNames(count: number): string[] {
  const known = ['SPY', 'AAPL', 'MSFT'];
  return Array.from({ length: count }, (_, i) => known[i] ?? `S${String(i).padStart(5, '0')}`);
}

/**
 * The publisher's shape: batches stamped "now", 100k events/s across the symbols. `keep` collects
 * the events (inputs of the other stages); the timed stage drops each batch, as the publisher does.
 */
function generate(events: number, symbols: readonly string[], keep?: StreamEventV1[]): number {
  const producer = new SyntheticProducer({ symbols, seed: 42, tickRate: 100_000 / symbols.length, priceVolatility: 0.2 });
  let sum = 0;
  for (let done = 0; done < events; done += GENERATE_BATCH) {
    const batch = producer.generateFinite({ count: Math.min(GENERATE_BATCH, events - done), startUs: T0_US + done * 10 });
    sum += batch[batch.length - 1].seq;
    if (keep !== undefined) for (const e of batch) keep.push(e);
  }
  return sum;
}

function stages(events: number, symbols: readonly string[]): Stage[] {
  // Only what the stages read stays reachable: a bigger old generation would slow every GC.
  const { texts, srcTs } = (() => {
    const generated: StreamEventV1[] = [];
    generate(events, symbols, generated);
    return { texts: generated.map((e) => JSON.stringify(e)), srcTs: generated.map((e) => e.src_ts) };
  })();
  const micros = srcTs.map((text) => parseIsoToMicros(text)!);
  const marketEvents = texts.map((text) => {
    const result = decodeEvent(text);
    if (!result.ok) throw new Error(`bench input does not validate: ${result.reason}`);
    return result.event;
  });
  const oneRead = texts.slice(0, READ_BATCH).map((text) => JSON.parse(text) as unknown);
  const refs = marketEvents.map((_, i) => `${1_761_314_400_000 + i}-0`);
  const batcherOptions = { windowMs: 2000, allowLateMs: 500, flushTimeoutMs: 1000, maxBufferedEvents: 200_000 };

  const addAll = (batcher: MicroBatcher<string>, values: readonly MarketEvent[]): number => {
    let sum = 0;
    for (let start = 0; start < values.length; start += READ_BATCH) {
      const end = Math.min(values.length, start + READ_BATCH);
      for (let i = start; i < end; i++) if (batcher.add(values[i], refs[i], 0) === 'accepted') sum++;
      for (const window of batcher.flush(0)) sum += window.bars.length;
    }
    return sum;
  };

  return [
    {
      name: 'generate',
      what: 'SyntheticProducer.generateFinite, batches of 1000 (publisher)',
      run: () => generate(events, symbols),
    },
    {
      name: 'formatMicros',
      what: 'formatMicros of each src_ts (publisher, inside generate)',
      run: () => {
        let sum = 0;
        // charCodeAt flattens the string, as the JSON.stringify of the event would.
        for (const us of micros) sum += formatMicros(us).charCodeAt(25);
        return sum;
      },
    },
    {
      name: 'parseIsoToMicros',
      what: 'parseIsoToMicros of each src_ts (worker, inside validate)',
      run: () => {
        let sum = 0;
        for (const text of srcTs) sum += parseIsoToMicros(text)! % 7;
        return sum;
      },
    },
    {
      name: 'validateEvent',
      what: 'validateEvent of payloads just parsed (one read of 1000, validated again and again, so it stays in cache)',
      run: () => {
        let sum = 0;
        for (let done = 0; done < events; done += READ_BATCH) {
          for (const payload of oneRead) if (validateEvent(payload).ok) sum++;
        }
        return sum;
      },
    },
    {
      name: 'decodeEvent',
      what: 'decodeEvent of JSON text: JSON.parse + validateEvent (worker)',
      run: () => {
        let sum = 0;
        for (const text of texts) if (decodeEvent(text).ok) sum++;
        return sum;
      },
    },
    {
      name: 'batcher.add',
      what: `MicroBatcher.add (2 s windows) + flush every ${READ_BATCH} events (worker)`,
      run: () => addAll(new MicroBatcher<string>(batcherOptions), marketEvents),
    },
    {
      name: 'route',
      what: 'decodeEvent + MicroBatcher.add + flush: the worker per entry',
      run: () => {
        const batcher = new MicroBatcher<string>(batcherOptions);
        let sum = 0;
        for (let start = 0; start < texts.length; start += READ_BATCH) {
          const end = Math.min(texts.length, start + READ_BATCH);
          for (let i = start; i < end; i++) {
            const decoded = decodeEvent(texts[i]);
            if (decoded.ok && batcher.add(decoded.event, refs[i], 0) === 'accepted') sum++;
          }
          for (const window of batcher.flush(0)) sum += window.bars.length;
        }
        return sum;
      },
    },
  ];
}

interface Measured {
  readonly name: string;
  readonly what: string;
  readonly usPerEvent: number;
  readonly gcUsPerEvent: number;
}

let gcMs = 0;
/** Lets the observer receive the GC entries of what just ran (they arrive asynchronously). */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 50));

async function measure(stage: Stage, events: number, rounds: number): Promise<Measured> {
  stage.run();
  await settle();
  gcMs = 0;
  let best = Infinity;
  for (let round = 0; round < rounds; round++) {
    const start = performance.now();
    const checksum = stage.run();
    const ms = performance.now() - start;
    if (!Number.isFinite(checksum)) throw new Error(`stage ${stage.name} returned ${checksum}`);
    if (ms < best) best = ms;
  }
  await settle();
  return { name: stage.name, what: stage.what, usPerEvent: (best * 1000) / events, gcUsPerEvent: (gcMs * 1000) / (events * rounds) };
}

async function run(): Promise<void> {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '1000000' },
      symbols: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '3' },
      stage: { type: 'string', multiple: true },
    },
  });
  const events = Number(values.events),
    symbolCount = Number(values.symbols),
    rounds = Number(values.rounds);
  for (const [key, n] of [
    ['--events', events],
    ['--symbols', symbolCount],
    ['--rounds', rounds],
  ] as const) {
    if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`${key} must be a positive integer (got ${String(values[key.slice(2) as 'events'])})`);
  }
  const all = stages(events, symbolNames(symbolCount));
  const wanted = values.stage ?? all.map((s) => s.name);
  const unknown = wanted.filter((name) => !all.some((s) => s.name === name));
  if (unknown.length > 0) throw new RangeError(`unknown --stage ${unknown.join(', ')} (stages: ${all.map((s) => s.name).join(', ')})`);

  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMs += entry.duration;
  });
  observer.observe({ entryTypes: ['gc'] });
  const results: Measured[] = [];
  for (const stage of all.filter((s) => wanted.includes(s.name))) {
    const measured = await measure(stage, events, rounds);
    results.push(measured);
    console.log(
      `${measured.name.padEnd(17)} ${measured.usPerEvent.toFixed(3).padStart(8)} µs/event  (GC ${measured.gcUsPerEvent.toFixed(3)})  ${measured.what}`,
    );
  }
  observer.disconnect();
  console.log(JSON.stringify({ bench: 'hotpath', node: process.version, events, symbols: symbolCount, rounds, results }));
}

run().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
