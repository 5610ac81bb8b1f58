/**
 * Fault matrix, row i: a poison storm. Valid events (windows 0-5) with poison published between
 * windows 1 and 2: malformed JSON, schema-invalid events, an entry without a payload, an event whose
 * `src_ts` is 24 h in the future, a 4,001-character symbol, a NUL character in a symbol (the last
 * two valid by today's contract, but rejected by PostgreSQL: index row size, invalid UTF-8 byte).
 *
 * Every bad entry must be in the DLQ exactly once, with a reason; every good event in exactly one
 * bar; none late (the future event must not move the watermark); nothing pending — the shard is not
 * poisoned. Shard 0 takes the whole storm mixed; shards 1-4 each take one kind, so a failure names
 * the kind that poisons a shard. One worker consumes all five shards at once.
 */
import type { ProducedEntry } from '../helpers/accounting.js';
import { assertAccounted } from '../helpers/accounting.js';
import type { FaultRun } from '../helpers/fault-run.js';
import { useFaultStack } from '../helpers/fault-run.js';
import { shardOf } from '../../pipeline/bus/index.js';
import type { StreamEventV1 } from '../../pipeline/contracts/index.js';
import { formatMicros, makeEventId } from '../../pipeline/contracts/index.js';
import { SeededRandom } from '../../pipeline/producers/index.js';
import { RECOVERY_MS } from './matrix.js';

const SHARDS = 5;
const PER_WINDOW = 150;

type PoisonKind = 'malformed' | 'schema' | 'future' | 'oversized-symbol' | 'nul-symbol';

const STORMS: { readonly name: string; readonly kinds: readonly PoisonKind[] }[] = [
  { name: 'the whole storm mixed', kinds: ['malformed', 'schema', 'future', 'oversized-symbol', 'nul-symbol'] },
  { name: 'malformed JSON, schema-invalid events and an entry without payload', kinds: ['malformed', 'schema'] },
  { name: 'an event 24 h in the future', kinds: ['future'] },
  { name: 'a 4,001-character symbol', kinds: ['oversized-symbol'] },
  { name: 'a NUL character in a symbol', kinds: ['nul-symbol'] },
];

/** `count` symbols that `provider` shards onto `shard` (candidates from `make(i)`). */
function symbolsOn(provider: string, shard: number, count: number, make: (i: number) => string): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    if (i > 100_000) throw new Error(`no symbol for shard ${shard}`);
    if (shardOf(provider, make(i), SHARDS) === shard) out.push(make(i));
  }
  return out;
}

/** A contract-valid event (its event_id matches), with prices around 100. */
function craft(provider: string, symbol: string, srcMs: number, seq: number): StreamEventV1 {
  const src_ts = formatMicros(srcMs * 1000);
  return {
    ver: 1,
    provider,
    symbol,
    kind: 'tick',
    src_ts,
    ingest_ts: src_ts,
    o: 100.5,
    h: 100.5,
    l: 100.5,
    c: 100.5,
    v: 100,
    seq,
    event_id: makeEventId(provider, symbol, src_ts, seq),
  };
}

