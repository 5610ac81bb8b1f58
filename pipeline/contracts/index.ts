export type { Bar, BarSink, JobRunSink, UpsertCounts } from './bar.js';
export type { EventKind, MarketEvent, StreamEventV1, ValidationResult } from './stream-event.js';
export { EVENT_KINDS, decodeEvent, makeEventId, validateEvent } from './stream-event.js';
export { formatClock, formatMicros, intervalLabel, parseDurationMs, parseIsoToMicros } from './time.js';
export type { FeatureSnapshot } from './feature.js';
export type { InferenceAdapter, SignalEventV1, SignalMeta } from './signal.js';
