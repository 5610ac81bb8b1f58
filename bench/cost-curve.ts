#!/usr/bin/env node
/**
 * The cost curve of bench/README.md: runs `throughput.js` once per point of a symbols sweep and a
 * shards sweep, on each bus, one after another, and prints one Markdown table (and every run's JSON
 * line to `.data/bench/cost-curve-<time>.jsonl`).
 *
 *   node dist/bench/cost-curve.js [--buses redis,kafka] [--symbols 3,100,2000,10000] [--symbol-shards 4]
 *                                 [--shards 1,2,4,8] [--shard-symbols 100] [--duration 30s] [-- <more throughput.js options>]
 *
 * Each point runs closed loop at the most the consumers sustain (`--rate max --max-backlog`, by
 * default 200,000 undelivered events), so its latency is the pipeline's and not a growing queue's.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { BenchSummary } from './bench-report.js';
import { REPO_ROOT } from './repo-paths.js';

interface Point {
  readonly bus: string;
  readonly symbols: number;
  readonly shards: number;
}

function list(text: string): number[] {
  return text.split(',').map((v) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`not a positive integer: "${v}"`);
    return n;
  });
}

function runPoint(point: Point, duration: string, extra: readonly string[]): Promise<BenchSummary | string> {
  const args = [
    resolve(REPO_ROOT, 'dist/bench/throughput.js'),
    '--bus',
    point.bus,
    '--rate',
    'max',
    '--duration',
    duration,
    '--symbols-count',
    String(point.symbols),
    '--shards',
    String(point.shards),
    '--skip-baseline',
    ...(extra.includes('--max-backlog') ? [] : ['--max-backlog', '200000']),
    ...extra,
  ];
  return new Promise((done) => {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{"bench":"throughput"'));
      done(line === undefined ? `exit ${String(code)}, no report` : (JSON.parse(line) as BenchSummary));
    });
  });
}

const mb = (bytes: number | undefined) => (bytes === undefined ? 'n/a' : `${Math.round(bytes / 1024 / 1024)} MB`);
const int = (n: number | undefined) => (n === undefined ? 'n/a' : Math.round(n).toLocaleString('en-US'));

function row(point: Point, s: BenchSummary | string): string {
  if (typeof s === 'string') return `| ${point.bus} | ${int(point.symbols)} | ${point.shards} | failed: ${s} | | | | | |`;
  const worker = s.cpu.processes.find((p) => p.name === 'worker');
  const total = s.cpu.processes.find((p) => p.name === 'total');
  const exact = s.latency.exactFromBars;
  return (
    `| ${point.bus} | ${int(point.symbols)} | ${point.shards} | ${int(s.rates.intoBarsPerSecond)} | ${exact ? `${int(exact.p95)} ms` : 'n/a'} | ` +
    `${int(s.lag.maxMetricMs)} ms | ${mb(s.resources.workerMaxSampledRssBytes)} | ${worker?.usPerEvent?.toFixed(1) ?? 'n/a'} | ${total?.usPerEvent?.toFixed(1) ?? 'n/a'} | ` +
    `${int(s.events.lost)} / ${int(s.events.late)} | ${s.run.loadAverage.map((l) => l.toFixed(1)).join(' / ')} |`
  );
}

async function main(): Promise<void> {
  const dash = process.argv.indexOf('--');
  const own = dash < 0 ? process.argv.slice(2) : process.argv.slice(2, dash);
  const extra = dash < 0 ? [] : process.argv.slice(dash + 1);
  const { values } = parseArgs({
    args: own,
    options: {
      buses: { type: 'string', default: 'redis' },
      symbols: { type: 'string', default: '3,100,2000,10000' },
      'symbol-shards': { type: 'string', default: '4' },
      shards: { type: 'string', default: '1,2,4,8' },
      'shard-symbols': { type: 'string', default: '100' },
      duration: { type: 'string', default: '30s' },
    },
  });
  const points: Point[] = [];
  for (const bus of values.buses.split(',')) {
    for (const symbols of list(values.symbols)) points.push({ bus, symbols, shards: list(values['symbol-shards'])[0] });
    for (const shards of list(values.shards)) points.push({ bus, symbols: list(values['shard-symbols'])[0], shards });
  }
  const dir = resolve(REPO_ROOT, '.data/bench');
  mkdirSync(dir, { recursive: true });
  const jsonl = resolve(dir, `cost-curve-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`);
  const rows = [
    '| bus | symbols | shards | into bars, events/s | p95 window end → row (exact) | max lag | worker RSS (max sampled) | worker CPU µs/event | all processes µs/event | lost / late | load start / end |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const point of points) {
    process.stderr.write(`[cost-curve] ${point.bus}, ${point.symbols} symbols, ${point.shards} shards...\n`);
    const summary = await runPoint(point, values.duration, extra);
    if (typeof summary !== 'string') appendFileSync(jsonl, `${JSON.stringify({ point, ...summary })}\n`);
    rows.push(row(point, summary));
    process.stderr.write(`${rows[rows.length - 1]}\n`);
  }
  process.stdout.write(`${rows.join('\n')}\n\nevery run's report: ${jsonl}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`cost-curve: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
