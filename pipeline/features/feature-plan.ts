import { parseDurationMs } from '../contracts/index.js';
import { FeatureError } from './feature-error.js';
import { featureKindOf } from './feature-kind.js';
import type { FeatureKind, FeatureWindowSpec } from './feature-kind.js';
import type { HorizonNeeds } from './horizon-window.js';

/** A feature computed over a time horizon (everything but `rsi`). */
type TimeKind = Exclude<FeatureKind, 'rsi'>;

/** Where one snapshot value comes from. */
export type ValueSlot =
  | { readonly name: string; readonly kind: TimeKind; /** Index into {@link FeaturePlan.horizons}. */ readonly source: number }
  | { readonly name: string; readonly kind: 'rsi'; /** Index into {@link FeaturePlan.rsiPeriods}. */ readonly source: number }
  | { readonly name: string; readonly kind: 'price' | 'volume'; readonly source: -1 };

/** A distinct horizon and everything the slots on it need. */
export interface PlannedHorizon extends HorizonNeeds {
  readonly horizonMs: number;
}

/** The configured windows resolved into the work one bar costs: distinct horizons, distinct RSI periods, value slots. */
export interface FeaturePlan {
  /** Distinct horizons, longest first (so `horizons[0]` bounds what a series retains). */
  readonly horizons: readonly PlannedHorizon[];
  readonly rsiPeriods: readonly number[];
  /** Snapshot values in output order: configured windows, then the canonical names not configured. */
  readonly slots: readonly ValueSlot[];
  /** Horizon label of every value (`60s`, `14 bars`, `1 bar`). */
  readonly windows: Readonly<Record<string, string>>;
}

/** Canonical time-horizon features, in output order. */
const CANONICAL_TIME_KINDS: readonly TimeKind[] = ['vwap', 'returns', 'volatility', 'momentum', 'skewness', 'kurtosis'];
/** Where a canonical feature borrows its horizon when no window of its kind is configured. */
const BORROWS_FROM: Readonly<Partial<Record<TimeKind, TimeKind>>> = { momentum: 'returns', skewness: 'volatility', kurtosis: 'volatility' };
const RESERVED_NAMES: ReadonlySet<string> = new Set(['price', 'volume']);
const MOMENT_ORDER: Readonly<Record<TimeKind, 0 | 2 | 3 | 4>> = { vwap: 0, returns: 0, momentum: 0, volatility: 2, skewness: 3, kurtosis: 4 };

interface ResolvedWindow {
  readonly name: string;
  readonly kind: FeatureKind;
  readonly label: string;
  /** Horizon in ms (time kinds) or period in bars (`rsi`). */
  readonly size: number;
}

function windowError(name: string, reason: string): FeatureError {
  return new FeatureError('FEATURE_WINDOW_INVALID', `feature window "${name}": ${reason}`);
}

function resolveWindow(spec: FeatureWindowSpec, rsiPeriod: number): ResolvedWindow {
  const name = spec.name;
  if (typeof name !== 'string' || name.trim() === '') throw windowError(String(name), 'name must be a non-empty string');
  if (RESERVED_NAMES.has(name)) throw windowError(name, `"${name}" is reserved for the bar's own ${name}`);
  const kind = featureKindOf(spec);
  if ((CANONICAL_TIME_KINDS as readonly string[]).includes(name) || name === 'rsi') {
    if (kind !== name) throw windowError(name, `a window named like the canonical feature "${name}" must be of that kind (got ${kind})`);
  }
  if (kind === 'rsi') {
    const period = spec.period ?? rsiPeriod;
    if (!Number.isInteger(period) || period < 1) throw windowError(name, `period must be a positive integer (got ${String(spec.period)})`);
    return { name, kind, label: `${period} bars`, size: period };
  }
  if (spec.period !== undefined) throw windowError(name, `"period" applies to rsi windows only; ${kind} takes a horizon`);
  const horizonMs = spec.horizon === undefined ? undefined : parseDurationMs(spec.horizon);
  if (horizonMs === undefined || horizonMs <= 0 || !Number.isFinite(horizonMs)) {
    throw windowError(name, `horizon must be a positive duration such as 60s or 5m (got ${JSON.stringify(spec.horizon)})`);
  }
  return { name, kind, label: String(spec.horizon).trim(), size: horizonMs };
}

