import { FeatureError } from './feature-error.js';

/** Every feature the engine computes; see {@link FeatureEngine} for the exact definitions. */
export const FEATURE_KINDS = ['vwap', 'returns', 'momentum', 'volatility', 'skewness', 'kurtosis', 'rsi'] as const;

export type FeatureKind = (typeof FEATURE_KINDS)[number];

/**
 * One configured feature window. Compatible with `features.windows` entries of the streaming
 * config (`{ name, horizon }`), with two optional additions.
 */
export interface FeatureWindowSpec {
  /** Value name in snapshots, e.g. `vwap_1m`; its prefix gives the kind when `kind` is absent. */
  readonly name: string;
  /** Time horizon, e.g. `60s`, `5m`, `300000` (ms); required except for `rsi` windows, which count bars. */
  readonly horizon?: string | undefined;
  /** Explicit kind; wins over the name prefix. */
  readonly kind?: FeatureKind | undefined;
  /** RSI period in bars (a positive integer); only for `rsi` windows, default the engine's `rsiPeriod`. */
  readonly period?: number | undefined;
}

/** Name prefixes (the leading run of letters, case-insensitive) and the kind each stands for. */
const PREFIX_KINDS: ReadonlyMap<string, FeatureKind> = new Map<string, FeatureKind>([
  ['vwap', 'vwap'],
  ['ret', 'returns'],
  ['returns', 'returns'],
  ['mom', 'momentum'],
  ['momentum', 'momentum'],
  ['vol', 'volatility'],
  ['volatility', 'volatility'],
  ['skew', 'skewness'],
  ['skewness', 'skewness'],
  ['kurt', 'kurtosis'],
  ['kurtosis', 'kurtosis'],
  ['rsi', 'rsi'],
]);

/**
 * The kind of a configured window: its explicit `kind`, else the kind named by the leading run
 * of letters of its name (`vwap_1m` → `vwap`, `ret_30s` → `returns`, `mom_30s` → `momentum`,
 * `vol_5m` → `volatility`, `skew_5m` → `skewness`, `kurt_5m` → `kurtosis`, `rsi_14` → `rsi`;
 * the full kind names work too). The whole run must match, so `volume_1m` is not a volatility.
 *
 * @throws {@link FeatureError} `FEATURE_WINDOW_INVALID` naming the window when neither gives a kind.
 *
 * @example
 * ```ts
 * featureKindOf({ name: 'vol_5m', horizon: '300s' }); // 'volatility'
 * featureKindOf({ name: 'spread', horizon: '60s', kind: 'vwap' }); // 'vwap'
 * ```
 */
export function featureKindOf(window: Pick<FeatureWindowSpec, 'name' | 'kind'>): FeatureKind {
  if (window.kind !== undefined) {
    if (!(FEATURE_KINDS as readonly string[]).includes(window.kind)) {
      throw new FeatureError(
        'FEATURE_WINDOW_INVALID',
        `feature window "${window.name}": unknown kind "${String(window.kind)}" (expected one of ${FEATURE_KINDS.join(', ')})`,
      );
    }
    return window.kind;
  }
  const prefix = /^[a-z]+/i.exec(window.name)?.[0].toLowerCase() ?? '';
  const kind = PREFIX_KINDS.get(prefix);
  if (kind === undefined) {
    throw new FeatureError(
      'FEATURE_WINDOW_INVALID',
      `feature window "${window.name}": cannot tell its kind from the name; start it with vwap, ret, mom, vol, skew, kurt or rsi, or set "kind"`,
    );
  }
  return kind;
}
