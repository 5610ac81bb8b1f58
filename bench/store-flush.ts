/**
 * Cost of one micro-batch flush in PostgreSQL, INSERT path vs COPY path (`store.copy_min_rows`):
 * `ShardPositionStore.commit` (fence check, bars, position, in one transaction) of N bars, one bar
 * per symbol of one window, as the consumer writes them, for new bars (all inserted) and for the
 * same flush delivered again (all unchanged). Paths alternate flush by flush, so drift on the
 * shared box and the growing table weigh on both alike. Everything is written under a scratch
 * provider, deleted at the end.
 *
 *   node dist/bench/store-flush.js [--sizes 100,1000,2000,10000] [--flushes 12] [--warmup 2]
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { Kysely } from 'kysely';
import { loadStreamingConfig } from '../pipeline/config/index.js';
import type { Bar, ShardLease, ShardPosition, UpsertCounts } from '../pipeline/contracts/index.js';
import type { Database } from '../store/index.js';
import { createDb, migrateToLatest, ShardPositionStore } from '../store/index.js';

const WINDOW_MS = 2000;
const PATHS = [
  { name: 'insert', copyMinRows: 0 },
  { name: 'copy', copyMinRows: 1 },
] as const;
type PathName = (typeof PATHS)[number]['name'];
type Delivery = 'new' | 'redelivered';

interface Cell {
  readonly bars: number;
  readonly path: PathName;
  readonly delivery: Delivery;
  readonly flushes: number;
  readonly msPerFlush: { readonly p50: number; readonly p90: number; readonly min: number };
  readonly usPerBar: number;
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** One window's bars: one per symbol, prices varying by symbol and window like live ones. */
function windowBars(provider: string, symbols: number, tsMs: number): Bar[] {
  return Array.from({ length: symbols }, (_, i) => {
    const open = 100 + (i % 997) * 0.37 + ((tsMs / WINDOW_MS) % 13);
    return {
      provider,
      symbol: `SYM${i}`,
      interval: '2s',
      tsMs,
      open,
      high: open + 0.75,
      low: open - 0.5,
      close: open + 0.125,
      volume: 100 + i,
      trades: 1 + (i % 17),
    };
  });
}

async function run(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '100,1000,2000,10000' },
      flushes: { type: 'string', default: '12' },
      warmup: { type: 'string', default: '2' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: node dist/bench/store-flush.js [--sizes 100,1000,2000,10000] [--flushes 12] [--warmup 2]   (store.url from configs/streaming.yaml / STORE_URL)',
    );
    return;
  }
  const sizes = values.sizes.split(',').map((s) => Number(s.trim()));
  const flushes = Number(values.flushes);
  const warmup = Number(values.warmup);
  for (const [name, n, min] of [...sizes.map((s) => ['--sizes', s, 1] as const), ['--flushes', flushes, 1], ['--warmup', warmup, 0]] as const) {
    if (!Number.isInteger(n) || n < min) throw new Error(`${name} takes whole numbers >= ${min} (got ${n})`);
  }

  const config = loadStreamingConfig({ file: 'configs/streaming.yaml', env: process.env });
  const db = createDb(config.store.url, { max: 2 });
  const base = `bench-flush-${randomUUID()}`;
  try {
    await migrateToLatest(db);
    const cells = await measure(db, base, sizes, flushes, warmup);
    report(cells, flushes);
  } finally {
    await db.deleteFrom('bars_ohlcv').where('provider', 'like', `${base}%`).execute();
    await db.deleteFrom('shard_positions').where('stream', 'like', `${base}%`).execute();
    await db.destroy();
  }
}

