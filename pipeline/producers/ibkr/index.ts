// Public surface of the Interactive Brokers producer: the pacer in front of every request to TWS,
// the session that connects, reconnects and classifies what TWS says, the live feed on top, and
// historical backfill requests, their replies and errors.
export { allocateLines, IB_PACING_LIMITS, isPacingViolation, Pacer, PACING_VIOLATION_CODES, systemClock } from './pacer.js';
export type { HistoricalPermit, HistoricalRequestKey, IbRequestKind, LineAllocation, PacerClock, PacerOptions } from './pacer.js';
export { classifyIbMessage, IB_MESSAGE_KINDS, IbSession } from './ib-session.js';
export type { IbApi, IbMessage, IbMessageKind, IbSessionEvents, IbSessionOptions, IbSessionState } from './ib-session.js';
export { describeContract, planIbkrFeed, REAL_TIME_BAR_MS, refusedLinesMessage } from './ibkr-plan.js';
export type { IbkrFeedKind, IbkrPlan } from './ibkr-plan.js';
export { IbkrEventBuilder } from './ibkr-events.js';
export type { IbkrEventState } from './ibkr-events.js';
export { GAP_REASONS, IbkrFeed } from './ibkr-feed.js';
export type { GapReason, GapRecord, IbkrFeedOptions, RefusedContract } from './ibkr-feed.js';
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
