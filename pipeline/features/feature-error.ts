/** Every reason the feature engine refuses its input; callers branch on these, never on the message. */
export const FEATURE_ERROR_CODES = [
  /** A configured window cannot be used: unknown kind, bad horizon or period, duplicate or reserved name. */
  'FEATURE_WINDOW_INVALID',
  /** An engine option is out of range (`rsiPeriod`, `maxGapMs`, `maxSymbols`), or does not fit a bar's interval. */
  'FEATURE_OPTION_INVALID',
  /** A bar the features cannot be computed from: non-finite fields, close ≤ 0, negative volume, bad interval. */
  'FEATURE_BAR_INVALID',
] as const;

export type FeatureErrorCode = (typeof FEATURE_ERROR_CODES)[number];

/** Thrown for feature configuration or input that cannot be used; the message names the window or the bar. */
export class FeatureError extends Error {
  readonly code: FeatureErrorCode;

  constructor(code: FeatureErrorCode, message: string) {
    super(message);
    this.name = this.constructor.name;
    this.code = code;
  }
}
