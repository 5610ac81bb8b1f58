// The public surface of store/: everything that knows SQL lives behind these names.
export { createDb, DEFAULT_STORE_URL } from './db.js';
export type { CreateDbOptions } from './db.js';
export { migrateToLatest } from './migrate.js';
export { MIGRATIONS, migrationProvider } from './migrations.js';
export { StoreClient } from './bars-store-client.js';
export { isPermanentRowError, upsertBarsIsolated } from './bars-upsert.js';
export type { ListBarsQuery, ProviderBars, StoreClientOptions, WriteObserver } from './bars-store-client.js';
export { barGaps, EXPORT_PAGE_ROWS, exportBars } from './bars-export.js';
export type { BarGap, BarRow, BarsRangeQuery } from './bars-export.js';
export { ShardPositionStore } from './shard-position-store.js';
export { SignalsStoreClient } from './signals-store-client.js';
export type { LatestPerNameQuery, ListSignalsQuery } from './signals-store-client.js';
export { ABANDONED_ERROR, JobRunTracker } from './job-run-tracker.js';
export { FILE_RUN_KIND, FileRuns } from './file-runs.js';
export type { JobRun } from './job-run-tracker.js';
export { STORE_ERROR_CODES, StoreError } from './store-error.js';
export type { StoreErrorCode } from './store-error.js';
export type { BarsOhlcvTable, Database, JobRunStatus, JobRunsTable, ShardPositionsTable, SignalsTable } from './schema.js';
