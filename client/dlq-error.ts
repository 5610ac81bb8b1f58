/** Why a `mdp dlq` command could not do what was asked; callers branch on the code. */
export const DLQ_ERROR_CODES = [
  /** `dlq show ID` (or `redrive ID`) names an entry the DLQ stream does not have. */
  'NOT_FOUND',
  /** The configured bus has no dead-letter store the CLI can read yet (Kafka). */
  'UNSUPPORTED_BUS',
  /** `redrive` waited too long for room on an events stream near its retention bound. */
  'BACKLOG_FULL',
] as const;

export type DlqErrorCode = (typeof DLQ_ERROR_CODES)[number];

/** A `mdp dlq` command that cannot proceed: the CLI prints the message and exits 1. */
export class DlqError extends Error {
  readonly code: DlqErrorCode;

  constructor(message: string, code: DlqErrorCode) {
    super(message);
    this.name = this.constructor.name;
    this.code = code;
  }
}
