/**
 * What one bench run is: its tag (also the provider name) and every name derived from it, the
 * resolved config the run's worker reads, and the files the run leaves in `.data/bench/`.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { dump as dumpYaml } from 'js-yaml';
import { shardOf, shardStream } from '../pipeline/bus/index.js';
import { busNames, loadStreamingConfig } from '../pipeline/config/index.js';
import type { BusType, StreamingConfig, StreamingConfigOverrides } from '../pipeline/config/index.js';
import { SyntheticProducer } from '../pipeline/producers/index.js';
import { inferenceWorkflowId, microBatchWorkflowId } from '../workflows/index.js';
import { freePort } from '../test/helpers/wait.js';
import { progress } from './bench-progress.js';
import type { BenchOptions } from './bench-options.js';
import { fmtMs, shardMapText, symbolsPerShard } from './bench-report.js';
import { REPO_ROOT } from './repo-paths.js';
import { configFreeEnv } from '../test/helpers/worker-process.js';
import { taggedBusNames } from '../test/helpers/services.js';

/** The model `--inference sklearn` runs when the base config names none. */
const DEFAULT_MODEL_PATH = 'models/signal_model.onnx';

/**
 * The Temporal namespace of bench runs, whatever the base config says: a run starts and leaves
 * dozens of workflows, which belong neither in the user's `default` list nor beside the live ones.
 */
export const BENCH_NAMESPACE = 'mdp-bench';

export interface RunPlan {
  readonly tag: string;
  /** The base config with the run's names, shards, window, metrics port and inference adapters. */
  readonly config: StreamingConfig;
  /** `bus.type` of the run (`--bus`, else the base config's). */
  readonly bus: BusType;
  readonly shards: number;
  readonly symbols: readonly string[];
  readonly symbolShards: Readonly<Record<string, number>>;
  readonly windowMs: number;
  readonly metricsPort: number;
  readonly inferenceOn: boolean;
  /** `--inference sklearn`: the model; otherwise the rules file (both absolute). */
  readonly inferenceSource: string;
  readonly modelPath: string;
  /** Per shard: the event streams, their micro-batch workflow ids, the features streams and (inference on) their inference workflow ids. */
  readonly streams: readonly string[];
  readonly consumerIds: readonly string[];
  readonly featureStreams: readonly string[];
  readonly inferenceIds: readonly string[];
  /** Written by the ceiling's tool (redis-benchmark, or Kafka's ProducerPerformance) and deleted after it. */
  readonly baselineStream: string;
  /** `.data/bench/<tag>.yaml`, the worker's only config, and the worker's log beside it. */
  readonly configPath: string;
  readonly logPath: string;
  /** `--cpu-prof`: where the worker's and the publisher's `.cpuprofile` files go. */
  readonly profileDir: string;
}

/**
 * A run tag (also the provider name) that spreads the symbols over as many shards as the shard
 * function allows, so runs compare (with more symbols than shards some must share).
 */
function pickRunTag(symbols: readonly string[], shards: number): string {
  const want = Math.min(symbols.length, shards);
  let best = { tag: '', used: 0 };
  for (let i = 0; i < 1000 && best.used < want; i++) {
    const tag = `bench-${randomBytes(4).toString('hex')}`;
    const used = new Set(symbols.map((s) => shardOf(tag, s, shards))).size;
    if (used > best.used) best = { tag, used };
  }
  return best.tag;
}

