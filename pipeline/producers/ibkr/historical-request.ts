/**
 * What a historical backfill asks IB for: bar sizes with their largest request duration, the data
 * types mdp can turn into OHLCV bars, and the `reqHistoricalData` arguments of one chunk.
 */

/**
 * Bar sizes `mdp dataset fetch ibkr --bar` offers, each with the longest duration IB accepts for
 * one request. Source: TWS API documentation, "Historical Data Limitations" → "Step Sizes"
 * (https://interactivebrokers.github.io/tws-api/historical_limitations.html): a request must return
 * "only a few thousand bars", and the table allows `1800 S` for 1 sec bars (its next row, `3600 S`,
 * starts at 5 secs), `3600 S` for 5 secs (the `14400 S` row starts at 10 secs), and `1 D` for 1 min
 * (the `2 D` row starts at 2 mins). Durations are sent in seconds (`86400 S` = 1 D) so a chunk's
 * bounds are exact, whatever IB considers a trading day.
 */
export const HISTORICAL_BAR_SIZES = {
  '1s': { ib: '1 secs', seconds: 1, maxChunkSeconds: 1800 },
  '5s': { ib: '5 secs', seconds: 5, maxChunkSeconds: 3600 },
  '1m': { ib: '1 min', seconds: 60, maxChunkSeconds: 86_400 },
} as const;

export type HistoricalBarSize = keyof typeof HISTORICAL_BAR_SIZES;

/**
 * Data types a backfill can fetch. BID_ASK is left out on purpose: its bars hold time-averaged bid
 * and ask, not prices, so they cannot become OHLCV bars (and each request counts twice in IB's
 * 10-minute budget).
 */
export const HISTORICAL_WHAT_TO_SHOW = ['TRADES', 'MIDPOINT'] as const;
export type HistoricalWhatToShow = (typeof HISTORICAL_WHAT_TO_SHOW)[number];

/** Bad input to a backfill: names the flag (or workflow input field) and the value. */
export class BackfillInputError extends Error {
  readonly field: string;

  constructor(field: string, message: string) {
    super(message);
    this.name = this.constructor.name;
    this.field = field;
  }
}

/** How a caller names its inputs: `--bar` on the command line, `bar` in workflow JSON. */
export type InputStyle = 'flag' | 'field';

const label = (style: InputStyle, name: string): string => (style === 'flag' ? `--${name}` : name);

/** The `--bar` value as a bar size, or a {@link BackfillInputError} listing the allowed ones. */
export function parseBarSize(value: unknown, style: InputStyle = 'field'): HistoricalBarSize {
  if (typeof value === 'string' && Object.hasOwn(HISTORICAL_BAR_SIZES, value)) return value as HistoricalBarSize;
  throw new BackfillInputError('bar', `${label(style, 'bar')} must be one of ${Object.keys(HISTORICAL_BAR_SIZES).join(', ')} (got ${JSON.stringify(value)})`);
}

/** The `--what` value (any case) as a data type; BID_ASK and the rest are refused with the reason. */
export function parseWhatToShow(value: unknown, style: InputStyle = 'field'): HistoricalWhatToShow {
  const upper = typeof value === 'string' ? value.trim().toUpperCase() : value;
  if (typeof upper === 'string' && (HISTORICAL_WHAT_TO_SHOW as readonly string[]).includes(upper)) return upper as HistoricalWhatToShow;
  const why = upper === 'BID_ASK' ? ': BID_ASK bars hold average bid and ask, not prices, so they cannot become OHLCV bars' : '';
  throw new BackfillInputError('what', `${label(style, 'what')} must be ${HISTORICAL_WHAT_TO_SHOW.join(' or ')} (got ${JSON.stringify(value)})${why}`);
}

/** Symbols as IB spells them (`SPY`, `BRK B`, `EUR.USD`), within the v1 contract's limits. */
const SYMBOL = /^[A-Za-z0-9][A-Za-z0-9 ./&-]{0,63}$/;

export function parseSymbol(value: unknown, style: InputStyle = 'field'): string {
  if (typeof value === 'string' && SYMBOL.test(value.trim())) return value.trim();
  throw new BackfillInputError(
    'symbol',
    `${label(style, 'symbol')} must be an IB symbol: letters, digits, space, ".", "/", "&" or "-", at most 64 characters (got ${JSON.stringify(value)})`,
  );
}

/**
 * The chunk span of a backfill: IB's maximum for the bar size, or a smaller `chunkSeconds` (a
 * positive multiple of the bar size, e.g. for tests or to keep each reply small).
 */
export function chunkSecondsFor(bar: HistoricalBarSize, chunkSeconds?: number, style: InputStyle = 'field'): number {
  const size = HISTORICAL_BAR_SIZES[bar];
  if (chunkSeconds === undefined) return size.maxChunkSeconds;
  if (!Number.isSafeInteger(chunkSeconds) || chunkSeconds <= 0 || chunkSeconds % size.seconds !== 0 || chunkSeconds > size.maxChunkSeconds) {
    throw new BackfillInputError(
      'chunkSeconds',
      `${label(style, style === 'flag' ? 'chunk-seconds' : 'chunkSeconds')} must be a multiple of ${size.seconds} from ${size.seconds} to ${size.maxChunkSeconds} for ${bar} bars (IB's largest request) (got ${JSON.stringify(chunkSeconds)})`,
    );
  }
  return chunkSeconds;
}

/** The provider written on fetched bars: the configured one for trades, `<provider>-midpoint` for midpoints (so they never overwrite trade bars). */
export function backfillProvider(provider: string, what: HistoricalWhatToShow): string {
  return what === 'TRADES' ? provider : `${provider}-${what.toLowerCase()}`;
}

/** `reqHistoricalData`'s endDateTime for an instant, in the UTC form IB accepts: `yyyymmdd-hh:mm:ss`. */
export function ibEndDateTime(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2025-10-01T14:00:00.000Z
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 19)}`;
}

/** `reqHistoricalData`'s durationStr for a span in whole seconds: `1800 S`. */
export function ibDuration(seconds: number): string {
  return `${seconds} S`;
}

/** The arguments of one historical request: a chunk `[fromMs, toMs)` of one contract's bars. */
export interface HistoricalChunkRequest {
  readonly endDateTime: string;
  readonly durationStr: string;
  readonly barSizeSetting: string;
  readonly whatToShow: HistoricalWhatToShow;
  readonly useRTH: boolean;
  /** 2: bar times as epoch seconds (UTC), whatever time zone TWS was logged in with. */
  readonly formatDate: 2;
}

export function historicalChunkRequest(
  chunk: { fromMs: number; toMs: number },
  bar: HistoricalBarSize,
  what: HistoricalWhatToShow,
  useRth: boolean,
): HistoricalChunkRequest {
  const seconds = (chunk.toMs - chunk.fromMs) / 1000;
  if (!Number.isSafeInteger(seconds) || seconds <= 0) throw new RangeError(`chunk must span whole seconds (got ${chunk.fromMs}..${chunk.toMs})`);
  return {
    endDateTime: ibEndDateTime(chunk.toMs),
    durationStr: ibDuration(seconds),
    barSizeSetting: HISTORICAL_BAR_SIZES[bar].ib,
    whatToShow: what,
    useRTH: useRth,
    formatDate: 2,
  };
}
