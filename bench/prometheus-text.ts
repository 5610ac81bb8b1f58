/**
 * Just enough of the Prometheus text exposition format (0.0.4) to read the worker's `/metrics`:
 * samples with labels, and quantiles estimated from a histogram's cumulative buckets.
 */

/** One sample line: `name{label="value",...} 12.5`. */
export interface PromSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** A histogram's cumulative buckets (`le` ascending, the last one `+Inf`), count and sum. */
export interface PromHistogram {
  readonly buckets: readonly { readonly le: number; readonly count: number }[];
  readonly count: number;
  readonly sum: number;
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL_PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function unescapeLabel(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseValue(text: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(text); // NaN stays NaN
}

/** Parses exposition text into samples; comments (`# HELP`, `# TYPE`) and blank lines are skipped. */
export function parsePrometheusText(text: string): PromSample[] {
  const samples: PromSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE_LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[2]) for (const [, key, value] of m[2].matchAll(LABEL_PAIR)) labels[key] = unescapeLabel(value);
    samples.push({ name: m[1], labels, value: parseValue(m[3]) });
  }
  return samples;
}

/** Samples of one metric whose labels include every pair of `match`. */
export function select(samples: readonly PromSample[], name: string, match: Readonly<Record<string, string>> = {}): PromSample[] {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** Sum of the values of {@link select}; 0 when the metric has no samples yet. */
export function sumOf(samples: readonly PromSample[], name: string, match: Readonly<Record<string, string>> = {}): number {
  return select(samples, name, match).reduce((acc, s) => acc + s.value, 0);
}

/** Largest value of {@link select}; 0 when there are none. */
export function maxOf(samples: readonly PromSample[], name: string, match: Readonly<Record<string, string>> = {}): number {
  return select(samples, name, match).reduce((acc, s) => Math.max(acc, s.value), 0);
}

/**
 * Reads histogram `name` (unlabelled, or the series matching `match`) from `_bucket`, `_count` and
 * `_sum`; undefined when the worker has not registered it yet. When several labelled series match
 * (e.g. one per symbol), they are added up bucket by bucket, as PromQL's
 * `sum by (le) (…_bucket)` does: one histogram over every observation.
 */
export function histogramOf(samples: readonly PromSample[], name: string, match: Readonly<Record<string, string>> = {}): PromHistogram | undefined {
  const byBound = new Map<number, number>();
  for (const s of select(samples, `${name}_bucket`, match)) {
    const le = parseValue(s.labels.le ?? 'NaN');
    if (!Number.isNaN(le)) byBound.set(le, (byBound.get(le) ?? 0) + s.value);
  }
  if (byBound.size === 0) return undefined;
  const buckets = [...byBound].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
  return { buckets, count: sumOf(samples, `${name}_count`, match), sum: sumOf(samples, `${name}_sum`, match) };
}

/** A quantile estimate and how far to trust it. */
export interface QuantileEstimate {
  /** Linear interpolation inside the bucket holding the rank (as PromQL's `histogram_quantile`). */
  readonly value: number;
  /** Bounds of that bucket: the true quantile lies in `(lower, upper]`. */
  readonly lower: number;
  readonly upper: number;
}

/**
 * Estimates quantile `q` (0..1) the way PromQL's `histogram_quantile` does: find the bucket whose
 * cumulative count reaches `q · count` and interpolate linearly between its bounds (the first
 * bucket's lower bound is 0). A rank in the `+Inf` bucket returns the highest finite bound, which
 * is then only a lower bound of the truth. Undefined for an empty histogram.
 */
export function histogramQuantile(h: PromHistogram, q: number): QuantileEstimate | undefined {
  const total = h.buckets[h.buckets.length - 1]?.count ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const bucket of h.buckets) {
    if (bucket.count >= rank && bucket.count > lowerCount) {
      if (bucket.le === Number.POSITIVE_INFINITY) return { value: lowerBound, lower: lowerBound, upper: Number.POSITIVE_INFINITY };
      const value = lowerBound + ((bucket.le - lowerBound) * (rank - lowerCount)) / (bucket.count - lowerCount);
      return { value, lower: lowerBound, upper: bucket.le };
    }
    lowerBound = bucket.le;
    lowerCount = bucket.count;
  }
  return { value: lowerBound, lower: lowerBound, upper: Number.POSITIVE_INFINITY };
}

/**
 * Share of observations at or below `bound`. Exact when `bound` is a bucket bound; otherwise
 * interpolated inside its bucket like {@link histogramQuantile}.
 */
export function fractionAtOrBelow(h: PromHistogram, bound: number): { fraction: number; exact: boolean } | undefined {
  const total = h.buckets[h.buckets.length - 1]?.count ?? 0;
  if (total <= 0) return undefined;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const bucket of h.buckets) {
    if (bucket.le === bound) return { fraction: bucket.count / total, exact: true };
    if (bucket.le > bound) {
      if (bucket.le === Number.POSITIVE_INFINITY) return { fraction: lowerCount / total, exact: false };
      const inside = ((bound - lowerBound) / (bucket.le - lowerBound)) * (bucket.count - lowerCount);
      return { fraction: (lowerCount + inside) / total, exact: false };
    }
    lowerBound = bucket.le;
    lowerCount = bucket.count;
  }
  return { fraction: 1, exact: true };
}
