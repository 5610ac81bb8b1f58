/**
 * Applies pending store migrations.
 *
 *   node dist/store/migrate-cli.js [--url postgres://user:pass@host:5432/db]
 *
 * The URL defaults to `$STORE_URL`, then to the local stack's database. Exits 0 after printing
 * what was applied, 1 with a one-line reason (password redacted) on failure.
 */
import { parseArgs } from 'node:util';
import { redactSecrets } from '../pipeline/config/index.js';
import { createDb, DEFAULT_STORE_URL } from './db.js';
import { migrateToLatest } from './migrate.js';
import { StoreError } from './store-error.js';

const USAGE = 'usage: node dist/store/migrate-cli.js [--url URL]   (default: $STORE_URL, then the local stack)';

/** `parseArgs` rejects bad flags with a TypeError whose code starts with `ERR_PARSE_ARGS`. */
function isUsageError(err: unknown): err is TypeError {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof TypeError && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

async function run(): Promise<void> {
  const { values } = parseArgs({
    options: { url: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help === true) {
    console.log(USAGE);
    return;
  }
  const url = values.url ?? process.env.STORE_URL ?? DEFAULT_STORE_URL;
  const db = createDb(url, { max: 1 });
  try {
    const applied = await migrateToLatest(db);
    if (applied.length === 0) {
      console.log(`store schema at ${redactSecrets(url, [url])} is up to date`);
    } else {
      for (const name of applied) console.log(`applied ${name}`);
      console.log(`store schema at ${redactSecrets(url, [url])} migrated (${applied.length} applied)`);
    }
  } finally {
    await db.destroy();
  }
}

run().catch((err: unknown) => {
  // Store errors already carry a complete, redacted message; the stack would only add noise.
  if (err instanceof StoreError) console.error(`migrate failed [${err.code}]: ${err.message}`);
  else if (isUsageError(err)) console.error(`${err.message}\n${USAGE}`);
  else console.error(err);
  process.exit(1);
});
