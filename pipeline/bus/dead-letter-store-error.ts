/** Why the dead-letter store could not answer; callers branch on the code. */
export const DEAD_LETTER_STORE_ERROR_CODES = [
  /** The server is not reachable (refused, timed out, wrong host); the message names its masked URL. */
  'UNREACHABLE',
] as const;

export type DeadLetterStoreErrorCode = (typeof DEAD_LETTER_STORE_ERROR_CODES)[number];

/** A {@link DeadLetterStore} operation that failed for a reason a person can act on, in one line. */
export class DeadLetterStoreError extends Error {
  readonly code: DeadLetterStoreErrorCode;

  constructor(message: string, code: DeadLetterStoreErrorCode, options?: { readonly cause?: unknown }) {
    super(message, options);
    this.name = this.constructor.name;
    this.code = code;
  }
}
