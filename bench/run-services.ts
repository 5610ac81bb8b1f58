/**
 * The services a bench run talks to — Redis, PostgreSQL, Temporal — connected with the run's
 * config, each closed at the end of the run, and the run's data deleted then unless `--keep`.
 */
import { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import type { Client } from '@temporalio/client';
import { connectTemporal } from '../client/temporal.js';
import { lossMemoKey, RedisBus } from '../pipeline/bus/index.js';
import { createDb, migrateToLatest } from '../store/index.js';
import type { Database } from '../store/index.js';
import type { Cleanup } from './run-cleanup.js';
import { progress } from './bench-progress.js';
import type { RunPlan } from './run-plan.js';
import { redactSecrets } from '../pipeline/config/index.js';

/** Hash where RedisBus keeps consumer checkpoints (its default; workers/wiring.ts does not change it). */
const CHECKPOINT_KEY = 'mdp:checkpoints';

export interface RunServices {
  /** Plain commands: stream bounds, XLEN, INFO, deletes. */
  readonly redis: Redis;
  /** The pipeline's own bus: group lag, entries added, reading snapshots back. */
  readonly bus: RedisBus;
  readonly db: Kysely<Database>;
  readonly client: Client;
}

export async function connectServices(plan: RunPlan, cleanup: Cleanup): Promise<RunServices> {
  const { config } = plan;
  const r = config.bus.redis;
  const redis = new Redis(r.uri, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined); // surfaced by the commands that fail
  try {
    await redis.connect();
  } catch (err) {
    throw new Error(`Redis is not reachable at ${redactSecrets(r.uri, [r.uri])}: ${(err as Error).message} (start the stack: bash scripts/stack-start.sh)`);
  }
  cleanup.add('close redis', () => redis.quit());
  const bus = new RedisBus(r.uri, { maxLen: r.maxlen });
  cleanup.add('close bus', () => bus.close());
  const db = createDb(config.store.url);
  cleanup.add('close db', () => db.destroy());
  await migrateToLatest(db);
  const temporal = await connectTemporal(config);
  cleanup.add('close temporal', () => temporal.close());
  return { redis, bus, db, client: temporal.client };
}

/** At the end of the run: deletes its streams, checkpoint fields, bars, signals and job rows (all named after its tag). */
export function deleteRunDataAtEnd(plan: RunPlan, { redis, db }: RunServices, cleanup: Cleanup): void {
  const { tag, streams, featureStreams, consumerIds } = plan;
  const r = plan.config.bus.redis;
  cleanup.add("delete the run's streams, checkpoints, bars, signals and job rows", async () => {
    const keys = await redis.del(...streams, ...featureStreams, r.late_stream, r.dlq_stream, r.signals_stream, plan.baselineStream);
    await redis.del(...[...streams, ...featureStreams].map(lossMemoKey)); // the consumers' unread-loss memos
    await redis.hdel(CHECKPOINT_KEY, ...streams.map((s) => `${s}|${r.consumer_group}`));
    const bars = await db.deleteFrom('bars_ohlcv').where('provider', '=', tag).executeTakeFirst();
    const signals = await db.deleteFrom('signals').where('provider', '=', tag).executeTakeFirst();
    const jobs = await db.deleteFrom('job_runs').where('job_name', 'in', consumerIds).executeTakeFirst();
    progress(
      `cleanup: deleted ${keys} streams, ${String(bars.numDeletedRows)} bars, ${String(signals.numDeletedRows)} signals, ${String(jobs.numDeletedRows)} job_runs rows`,
    );
  });
}
