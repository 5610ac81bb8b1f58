// Public surface of the Interactive Brokers producer: the pacer in front of every request to TWS,
// the session that connects, reconnects and classifies what TWS says, and historical backfill
// requests, their replies and errors.
export { allocateLines, isPacingViolation, Pacer, PACING_VIOLATION_CODES, systemClock } from './pacer.js';
export type { HistoricalPermit, HistoricalRequestKey, IbRequestKind, LineAllocation, PacerClock, PacerOptions } from './pacer.js';
export { classifyIbMessage, IB_MESSAGE_KINDS, IbSession } from './ib-session.js';
export type { IbApi, IbMessage, IbMessageKind, IbSessionEvents, IbSessionOptions, IbSessionState } from './ib-session.js';
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
export type { HistoricalBarsSource, HistoricalContract, HistoricalProgress, HistoricalReply, PastRequest } from './historical-source.js';
export { historicalRequestKey, PacedHistoricalSource, recordPastRequests } from './paced-historical-source.js';
export type { HistoricalSession, PacedHistoricalSourceOptions } from './paced-historical-source.js';
