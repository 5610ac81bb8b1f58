import { formatMicros } from './time.js';

/**
 * Why an entry went to the dead-letter stream, from one closed list. Callers and metrics
 * (`errors_total{reason}`) branch on the code; the message a person reads is derived from it.
 */
export const DEAD_LETTER_CODES = ['max_deliveries', 'no_payload', 'invalid_event', 'invalid_snapshot', 'future_event', 'store_rejected'] as const;
export type DeadLetterCode = (typeof DEAD_LETTER_CODES)[number];

/** What a code's message is made from: the delivery counts, or the validator's own words. */
export type DeadLetterCause =
  | { readonly code: 'max_deliveries'; readonly deliveries: number; readonly maxDeliveries: number }
  | { readonly code: 'no_payload' }
  | { readonly code: 'invalid_event' | 'invalid_snapshot'; readonly detail: string }
  /** A valid event whose `src_ts` is further ahead of the consumer's wall clock than `micro_batch.max_future_ms`. */
  | { readonly code: 'future_event'; readonly srcTsUs: number; readonly nowMs: number; readonly maxFutureMs: number }
  /** An event of a bar the store refused for its own values (a permanent error), with the store's words. */
  | { readonly code: 'store_rejected'; readonly interval: string; readonly windowStartMs: number; readonly detail: string };

/** The reason written beside a dead letter, e.g. `delivered 6 times (max_deliveries 5)`. */
export function deadLetterReason(cause: DeadLetterCause): string {
  switch (cause.code) {
    case 'max_deliveries':
      return `delivered ${cause.deliveries} times (max_deliveries ${cause.maxDeliveries})`;
    case 'no_payload':
      return 'entry has no payload field "d" (deleted or foreign entry)';
    case 'invalid_event':
    case 'invalid_snapshot':
      return cause.detail;
    case 'future_event':
      return `src_ts ${formatMicros(cause.srcTsUs)} is ${(cause.srcTsUs - cause.nowMs * 1000) / 1000} ms ahead of the wall clock (max_future_ms ${cause.maxFutureMs})`;
    case 'store_rejected':
      return `the store rejected its ${cause.interval} bar at ${new Date(cause.windowStartMs).toISOString()}: ${cause.detail}`;
  }
}
