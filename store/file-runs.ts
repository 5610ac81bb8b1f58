import type { Kysely } from 'kysely';
import type { FilePosition } from '../pipeline/contracts/index.js';
import { JobRunTracker } from './job-run-tracker.js';
import type { Database } from './schema.js';

/** `job_runs.kind` of a file producer's runs. */
export const FILE_RUN_KIND = 'file_produce';

/**
 * A file producer's runs in `job_runs` (kind `file_produce`, one job name per file): the audit
 * trail of each run, and in `meta.position` where it got to ({@link FilePosition}), recorded with
 * every published batch. A run starts from the newest run's position, so each run carries the
 * position it started from until it records its own.
 *
 * @example
 * const runs = new FileRuns(db);
 * const from = await runs.lastPosition(jobName);             // undefined: never read before
 * const id = await runs.start(jobName, { path }, from);
 * await runs.record(id, position, counts);                   // after each batch
 * await runs.finish(id, 'success', counts);
 */
export class FileRuns {
  readonly #jobs: JobRunTracker;

  constructor(db: Kysely<Database>) {
    this.#jobs = new JobRunTracker(db);
  }

  /** Where the newest run of `jobName` got to, whatever became of it (a killed run's last record counts). */
  async lastPosition(jobName: string): Promise<FilePosition | undefined> {
    const [newest] = await this.#jobs.listRecent(jobName, 1);
    return newest === undefined ? undefined : toPosition(newest.meta.position);
  }

  /** Starts a run (a run of the same file still marked running died: it is marked abandoned). */
  async start(jobName: string, meta: Record<string, unknown>, from: FilePosition | undefined): Promise<number> {
    await this.#jobs.markAbandoned(jobName);
    return this.#jobs.start({ jobName, kind: FILE_RUN_KIND, meta: { ...meta, ...(from ? { position: from } : {}) } });
  }

  /** Records the run's counts and where it got to. */
  record(id: number, position: FilePosition, counts: Record<string, number>): Promise<void> {
    return this.#jobs.heartbeat(id, counts, { position });
  }

  finish(id: number, status: 'success' | 'failure', counts: Record<string, number>, error?: string): Promise<void> {
    return this.#jobs.finish(id, status, counts, error);
  }
}

/** A recorded position, or `undefined` for anything that is not one (a row written by other code). */
function toPosition(value: unknown): FilePosition | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const p = value as Record<string, unknown>;
  const count = (key: string) => (Number.isSafeInteger(p[key]) && (p[key] as number) >= 0 ? (p[key] as number) : undefined);
  const bytes = count('bytes'),
    lines = count('lines'),
    rows = count('rows');
  if (bytes === undefined || lines === undefined || rows === undefined) return undefined;
  if ((p.format !== 'jsonl' && p.format !== 'csv') || typeof p.prefixSha256 !== 'string') return undefined;
  return { bytes, lines, rows, format: p.format, prefixSha256: p.prefixSha256, ...(typeof p.header === 'string' ? { header: p.header } : {}) };
}