async function measure(db: Kysely<Database>, base: string, sizes: readonly number[], flushes: number, warmup: number): Promise<Cell[]> {
  const cells: Cell[] = [];
  const lanes = await Promise.all(
    PATHS.map(async (path) => {
      const lease: ShardLease = { stream: `${base}-${path.name}.events.0`, group: 'bench', owner: 'bench', epoch: 1 };
      const shards = new ShardPositionStore(db, { copyMinRows: path.copyMinRows });
      await shards.acquire(lease);
      return { path, lease, shards, provider: `${base}-${path.name}` };
    }),
  );
  let windowMs = Math.floor(Date.UTC(2024, 0, 2) / WINDOW_MS) * WINDOW_MS;
  for (const size of sizes) {
    const times = new Map<string, number[]>();
    for (let i = 0; i < warmup + flushes; i++) {
      windowMs += WINDOW_MS;
      for (const lane of lanes) {
        const bars = windowBars(lane.provider, size, windowMs);
        const position: ShardPosition = {
          frontierMs: windowMs + WINDOW_MS,
          readId: `${i + 1}-0`,
          oldestOpenId: undefined,
          marks: [],
          lastCommitFromMs: windowMs,
        };
        for (const delivery of ['new', 'redelivered'] as const) {
          const started = performance.now();
          const counts = await lane.shards.commit(lane.lease, bars, position);
          const ms = performance.now() - started;
          check(counts, delivery, size, lane.path.name);
          if (i < warmup) continue;
          const key = `${lane.path.name}/${delivery}`;
          times.set(key, [...(times.get(key) ?? []), ms]);
        }
      }
    }
    for (const lane of lanes) {
      for (const delivery of ['new', 'redelivered'] as const) {
        const sorted = [...times.get(`${lane.path.name}/${delivery}`)!].sort((a, b) => a - b);
        const p50 = quantile(sorted, 0.5);
        cells.push({
          bars: size,
          path: lane.path.name,
          delivery,
          flushes,
          msPerFlush: { p50, p90: quantile(sorted, 0.9), min: sorted[0] },
          usPerBar: (p50 * 1000) / size,
        });
      }
    }
    process.stderr.write(`store-flush: ${size} bars per flush done\n`);
  }
  return cells;
}

/** The bench measures nothing if a path wrote something else than it should. */
function check(counts: UpsertCounts, delivery: Delivery, size: number, path: PathName): void {
  const expected: UpsertCounts = delivery === 'new' ? { inserted: size, updated: 0, unchanged: 0 } : { inserted: 0, updated: 0, unchanged: size };
  if (JSON.stringify(counts) !== JSON.stringify(expected))
    throw new Error(`${path} path, ${delivery} flush of ${size} bars: counts ${JSON.stringify(counts)}, expected ${JSON.stringify(expected)}`);
}

function report(cells: readonly Cell[], flushes: number): void {
  const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  const at = (bars: number, path: PathName, delivery: Delivery) => cells.find((c) => c.bars === bars && c.path === path && c.delivery === delivery)!;
  console.log(`\nms per flush (p50 / p90 of ${flushes} flushes) and µs per bar (p50), ShardPositionStore.commit\n`);
  console.log('| bars/flush | delivery | INSERT ms p50 / p90 | INSERT µs/bar | COPY ms p50 / p90 | COPY µs/bar | COPY / INSERT |');
  console.log('|---:|---|---:|---:|---:|---:|---:|');
  for (const bars of [...new Set(cells.map((c) => c.bars))]) {
    for (const delivery of ['new', 'redelivered'] as const) {
      const insert = at(bars, 'insert', delivery);
      const copy = at(bars, 'copy', delivery);
      console.log(
        `| ${bars} | ${delivery} | ${fmt(insert.msPerFlush.p50)} / ${fmt(insert.msPerFlush.p90)} | ${fmt(insert.usPerBar)} | ` +
          `${fmt(copy.msPerFlush.p50)} / ${fmt(copy.msPerFlush.p90)} | ${fmt(copy.usPerBar)} | ${(copy.msPerFlush.p50 / insert.msPerFlush.p50).toFixed(2)} |`,
      );
    }
  }
  console.log(JSON.stringify({ bench: 'store-flush', cells }));
}

run().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
