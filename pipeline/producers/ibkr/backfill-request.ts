import { parseReplayBound } from '../../datasets/index.js';
import type { HistoricalBarSize, HistoricalWhatToShow, InputStyle } from './historical-request.js';
import { BackfillInputError, chunkSecondsFor, parseBarSize, parseSymbol, parseWhatToShow } from './historical-request.js';

/** A backfill as the user asks for it (`mdp dataset fetch ibkr …` flags, or the workflow's JSON input). */
export interface BackfillRequestInput {
  readonly symbol: unknown;
  readonly from: unknown;
  readonly to: unknown;
  readonly bar: unknown;
  readonly what?: unknown;
  readonly dataset?: unknown;
  readonly useRth?: unknown;
  readonly chunkSeconds?: unknown;
}

/** A checked backfill request. */
export interface BackfillRequest {
  readonly symbol: string;
  readonly bar: HistoricalBarSize;
  readonly what: HistoricalWhatToShow;
  readonly fromMs: number;
  readonly toMs: number;
  readonly dataset: string;
  readonly useRth: boolean;
  readonly chunkSeconds: number;
}

const DATASET = /^[A-Za-z0-9_.-]+$/;

/** The dataset a fetch writes when none is named: `ibkr_spy_1s_trades`. */
export function defaultBackfillDataset(symbol: string, bar: HistoricalBarSize, what: HistoricalWhatToShow): string {
  return `ibkr_${symbol.toLowerCase().replace(/[^a-z0-9.-]/g, '_')}_${bar}_${what.toLowerCase()}`;
}

/**
 * Checks a backfill request; every error names the flag (`style: 'flag'`) or input field and the
 * value. `nowMs` bounds `to`: IB has no bars of the future, and a chunk fetched before its end
 * would be kept as complete.
 *
 * @throws BackfillInputError
 */
export function parseBackfillRequest(input: BackfillRequestInput, options: { style: InputStyle; nowMs: number }): BackfillRequest {
  const { style } = options;
  const name = (field: string) => (style === 'flag' ? `--${field}` : field);
  const symbol = parseSymbol(input.symbol, style);
  const bar = parseBarSize(input.bar, style);
  const what = input.what === undefined ? 'TRADES' : parseWhatToShow(input.what, style);
  const bound = (field: 'from' | 'to', example: string): number => {
    const value = input[field];
    const ms = typeof value === 'string' ? parseReplayBound(value) : undefined;
    if (ms === undefined)
      throw new BackfillInputError(field, `${name(field)} must be a date (${example}) or an ISO-8601 timestamp with zone (got ${JSON.stringify(value)})`);
    return ms;
  };
  const fromMs = bound('from', '2025-10-01');
  const toMs = bound('to', '2025-10-03');
  if (toMs <= fromMs) throw new BackfillInputError('to', `${name('to')} (${String(input.to)}) must be after ${name('from')} (${String(input.from)})`);
  if (toMs > options.nowMs)
    throw new BackfillInputError(
      'to',
      `${name('to')} (${String(input.to)}) is in the future (now ${new Date(options.nowMs).toISOString()}); IB has no bars there yet — give an earlier ${name('to')} or an ISO timestamp such as ${new Date(options.nowMs).toISOString().slice(0, 16)}:00Z`,
    );
  if (input.chunkSeconds !== undefined && typeof input.chunkSeconds !== 'number')
    throw new BackfillInputError(
      'chunkSeconds',
      `${name(style === 'flag' ? 'chunk-seconds' : 'chunkSeconds')} must be a number (got ${JSON.stringify(input.chunkSeconds)})`,
    );
  const chunkSeconds = chunkSecondsFor(bar, input.chunkSeconds, style);
  if (input.useRth !== undefined && typeof input.useRth !== 'boolean')
    throw new BackfillInputError('useRth', `${name(style === 'flag' ? 'rth' : 'useRth')} must be true or false (got ${JSON.stringify(input.useRth)})`);
  const dataset = input.dataset === undefined ? defaultBackfillDataset(symbol, bar, what) : input.dataset;
  if (typeof dataset !== 'string' || !DATASET.test(dataset))
    throw new BackfillInputError('dataset', `${name('dataset')} must use letters, digits, "_", "." and "-" only (got ${JSON.stringify(input.dataset)})`);
  return { symbol, bar, what, fromMs, toMs, dataset, useRth: input.useRth === true, chunkSeconds };
}
