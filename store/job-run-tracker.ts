import { sql } from 'kysely';
import type { Kysely, Selectable } from 'kysely';
import type { JobRunSink } from '../pipeline/contracts/index.js';
import type { Database, JobRunStatus, JobRunsTable } from './schema.js';
import { StoreError } from './store-error.js';

/** One `job_runs` row. */
export interface JobRun {
  readonly id: number;
  readonly jobName: string;
  readonly kind: string;
  readonly status: JobRunStatus;
  readonly startedAt: Date;
  /** Last {@link JobRunTracker.heartbeat}, `null` until the first one. */
  readonly heartbeatAt: Date | null;
  /** When the run reached a terminal status, `null` while `running`. */
  readonly finishedAt: Date | null;
  readonly counts: Readonly<Record<string, number>>;
  readonly error: string | null;
  readonly meta: Readonly<Record<string, unknown>>;
}

/** The error text recorded on rows closed by {@link JobRunTracker.markAbandoned}. */
export const ABANDONED_ERROR = 'abandoned: superseded by a later attempt';

/**
 * Audit trail of job attempts (consumer runs, replays, model reloads) in `job_runs`.
 *
 * A row starts `running` and moves exactly once to a terminal status: `success`/`failure` via
 * {@link finish}, or `abandoned` via {@link markAbandoned} when a crashed attempt is superseded.
 * Heartbeats and finishes that arrive after that (e.g. from a zombie attempt) change nothing.
 *
 * @example
 * await tracker.markAbandoned('replay-2024-01');           // close a crashed predecessor
 * const id = await tracker.start({ jobName: 'replay-2024-01', kind: 'replay' });
 * await tracker.heartbeat(id, { bars: 1200 });
 * await tracker.finish(id, 'success', { bars: 5000 });
 */
export class JobRunTracker implements JobRunSink {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** Records a new `running` attempt of `jobName` and returns its id. */
  async start(input: { jobName: string; kind: string; meta?: Record<string, unknown> }): Promise<number> {
    const row = await this.#db
      .insertInto('job_runs')
      .values({
        job_name: input.jobName,
        kind: input.kind,
        status: 'running',
        meta: JSON.stringify(input.meta ?? {}),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return Number(row.id);
  }

  /**
   * Replaces the run's counts and stamps `heartbeat_at`; `meta` keys, if given, replace those of the
   * run's meta (e.g. where a resumable run got to). No effect once the run is terminal.
   *
   * @throws {StoreError} `JOB_RUN_NOT_FOUND` for an unknown id.
   */
  async heartbeat(id: number, counts: Record<string, number>, meta?: Record<string, unknown>): Promise<void> {
    const row = await this.#db
      .updateTable('job_runs')
      .set({
        counts: JSON.stringify(counts),
        heartbeat_at: sql<Date>`now()`,
        ...(meta !== undefined ? { meta: sql<string>`meta || ${JSON.stringify(meta)}::jsonb` } : {}),
      })
      .where('id', '=', String(id))
      .where('status', '=', 'running')
      .returning('id')
      .executeTakeFirst();
    if (row === undefined) await this.#requireExists(id);
  }

  /**
   * Moves a `running` run to `status` with its final counts and, for failures, the error text.
   * The first terminal status wins: finishing a run that is already terminal changes nothing.
   *
   * @throws {StoreError} `JOB_RUN_NOT_FOUND` for an unknown id.
   */
  async finish(id: number, status: 'success' | 'failure', counts: Record<string, number>, error?: string): Promise<void> {
    const row = await this.#db
      .updateTable('job_runs')
      .set({ status, counts: JSON.stringify(counts), error: error ?? null, finished_at: sql<Date>`now()` })
      .where('id', '=', String(id))
      .where('status', '=', 'running')
      .returning('id')
      .executeTakeFirst();
    if (row === undefined) await this.#requireExists(id);
  }

  /**
   * Marks every still-`running` run of `jobName` as `abandoned` (with `finished_at` and
   * {@link ABANDONED_ERROR}) and returns how many were. Call it before {@link start} of the
   * superseding attempt, or pass that attempt's id as `exceptId`.
   */
  async markAbandoned(jobName: string, options: { exceptId?: number } = {}): Promise<number> {
    let update = this.#db
      .updateTable('job_runs')
      .set({ status: 'abandoned', finished_at: sql<Date>`now()`, error: sql<string>`coalesce(error, ${ABANDONED_ERROR})` })
      .where('job_name', '=', jobName)
      .where('status', '=', 'running');
    if (options.exceptId !== undefined) update = update.where('id', '<>', String(options.exceptId));
    const result = await update.executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** The run with `id`, or `undefined` if there is none. */
  async get(id: number): Promise<JobRun | undefined> {
    const row = await this.#db.selectFrom('job_runs').selectAll().where('id', '=', String(id)).executeTakeFirst();
    return row === undefined ? undefined : toJobRun(row);
  }

  /** The `limit` most recently started runs, of one job or of all jobs, newest first. */
  async listRecent(jobName?: string, limit = 20): Promise<JobRun[]> {
    let select = this.#db.selectFrom('job_runs').selectAll();
    if (jobName !== undefined) select = select.where('job_name', '=', jobName);
    const rows = await select.orderBy('started_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
    return rows.map(toJobRun);
  }

  async #requireExists(id: number): Promise<void> {
    const row = await this.#db.selectFrom('job_runs').select('id').where('id', '=', String(id)).executeTakeFirst();
    if (row === undefined) throw new StoreError('JOB_RUN_NOT_FOUND', `job run ${id} does not exist`);
  }
}

function toJobRun(row: Selectable<JobRunsTable>): JobRun {
  return {
    id: Number(row.id),
    jobName: row.job_name,
    kind: row.kind,
    status: row.status,
    startedAt: row.started_at,
    heartbeatAt: row.heartbeat_at,
    finishedAt: row.finished_at,
    counts: row.counts,
    error: row.error,
    meta: row.meta,
  };
}
