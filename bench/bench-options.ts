/** The bench's command line: `node dist/bench/throughput.js --help` prints {@link USAGE}. */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BUS_TYPES } from '../pipeline/config/index.js';
import type { BusType } from '../pipeline/config/index.js';
import { parseDurationMs } from '../pipeline/contracts/index.js';
import { fmtMs } from './bench-report.js';
import { REPO_ROOT } from './repo-paths.js';

export const USAGE = `usage: node dist/bench/throughput.js [options]
  --bus redis|kafka     the bus the run's pipeline uses (default: the config's bus.type, MDP_BUS)
  --rate N|max          events/s through the producer workflow, or "max": an in-process publisher
                        XADDs synthetic events as fast as it can (default 1000)
  --duration 60s        how long to produce (default 60s)
  --window 2s           micro-batch window, 500ms..5s (default 2s)
  --shards N            event streams / consumer workflows (default: the config's bus.shards)
  --symbols A,B,C       symbols to simulate (default: the config's producers.synthetic.symbols)
  --symbols-count N     simulate N symbols S00001..SN instead (e.g. 2000, 10000)
  --max-batch-size N    override micro_batch.max_batch_size (default: the config's)
  --inference A         rules|sklearn|off: also run one inference consumer per shard of the run's
                        features streams with adapter A, and wait for every snapshot to be
                        evaluated (default off)
  --warm-features       before the consumers start, store synthetic history bars of the run's
                        provider covering the longest feature window, so the consumers' feature
                        windows start warm (default: cold, values null until each window fills)
  --max-backlog N       --rate max only: closed loop, pause publishing while more than N events
                        wait undelivered (default: open loop, as fast as possible)
  --publish-batch N     publisher: events per pipelined batch (default 1000)
  --in-flight N         publisher: batches in flight (default 4)
  --publisher P         who publishes: process (a publisher process of its own, the default for
                        --rate max and --backlog; with --rate N it is paced at N events/s),
                        inline (the bench process itself, max rate only), workflow (the producer
                        workflow in the worker, the default for --rate N)
  --backlog N           consumer capacity: publish N events with the consumers stopped, then
                        start them and measure the drain into bars (--duration bounds the load)
  --encoding E          override bus.encoding: json|msgpack (events on the bus)
  --frame-events N      override bus.redis.frame_events: events per Redis stream entry (1: one each)
  --copy-min-rows N     override store.copy_min_rows: flushes of at least N bars go through COPY
                        (0: never)
  --cpu-prof            write V8 CPU profiles of the worker and the publisher process to
                        .data/bench/<tag>.prof/ (node --cpu-prof)
  --settle-timeout 120s longest wait, after producing, for every event to be acknowledged
  --skip-baseline       do not measure the ceiling (redis-benchmark, or with --bus kafka
                        Kafka's ProducerPerformance)
  --keep                keep the run's streams, bars and job rows (default: deleted)
  --config FILE         base config (default configs/streaming.yaml)`;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}

export interface BenchOptions {
  /** Undefined: the base config's `bus.type`. */
  readonly bus: BusType | undefined;
  readonly rate: number | 'max';
  readonly durationMs: number;
  readonly windowMs: number;
  readonly shards: number | undefined;
  readonly symbols: readonly string[] | undefined;
  readonly maxBatchSize: number | undefined;
  readonly inference: 'rules' | 'sklearn' | 'off';
  readonly warmFeatures: boolean;
  readonly maxBacklog: number | undefined;
  readonly publishBatch: number;
  readonly publisher: 'process' | 'inline' | 'workflow';
  /** `--backlog N`: events to pre-load with the consumers stopped. */
  readonly backlog: number | undefined;
  readonly cpuProf: boolean;
  /** `--copy-min-rows N`: `store.copy_min_rows` of the run (undefined: the config's). */
  readonly copyMinRows: number | undefined;
  readonly encoding: 'json' | 'msgpack' | undefined;
  readonly frameEvents: number | undefined;
  readonly inFlight: number;
  readonly settleTimeoutMs: number;
  readonly baseline: boolean;
  readonly keep: boolean;
  readonly configFile: string;
}

function positiveInt(name: string, value: string | undefined, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0 || n > max) throw new UsageError(`--${name} must be an integer between 1 and ${max} (got "${value}")`);
  return n;
}

function duration(name: string, value: string, min: number, max: number): number {
  const ms = parseDurationMs(value);
  if (ms === undefined || ms < min || ms > max)
    throw new UsageError(`--${name} must be a duration between ${fmtMs(min)} and ${fmtMs(max)}, e.g. 60s (got "${value}")`);
  return ms;
}

function isBusType(value: string): value is BusType {
  return (BUS_TYPES as readonly string[]).includes(value);
}

