/** Why mdp's search attributes could not be registered: callers branch on the code. */
export const SEARCH_ATTRIBUTE_ERROR_CODES = ['type_conflict', 'registration_failed'] as const;
export type SearchAttributeErrorCode = (typeof SEARCH_ATTRIBUTE_ERROR_CODES)[number];

/** A search attribute that exists with another type than mdp's. */
export interface SearchAttributeConflict {
  readonly name: string;
  /** As Temporal names types: `Keyword`, `Int`, … */
  readonly existing: string;
  readonly wanted: string;
}

/**
 * mdp's search attributes are not usable in a namespace: one exists with another type
 * (`type_conflict`, naming each), or the server refused to add the missing ones
 * (`registration_failed`, e.g. no permission for the operator API; `cause` says why).
 */
export class SearchAttributeError extends Error {
  constructor(
    readonly code: SearchAttributeErrorCode,
    message: string,
    readonly conflicts: readonly SearchAttributeConflict[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = this.constructor.name;
  }
}
