// Public surface of the Interactive Brokers producer: the pacer in front of every request to TWS,
// the session that connects, reconnects and classifies what TWS says, and the live feed on top.
export { allocateLines, isPacingViolation, Pacer, PACING_VIOLATION_CODES, systemClock } from './pacer.js';
export type { HistoricalPermit, HistoricalRequestKey, IbRequestKind, LineAllocation, PacerClock, PacerOptions } from './pacer.js';
export { classifyIbMessage, IB_MESSAGE_KINDS, IbSession } from './ib-session.js';
export type { IbApi, IbMessage, IbMessageKind, IbSessionEvents, IbSessionOptions, IbSessionState } from './ib-session.js';
export { describeContract, planIbkrFeed, REAL_TIME_BAR_MS, refusedLinesMessage } from './ibkr-plan.js';
export type { IbkrFeedKind, IbkrPlan } from './ibkr-plan.js';
export { IbkrEventBuilder } from './ibkr-events.js';
export type { IbkrEventState } from './ibkr-events.js';
export { GAP_REASONS, IbkrFeed } from './ibkr-feed.js';
export type { GapReason, GapRecord, IbkrFeedOptions, RefusedContract } from './ibkr-feed.js';
