/** Every reason a rules file can be refused; callers branch on these, never on the message. */
export const RULES_ERROR_CODES = [
  /** The rules file does not exist. */
  'RULES_FILE_NOT_FOUND',
  /** The rules file exists but could not be read (permissions, a directory, ...). */
  'RULES_READ',
  /** The file has more bytes or rules than the loader's limit (`limit`), so it is not parsed or checked. */
  'RULES_TOO_LARGE',
  /** The file is not valid YAML; `position` says where. */
  'RULES_YAML',
  /** The YAML parsed but is not a list of well-formed rules: a missing, unknown or bad key. */
  'RULES_INVALID',
  /** Two rules share a name (signals are keyed by name, so one would overwrite the other). */
  'RULE_DUPLICATE_NAME',
  /** A condition is not valid CEL syntax. */
  'RULE_SYNTAX',
  /** A condition references a variable that is not a known feature; see `variable`. */
  'RULE_UNKNOWN_VARIABLE',
  /** A condition is valid CEL but not a boolean expression over the supported operators and types. */
  'RULE_TYPE',
] as const;

export type RulesErrorCode = (typeof RULES_ERROR_CODES)[number];

/** A place in the rules file: 1-based line and column. */
export interface RulesFilePosition {
  readonly line: number;
  readonly column: number;
}

export interface RulesErrorDetails {
  readonly code: RulesErrorCode;
  readonly file: string;
  readonly rule?: string | undefined;
  readonly key?: string | undefined;
  readonly position?: RulesFilePosition | undefined;
  readonly offset?: number | undefined;
  readonly variable?: string | undefined;
  readonly limit?: number | undefined;
  /** What is wrong without the file label and position (defaults to the message); see {@link RulesError.detail}. */
  readonly detail?: string | undefined;
  readonly cause?: unknown;
}

/**
 * A rules file that cannot be used. The message names the file, the rule and the position, e.g.
 * `configs/rules.yaml: rule "rsi_overbought": condition "rsi >> 70": syntax error at line 17,
 * column 19 (condition column 5): found > but expecting end of input`. Rules are checked when the
 * file is loaded, so a bad rule stops the adapter from starting instead of failing per snapshot.
 */
export class RulesError extends Error {
  readonly code: RulesErrorCode;
  /** The rules file, as the caller labelled it (usually its path). */
  readonly file: string;
  /** Name of the offending rule, when the error is about one rule. */
  readonly rule: string | undefined;
  /** The offending key of the rule (`score`, `condition`, ...), when there is one. */
  readonly key: string | undefined;
  /** Where in the file, when it could be mapped back to it. */
  readonly position: RulesFilePosition | undefined;
  /** 0-based offset of a condition error within the condition text. */
  readonly offset: number | undefined;
  /** The unknown variable of a `RULE_UNKNOWN_VARIABLE` error. */
  readonly variable: string | undefined;
  /** The limit a `RULES_TOO_LARGE` file exceeds (bytes or rules, as the message says). */
  readonly limit: number | undefined;
  /**
   * What is wrong, without the file label and the position the message carries: for reports that
   * put the place first, `file:line:column: detail` (see `mdp rules check`).
   */
  readonly detail: string;

  constructor(message: string, details: RulesErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = this.constructor.name;
    this.code = details.code;
    this.file = details.file;
    this.rule = details.rule;
    this.key = details.key;
    this.position = details.position;
    this.offset = details.offset;
    this.variable = details.variable;
    this.limit = details.limit;
    this.detail = details.detail ?? message;
  }
}
