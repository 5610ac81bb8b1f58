// Entry routing shared by every consumer: dead letters by code, decoded payloads, late events.
export type { DecodedEntry, PayloadKind, RouteOptions, RoutedEntries } from './entry-router.js';
export { deadLetterOf, EVENT_PAYLOADS, routeEntries, SNAPSHOT_PAYLOADS } from './entry-router.js';
export type { EventRouteOptions, RoutedEvents } from './event-router.js';
export type { RejectedBarLetters } from './rejected-bars.js';
export { rejectedBarLetters } from './rejected-bars.js';
export { routeEvents } from './event-router.js';
export type { EntryIdOrder } from './resume-guard.js';
export { ResumeGuard } from './resume-guard.js';
export { PositionTracker } from './position-tracker.js';
