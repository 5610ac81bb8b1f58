// Public surface of the IBKR provider: historical backfill requests, their replies and errors.
export {
  BackfillInputError,
  backfillProvider,
  chunkSecondsFor,
  HISTORICAL_BAR_SIZES,
  HISTORICAL_WHAT_TO_SHOW,
  historicalChunkRequest,
  ibDuration,
  ibEndDateTime,
  parseBarSize,
  parseSymbol,
  parseWhatToShow,
} from './historical-request.js';
export type { HistoricalBarSize, HistoricalChunkRequest, HistoricalWhatToShow, InputStyle } from './historical-request.js';
export { defaultBackfillDataset, parseBackfillRequest } from './backfill-request.js';
export type { BackfillRequest, BackfillRequestInput } from './backfill-request.js';
export { chunkBarsToEvents, ibBarTimeMs } from './historical-bars.js';
export type { ChunkEvents, IbHistoricalBar } from './historical-bars.js';
export { classifyHistoricalError, HISTORICAL_ERROR_CODES, HistoricalDataError } from './historical-error.js';
export type { HistoricalErrorCode, HistoricalErrorOutcome } from './historical-error.js';
export type { HistoricalBarsSource, HistoricalContract, HistoricalProgress, HistoricalReply } from './historical-source.js';
