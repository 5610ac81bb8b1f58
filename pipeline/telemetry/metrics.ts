import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Reuses a metric already registered under `name` (a second worker module, a test), else creates it. */
function registerOnce<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

/**
 * The pipeline's metrics, with the names and labels of spec §6.1 plus a few that the progress view
 * and alerts need. One instance per registry; components receive it as an argument.
 */
export function createMetrics(registry: Registry = new Registry()) {
  const registers = [registry];
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    registerOnce(registry, name, () => new Counter<L>({ name, help, labelNames, registers }));
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    registerOnce(registry, name, () => new Gauge<L>({ name, help, labelNames, registers }));
  const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]) =>
    registerOnce(registry, name, () => new Histogram<L>({ name, help, labelNames, buckets, registers }));

  return {
    registry,
    eventsIngested: counter('stream_events_ingested_total', 'Events published to the bus', ['bus', 'topic', 'provider']),
    consumerLagMs: gauge('stream_consumer_lag_ms', 'Age in ms of the oldest entry the consumer group has not acknowledged', ['topic', 'group', 'consumer']),
    flushTotal: counter('microbatch_flush_total', 'Bars flushed by the micro-batcher (one per symbol per window)', ['window_ms', 'symbol']),
    flushRows: counter('microbatch_flush_rows', 'Rows written to bars_ohlcv by micro-batch flushes', ['window_ms']),
    replayBarsWritten: counter('replay_bars_written_total', 'Rows written to bars_ohlcv by replays (not counted in microbatch_flush_rows)', ['window_ms']),
    windowLatencyMs: histogram(
      'microbatch_window_latency_ms',
      'From the moment a window could be complete (its end, or its last event arriving if later) to its bars committed',
      [],
      [50, 100, 250, 500, 750, 1000, 1500, 2000, 3000, 4000, 5000, 7500, 10000, 20000],
    ),
    storeWriteSeconds: histogram(
      'store_write_duration_seconds',
      'Duration of one store write round trip',
      ['table'],
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    ),
    errors: counter('errors_total', 'Errors by component and reason', ['component', 'reason']),
    consumedEvents: counter(
      'microbatch_events_total',
      'Events read by the micro-batcher by outcome: accepted, duplicate, late (to the late stream), invalid (to the DLQ)',
      ['topic', 'outcome'],
    ),
    featuresUpdateSeconds: histogram(
      'features_update_duration_seconds',
      'Duration of one feature-window update',
      ['symbol', 'window'],
      [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05],
    ),
    inferenceEvalSeconds: histogram(
      'inference_eval_duration_seconds',
      'Duration of one adapter evaluation of a feature snapshot',
      ['adapter'],
      [0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5],
    ),
    signalsEmitted: counter('signals_emitted_total', 'Signals emitted by the live inference consumers', ['name', 'adapter']),
    replaySignals: counter(
      'replay_signals_total',
      'Signals computed by replays (stored with source replay:<workflow id>; never counted in signals_emitted_total)',
      ['name', 'adapter'],
    ),
    breakerState: gauge('inference_breaker_state', 'Circuit breaker state of an adapter: 0 closed, 1 half-open, 2 open', ['adapter']),
    breakerTransitions: counter('inference_breaker_transitions_total', 'Circuit breaker transitions', ['adapter', 'from', 'to']),
    pendingEntries: gauge('stream_pending_entries', 'Entries delivered to the consumer group but not yet acknowledged', ['topic', 'group']),
    watermarkMs: gauge('microbatch_watermark_ms', 'Event-time watermark of a shard (epoch ms)', ['topic']),
    consumerHeartbeat: gauge('stream_consumer_last_heartbeat_seconds', "Unix time of the consumer loop's last iteration", ['topic', 'consumer']),
    backlogRatio: gauge(
      'stream_backlog_ratio',
      "Entries the slowest consumer group of a stream has not acknowledged (or the stream's length when no group reads it), as a fraction of the retention bound bus.redis.maxlen; producers wait at 0.9",
      ['topic'],
    ),
    trimmedEntries: counter('stream_trimmed_entries_total', 'Entries removed from a stream because every consumer group had acknowledged them', ['topic']),
    ibkrRequests: counter('ibkr_requests_total', 'Messages sent to TWS / IB Gateway, granted by the pacer, by kind', ['kind']),
    ibkrPacingWaitSeconds: histogram(
      'ibkr_pacing_wait_seconds',
      "Time a message to TWS waited for IB's pacing limits before it was sent",
      ['kind'],
      [0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 600],
    ),
    ibkrPacingViolations: counter(
      'ibkr_pacing_violations_total',
      'Pacing violations TWS reported (100 messages/s, 162 historical pacing, 322 open historical requests, 420 real-time bars); must stay 0',
      ['code'],
    ),
    ibkrConnected: gauge('ibkr_connected', 'IBKR producer: 1 while connected to TWS with its subscriptions live, 0 during a gap', ['provider']),
    ibkrGapSeconds: histogram(
      'ibkr_gap_seconds',
      'IBKR producer: length of each gap in the live feed (disconnect, lost IB connectivity, worker restart) from its start to data flowing again',
      ['provider', 'reason'],
      [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600],
    ),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
