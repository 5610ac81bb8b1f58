/**
 * Why an entry went to the dead-letter stream, from one closed list. Callers and metrics
 * (`errors_total{reason}`) branch on the code; the message a person reads is derived from it.
 */
export const DEAD_LETTER_CODES = ['max_deliveries', 'no_payload', 'invalid_event', 'invalid_snapshot'] as const;
export type DeadLetterCode = (typeof DEAD_LETTER_CODES)[number];

/** What a code's message is made from: the delivery counts, or the validator's own words. */
export type DeadLetterCause =
  | { readonly code: 'max_deliveries'; readonly deliveries: number; readonly maxDeliveries: number }
  | { readonly code: 'no_payload' }
  | { readonly code: 'invalid_event' | 'invalid_snapshot'; readonly detail: string };

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
  }
}
