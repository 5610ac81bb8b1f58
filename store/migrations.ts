import { sql } from 'kysely';
import type { Kysely, Migration, MigrationProvider } from 'kysely';
import { describeError } from './db.js';

/**
 * `bars_ohlcv`, keyed by (provider, symbol, interval, ts). A TimescaleDB hypertable on `ts` when
 * the extension is available on the server, a plain table otherwise; queries are the same.
 */
const barsOhlcv: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`
      CREATE TABLE bars_ohlcv (
        provider   text             NOT NULL,
        symbol     text             NOT NULL,
        "interval" text             NOT NULL,
        ts         timestamptz      NOT NULL,
        open       double precision NOT NULL,
        high       double precision NOT NULL,
        low        double precision NOT NULL,
        close      double precision NOT NULL,
        volume     double precision NOT NULL,
        trades     integer          NOT NULL,
        updated_at timestamptz      NOT NULL DEFAULT now(),
        PRIMARY KEY (provider, symbol, "interval", ts)
      )`.execute(db);

    await createHypertableIfAvailable(db, 'bars_ohlcv');
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await sql`DROP TABLE bars_ohlcv`.execute(db);
  },
};

/** `job_runs`: one audit row per job attempt (consumer run, replay, model reload). */
const jobRuns: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`
      CREATE TABLE job_runs (
        id           bigserial   PRIMARY KEY,
        job_name     text        NOT NULL,
        kind         text        NOT NULL,
        status       text        NOT NULL CHECK (status IN ('running', 'success', 'failure', 'abandoned')),
        started_at   timestamptz NOT NULL DEFAULT now(),
        heartbeat_at timestamptz,
        finished_at  timestamptz,
        counts       jsonb       NOT NULL DEFAULT '{}',
        error        text,
        meta         jsonb       NOT NULL DEFAULT '{}'
      )`.execute(db);
    await sql`CREATE INDEX job_runs_job_name_started_at_idx ON job_runs (job_name, started_at DESC)`.execute(db);
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await sql`DROP TABLE job_runs`.execute(db);
  },
};

/**
 * `signals`, keyed by (provider, symbol, name, ts) like the v1 signal event (spec §3.2). `adapter`
 * and `model_version` are copied out of `meta` so they can be filtered without a JSON path. A
 * hypertable on `ts` when TimescaleDB is available, as for `bars_ohlcv`.
 */
const signals: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`
      CREATE TABLE signals (
        provider      text             NOT NULL,
        symbol        text             NOT NULL,
        name          text             NOT NULL,
        ts            timestamptz      NOT NULL,
        value         double precision NOT NULL,
        score         double precision NOT NULL,
        meta          jsonb            NOT NULL DEFAULT '{}',
        adapter       text             NOT NULL,
        model_version text,
        updated_at    timestamptz      NOT NULL DEFAULT now(),
        PRIMARY KEY (provider, symbol, name, ts)
      )`.execute(db);
    // Serves the per-symbol reads (latest per name, ranges) that do not name a provider.
    await sql`CREATE INDEX signals_symbol_name_ts_idx ON signals (symbol, name, ts DESC)`.execute(db);
    await createHypertableIfAvailable(db, 'signals');
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await sql`DROP TABLE signals`.execute(db);
  },
};

/**
 * `shard_positions`: where each shard owner resumes, written in the same transaction as the bars
 * it covers (frontier, read point, oldest open entry, recent commit marks), and the fencing epoch
 * of the owner that last took the shard.
 */
const shardPositions: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`
      CREATE TABLE shard_positions (
        stream          text        NOT NULL,
        consumer_group  text        NOT NULL,
        owner           text        NOT NULL,
        epoch           bigint      NOT NULL,
        frontier_ms     bigint,
        read_id         text,
        oldest_open_id  text,
        marks           jsonb       NOT NULL DEFAULT '[]',
        last_commit_from_ms bigint,
        acquired_at     timestamptz NOT NULL DEFAULT now(),
        committed_at    timestamptz,
        PRIMARY KEY (stream, consumer_group)
      )`.execute(db);
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await sql`DROP TABLE shard_positions`.execute(db);
  },
};

/** `bars_ohlcv.interval` label (`500ms`, `2s`, `1m`, `1h`) as ms in SQL; null for any other form. */
const intervalLabelMs = (label: string) =>
  sql.raw(`CASE
        WHEN ${label} ~ '^[0-9]+ms$' THEN left(${label}, -2)::int
        WHEN ${label} ~ '^[0-9]+s$'  THEN left(${label}, -1)::int * 1000
        WHEN ${label} ~ '^[0-9]+m$'  THEN left(${label}, -1)::int * 60000
        WHEN ${label} ~ '^[0-9]+h$'  THEN left(${label}, -1)::int * 3600000
      END`);

