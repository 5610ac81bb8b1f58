import type { JobRunSink } from '../pipeline/contracts/index.js';
import type { JobAuditFinish, JobAuditStart } from './types.js';

/**
 * The `job_runs` audit activities of a workflow-level job (a replay, a model reload): `start`
 * closes a crashed predecessor's row as abandoned and opens a new one; `finish` ends it.
 */
export function jobAudit(jobs: JobRunSink, kind: string) {
  return {
    start: async (input: JobAuditStart): Promise<number> => {
      await jobs.markAbandoned(input.jobName);
      return jobs.start({ jobName: input.jobName, kind, meta: { ...input.meta } });
    },
    finish: (input: JobAuditFinish): Promise<void> => jobs.finish(input.jobRunId, input.status, input.counts, input.error),
  };
}