/**
 * Resolves configured windows into a {@link FeaturePlan}. Canonical values: a window named like
 * the canonical feature, else the first window of that kind; `momentum` otherwise takes the
 * horizon of the first `returns` window and `skewness`/`kurtosis` that of the first `volatility`
 * window; failing those, any canonical time feature takes the first time window's horizon. `rsi`
 * is the window named `rsi`, else the first `rsi` window, else RSI over `rsiPeriod` bars.
 *
 * @throws {@link FeatureError} `FEATURE_WINDOW_INVALID` naming the window: unknown kind, bad
 *   horizon or period, duplicate or reserved name, or no time window at all.
 */
export function planFeatures(specs: readonly FeatureWindowSpec[], rsiPeriod: number): FeaturePlan {
  const resolved: ResolvedWindow[] = [];
  const names = new Set<string>();
  for (const spec of specs) {
    const window = resolveWindow(spec, rsiPeriod);
    if (names.has(window.name)) throw windowError(window.name, 'configured twice');
    names.add(window.name);
    resolved.push(window);
  }
  const firstTime = resolved.find((w) => w.kind !== 'rsi');
  if (firstTime === undefined) {
    throw new FeatureError('FEATURE_WINDOW_INVALID', 'features.windows needs at least one time window (vwap, ret, mom, vol, skew or kurt)');
  }

  const outputs: { name: string; kind: FeatureKind; size: number; label: string }[] = [...resolved];
  const firstOf = (kind: FeatureKind): ResolvedWindow | undefined => resolved.find((w) => w.name === kind) ?? resolved.find((w) => w.kind === kind);
  for (const kind of CANONICAL_TIME_KINDS) {
    if (names.has(kind)) continue;
    const borrowed = BORROWS_FROM[kind];
    const source = firstOf(kind) ?? (borrowed === undefined ? undefined : firstOf(borrowed)) ?? firstTime;
    outputs.push({ name: kind, kind, size: source.size, label: source.label });
  }
  if (!names.has('rsi')) {
    const source = firstOf('rsi');
    outputs.push({ name: 'rsi', kind: 'rsi', size: source?.size ?? rsiPeriod, label: source?.label ?? `${rsiPeriod} bars` });
  }

  // Distinct horizons and periods, so that e.g. vol_5m and the canonical skewness share one pass.
  const needs = new Map<number, { vwap: boolean; momentOrder: 0 | 2 | 3 | 4 }>();
  const periods: number[] = [];
  for (const out of outputs) {
    if (out.kind === 'rsi') {
      if (!periods.includes(out.size)) periods.push(out.size);
      continue;
    }
    const entry = needs.get(out.size) ?? { vwap: false, momentOrder: 0 };
    entry.vwap ||= out.kind === 'vwap';
    entry.momentOrder = Math.max(entry.momentOrder, MOMENT_ORDER[out.kind]) as 0 | 2 | 3 | 4;
    needs.set(out.size, entry);
  }
  const horizons: PlannedHorizon[] = [...needs].map(([horizonMs, n]) => ({ horizonMs, ...n })).sort((a, b) => b.horizonMs - a.horizonMs);

  const slots: ValueSlot[] = outputs.map((out): ValueSlot =>
    out.kind === 'rsi'
      ? { name: out.name, kind: 'rsi', source: periods.indexOf(out.size) }
      : { name: out.name, kind: out.kind, source: horizons.findIndex((h) => h.horizonMs === out.size) },
  );
  slots.push({ name: 'price', kind: 'price', source: -1 }, { name: 'volume', kind: 'volume', source: -1 });

  const windows: Record<string, string> = {};
  for (const out of outputs) windows[out.name] = out.label;
  windows['price'] = '1 bar';
  windows['volume'] = '1 bar';
  return { horizons, rsiPeriods: periods, slots, windows: Object.freeze(windows) };
}
