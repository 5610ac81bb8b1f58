import type { Bus, DeadLetter } from '../pipeline/bus/index.js';
import type { RoutedEvents } from '../pipeline/routing/index.js';
import type { Logger, Metrics } from '../pipeline/telemetry/index.js';

/** Where a consumer's routed entries go, and the labels they are counted under. */
export interface OutcomeTarget {
  /** `errors_total{component}`: `microbatch`, `inference` or `replay`. */
  readonly component: string;
  /** The stream the entries were read from, and its group (for acknowledgements). */
  readonly stream: string;
  readonly group: string;
  readonly dlqStream: string;
  /**
   * `false` when the dead letters' sources never were entries of `stream` (a producer's input lines,
   * `stream` then naming the file): there is nothing to acknowledge.
   */
  readonly acknowledge?: boolean;
  /** Events only: the late stream, and the `microbatch_events_total{topic}` label. */
  readonly events?: { readonly lateStream: string; readonly topic: string };
}

/** The counters of an outcome target start from zero, so `rate()` sees their first increment. */
export function zeroOutcomeMetrics(metrics: Metrics, target: OutcomeTarget): void {
  const reasons = target.events
    ? ['invalid_event', 'future_event', 'store_rejected', 'no_payload', 'max_deliveries', 'late_event', 'activity_failure']
    : ['invalid_snapshot', 'no_payload', 'max_deliveries', 'activity_failure'];
  for (const reason of reasons) {
    metrics.errors.inc({ component: target.component, reason }, 0);
  }
  if (target.events) {
    for (const outcome of ['accepted', 'duplicate', 'late', 'invalid']) metrics.consumedEvents.inc({ topic: target.events.topic, outcome }, 0);
  }
}

/**
 * Writes dead letters (the bus acknowledges their sources only once they are durable) and counts
 * each under its code: `errors_total{component, reason=code}`, and for events
 * `microbatch_events_total{outcome="invalid"}`.
 */
export async function sendToDlq(bus: Bus, metrics: Metrics, log: Logger, target: OutcomeTarget, dead: readonly DeadLetter[]): Promise<void> {
  if (dead.length === 0) return;
  await bus.deadLetter(target.dlqStream, target.group, dead, { ack: target.acknowledge !== false });
  for (const letter of dead) metrics.errors.inc({ component: target.component, reason: letter.code });
  if (target.events) metrics.consumedEvents.inc({ topic: target.events.topic, outcome: 'invalid' }, dead.length);
  log.warn('entries sent to the DLQ', { stream: target.stream, dlq: target.dlqStream, count: dead.length, code: dead[0].code, first: dead[0].reason });
}

/**
 * Settles routed events (micro-batch and replay alike): counts each outcome in
 * `microbatch_events_total{topic, outcome}`, writes the dead letters, then moves the late events to
 * the late stream with their original payload before acknowledging them, so nothing is lost in
 * between (`errors_total{reason="late_event"}`).
 */
export async function settleRoutedEvents(bus: Bus, metrics: Metrics, log: Logger, target: OutcomeTarget, routed: RoutedEvents): Promise<void> {
  if (!target.events) throw new Error(`settleRoutedEvents needs an events target (${target.stream})`);
  const { topic, lateStream } = target.events;
  if (routed.accepted > 0) metrics.consumedEvents.inc({ topic, outcome: 'accepted' }, routed.accepted);
  if (routed.duplicates > 0) metrics.consumedEvents.inc({ topic, outcome: 'duplicate' }, routed.duplicates);
  if (routed.late.length > 0) metrics.consumedEvents.inc({ topic, outcome: 'late' }, routed.late.length);
  await sendToDlq(bus, metrics, log, target, routed.dead);
  if (routed.late.length > 0) {
    await bus.publish(
      lateStream,
      // The event's own bytes, JSON or msgpack, each an entry of its own.
      routed.late.map((entry) => entry.payload ?? entry.packed!),
      { trim: false },
    );
    await bus.ack(
      target.stream,
      target.group,
      routed.late.map((entry) => entry.id),
    );
    metrics.errors.inc({ component: target.component, reason: 'late_event' }, routed.late.length);
  }
}
