/**
 * Why a whole event source could not be read, from one closed list: `unreadable` (missing, a
 * directory, no permission, a read that failed midway) or `bad_header` (a CSV header without a
 * time column, so no row of the file could be placed).
 */
export const FILE_SOURCE_ERROR_CODES = ['unreadable', 'bad_header'] as const;
export type FileSourceErrorCode = (typeof FILE_SOURCE_ERROR_CODES)[number];

/** A source (file or stdin) that cannot be read at all; its message names the source and, when known, the line. */
export class FileSourceError extends Error {
  readonly code: FileSourceErrorCode;

  constructor(code: FileSourceErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = this.constructor.name;
    this.code = code;
  }
}
