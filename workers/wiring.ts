import type { ActivityDeps } from '../activities/index.js';
import { RedisBus } from '../pipeline/bus/index.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { configuredAdapter } from '../pipeline/config/index.js';
import type { Logger, Metrics } from '../pipeline/telemetry/index.js';
import type { Database } from '../store/index.js';
import { JobRunTracker, SignalsStoreClient, StoreClient } from '../store/index.js';
import { adapterFactory, knownFeatures } from './adapters.js';
import { resolve } from 'node:path';
import { loadRulesFile } from '../pipeline/inference/rules/index.js';
import type { Kysely } from 'kysely';
import { Redis } from 'ioredis';

/** Longest a consumer or producer activity runs before the workflow starts a fresh run. */
const DEFAULT_MAX_RUN_MS = 15 * 60_000;

/** Builds activity dependencies from the loaded config and live clients (shared by worker and tests). */
export function activityDeps(config: StreamingConfig, db: Kysely<Database>, metrics: Metrics, log: Logger): ActivityDeps {
  const redis = config.bus.redis;
  const store = new StoreClient(db, { onWrite: (seconds, table) => metrics.storeWriteSeconds.observe({ table }, seconds) });
  return {
    openBus: () => new RedisBus(redis.uri, { maxLen: redis.maxlen }),
    bars: store,
    jobs: new JobRunTracker(db),
    signals: new SignalsStoreClient(db, { onWrite: (seconds, table) => metrics.storeWriteSeconds.observe({ table }, seconds) }),
    createAdapter: adapterFactory(config, metrics, log),
    metrics,
    log,
    defaults: {
      stream: redis.stream,
      group: redis.consumer_group,
      lateStream: redis.late_stream,
      dlqStream: redis.dlq_stream,
      windowMs: config.micro_batch.window_ms,
      allowLateMs: config.micro_batch.allow_late_ms,
      flushTimeoutMs: config.micro_batch.flush_timeout_ms,
      maxBatchSize: config.micro_batch.max_batch_size,
      maxBufferedEvents: config.micro_batch.max_buffered_events,
      maxDeliveries: config.bus.max_deliveries,
      maxRunMs: DEFAULT_MAX_RUN_MS,
      shards: config.bus.shards,
      provider: config.producers.synthetic.provider,
      symbols: config.producers.synthetic.symbols,
      seed: config.producers.synthetic.seed,
      tickRate: config.producers.synthetic.tick_rate,
      priceVolatility: config.producers.synthetic.price_volatility,
      featuresStream: redis.features_stream,
      signalsStream: redis.signals_stream,
      inferenceGroup: redis.inference_group,
      featureWindows: config.features.windows,
      recoveryMinIdleMs: config.recovery.min_idle_ms,
    },
    replay: {
      datasetsFile: config.replay.datasets_file,
      stream: config.replay.stream,
      chunkSpan: config.replay.chunk_span,
      windowMs: config.micro_batch.window_ms,
      allowLateMs: config.micro_batch.allow_late_ms,
      maxBatchSize: config.micro_batch.max_batch_size,
      maxBufferedEvents: config.micro_batch.max_buffered_events,
      dlqStream: redis.dlq_stream,
      lateStream: redis.late_stream,
      // Replays compute features and signals like the live pipeline: its adapter, its windows.
      inference: {
        adapter: configuredAdapter(config) ?? 'off',
        featureWindows: config.features.windows,
        signalsStream: redis.signals_stream,
        maxRuleCooldownMs: () => {
          const rules = config.inference.adapters.rules;
          if (!rules.enabled) return 0;
          const ruleSet = loadRulesFile(resolve(process.cwd(), rules.file), { knownFeatures: knownFeatures(config) });
          return Math.max(0, ...ruleSet.rules.map((r) => r.cooldownMs));
        },
      },
    },
    readStoredBars: (query) => store.listBars(query),
    // One short-lived connection per call: replays drop one stream per chunk, rarely.
    dropStream: async (stream) => {
      const client = new Redis(redis.uri, { lazyConnect: true, maxRetriesPerRequest: 2 });
      try {
        await client.del(stream);
      } finally {
        client.disconnect();
      }
    },
  };
}
