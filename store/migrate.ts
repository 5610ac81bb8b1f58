import { Migrator, sql } from 'kysely';
import type { Kysely, MigrationResultSet } from 'kysely';
import { describeError } from './db.js';
import { migrationProvider } from './migrations.js';
import type { Database } from './schema.js';
import { StoreError } from './store-error.js';

/**
 * Session advisory-lock key ("mdpmig" in hex) held around a whole migration run. Kysely locks only
 * while applying migrations and survives races on its bookkeeping tables by catching errors; this
 * makes concurrent starts queue instead, so each run sees a settled schema.
 */
const MIGRATION_LOCK_KEY = 0x6d64706d6967;

/**
 * Applies every pending migration and returns the names applied by this call, in order (empty
 * when the schema is already current). Safe to run from several processes at once: they queue on
 * a PostgreSQL advisory lock and later ones find nothing to do.
 *
 * @throws {StoreError} `CONNECTION_FAILED` when the database is unreachable, `MIGRATION_FAILED`
 *   naming the failing migration otherwise.
 */
export async function migrateToLatest(db: Kysely<Database>): Promise<string[]> {
  const resultSet = await db.connection().execute(async (conn) => {
    // One connection throughout: the session lock belongs to it, and the migrator runs on it.
    await sql`SELECT pg_advisory_lock(${sql.lit(MIGRATION_LOCK_KEY)})`.execute(conn);
    let outcome: MigrationResultSet | undefined;
    try {
      outcome = await new Migrator({ db: conn, provider: migrationProvider }).migrateToLatest();
      return outcome;
    } finally {
      try {
        await sql`SELECT pg_advisory_unlock(${sql.lit(MIGRATION_LOCK_KEY)})`.execute(conn);
      } catch (unlockErr) {
        // Surface an unlock failure only when it is the sole problem; a broken connection drops
        // its session locks anyway.
        if (outcome !== undefined && outcome.error === undefined) throw unlockErr;
      }
    }
  });

  const { error, results = [] } = resultSet;
  if (error !== undefined) {
    if (error instanceof StoreError) throw error;
    const failed = results.find((r) => r.status === 'Error')?.migrationName;
    const where = failed === undefined ? 'preparing migrations' : `migration ${failed}`;
    throw new StoreError('MIGRATION_FAILED', `${where} failed: ${describeError(error)}`, { cause: error });
  }
  return results.filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
