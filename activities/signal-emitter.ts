import { ApplicationFailure } from '@temporalio/activity';
import type { Bus } from '../pipeline/bus/index.js';
import type { FeatureSnapshot, InferenceAdapter, SignalEventV1, SignalSink, UpsertCounts } from '../pipeline/contracts/index.js';
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

/**
 * The one path from a feature snapshot to stored and published signals, shared by the live
 * inference consumer and replays: evaluate (timed in `inference_eval_duration_seconds`), then
 * upsert (idempotent by key), publish to the signals stream and count `signals_emitted_total`.
 */
export class SignalEmitter {
  readonly #bus: Bus;
  readonly #sink: SignalSink;
  readonly #metrics: Metrics;
  readonly #signalsStream: string;

  constructor(options: { readonly bus: Bus; readonly sink: SignalSink; readonly metrics: Metrics; readonly signalsStream: string }) {
    this.#bus = options.bus;
    this.#sink = options.sink;
    this.#metrics = options.metrics;
    this.#signalsStream = options.signalsStream;
  }

  /** The adapter's signals for one snapshot. */
  async evaluate(adapter: InferenceAdapter, snapshot: FeatureSnapshot): Promise<readonly SignalEventV1[]> {
    const began = performance.now();
    const signals = await adapter.evaluate(snapshot);
    this.#metrics.inferenceEvalSeconds.observe({ adapter: adapter.name }, (performance.now() - began) / 1000);
    return signals;
  }

  /** Stores, publishes and counts signals (in that order: the stream never holds an unstored signal). */
  async emit(signals: readonly SignalEventV1[]): Promise<UpsertCounts> {
    if (signals.length === 0) return { inserted: 0, updated: 0, unchanged: 0 };
    const written = await this.#sink.upsertSignals(signals); // timed by the store's onWrite
    await this.#bus.publish(
      this.#signalsStream,
      signals.map((signal) => JSON.stringify(signal)),
    );
    for (const signal of signals) this.#metrics.signalsEmitted.inc({ name: signal.name, adapter: signal.meta.adapter });
    return written;
  }
}
