import { redactSecrets } from './redact.js';

/** Every reason a config load can fail; callers branch on these, never on the message. */
export const CONFIG_ERROR_CODES = [
  /** The config file does not exist. */
  'CONFIG_FILE_NOT_FOUND',
  /** The config file exists but could not be read (permissions, a directory, ...). */
  'CONFIG_READ',
  /** Bad `${VAR}` syntax or bad YAML; `line` says where. */
  'CONFIG_PARSE',
  /** The document parsed but a key is unknown, missing or has a bad value; see `issues`. */
  'CONFIG_INVALID',
] as const;

export type ConfigErrorCode = (typeof CONFIG_ERROR_CODES)[number];

/** One offending key of a `CONFIG_INVALID` error. */
export interface ConfigIssue {
  /** Dotted key, e.g. `micro_batch.window_ms`. */
  readonly key: string;
  /** The offending value as given (URL passwords masked), `undefined` for a missing key. */
  readonly value: unknown;
  /** What is wrong, e.g. `must be an integer between 500 and 5000`. */
  readonly reason: string;
  /** Where the value came from: the file, `env VAR`, `overrides`, or `defaults`. */
  readonly source: string;
}

export interface ConfigErrorDetails {
  readonly code: ConfigErrorCode;
  readonly file?: string | undefined;
  readonly key?: string | undefined;
  readonly value?: unknown;
  readonly line?: number | undefined;
  readonly issues?: readonly ConfigIssue[] | undefined;
  readonly cause?: unknown;
}

/**
 * Masks URL passwords in string values (and strings inside arrays/objects) before they are kept on
 * an error or printed in its message. Each string is taken as a whole URL, so a password with a
 * space or a `"` is masked too.
 */
export function redactValue(value: unknown): unknown {
  if (typeof value === 'string') return redactSecrets(value, [value]);
  if (Array.isArray(value)) return value.map(redactValue);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactValue(v)]));
  }
  return value;
}

/**
 * A configuration that cannot be used. The message names the file, the key and the offending
 * value, e.g. `configs/streaming.yaml: micro_batch.window_ms: must be an integer between 500 and
 * 5000 (got 10)`, with passwords in URLs masked. Entrypoints print it and exit; the pipeline
 * never does.
 */
export class ConfigError extends Error {
  readonly code: ConfigErrorCode;
  /** The config file being loaded, if any. */
  readonly file: string | undefined;
  /** The first offending key, if the error is about a key. */
  readonly key: string | undefined;
  /** The first offending value (URL passwords masked). */
  readonly value: unknown;
  /** 1-based line in the file, for parse errors. */
  readonly line: number | undefined;
  /** Every offending key, for `CONFIG_INVALID` (the first is also in `key`/`value`). */
  readonly issues: readonly ConfigIssue[];

  constructor(message: string, details: ConfigErrorDetails) {
    super(redactSecrets(message), details.cause === undefined ? undefined : { cause: details.cause });
    this.name = this.constructor.name;
    this.code = details.code;
    this.file = details.file;
    this.key = details.key;
    this.value = redactValue(details.value);
    this.line = details.line;
    this.issues = (details.issues ?? []).map((issue) => ({ ...issue, value: redactValue(issue.value) }));
  }
}
