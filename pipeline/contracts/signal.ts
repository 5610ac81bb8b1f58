import type { UpsertCounts } from './bar.js';
import type { FeatureSnapshot } from './feature.js';

/**
 * The v1 signal event as spec §3.2 describes it; key (provider, symbol, name, bar interval, ts),
 * the interval being `meta.interval_ms` (a signal fired on 1 s bars is not the one fired on 2 s bars).
 */
export interface SignalEventV1 {
  readonly ver: 1;
  readonly provider: string;
  readonly symbol: string;
  /** Start of the bar whose features fired the signal (ISO-8601 UTC, no fraction: `2025-10-24T14:02:02Z`). */
  readonly ts: string;
  readonly name: string;
  readonly value: number;
  readonly score: number;
  readonly meta: SignalMeta;
}

export interface SignalMeta {
  /** Window label of the main input, e.g. `1m`. */
  readonly window: string;
  readonly price: number;
  /** The feature values the decision used. */
  readonly inputs: Readonly<Record<string, number | null>>;
  readonly adapter: string;
  readonly model_version?: string;
  /**
   * Length in ms of the bars whose features fired the signal; part of the key. Adapters leave it
   * out: {@link stampSignal} sets it from the snapshot, on the one path to the store and stream.
   */
  readonly interval_ms?: number;
  /** Who computed the signal: {@link LIVE_SOURCE}, or `replay:<workflow id>` ({@link replaySource}); set by {@link stampSignal}. */
  readonly source?: string;
  readonly [key: string]: unknown;
}

/** `meta.source` of signals computed by the live inference consumers. */
export const LIVE_SOURCE = 'live';

/** `meta.source` of signals computed by replay `workflowId`: never confused with live ones. */
export function replaySource(workflowId: string): string {
  return `replay:${workflowId}`;
}

/** The signal with its key's bar interval and its source in `meta` (what adapters do not know). */
export function stampSignal(signal: SignalEventV1, stamp: { readonly intervalMs: number; readonly source: string }): SignalEventV1 {
  return { ...signal, meta: { ...signal.meta, interval_ms: stamp.intervalMs, source: stamp.source } };
}

/**
 * A pluggable evaluator of feature snapshots (rules, ONNX, …). Adapters may keep per-symbol state
 * (edge detection, cooldowns) but must be deterministic: the same snapshot sequence yields the same
 * signals.
 */
export interface InferenceAdapter {
  /** `rules`, `sklearn`, … — the `adapter` label on metrics and stored signals. */
  readonly name: string;
  /** Version of the rules file or model in use (stored with each signal). */
  readonly version: string;
  evaluate(snapshot: FeatureSnapshot): Promise<readonly SignalEventV1[]>;
  close?(): Promise<void>;
}

/** Where signals are stored; implemented in `store/` (idempotent by the signals key). */
export interface SignalSink {
  upsertSignals(signals: readonly SignalEventV1[]): Promise<UpsertCounts>;
}