/** `micro_batch.window_ms`'s default: the live bar interval when a row's own cannot be found. */
const DEFAULT_WINDOW_MS = 2000;

/**
 * `signals` gains the bar interval in its key, (provider, symbol, name, interval_ms, ts), so
 * replaying one provider at several windows no longer overwrites signals, and a `source` column
 * (`live` or `replay:<workflow id>`, copied from `meta.source` like `adapter`).
 *
 * Existing rows are kept. Their interval is the bar they were computed on, found in `bars_ohlcv`
 * at the signal's (provider, symbol, ts): the only interval with a bar there; when several have
 * one (a 2 s bar start is also a 1 s bar start), the live default 2 s if among them, else the
 * shortest; when none does (bars deleted), the default 2 s. Their source is `unknown`: before
 * this migration replays wrote into the same table as live inference, indistinguishably.
 */
const signalsInterval: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`ALTER TABLE signals ADD COLUMN interval_ms integer, ADD COLUMN source text`.execute(db);
    await sql`
      UPDATE signals s SET
        source = 'unknown',
        interval_ms = COALESCE(
          (SELECT c.ms FROM (
             SELECT ${intervalLabelMs('b."interval"')} AS ms FROM bars_ohlcv b
             WHERE b.provider = s.provider AND b.symbol = s.symbol AND b.ts = s.ts) c
           WHERE c.ms IS NOT NULL
           ORDER BY (c.ms = ${DEFAULT_WINDOW_MS}) DESC, c.ms
           LIMIT 1),
          ${DEFAULT_WINDOW_MS})`.execute(db);
    await sql`ALTER TABLE signals ALTER COLUMN interval_ms SET NOT NULL, ALTER COLUMN source SET NOT NULL`.execute(db);
    await sql`ALTER TABLE signals DROP CONSTRAINT signals_pkey`.execute(db);
    await sql`ALTER TABLE signals ADD PRIMARY KEY (provider, symbol, name, interval_ms, ts)`.execute(db);
    // Serves "replay X's signals" and "only live signals" without a JSON path.
    await sql`CREATE INDEX signals_source_idx ON signals (source)`.execute(db);
  },
  async down(db: Kysely<unknown>): Promise<void> {
    // Back to one row per (provider, symbol, name, ts): the most recently written interval wins.
    await sql`
      DELETE FROM signals s USING signals t
      WHERE s.provider = t.provider AND s.symbol = t.symbol AND s.name = t.name AND s.ts = t.ts
        AND (s.updated_at, s.interval_ms) < (t.updated_at, t.interval_ms)`.execute(db);
    await sql`DROP INDEX signals_source_idx`.execute(db);
    await sql`ALTER TABLE signals DROP CONSTRAINT signals_pkey`.execute(db);
    await sql`ALTER TABLE signals ADD PRIMARY KEY (provider, symbol, name, ts)`.execute(db);
    await sql`ALTER TABLE signals DROP COLUMN interval_ms, DROP COLUMN source`.execute(db);
  },
};

/**
 * Turns `table` into a TimescaleDB hypertable on `ts` when the extension is available on the
 * server; does nothing otherwise.
 */
async function createHypertableIfAvailable(db: Kysely<unknown>, table: string): Promise<void> {
  const available = await sql<{ found: number }>`
    SELECT 1 AS found FROM pg_available_extensions WHERE name = 'timescaledb'`.execute(db);
  if (available.rows.length === 0) return;
  try {
    await sql`CREATE EXTENSION IF NOT EXISTS timescaledb`.execute(db);
  } catch (err) {
    // The usual cause: the package is installed but the server was not started with it preloaded.
    throw new Error(`timescaledb is available but CREATE EXTENSION failed (is it in shared_preload_libraries?): ${describeError(err)}`, { cause: err });
  }
  await sql`
    SELECT create_hypertable(${table}::regclass, 'ts', if_not_exists => true, migrate_data => true)`.execute(db);
}

/**
 * Every migration, by name. Names sort in application order; never rename or edit one that has
 * shipped, add a new one instead.
 */
export const MIGRATIONS: Readonly<Record<string, Migration>> = Object.freeze({
  '0001_bars_ohlcv': barsOhlcv,
  '0002_job_runs': jobRuns,
  '0003_signals': signals,
  '0004_shard_positions': shardPositions,
  '0005_signals_interval': signalsInterval,
});

/** Serves {@link MIGRATIONS} from code, so the compiled `dist/` needs no migration files on disk. */
export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve({ ...MIGRATIONS }),
};
