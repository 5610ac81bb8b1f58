import { resolve } from 'node:path';
import type {
  IbkrBackfillDefaults,
  IbkrProducerDefaults,
  InferenceDefaults,
  MicroBatchDefaults,
  ProducerDefaults,
  RecoveryDefaults,
  ReplayDefaults,
} from '../activities/index.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { busNames, configuredAdapter } from '../pipeline/config/index.js';
import { loadRulesFile } from '../pipeline/inference/rules/index.js';
import { rulesLoadOptions } from './adapters.js';

/** Longest a consumer or producer activity runs before the workflow starts a fresh run. */
const DEFAULT_MAX_RUN_MS = 15 * 60_000;

/** `micro_batch.*` and the event streams, as the micro-batch consumer (and every replay) windows with them. */
export function microBatchDefaults(config: StreamingConfig): MicroBatchDefaults {
  const names = busNames(config);
  return {
    stream: names.stream,
    group: names.consumer_group,
    lateStream: names.late_stream,
    dlqStream: names.dlq_stream,
    windowMs: config.micro_batch.window_ms,
    allowLateMs: config.micro_batch.allow_late_ms,
    flushTimeoutMs: config.micro_batch.flush_timeout_ms,
    maxFutureMs: config.micro_batch.max_future_ms,
    maxBatchSize: config.micro_batch.max_batch_size,
    maxBufferedEvents: config.micro_batch.max_buffered_events,
    maxDeliveries: config.bus.max_deliveries,
    maxRunMs: DEFAULT_MAX_RUN_MS,
    featuresStream: names.features_stream,
    featureWindows: config.features.windows,
    shards: config.bus.shards,
  };
}

/** `producers.synthetic.*` and where it publishes. */
export function producerDefaults(config: StreamingConfig): ProducerDefaults {
  const synthetic = config.producers.synthetic;
  return {
    stream: busNames(config).stream,
    shards: config.bus.shards,
    provider: synthetic.provider,
    symbols: synthetic.symbols,
    seed: synthetic.seed,
    tickRate: synthetic.tick_rate,
    priceVolatility: synthetic.price_volatility,
    maxRunMs: DEFAULT_MAX_RUN_MS,
  };
}

/** A run of the IBKR producer: a day (TWS restarts daily; each new run reconnects, a gap it reports). */
const IBKR_MAX_RUN_MS = 24 * 60 * 60_000;

/** `producers.ibkr.*`, where it publishes, and the lateness reach its 5-second bars must fit in. */
export function ibkrProducerDefaults(config: StreamingConfig): IbkrProducerDefaults {
  return {
    stream: busNames(config).stream,
    shards: config.bus.shards,
    ibkr: config.producers.ibkr,
    microBatch: { allow_late_ms: config.micro_batch.allow_late_ms, window_ms: config.micro_batch.window_ms },
    maxRunMs: IBKR_MAX_RUN_MS,
  };
}

/** The features streams the inference consumers read, and where their signals go. */
export function inferenceDefaults(config: StreamingConfig): InferenceDefaults {
  const names = busNames(config);
  return {
    featuresStream: names.features_stream,
    signalsStream: names.signals_stream,
    inferenceGroup: names.inference_group,
    dlqStream: names.dlq_stream,
    maxDeliveries: config.bus.max_deliveries,
    maxRunMs: DEFAULT_MAX_RUN_MS,
    shards: config.bus.shards,
    featureWindows: config.features.windows,
    maxRuleCooldownMs: () => maxRuleCooldownMs(config),
  };
}

/** Longest `cooldown` of the enabled rules file, ms (0 without rules); read on each call, so edits apply. */
function maxRuleCooldownMs(config: StreamingConfig, baseDir = process.cwd()): number {
  const rules = config.inference.adapters.rules;
  if (!rules.enabled) return 0;
  const ruleSet = loadRulesFile(resolve(baseDir, rules.file), rulesLoadOptions(config));
  return Math.max(0, ...ruleSet.rules.map((r) => r.cooldownMs));
}

/** Both roles' streams and groups, and `recovery.*`. */
export function recoveryDefaults(config: StreamingConfig): RecoveryDefaults {
  return { microBatch: microBatchDefaults(config), inference: inferenceDefaults(config), minIdleMs: config.recovery.min_idle_ms };
}

/** `replay.*` on top of the micro-batch settings, and the live pipeline's inference. */
export function replayDefaults(config: StreamingConfig, baseDir = process.cwd()): ReplayDefaults {
  return {
    microBatch: microBatchDefaults(config),
    datasetsFile: config.replay.datasets_file,
    stream: config.replay.stream,
    chunkSpan: config.replay.chunk_span,
    // Replays compute features and signals like the live pipeline: its adapter, its windows.
    inference: {
      adapter: configuredAdapter(config) ?? 'off',
      featureWindows: config.features.windows,
      signalsStream: busNames(config).signals_stream,
      maxRuleCooldownMs: () => maxRuleCooldownMs(config, baseDir),
    },
  };
}

/** `producers.ibkr.*` for historical backfills, and the datasets file their datasets are registered in. */
export function ibkrBackfillDefaults(config: StreamingConfig): IbkrBackfillDefaults {
  return { ibkr: config.producers.ibkr, datasetsFile: config.replay.datasets_file, backfillDir: config.producers.ibkr.backfill_dir };
}