/** The poison entries of `kinds` for one shard, all in window 2's time span unless told otherwise. */
function poison(
  run: FaultRun,
  shard: number,
  provider: string,
  kinds: readonly PoisonKind[],
  window2Ms: number,
): (Omit<ProducedEntry, 'id'> & { fields?: string[] })[] {
  const stream = run.streams[shard];
  const out: (Omit<ProducedEntry, 'id'> & { fields?: string[] })[] = [];
  const entry = (label: string, payload: string, event?: StreamEventV1) => out.push({ stream, payload, expect: 'poison', label, ...(event ? { event } : {}) });
  const [base] = symbolsOn(provider, shard, 1, (i) => `PSN${i}`);
  let seq = 900_000;
  const next = () => craft(provider, base, window2Ms + 100 + (seq % 800), seq++);
  for (const kind of kinds) {
    switch (kind) {
      case 'malformed':
        entry('truncated JSON', '{"ver":1,"provider":"x","symbol":');
        entry('not JSON', 'not json at all');
        entry('empty payload', '');
        entry('JSON array', '[1,2,3]');
        break;
      case 'schema': {
        const bad = (label: string, change: (e: Record<string, unknown>) => void) => {
          const e: Record<string, unknown> = { ...next() };
          change(e);
          entry(label, JSON.stringify(e));
        };
        bad('h < l', (e) => {
          e.h = 99;
          e.l = 101;
          e.o = 100;
          e.c = 100;
        });
        bad('negative volume', (e) => {
          e.v = -5;
        });
        bad('unknown kind', (e) => {
          e.kind = 'quote';
        });
        bad('string price', (e) => {
          e.o = '100.5';
        });
        bad('version 2', (e) => {
          e.ver = 2;
        });
        bad('event_id not provider|symbol|src_ts|seq', (e) => {
          e.event_id = 'nope';
        });
        bad('unparseable src_ts', (e) => {
          e.src_ts = 'yesterday';
        });
        bad('no symbol', (e) => {
          delete e.symbol;
        });
        out.push({ stream, payload: '(entry without field d)', fields: ['x', 'y'], expect: 'poison', label: 'no payload field' });
        break;
      }
      case 'future': {
        const e = craft(provider, base, Date.now() + 24 * 3600_000, seq++);
        entry('src_ts 24 h ahead', JSON.stringify(e), e);
        break;
      }
      case 'oversized-symbol': {
        const random = SeededRandom.fromSeed(shard + 1);
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
        const [symbol] = symbolsOn(provider, shard, 1, () =>
          Array.from({ length: 4001 }, () => alphabet[Math.floor(random.next() * alphabet.length)]).join(''),
        );
        const e = craft(provider, symbol, window2Ms + 400, seq++);
        entry('4,001-character symbol', JSON.stringify(e), e);
        break;
      }
      case 'nul-symbol': {
        const [symbol] = symbolsOn(provider, shard, 1, (i) => `NUL\u0000${i}`);
        const e = craft(provider, symbol, window2Ms + 500, seq++);
        entry('NUL in symbol', JSON.stringify(e), e);
        break;
      }
    }
  }
  return out;
}

describe('fault matrix i: a poison storm', function () {
  this.timeout(300_000);
  const faults = useFaultStack('poison-storm');
  let run: FaultRun;
  const byShard: ProducedEntry[][] = [];

  before(async function () {
    this.timeout(300_000);
    run = await faults.sharedRun('poison', { shards: SHARDS });
    await run.startWorker();
    await run.startConsumers();
    for (const [shard, storm] of STORMS.entries()) {
      // Each shard its own provider, so its bars are its own.
      const provider = `${run.provider}-s${shard}`;
      const symbols = symbolsOn(provider, shard, 3, (i) => `SYM${i}`);
      const plan = run.plan(6, PER_WINDOW, { provider, symbols, seed: 100 + shard });
      const window2Ms = Date.parse(plan[2][0].src_ts) - (Date.parse(plan[2][0].src_ts) % run.windowMs);
      byShard[shard] = [
        ...(await run.publish([...plan[0], ...plan[1]])),
        ...(await run.publishEntries(poison(run, shard, provider, storm.kinds, window2Ms))),
        ...(await run.publish(plan.slice(2).flat())),
      ];
    }
    await run.settle(RECOVERY_MS);
  });

  for (const [shard, storm] of STORMS.entries()) {
    it(`shard ${shard}, ${storm.name}: bad entries in the DLQ with a reason, good ones in bars, none late`, async function () {
      const others = byShard.flatMap((entries, s) => (s === shard ? [] : entries));
      const accounting = await run.account({ streams: [run.streams[shard]], produced: byShard[shard], others });
      assertAccounted(accounting);
    });
  }
});
