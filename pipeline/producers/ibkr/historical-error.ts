/**
 * Why a historical request failed, from one closed list; callers branch on `code` (a retry helps
 * for `PACING_VIOLATION`, `TIMEOUT` and `DISCONNECTED` only).
 */
export const HISTORICAL_ERROR_CODES = [
  /** 162 "Historical data request pacing violation": must never happen behind the pacer. */
  'PACING_VIOLATION',
  /** 200: IB knows no contract matching the request. */
  'NO_SECURITY_DEFINITION',
  /** 321: IB refused the request as malformed (e.g. an unsupported duration/bar size). */
  'INVALID_REQUEST',
  /** 162/354/10089…: the account lacks the market data subscription. */
  'NO_PERMISSION',
  /** Any other IB error answering the request. */
  'IB_ERROR',
  /** No reply within the request timeout. */
  'TIMEOUT',
  /** The connection to TWS dropped before the reply was complete. */
  'DISCONNECTED',
] as const;

export type HistoricalErrorCode = (typeof HISTORICAL_ERROR_CODES)[number];

const RETRYABLE: ReadonlySet<HistoricalErrorCode> = new Set(['PACING_VIOLATION', 'TIMEOUT', 'DISCONNECTED']);

/** A failed `reqHistoricalData`: the code, IB's error code (when IB answered) and what was asked. */
export class HistoricalDataError extends Error {
  readonly code: HistoricalErrorCode;
  /** IB's numeric error code, e.g. 200; undefined for timeouts and disconnects. */
  readonly ibCode: number | undefined;
  readonly retryable: boolean;

  constructor(code: HistoricalErrorCode, message: string, options: { ibCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = this.constructor.name;
    this.code = code;
    this.ibCode = options.ibCode;
    this.retryable = RETRYABLE.has(code);
  }
}

/** How IB answered a historical request with an error: no data (an empty chunk), or a failure. */
export type HistoricalErrorOutcome = { readonly kind: 'no_data' } | { readonly kind: 'failure'; readonly code: HistoricalErrorCode };

/**
 * Classifies an IB error for a historical request. Error 162 carries several HMDS answers in its
 * text: "HMDS query returned no data" is an empty chunk (outside trading hours, a holiday), not a
 * failure; "pacing violation" is one; "no market data permissions" is a permission problem.
 */
export function classifyHistoricalError(ibCode: number, message: string): HistoricalErrorOutcome {
  const text = message.toLowerCase();
  if (ibCode === 162) {
    if (text.includes('returned no data')) return { kind: 'no_data' };
    if (text.includes('pacing violation')) return { kind: 'failure', code: 'PACING_VIOLATION' };
    if (text.includes('permission')) return { kind: 'failure', code: 'NO_PERMISSION' };
    return { kind: 'failure', code: 'IB_ERROR' };
  }
  if (ibCode === 200) return { kind: 'failure', code: 'NO_SECURITY_DEFINITION' };
  if (ibCode === 321) return { kind: 'failure', code: 'INVALID_REQUEST' };
  if (ibCode === 354 || ibCode === 10089 || ibCode === 10090 || ibCode === 10167) return { kind: 'failure', code: 'NO_PERMISSION' };
  if (ibCode === 420) return { kind: 'failure', code: 'PACING_VIOLATION' };
  return { kind: 'failure', code: 'IB_ERROR' };
}
