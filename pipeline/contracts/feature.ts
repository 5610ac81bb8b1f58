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