/** The options of `argv`; undefined for `--help`. Throws {@link UsageError} on a bad value. */
export function parseOptions(argv: string[]): BenchOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      bus: { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string', default: '60s' },
      window: { type: 'string', default: '2s' },
      shards: { type: 'string' },
      symbols: { type: 'string' },
      'max-batch-size': { type: 'string' },
      inference: { type: 'string', default: 'off' },
      'warm-features': { type: 'boolean', default: false },
      'max-backlog': { type: 'string' },
      'publish-batch': { type: 'string', default: '1000' },
      'in-flight': { type: 'string', default: '4' },
      publisher: { type: 'string' },
      backlog: { type: 'string' },
      'symbols-count': { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      'copy-min-rows': { type: 'string' },
      encoding: { type: 'string' },
      'frame-events': { type: 'string' },
      'settle-timeout': { type: 'string', default: '120s' },
      'skip-baseline': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      config: { type: 'string', default: resolve(REPO_ROOT, 'configs/streaming.yaml') },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const rateText = values.rate ?? '1000';
  const rate = rateText === 'max' ? 'max' : Number(rateText);
  if (rate !== 'max' && !(Number.isFinite(rate) && rate > 0)) throw new UsageError(`--rate must be a positive number of events/s or "max" (got "${rateText}")`);
  const maxBacklog = positiveInt('max-backlog', values['max-backlog']);
  if (maxBacklog !== undefined && values.backlog !== undefined) throw new UsageError('--max-backlog and --backlog exclude each other');
  if (maxBacklog !== undefined && rate !== 'max') throw new UsageError('--max-backlog only applies to --rate max');
  const backlog = positiveInt('backlog', values.backlog, 100_000_000);
  const publisher = values.publisher ?? (rate === 'max' || backlog !== undefined ? 'process' : 'workflow');
  if (publisher !== 'process' && publisher !== 'inline' && publisher !== 'workflow')
    throw new UsageError(`--publisher must be process, inline or workflow (got "${publisher}")`);
  if (publisher === 'inline' && rate !== 'max') throw new UsageError('--publisher inline only applies to --rate max');
  if (publisher === 'workflow' && (rate === 'max' || backlog !== undefined))
    throw new UsageError('--publisher workflow needs --rate N (events/s) and no --backlog');
  if (backlog !== undefined && values.rate !== undefined) throw new UsageError('--backlog publishes as fast as it can: leave --rate out');
  const symbolsCount = positiveInt('symbols-count', values['symbols-count'], 1_000_000);
  if (symbolsCount !== undefined && values.symbols !== undefined) throw new UsageError('give --symbols or --symbols-count, not both');
  const symbols =
    symbolsCount !== undefined
      ? Array.from({ length: symbolsCount }, (_, i) => `S${String(i + 1).padStart(Math.max(5, String(symbolsCount).length), '0')}`)
      : values.symbols
          ?.split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
  const inference = values.inference;
  if (inference !== 'rules' && inference !== 'sklearn' && inference !== 'off')
    throw new UsageError(`--inference must be rules, sklearn or off (got "${inference}")`);
  const encoding = values.encoding;
  if (encoding !== undefined && encoding !== 'json' && encoding !== 'msgpack') throw new UsageError(`--encoding must be json or msgpack (got "${encoding}")`);
  const bus = values.bus;
  if (bus !== undefined && !isBusType(bus)) throw new UsageError(`--bus must be ${BUS_TYPES.join(' or ')} (got "${bus}")`);
  return {
    bus,
    rate: backlog !== undefined ? 'max' : rate,
    durationMs: duration('duration', values.duration, 5_000, 10 * 60_000),
    windowMs: duration('window', values.window, 500, 5000),
    shards: positiveInt('shards', values.shards, 64),
    symbols: symbols && symbols.length > 0 ? symbols : undefined,
    maxBatchSize: positiveInt('max-batch-size', values['max-batch-size']),
    inference,
    warmFeatures: values['warm-features'],
    maxBacklog,
    publishBatch: positiveInt('publish-batch', values['publish-batch'], 100_000)!,
    inFlight: positiveInt('in-flight', values['in-flight'], 64)!,
    publisher,
    backlog,
    cpuProf: values['cpu-prof'],
    encoding,
    frameEvents: positiveInt('frame-events', values['frame-events'], 10_000),
    copyMinRows: values['copy-min-rows'] === '0' ? 0 : positiveInt('copy-min-rows', values['copy-min-rows']),
    settleTimeoutMs: duration('settle-timeout', values['settle-timeout'], 5_000, 30 * 60_000),
    baseline: !values['skip-baseline'],
    keep: values.keep,
    configFile: values.config,
  };
}
