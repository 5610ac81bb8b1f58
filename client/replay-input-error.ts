/** What is wrong with a `mdp stream replay` invocation: callers branch on the code. */
export const REPLAY_INPUT_ERROR_CODES = ['missing_option', 'unknown_dataset', 'bad_range', 'bad_window', 'bad_option'] as const;
export type ReplayInputErrorCode = (typeof REPLAY_INPUT_ERROR_CODES)[number];

/**
 * A replay that must not start: its options are wrong (a usage error, exit 2). The message names
 * the option and what was given; nothing has been started when it is thrown.
 */
export class ReplayInputError extends Error {
  constructor(
    readonly code: ReplayInputErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = this.constructor.name;
  }
}
