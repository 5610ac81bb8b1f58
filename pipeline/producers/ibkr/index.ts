// Public surface of the Interactive Brokers producer: the pacer in front of every request to TWS.
export { allocateLines, isPacingViolation, Pacer, PACING_VIOLATION_CODES, systemClock } from './pacer.js';
export type { HistoricalPermit, HistoricalRequestKey, IbRequestKind, LineAllocation, PacerClock, PacerOptions } from './pacer.js';
