/** The closed list of store failure codes; callers branch on these, never on messages. */
export const STORE_ERROR_CODES = [
  /** The database could not be reached or refused the login. Usually retryable. */
  'CONNECTION_FAILED',
  /** A migration failed; the schema is left at the last migration that succeeded. */
  'MIGRATION_FAILED',
  /** A `job_runs` row with the given id does not exist. Not retryable. */
  'JOB_RUN_NOT_FOUND',
  /**
   * The database refused some rows for their own values (a permanent error: SQLSTATE class 22, 23
   * or 54); the other rows of the call were written. Not retryable: the same rows fail again.
   */
  'REJECTED_ROWS',
] as const;

/** One of {@link STORE_ERROR_CODES}. */
export type StoreErrorCode = (typeof STORE_ERROR_CODES)[number];

/**
 * A failure raised by `store/`. Messages never contain a database password: URLs are passed
 * through `redactSecrets` (pipeline/config) first. The underlying driver error, if any, is kept as `cause`.
 */
export class StoreError extends Error {
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = this.constructor.name;
    this.code = code;
  }
}
