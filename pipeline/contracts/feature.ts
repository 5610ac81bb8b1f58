/**
 * A per-symbol feature snapshot, computed after each bar and published to `mdp.features`. Values
 * are `null` while a feature is warming up (not enough data in its window) or after a reset.
 */
export interface FeatureSnapshot {
  readonly ver: 1;
  readonly provider: string;
  readonly symbol: string;
  /** Bar interval the features are computed from, e.g. `2s`. */
  readonly interval: string;
  /** Start of the bar that produced this snapshot (ISO-8601 UTC). */
  readonly ts: string;
  readonly tsMs: number;
  /** Close of that bar. */
  readonly price: number;
  /**
   * Feature values by name: every configured window by its own name (`vwap_1m`, `ret_30s`,
   * `vol_5m`, …) plus the canonical names rules use (`vwap`, `returns`, `volatility`, `momentum`,
   * `rsi`, `skewness`, `kurtosis`, `price`, `volume`).
   */
  readonly values: Readonly<Record<string, number | null>>;
  /** Horizon label of the window behind each value, e.g. `{ vwap_1m: "60s", rsi: "14 bars" }`. */
  readonly windows: Readonly<Record<string, string>>;
}

/** A decoded feature snapshot, or why the payload is not one. */
export type SnapshotDecodeResult = { readonly ok: true; readonly snapshot: FeatureSnapshot } | { readonly ok: false; readonly reason: string };

/** Decodes one bus payload (JSON text) as a v1 feature snapshot; the reason names what is wrong. */
export function decodeSnapshot(text: string): SnapshotDecodeResult {
  let value: Partial<FeatureSnapshot> | null;
  try {
    value = JSON.parse(text) as Partial<FeatureSnapshot> | null;
  } catch (err) {
    return { ok: false, reason: `malformed JSON: ${(err as Error).message}` };
  }
  if (
    !value ||
    value.ver !== 1 ||
    typeof value.symbol !== 'string' ||
    typeof value.provider !== 'string' ||
    typeof value.tsMs !== 'number' ||
    typeof value.values !== 'object' ||
    value.values === null
  ) {
    return { ok: false, reason: 'not a v1 feature snapshot (ver, provider, symbol, tsMs, values)' };
  }
  return { ok: true, snapshot: value as FeatureSnapshot };
}
