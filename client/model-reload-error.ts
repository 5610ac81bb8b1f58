import type { ConsumerReloadOutcome } from '../workflows/index.js';

/** Why a model reload did not take effect; callers branch on the code, not the message. */
export const MODEL_RELOAD_ERROR_CODES = ['rejected', 'not_confirmed', 'no_model_consumer', 'already_running'] as const;
export type ModelReloadErrorCode = (typeof MODEL_RELOAD_ERROR_CODES)[number];

/** A reload that did not take effect; `message` is the reason (naming the model or the consumers). */
export class ModelReloadError extends Error {
  constructor(
    message: string,
    readonly consumers: readonly ConsumerReloadOutcome[] = [],
    readonly code: ModelReloadErrorCode = 'rejected',
  ) {
    super(message);
    this.name = this.constructor.name;
  }
}
