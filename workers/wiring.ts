import type { Kysely } from 'kysely';
import type { ActivityDeps } from '../activities/index.js';
import { openBus } from '../pipeline/bus/index.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import type { Logger, Metrics } from '../pipeline/telemetry/index.js';
import { OutageLog } from '../pipeline/telemetry/index.js';
import type { Database } from '../store/index.js';
import { JobRunTracker, ShardPositionStore, SignalsStoreClient, StoreClient } from '../store/index.js';
import {
  ibkrBackfillDefaults,
  ibkrProducerDefaults,
  inferenceDefaults,
  microBatchDefaults,
  producerDefaults,
  recoveryDefaults,
  replayDefaults,
} from './activity-defaults.js';
import { adapterFactory } from './adapters.js';
import { ibkrHistoricalBars } from './ibkr-connections.js';

/** Builds activity dependencies from the loaded config and live clients (shared by worker and tests). */
export function activityDeps(config: StreamingConfig, db: Kysely<Database>, metrics: Metrics, log: Logger): ActivityDeps {
  const onWrite = (seconds: number, table: string) => metrics.storeWriteSeconds.observe({ table }, seconds);
  const copyMinRows = config.store.copy_min_rows;
  const store = new StoreClient(db, { onWrite, copyMinRows });
  // One for every bus of the worker: an outage is one error line, then a summary every 10 s.
  const redisErrors = new OutageLog(log.child({ component: 'bus.redis' }), 'redis');
  return {
    openBus: () => openBus(config, { connectionErrors: redisErrors }),
    bars: store,
    shards: new ShardPositionStore(db, { onWrite, copyMinRows }),
    jobs: new JobRunTracker(db),
    signals: new SignalsStoreClient(db, { onWrite }),
    createAdapter: adapterFactory(config, metrics, log),
    readStoredBars: (query) => store.listBars(query),
    metrics,
    log: log.child({ component: 'activity' }),
    microBatch: microBatchDefaults(config),
    producer: producerDefaults(config),
    ibkrProducer: ibkrProducerDefaults(config),
    inference: inferenceDefaults(config),
    recovery: recoveryDefaults(config),
    replay: replayDefaults(config),
    ibkrBackfill: ibkrBackfillDefaults(config),
    historicalBars: () => ibkrHistoricalBars(config, metrics, log),
  };
}
