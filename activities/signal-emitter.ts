import { ApplicationFailure } from '@temporalio/activity';
import type { Bus } from '../pipeline/bus/index.js';
import type { FeatureSnapshot, InferenceAdapter, SignalEventV1, SignalSink, UpsertCounts } from '../pipeline/contracts/index.js';
import { LIVE_SOURCE, parseDurationMs, replaySource, stampSignal } from '../pipeline/contracts/index.js';
import type { Metrics } from '../pipeline/telemetry/index.js';

/** Builds the adapter a run uses (`rules`, or `sklearn` with rules as its fallback). */
export type AdapterFactory = (kind: 'rules' | 'sklearn', modelPath?: string) => Promise<InferenceAdapter>;

/** Loads an adapter; one that does not load (bad rules file, bad model) will not load on retry either. */
export async function loadAdapter(createAdapter: AdapterFactory, kind: 'rules' | 'sklearn', modelPath?: string): Promise<InferenceAdapter> {
  try {
    return await createAdapter(kind, modelPath);
  } catch (err) {
    throw ApplicationFailure.nonRetryable(`cannot load the ${kind} adapter: ${(err as Error).message}`, 'AdapterLoadError');
  }
}

/** Where a {@link SignalEmitter}'s signals go besides the store, and whose they are. */
export interface SignalEmitterOptions {
  readonly bus: Bus;
  readonly sink: SignalSink;
  readonly metrics: Metrics;
  /** Stream the signals are published to; omitted: stored only (a replay that was not asked to publish). */
  readonly signalsStream?: string;
  /**
   * The replay computing the signals; omitted for the live inference consumers. A replay's signals
   * are `meta.source` `replay:<id>` and count in `replay_signals_total`, never in the live
   * `signals_emitted_total` or `inference_eval_duration_seconds`.
   */
  readonly replayId?: string;
}

/**
 * The one path from a feature snapshot to stored and published signals, shared by the live
 * inference consumer and replays: evaluate (live: timed in `inference_eval_duration_seconds`),
 * stamp each signal's key interval and source ({@link stampSignal}), then upsert (idempotent by
 * key), publish to the signals stream when there is one, and count.
 */
export class SignalEmitter {
  readonly #bus: Bus;
  readonly #sink: SignalSink;
  readonly #metrics: Metrics;
  readonly #signalsStream: string | undefined;
  readonly #replayId: string | undefined;
  readonly #source: string;

  constructor(options: SignalEmitterOptions) {
    this.#bus = options.bus;
    this.#sink = options.sink;
    this.#metrics = options.metrics;
    this.#signalsStream = options.signalsStream;
    this.#replayId = options.replayId;
    this.#source = options.replayId === undefined ? LIVE_SOURCE : replaySource(options.replayId);
  }

  /** The adapter's signals for one snapshot, stamped with the snapshot's bar interval and this emitter's source. */
  async evaluate(adapter: InferenceAdapter, snapshot: FeatureSnapshot): Promise<readonly SignalEventV1[]> {
    const began = performance.now();
    const signals = await adapter.evaluate(snapshot);
    if (this.#replayId === undefined) this.#metrics.inferenceEvalSeconds.observe({ adapter: adapter.name }, (performance.now() - began) / 1000);
    if (signals.length === 0) return signals;
    const intervalMs = parseDurationMs(snapshot.interval);
    if (intervalMs === undefined || intervalMs <= 0)
      throw new Error(`feature snapshot of ${snapshot.provider}/${snapshot.symbol} has no bar interval (got ${JSON.stringify(snapshot.interval)})`);
    return signals.map((signal) => stampSignal(signal, { intervalMs, source: this.#source }));
  }

  /** Stores, publishes and counts signals (in that order: the stream never holds an unstored signal). */
  async emit(signals: readonly SignalEventV1[]): Promise<UpsertCounts> {
    if (signals.length === 0) return { inserted: 0, updated: 0, unchanged: 0 };
    const written = await this.#sink.upsertSignals(signals); // timed by the store's onWrite
    if (this.#signalsStream !== undefined) {
      await this.#bus.publish(
        this.#signalsStream,
        signals.map((signal) => JSON.stringify(signal)),
      );
    }
    const counter = this.#replayId === undefined ? this.#metrics.signalsEmitted : this.#metrics.replaySignals;
    for (const signal of signals) counter.inc({ name: signal.name, adapter: signal.meta.adapter });
    return written;
  }
}