/** Picks the run's tag and metrics port and resolves its config; fails when the inference adapter's file is missing. */
export async function planRun(opts: BenchOptions): Promise<RunPlan> {
  const base = loadStreamingConfig({ file: opts.configFile, env: process.env });
  const bus = opts.bus ?? base.bus.type;
  const shards = opts.shards ?? base.bus.shards;
  const symbols = opts.symbols ?? base.producers.synthetic.symbols;
  const tag = pickRunTag(symbols, shards);
  const metricsPort = await freePort();
  // Relative paths resolve against the worker's cwd (the repo root); absolute ones say what ran.
  const baseAdapters = base.inference.adapters;
  const rulesFile = resolve(REPO_ROOT, baseAdapters.rules.file || 'configs/rules.yaml');
  const modelPath = resolve(REPO_ROOT, baseAdapters.sklearn.model_path || DEFAULT_MODEL_PATH);
  const inferenceSource = opts.inference === 'sklearn' ? modelPath : rulesFile;
  if (opts.inference !== 'off' && !existsSync(inferenceSource)) throw new Error(`${inferenceSource} is missing: --inference ${opts.inference} needs it`);
  const overrides: StreamingConfigOverrides = {
    // Both buses' names are the run's, whichever one it uses: nothing can reach the live names.
    bus: {
      type: bus,
      shards,
      ...(opts.encoding === undefined ? {} : { encoding: opts.encoding }),
      redis: { ...taggedBusNames(tag), ...(opts.frameEvents === undefined ? {} : { frame_events: opts.frameEvents }) },
      kafka: taggedBusNames(tag),
    },
    producers: { synthetic: { provider: tag, symbols } },
    micro_batch: { window_ms: opts.windowMs, ...(opts.maxBatchSize !== undefined ? { max_batch_size: opts.maxBatchSize } : {}) },
    temporal: { namespace: BENCH_NAMESPACE, task_queue: `${tag}-queue` },
    telemetry: { metrics_port: metricsPort },
    ...(opts.copyMinRows === undefined ? {} : { store: { copy_min_rows: opts.copyMinRows } }),
    ...(opts.inference === 'off'
      ? {}
      : {
          inference: {
            adapters: {
              // rules also serve as the sklearn adapter's circuit-breaker fallback, as in the shipped config.
              rules: { enabled: true, file: rulesFile },
              ...(opts.inference === 'sklearn' ? { sklearn: { enabled: true, model_path: modelPath } } : {}),
            },
          },
        }),
  };
  const config: StreamingConfig = loadStreamingConfig({ file: opts.configFile, env: process.env, overrides });
  const names = busNames(config);
  const inferenceOn = opts.inference !== 'off';
  const symbolShards = Object.fromEntries(symbols.map((s) => [s, shardOf(tag, s, shards)]));
  const usedShards = new Set(Object.values(symbolShards)).size;
  if (usedShards < Math.min(symbols.length, shards)) {
    progress(
      `note: no provider name spreads ${symbols.length <= 12 ? symbols.join(', ') : `${symbols.length} symbols`} over more than ${usedShards} of ${shards} shards`,
    );
  }
  const dir = resolve(REPO_ROOT, '.data/bench');
  return {
    tag,
    config,
    bus,
    shards,
    symbols,
    symbolShards,
    windowMs: config.micro_batch.window_ms,
    metricsPort,
    inferenceOn,
    inferenceSource,
    modelPath,
    streams: Array.from({ length: shards }, (_, shard) => shardStream(names.stream, shard)),
    consumerIds: Array.from({ length: shards }, (_, shard) => microBatchWorkflowId(names.stream, shard)),
    featureStreams: Array.from({ length: shards }, (_, shard) => shardStream(names.features_stream, shard)),
    inferenceIds: inferenceOn ? Array.from({ length: shards }, (_, shard) => inferenceWorkflowId(names.features_stream, shard)) : [],
    baselineStream: `${tag}.baseline`,
    configPath: resolve(dir, `${tag}.yaml`),
    logPath: resolve(dir, `${tag}.worker.log`),
    profileDir: resolve(dir, `${tag}.prof`),
  };
}

/**
 * Writes the run's config file (mode 0600: it holds the store URL) and returns the worker's env:
 * this one without the vars that would override the file. Fails unless the file loads back to
 * the same config.
 */
export function writeRunConfig(plan: RunPlan, opts: BenchOptions): NodeJS.ProcessEnv {
  const { config, configPath } = plan;
  mkdirSync(resolve(configPath, '..'), { recursive: true });
  writeFileSync(
    configPath,
    `# mdp bench run ${plan.tag}: ${opts.configFile} resolved, with names unique to the run (safe to delete)\n${dumpYaml(config, { lineWidth: 200 })}`,
    { mode: 0o600 },
  );
  const workerEnv = configFreeEnv();
  if (JSON.stringify(loadStreamingConfig({ file: configPath, env: workerEnv })) !== JSON.stringify(config)) {
    throw new Error(`${configPath} does not load back to the same config`);
  }
  progress(
    `run ${plan.tag} on ${plan.bus}: ${opts.rate === 'max' ? 'max rate' : `${opts.rate} events/s`} for ${fmtMs(opts.durationMs)}, window ${fmtMs(plan.windowMs)}, ${plan.shards} shards (${shardMapText(plan.symbolShards, symbolsPerShard(plan.symbolShards, plan.shards))}), ` +
      `inference ${plan.inferenceOn ? `${opts.inference} (${plan.inferenceSource})` : 'off'}, config ${configPath}`,
  );
  return workerEnv;
}

/** One of the run's events, encoded as it travels on the bus: the payload of the ceiling's records. */
export function sampleEventPayload(plan: RunPlan): string {
  const [sample] = new SyntheticProducer({ provider: plan.tag, symbols: plan.symbols, seed: 1, tickRate: 1, priceVolatility: 0.02 }).generateFinite({
    count: 1,
    startUs: Date.now() * 1000,
  });
  return JSON.stringify(sample);
}
