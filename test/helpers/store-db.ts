/** Store test helpers: open the configured database with a helpful failure, and address sibling databases. */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { redactSecrets } from '../../pipeline/config/index.js';
import { createDb, StoreError } from '../../store/index.js';
import type { Database } from '../../store/index.js';

/** Opens the store and fails with a pointer to the stack script when PostgreSQL is not up. */
export async function connectOrExplain(url: string): Promise<Kysely<Database>> {
  const db = createDb(url);
  try {
    await sql`SELECT 1`.execute(db);
  } catch (err) {
    await db.destroy();
    // A StoreError already names the redacted URL.
    const reason = err instanceof StoreError ? err.message : `${redactSecrets(url, [url])}: ${String(err)}`;
    throw new Error(
      `PostgreSQL is not reachable (${reason}). ` + 'Start the local stack with `bash scripts/stack-start.sh`, or point STORE_URL at a running server.',
      { cause: err },
    );
  }
  return db;
}

/** A URL for another database on the same server as `url`. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}
