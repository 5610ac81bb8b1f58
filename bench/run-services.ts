/**
 * The services a bench run talks to — the bus (Redis or Kafka) and its server, PostgreSQL,
 * Temporal — connected with the run's config, each closed at the end of the run, and the run's
 * data deleted then unless `--keep`.
 */
import type { Kysely } from 'kysely';
import type { Client } from '@temporalio/client';
import { connectTemporal, ensureNamespace } from '../client/temporal.js';
import { openBus } from '../pipeline/bus/index.js';
import type { Bus } from '../pipeline/bus/index.js';
import { createDb, migrateToLatest } from '../store/index.js';
import type { Database } from '../store/index.js';
import type { Cleanup } from './run-cleanup.js';
import { progress } from './bench-progress.js';
import { connectBusServer } from './bus-server.js';
import type { BusServer } from './bus-server.js';
import type { RunPlan } from './run-plan.js';
import { SCRATCH_NAMESPACE_RETENTION } from '../test/helpers/services.js';

export interface RunServices {
  /** The pipeline's own bus (`openBus`): group lag, entries added, lengths, reading snapshots back. */
  readonly bus: Bus;
  /** The bus's server: append times of the first and last events, its memory and CPU, deletes. */
  readonly server: BusServer;
  readonly db: Kysely<Database>;
  readonly client: Client;
}

export async function connectServices(plan: RunPlan, cleanup: Cleanup): Promise<RunServices> {
  const { config } = plan;
  const bus = openBus(config);
  cleanup.add('close bus', () => bus.close());
  const server = await connectBusServer(plan, bus);
  cleanup.add(`close ${plan.bus}`, () => server.close());
  const db = createDb(config.store.url);
  cleanup.add('close db', () => db.destroy());
  await migrateToLatest(db);
  const temporal = await connectTemporal(config);
  cleanup.add('close temporal', () => temporal.close());
  // The bench's namespace on the shared server: registered on the first run, before the worker polls it.
  const ns = await ensureNamespace(temporal.client.connection, config.temporal.namespace, SCRATCH_NAMESPACE_RETENTION);
  if (ns.registered) progress(`registered Temporal namespace ${ns.namespace} (retention ${SCRATCH_NAMESPACE_RETENTION})`);
  return { bus, server, db, client: temporal.client };
}

/** At the end of the run: deletes its streams (topics), checkpoint fields (groups), bars, signals and job rows (all named after its tag). */
export function deleteRunDataAtEnd(plan: RunPlan, { server, db }: RunServices, cleanup: Cleanup): void {
  const { tag, consumerIds } = plan;
  cleanup.add("delete the run's streams, checkpoints, bars, signals and job rows", async () => {
    const streams = await server.deleteRunStreams(plan);
    const bars = await db.deleteFrom('bars_ohlcv').where('provider', '=', tag).executeTakeFirst();
    const signals = await db.deleteFrom('signals').where('provider', '=', tag).executeTakeFirst();
    const jobs = await db.deleteFrom('job_runs').where('job_name', 'in', consumerIds).executeTakeFirst();
    progress(
      `cleanup: deleted ${streams}, ${String(bars.numDeletedRows)} bars, ${String(signals.numDeletedRows)} signals, ${String(jobs.numDeletedRows)} job_runs rows`,
    );
  });
}
