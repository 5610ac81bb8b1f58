// Public surface of the Interactive Brokers producer: the pacer in front of every request to TWS,
// and the session that connects, reconnects and classifies what TWS says.
export { allocateLines, isPacingViolation, Pacer, PACING_VIOLATION_CODES, systemClock } from './pacer.js';
export type { HistoricalPermit, HistoricalRequestKey, IbRequestKind, LineAllocation, PacerClock, PacerOptions } from './pacer.js';
export { classifyIbMessage, IB_MESSAGE_KINDS, IbSession } from './ib-session.js';
export type { IbApi, IbMessage, IbMessageKind, IbSessionEvents, IbSessionOptions, IbSessionState } from './ib-session.js';
