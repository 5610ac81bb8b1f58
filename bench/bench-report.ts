/**
 * What a benchmark run measured, the SLA verdicts of spec §6.2 / §10.3 derived from it, and the
 * human-readable table. Pure: numbers in, text out.
 */
import type { BusType } from '../pipeline/config/index.js';
import type { QuantileEstimate } from './prometheus-text.js';

/** Throughput floor of spec §6.2: events per minute on the dev stack, without loss. */
export const SLA_EVENTS_PER_MIN = 50_000;
/** Latency target of spec §6.2: p95 window latency ≤ this × window. */
export const SLA_LATENCY_WINDOWS = 1.5;
/** Lag target of spec §10.3: consumer lag < this × window. */
export const SLA_LAG_WINDOWS = 2;

/** One per-second observation of the running pipeline. */
export interface Sample {
  /** Wall clock of the sample, epoch ms. */
  readonly atMs: number;
  readonly phase: 'produce' | 'settle';
  /** Entries ever added to the bench's shard streams (XINFO STREAM entries-added; Kafka: the partitions' end offsets). */
  readonly published: number;
  /** Delivered but not acknowledged (XPENDING summary), summed over shards. */
  readonly pending: number;
  readonly pendingByShard: readonly number[];
  /** Added but not yet delivered to the group (XINFO GROUPS lag), summed over shards. */
  readonly undelivered: number;
  /** Age of the oldest unacknowledged entry as the bench reads it from the bus (`Bus.lag`), max over shards. */
  readonly busLagMs: number;
  /** `stream_consumer_lag_ms`, max over the consumers (undefined before the first scrape). */
  readonly metricLagMs: number | undefined;
  readonly workerRssBytes: number | undefined;
  readonly benchRssBytes: number | undefined;
  /** The bus's server: redis-server's `used_memory_rss`, or the Kafka broker JVM's VmRSS. */
  readonly serverRssBytes: number | undefined;
  /** Feature snapshots ever added to the run's features streams (XINFO STREAM entries-added), summed over shards. */
  readonly featuresPublished: number;
  /** `--inference` on only: the inference group's pending / undelivered entries and oldest unacknowledged age, over shards. */
  readonly inferencePending?: number;
  readonly inferenceUndelivered?: number;
  readonly inferenceLagMs?: number;
  /** `stream_consumer_lag_ms` of the inference consumers (topic = a features stream), max; set by each consumer once a second. */
  readonly inferenceMetricLagMs?: number;
}

export interface Verdict {
  readonly pass: boolean;
  readonly detail: string;
}

export interface LatencySummary {
  readonly windows: number;
  readonly p50: QuantileEstimate | undefined;
  readonly p95: QuantileEstimate | undefined;
  readonly p99: QuantileEstimate | undefined;
  /** Upper bounds of the finite buckets, ms: the resolution of the quantiles. */
  readonly bucketBounds: readonly number[];
  /** Share of windows committed within the latency target, from the buckets. */
  readonly withinTarget: { readonly fraction: number; readonly exact: boolean } | undefined;
}

export interface ExactLatency {
  readonly bars: number;
  /** Bars written before their window ended: windows cut by a forced flush. */
  readonly early: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

/** A duration histogram of the worker (seconds), summarised. */
export interface DurationHistogram {
  /** Observations (`_count`). */
  readonly observations: number;
  /** `_sum / _count`: exact, unlike the quantiles. */
  readonly meanSeconds: number | undefined;
  /** Interpolated inside their bucket; the true value lies in `(lower, upper]`. */
  readonly p50: QuantileEstimate | undefined;
  readonly p99: QuantileEstimate | undefined;
  /** Upper bounds of the finite buckets, seconds: the resolution of the quantiles. */
  readonly bucketBounds: readonly number[];
  /** Observations per bucket (not cumulative): `le` the bucket's upper bound in seconds, `null` for +Inf. */
  readonly distribution: readonly { readonly le: number | null; readonly count: number }[];
}

/** Exact per-signal delay from its bar's row to its signal's row (`updated_at` of both). */
export interface BarToSignal {
  readonly signals: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface InferenceSummary {
  readonly adapter: 'rules' | 'sklearn';
  /** The rules file or the ONNX model the worker was given (absolute). */
  readonly source: string;
  /** Every features stream had 0 pending and 0 undelivered entries in the inference group at the end. */
  readonly settled: boolean;
  /** Snapshots the inference consumers evaluated (their workflow totals; the histogram count if a drain failed). */
  readonly evaluated: number;
  /**
   * sklearn only: snapshots whose every model input was ready (not null, finite), read back from
   * the features streams with the adapter's own `buildInputRow`. Only those call the model; the
   * others return at once, and their evaluations sit in the histogram's lowest buckets.
   */
  readonly modelReady: number | undefined;
  /** Snapshots sent to the DLQ by the inference consumers. */
  readonly invalid: number;
  /** Feature snapshots published − (evaluated + invalid); negative when some were evaluated twice (redelivery). */
  readonly lost: number;
  readonly accountingSource: 'workflow totals' | 'worker metrics';
  /** Pending + undelivered in the inference group when the bench stopped waiting. */
  readonly unacked: number;
  /** `inference_eval_duration_seconds`, one observation per snapshot, all adapter labels together. */
  readonly evalDuration: DurationHistogram;
  /** Observations per `adapter` label of the eval histogram. */
  readonly evalByAdapter: Readonly<Record<string, number>>;
  readonly signals: {
    /** `signals_emitted_total`, summed. */
    readonly emitted: number;
    readonly byName: Readonly<Record<string, number>>;
    readonly byAdapter: Readonly<Record<string, number>>;
    /** Entries added to the run's signals stream. */
    readonly stream: number;
    /** Rows of the run's provider in `signals` (one per provider, symbol, name, bar). */
    readonly rows: number;
    readonly barToSignal: BarToSignal | undefined;
  };
  readonly lag: {
    /** Largest sampled age of the oldest unacknowledged features entry (inference group), over shards. */
    readonly maxMs: number;
    /** Largest `stream_consumer_lag_ms` of the inference consumers in the 1 s samples (undefined: not exported). */
    readonly maxMetricMs: number | undefined;
    readonly p50Ms: number;
    readonly samples: number;
    /** Samples that saw any unacknowledged snapshot at all. */
    readonly nonZeroSamples: number;
    readonly everyMs: number;
    readonly maxPending: number;
    readonly maxUndelivered: number;
    readonly targetMs: number;
  };
  readonly rates: {
    /** First published event → every event acknowledged and every resulting snapshot evaluated. */
    readonly wholeRunSeconds: number;
    /** Accepted events ÷ that span: end-to-end events/s with inference on. */
    readonly endToEndPerSecond: number;
    readonly snapshotsPerSecond: number;
    /** How long after the events settled the last snapshot was acknowledged. */
    readonly tailAfterEventsMs: number | undefined;
  };
  /** `errors_total{component="inference"}` by reason. */
  readonly errors: Readonly<Record<string, number>>;
  /** `inference_breaker_transitions_total` (sklearn), summed. */
  readonly breakerTransitions: number;
}

/** CPU of each process over a span, per event and as a share of all cores. */
export interface CpuBreakdown {
  readonly wallSeconds: number;
  readonly cores: number;
  /** The events the per-event figures divide by (accepted into bars). */
  readonly events: number;
  readonly processes: readonly {
    readonly name: string;
    readonly cpuSeconds: number | undefined;
    readonly usPerEvent: number | undefined;
    readonly shareOfCores: number | undefined;
  }[];
}

export interface BenchSummary {
  readonly run: {
    readonly tag: string;
    /** The bus the pipeline ran on. The keys named after Redis below (`maxRedisMs`, `redisPeakRssBytes`, `redisCpuSeconds`) hold its server's values: the Kafka broker's with `kafka`. */
    readonly bus: BusType;
    readonly mode: 'rate' | 'max';
    readonly targetRate: number | undefined;
    readonly loadSource: string;
    readonly durationMs: number;
    readonly windowMs: number;
    readonly allowLateMs: number;
    readonly maxBatchSize: number;
    readonly shards: number;
    /** Each symbol's shard; only for runs of at most {@link SHARD_MAP_LISTED} symbols (a 10,000-symbol map is 200 kB). */
    readonly symbolShards?: Readonly<Record<string, number>>;
    readonly symbols: number;
    /** How many of the run's symbols each shard carries. */
    readonly symbolsPerShard: readonly number[];
    /** `bus.encoding`, `bus.redis.frame_events` (events per Redis entry) and `store.copy_min_rows` of the run. */
    readonly encoding: string;
    readonly frameEvents: number;
    readonly copyMinRows: number;
    /** `--warm-features`: history bars stored before the consumers started, window starts in [fromMs, toMs); null when cold. */
    readonly warmUp: { readonly bars: number; readonly fromMs: number; readonly toMs: number } | null;
    readonly cpus: number;
    /** 1-minute load average at the start and at the end: other work on the host skews the numbers. */
    readonly loadAverage: readonly [number, number];
    readonly startedAt: string;
  };
  readonly settled: boolean;
  readonly events: {
    readonly published: number;
    readonly accepted: number;
    readonly duplicates: number;
    readonly late: number;
    readonly invalid: number;
    readonly accounted: number;
    readonly lost: number;
    /** Where accepted/duplicates/late/invalid come from. */
    readonly accountingSource: 'workflow totals' | 'worker metrics';
    /** Entries still pending or undelivered when the bench stopped waiting (0 when settled). */
    readonly unacked: number;
    readonly lateStream: number;
    readonly dlqStream: number;
    readonly bars: number;
    /** Σ trades over the run's bars: events that made it into PostgreSQL. */
    readonly eventsInBars: number;
    /** Windows cut by backpressure (`max_batch_size` reached) before the watermark closed them. */
    readonly forcedFlushes: number;
  };
  readonly rates: {
    readonly producingSeconds: number;
    readonly publishedPerSecond: number;
    readonly wholeRunSeconds: number;
    /** Acknowledged (into bars, late stream or DLQ) per second, first event → all acknowledged. */
    readonly committedPerSecond: number;
    /** Accepted into bars per second over the same span: what the throughput SLA counts. */
    readonly intoBarsPerSecond: number;
    readonly steadyPublishedPerSecond: number | undefined;
    readonly steadyCommittedPerSecond: number | undefined;
    /** Events per bus entry (1 unless entries carry frames); sampled entry counts are scaled by it. */
    readonly eventsPerEntry: number;
  };
  readonly latency: LatencySummary & { readonly targetMs: number; readonly exactFromBars: ExactLatency | undefined };
  /** Feature snapshots: published after every bar commit whether or not inference runs. */
  readonly features: {
    /** Entries added to the run's features streams (XINFO STREAM entries-added), over shards. */
    readonly published: number;
    /** XLEN over the same streams (`MAXLEN ~` may have trimmed some). */
    readonly streamLength: number;
    /** Snapshots read back with every value non-null (every window warmed up; RSI needs period + 1 bars). */
    readonly complete: number | undefined;
    /** Per feature, the snapshots in which it was still null (warming up). */
    readonly nullByFeature: Readonly<Record<string, number>> | undefined;
    /** `features_update_duration_seconds`: one observation per bar, all symbols and windows together. */
    readonly updateDuration: DurationHistogram;
  };
  /** Null with `--inference off`. */
  readonly inference: InferenceSummary | null;
  /** `maxRedisMs`: read by the bench from the bus (`Bus.lag`), whichever it is. */
  readonly lag: { readonly maxMetricMs: number | undefined; readonly maxRedisMs: number; readonly targetMs: number };
  readonly pending: {
    readonly first: number;
    readonly mid: number;
    readonly last: number;
    readonly max: number;
    readonly maxUndelivered: number;
    /** Linear-fit growth of pending + undelivered over the steady part of the producing phase, events/s. */
    readonly backlogSlopePerSecond: number | undefined;
  };
  readonly resources: {
    /** VmHWM: includes the worker's start-up (workflow bundling). */
    readonly workerPeakRssBytes: number | undefined;
    /** Largest VmRSS sampled while producing and settling. */
    readonly workerMaxSampledRssBytes: number | undefined;
    readonly benchPeakRssBytes: number | undefined;
    readonly benchMaxSampledRssBytes: number | undefined;
    /** `--publisher process`: its VmHWM (it reports it before it exits). */
    readonly publisherPeakRssBytes: number | undefined;
    /**
     * The bus's server: sampled `used_memory_rss` maximum (VmHWM of redis-server would include its
     * whole history), or with Kafka the broker JVM's sampled VmRSS maximum (undefined unless a local
     * process listens on the broker's port).
     */
    readonly redisPeakRssBytes: number | undefined;
    /** Wall time over which the CPU seconds below were measured (production start → settled). */
    readonly cpuWallSeconds: number;
    readonly workerCpuSeconds: number | undefined;
    readonly benchCpuSeconds: number | undefined;
    /** The bus's server (redis-server, or the Kafka broker). */
    readonly redisCpuSeconds: number | undefined;
  };
  /** Production start → settled: every process's CPU per event accepted into bars, and its share of all cores. */
  readonly cpu: CpuBreakdown;
  /** `--backlog N`: pre-load and drain; the drain rate is the consumers' capacity. Null otherwise. */
  readonly backlog: {
    readonly events: number;
    readonly preloadSeconds: number;
    readonly preloadPerSecond: number;
    readonly drainSeconds: number;
    /** Accepted events ÷ (consumers started → every event acknowledged). */
    readonly drainPerSecond: number;
    readonly cpu: CpuBreakdown;
  } | null;
  /** The ceiling: redis-benchmark with `--bus redis`, Kafka's ProducerPerformance with `--bus kafka`. */
  readonly baseline:
    | {
        readonly xaddPerSecond: number;
        readonly command: string;
        readonly payloadBytes: number;
        /** Our published events/s over redis-benchmark's XADD/s. */
        readonly publishedRatio: number;
        /** Our events into bars per second (whole run) over redis-benchmark's XADD/s. */
        readonly intoBarsRatio: number;
      }
    | {
        /** ProducerPerformance's records/s (acks=all, idempotent). */
        readonly recordsPerSecond: number;
        readonly records: number;
        readonly command: string;
        readonly payloadBytes: number;
        /** The producer's `batch.size`. */
        readonly batchBytes: number;
        /** ProducerPerformance's send → acknowledgement latency, ms. */
        readonly latencyMs: { readonly avg: number; readonly p50: number; readonly p95: number; readonly p99: number; readonly max: number };
        /** Our published events/s over ProducerPerformance's records/s. */
        readonly publishedRatio: number;
        /** Our events into bars per second (whole run) over ProducerPerformance's records/s. */
        readonly intoBarsRatio: number;
      }
    | { readonly skipped: string };
  readonly shutdown: {
    readonly consumerDrainMs: readonly number[];
    /** Inference workflows (empty with `--inference off`). */
    readonly inferenceDrainMs: readonly number[];
    readonly producerDrainMs: number | undefined;
    readonly workerExitMs: number | undefined;
  };
  readonly verdicts: {
    readonly throughput: Verdict;
    readonly latencyP95: Verdict;
    readonly lag: Verdict;
    readonly backlog: Verdict;
    /** `--inference` on only. */
    readonly inference?: Verdict;
  };
}

/** Slope of the least-squares line through (x, y), or undefined with fewer than 3 points. */
export function slope(points: readonly (readonly [number, number])[]): number | undefined {
  const n = points.length;
  if (n < 3) return undefined;
  let sx = 0,
    sy = 0,
    sxx = 0,
    sxy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const denominator = n * sxx - sx * sx;
  return denominator === 0 ? undefined : (n * sxy - sx * sy) / denominator;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export function verdicts(s: Omit<BenchSummary, 'verdicts'>): BenchSummary['verdicts'] {
  const e = s.events;
  const perMin = s.rates.intoBarsPerSecond * 60;
  // The synthetic feed is in event-time order per shard, so every late event here was made late by
  // the pipeline (a window cut by a forced flush): it never reaches a bar, which is a loss for the SLA.
  const problems = [
    !s.settled ? 'did not settle: loss unknown' : '',
    e.lost !== 0 ? `${fmtInt(e.lost)} lost` : '',
    e.unacked !== 0 ? `${fmtInt(e.unacked)} unacked` : '',
    e.late !== 0 ? `${fmtInt(e.late)} routed late (not in bars)` : '',
    e.invalid !== 0 ? `${fmtInt(e.invalid)} sent to the DLQ` : '',
  ].filter((p) => p !== '');
  const throughput: Verdict = {
    pass: perMin >= SLA_EVENTS_PER_MIN && problems.length === 0,
    detail: `${fmtInt(perMin)} events/min into bars over the whole run (floor ${fmtInt(SLA_EVENTS_PER_MIN)}), ${problems.length === 0 ? 'no loss' : problems.join(', ')}`,
  };

  const target = s.latency.targetMs;
  const within = s.latency.withinTarget;
  const p95 = s.latency.p95;
  const lateShare = e.published > 0 ? e.late / e.published : 0;
  let latencyP95: Verdict;
  if (within === undefined || p95 === undefined) {
    latencyP95 = { pass: false, detail: 'no window committed' };
  } else {
    const measured =
      `p95 ≈ ${fmtMs(p95.value)} (bucket ${fmtMs(p95.lower)}–${fmtMs(p95.upper)}), ` +
      `${(within.fraction * 100).toFixed(1)}% of windows ≤ ${fmtMs(target)}${within.exact ? ' (exact: bucket bound)' : ' (interpolated)'}`;
    latencyP95 =
      lateShare > 0.05
        ? // Late events never reach a bar: their latency is unbounded, and over 5% of them put the p95 there.
          { pass: false, detail: `${(lateShare * 100).toFixed(1)}% of events never reached a bar, so their p95 is unbounded; windows alone: ${measured}` }
        : // With the target on a bucket bound the bucket count decides exactly; otherwise interpolation does.
          { pass: within.exact ? within.fraction >= 0.95 : p95.value <= target, detail: measured };
    if (e.forcedFlushes > 0)
      latencyP95 = { ...latencyP95, detail: `${latencyP95.detail}; ${fmtInt(e.forcedFlushes)} windows were cut early (their latency is clamped to 0)` };
  }

  const lagMax = s.lag.maxMetricMs ?? s.lag.maxRedisMs;
  const lag: Verdict = {
    pass: lagMax < s.lag.targetMs,
    detail: `max ${fmtMs(lagMax)} sampled every 1 s (target < ${fmtMs(s.lag.targetMs)})`,
  };

  // "No ack backlog growth": over the producing phase the backlog may not grow by more than one window of events.
  const slopeEps = s.pending.backlogSlopePerSecond;
  const oneWindow = s.rates.publishedPerSecond * (s.run.windowMs / 1000);
  const backlog: Verdict =
    slopeEps === undefined
      ? { pass: false, detail: 'too few samples' }
      : {
          pass: slopeEps * s.rates.producingSeconds <= oneWindow,
          detail: `pending + undelivered trend ${slopeEps >= 0 ? '+' : ''}${slopeEps.toFixed(1)} events/s → ${fmtInt(slopeEps * s.rates.producingSeconds)} over the run (allowed ≤ one window = ${fmtInt(oneWindow)})`,
        };
  const inf = s.inference;
  if (inf === null) return { throughput, latencyP95, lag, backlog };
  const infProblems = [
    !inf.settled ? `${fmtInt(inf.unacked)} snapshots never acknowledged` : '',
    inf.lost > 0 ? `${fmtInt(inf.lost)} snapshots not evaluated` : '',
    inf.invalid > 0 ? `${fmtInt(inf.invalid)} snapshots sent to the DLQ` : '',
    inf.lag.maxMs >= inf.lag.targetMs ? `lag ${fmtMs(inf.lag.maxMs)} ≥ ${fmtMs(inf.lag.targetMs)}` : '',
  ].filter((p) => p !== '');
  const inference: Verdict = {
    pass: infProblems.length === 0,
    detail:
      `${fmtInt(inf.evaluated)} of ${fmtInt(s.features.published)} snapshots evaluated, max sampled lag ${fmtMs(inf.lag.maxMs)} (target < ${fmtMs(inf.lag.targetMs)})` +
      (infProblems.length === 0 ? '' : `: ${infProblems.join(', ')}`),
  };
  return { throughput, latencyP95, lag, backlog, inference };
}

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '∞';
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

function fmtMb(bytes: number | undefined): string {
  return bytes === undefined ? 'n/a' : `${(bytes / 1024 / 1024).toFixed(0)} MB`;
}

/** Short durations (histograms in seconds): µs below 1 ms, else ms. */
export function fmtSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '∞';
  if (seconds < 0.001) return `${(seconds * 1e6).toFixed(seconds < 0.0001 ? 1 : 0)} µs`;
  return seconds < 1 ? `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1)} ms` : `${seconds.toFixed(2)} s`;
}

function fmtSecondsQuantile(q: QuantileEstimate | undefined): string {
  if (q === undefined) return 'n/a';
  if (q.upper === Number.POSITIVE_INFINITY) return `> ${fmtSeconds(q.lower)}  (above the last bucket)`;
  return `${fmtSeconds(q.value)}  (in bucket ${q.lower === 0 ? '0' : fmtSeconds(q.lower)}–${fmtSeconds(q.upper)})`;
}

function fmtDurationHistogram(h: DurationHistogram): [string, string][] {
  const buckets = h.distribution.filter((b) => b.count > 0).map((b) => `${b.le === null ? '> last' : `≤ ${fmtSeconds(b.le)}`}: ${fmtInt(b.count)}`);
  return [
    ['p50 / p99 (histogram)', `${fmtSecondsQuantile(h.p50)} / ${fmtSecondsQuantile(h.p99)}`],
    ['mean (exact, _sum / _count)', h.meanSeconds === undefined ? 'n/a' : `${fmtSeconds(h.meanSeconds)} over ${fmtInt(h.observations)} observations`],
    ['observations per bucket', buckets.length === 0 ? 'none' : buckets.join(', ')],
  ];
}

function fmtCounts(counts: Readonly<Record<string, number>>): string {
  const entries = Object.entries(counts).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? 'none' : entries.map(([k, v]) => `${k} ${fmtInt(v)}`).join(', ');
}

function fmtQuantile(q: QuantileEstimate | undefined): string {
  if (q === undefined) return 'n/a';
  return `${fmtMs(q.value)}  (in bucket ${fmtMs(q.lower)}–${fmtMs(q.upper)})`;
}

/** A section of CPU seconds, µs per event and share of the cores, one row per process. */
function cpuRows(title: string, cpu: CpuBreakdown): (string | [string, string])[] {
  const rows: (string | [string, string])[] = [title];
  for (const p of cpu.processes) {
    if (p.cpuSeconds === undefined) continue;
    rows.push([
      `  ${p.name}`,
      `${p.cpuSeconds.toFixed(1)} s CPU, ${p.usPerEvent === undefined ? 'n/a' : `${p.usPerEvent.toFixed(2)} µs/event`}, ${p.shareOfCores === undefined ? 'n/a' : `${(p.shareOfCores * 100).toFixed(0)}% of ${cpu.cores} cores`}`,
    ]);
  }
  return rows;
}

/** Runs with at most this many symbols list each symbol's shard; larger ones only the count per shard. */
export const SHARD_MAP_LISTED = 12;

/** Symbols per shard of a symbol → shard map. */
export function symbolsPerShard(symbolShards: Readonly<Record<string, number>>, shards: number): number[] {
  const counts = new Array<number>(shards).fill(0);
  for (const shard of Object.values(symbolShards)) counts[shard]++;
  return counts;
}

/** `SPY→3 AAPL→1 MSFT→0 (3 of 4 shards carry load)`, or for many symbols `2,000 symbols: 512 / 488 / 497 / 503 per shard (min 488, max 512)`. */
export function shardMapText(symbolShards: Readonly<Record<string, number>> | undefined, perShard: readonly number[]): string {
  const used = perShard.filter((n) => n > 0).length;
  const total = perShard.reduce((a, n) => a + n, 0);
  if (symbolShards !== undefined && total <= SHARD_MAP_LISTED) {
    const listed = Object.entries(symbolShards)
      .map(([sym, shard]) => `${sym}→${shard}`)
      .join(' ');
    return `${listed}  (${used} of ${perShard.length} shards carry load)`;
  }
  const shown = perShard.length <= 16 ? `${perShard.map(fmtInt).join(' / ')} per shard` : `${perShard.length} shards`;
  return `${fmtInt(total)} symbols: ${shown} (min ${fmtInt(Math.min(...perShard))}, max ${fmtInt(Math.max(...perShard))})`;
}

function fmtCpu(seconds: number | undefined, wallSeconds: number): string {
  return seconds === undefined ? 'n/a' : `${seconds.toFixed(1)} s (${((seconds / wallSeconds) * 100).toFixed(0)}% of one core)`;
}

/** The readable report: sections of label/value rows. */
export function formatReport(s: BenchSummary): string {
  const rows: (readonly [string, string] | string)[] = [];
  const e = s.events;
  const r = s.rates;
  const mode = s.run.mode === 'rate' ? `rate ${fmtInt(s.run.targetRate ?? 0)} events/s` : 'max';
  const kafka = s.run.bus === 'kafka';
  rows.push(
    `mdp throughput bench ${s.run.tag} — ${mode}, ${s.run.durationMs / 1000} s, window ${fmtMs(s.run.windowMs)}, ${s.run.shards} shards, ${s.run.cpus} CPUs` +
      (kafka ? ', bus Kafka' : ''),
  );
  rows.push(['load source', s.run.loadSource]);
  rows.push(['host load average (1 min) start / end', `${s.run.loadAverage[0].toFixed(2)} / ${s.run.loadAverage[1].toFixed(2)}  on ${s.run.cpus} CPUs`]);
  rows.push(['symbol → shard', shardMapText(s.run.symbolShards, s.run.symbolsPerShard)]);
  rows.push([
    'encoding / events per entry / COPY from',
    `${s.run.encoding} / ${kafka ? 'n/a (Kafka record batches)' : `up to ${fmtInt(s.run.frameEvents)}, ${s.rates.eventsPerEntry.toFixed(1)} on average`} / ${s.run.copyMinRows === 0 ? 'never' : `${fmtInt(s.run.copyMinRows)} bars per flush`}`,
  ]);
  rows.push(['max_batch_size / allow_late', `${fmtInt(s.run.maxBatchSize)} / ${fmtMs(s.run.allowLateMs)}`]);
  const w = s.run.warmUp;
  rows.push([
    'feature windows at start',
    w === null
      ? 'cold (each value null until its window fills)'
      : `warm: ${fmtInt(w.bars)} history bars over ${fmtMs(w.toMs - w.fromMs)} stored first (not counted below)`,
  ]);
  rows.push('events');
  rows.push(['published', fmtInt(e.published)]);
  rows.push([
    'accepted / duplicate / late / invalid',
    `${fmtInt(e.accepted)} / ${fmtInt(e.duplicates)} / ${fmtInt(e.late)} / ${fmtInt(e.invalid)}  (${e.accountingSource})`,
  ]);
  rows.push(['lost (published − accounted)', `${fmtInt(e.lost)}${s.settled ? '' : '  (did not settle)'}`]);
  rows.push(['unacked at end (pending + undelivered)', fmtInt(e.unacked)]);
  rows.push(['late stream / DLQ entries', `${fmtInt(e.lateStream)} / ${fmtInt(e.dlqStream)}`]);
  rows.push([
    'bars in PostgreSQL / Σ trades',
    `${fmtInt(e.bars)} / ${fmtInt(e.eventsInBars)}${e.eventsInBars === e.accepted ? ' (= accepted)' : ` (≠ accepted ${fmtInt(e.accepted)})`}`,
  ]);
  rows.push(['windows cut by forced flush', fmtInt(e.forcedFlushes)]);
  rows.push('throughput');
  rows.push(['producing time', `${r.producingSeconds.toFixed(1)} s`]);
  rows.push(['published', `${fmtInt(r.publishedPerSecond)} events/s  (${fmtInt(r.publishedPerSecond * 60)}/min)`]);
  rows.push([
    'into bars, whole run',
    `${fmtInt(r.intoBarsPerSecond)} events/s  (${fmtInt(r.intoBarsPerSecond * 60)}/min over ${r.wholeRunSeconds.toFixed(1)} s, first event → all acked)`,
  ]);
  rows.push(['acknowledged, whole run', `${fmtInt(r.committedPerSecond)} events/s  (bars + late stream + DLQ)`]);
  rows.push([
    'steady state (linear fit)',
    r.steadyCommittedPerSecond === undefined
      ? 'n/a'
      : `published ${fmtInt(r.steadyPublishedPerSecond ?? 0)}/s, acknowledged ${fmtInt(r.steadyCommittedPerSecond)}/s (after the first window)`,
  ]);
  if ('xaddPerSecond' in s.baseline) {
    rows.push(['redis-benchmark XADD (P=64)', `${fmtInt(s.baseline.xaddPerSecond)}/s with ${s.baseline.payloadBytes}-byte payload`]);
    rows.push([
      'ours / redis-benchmark',
      `published ${(s.baseline.publishedRatio * 100).toFixed(2)}%, into bars ${(s.baseline.intoBarsRatio * 100).toFixed(2)}%`,
    ]);
  } else if ('recordsPerSecond' in s.baseline) {
    const b = s.baseline;
    rows.push([
      'ceiling: kafka-producer-perf-test',
      `${fmtInt(b.recordsPerSecond)} records/s with ${b.payloadBytes}-byte records (${fmtInt(b.records)}, acks=all, idempotent, ${fmtInt(b.batchBytes / 1024)} KiB batches; ` +
        `latency p50 ${fmtMs(b.latencyMs.p50)} p99 ${fmtMs(b.latencyMs.p99)})`,
    ]);
    rows.push(['ours / ceiling', `published ${(b.publishedRatio * 100).toFixed(2)}%, into bars ${(b.intoBarsRatio * 100).toFixed(2)}%`]);
  } else {
    rows.push([kafka ? 'ceiling: kafka-producer-perf-test' : 'redis-benchmark', `skipped: ${s.baseline.skipped}`]);
  }
  rows.push('window latency (window end or last arrival → commit)');
  rows.push(['windows committed', fmtInt(s.latency.windows)]);
  rows.push(['p50 (histogram)', fmtQuantile(s.latency.p50)]);
  rows.push(['p95 (histogram)', fmtQuantile(s.latency.p95)]);
  rows.push(['p99 (histogram)', fmtQuantile(s.latency.p99)]);
  const x = s.latency.exactFromBars;
  rows.push([
    'exact, window end → row written',
    x === undefined
      ? 'n/a'
      : `p50 ${fmtMs(x.p50)}  p95 ${fmtMs(x.p95)}  p99 ${fmtMs(x.p99)}  max ${fmtMs(x.max)}  (${fmtInt(x.bars)} bars, bars_ohlcv.updated_at` +
        `${x.early > 0 ? `; ${fmtInt(x.early)} written before their window ended` : ''})`,
  ]);
  const f = s.features;
  rows.push('feature snapshots (one per bar, published after its commit)');
  rows.push([
    kafka ? 'published (records) / length' : 'published (entries added) / XLEN',
    `${fmtInt(f.published)} / ${fmtInt(f.streamLength)}${f.published === e.bars ? ' (= bars)' : `  (bars ${fmtInt(e.bars)})`}`,
  ]);
  rows.push(['with every value warmed up (non-null)', f.complete === undefined ? 'n/a' : fmtInt(f.complete)]);
  if (f.nullByFeature !== undefined && Object.keys(f.nullByFeature).length > 0)
    rows.push(['snapshots with the feature still null', fmtCounts(f.nullByFeature)]);
  rows.push(...fmtDurationHistogram(f.updateDuration).map(([k, v]) => [`features update per bar, ${k}`, v] as const));
  const inf = s.inference;
  if (inf !== null) {
    rows.push(`inference (${inf.adapter}: ${inf.source})`);
    rows.push([
      'snapshots evaluated / invalid / lost',
      `${fmtInt(inf.evaluated)} / ${fmtInt(inf.invalid)} / ${fmtInt(inf.lost)}  (${inf.accountingSource})${inf.settled ? '' : `; ${fmtInt(inf.unacked)} unacked (did not settle)`}`,
    ]);
    rows.push(...fmtDurationHistogram(inf.evalDuration).map(([k, v]) => [`eval per snapshot, ${k}`, v] as const));
    rows.push(['eval observations by adapter label', fmtCounts(inf.evalByAdapter)]);
    if (inf.modelReady !== undefined) {
      const skipped = inf.evaluated - inf.modelReady;
      rows.push([
        'snapshots that ran the model',
        `${fmtInt(inf.modelReady)} of ${fmtInt(inf.evaluated)}` +
          (skipped > 0
            ? ` (${fmtInt(skipped)} had a model input still null (warming up) and returned without calling the model; they are in the eval histogram too)`
            : ''),
      ]);
    }
    rows.push(['signals emitted (metric) by name', `${fmtInt(inf.signals.emitted)}: ${fmtCounts(inf.signals.byName)}`]);
    rows.push(['signals emitted by adapter', fmtCounts(inf.signals.byAdapter)]);
    rows.push(['signals stream entries / signals rows', `${fmtInt(inf.signals.stream)} / ${fmtInt(inf.signals.rows)}`]);
    const b = inf.signals.barToSignal;
    rows.push([
      'exact, bar row → signal row',
      b === undefined
        ? 'n/a (no signal)'
        : `p50 ${fmtMs(b.p50)}  p99 ${fmtMs(b.p99)}  max ${fmtMs(b.max)}  (${fmtInt(b.signals)} signals, updated_at of both rows)`,
    ]);
    rows.push([
      'inference lag: max / p50 (sampled)',
      `${fmtMs(inf.lag.maxMs)} / ${fmtMs(inf.lag.p50Ms)}  (${fmtInt(inf.lag.samples)} samples every ${fmtMs(inf.lag.everyMs)}, ` +
        `${fmtInt(inf.lag.nonZeroSamples)} saw an unacked snapshot)`,
    ]);
    rows.push([
      'inference lag: max (metric)',
      inf.lag.maxMetricMs === undefined
        ? 'n/a'
        : `${fmtMs(inf.lag.maxMetricMs)}  (stream_consumer_lag_ms of the features streams, set by each consumer once a second)`,
    ]);
    rows.push(['inference max pending / undelivered', `${fmtInt(inf.lag.maxPending)} / ${fmtInt(inf.lag.maxUndelivered)}`]);
    rows.push([
      'end to end, events with inference on',
      `${fmtInt(inf.rates.endToEndPerSecond)} events/s  (${fmtInt(inf.rates.endToEndPerSecond * 60)}/min over ${inf.rates.wholeRunSeconds.toFixed(1)} s, ` +
        `first event → all acked and every snapshot evaluated; ${inf.rates.snapshotsPerSecond.toFixed(2)} snapshots/s)`,
    ]);
    rows.push(['last snapshot acked after events settled', inf.rates.tailAfterEventsMs === undefined ? 'n/a' : fmtMs(inf.rates.tailAfterEventsMs)]);
    const errors = Object.fromEntries(Object.entries(inf.errors).filter(([, n]) => n !== 0));
    rows.push(['inference errors / breaker transitions', `${fmtCounts(errors)} / ${fmtInt(inf.breakerTransitions)}`]);
  }
  rows.push('lag and backlog');
  rows.push(['max consumer lag (metric)', s.lag.maxMetricMs === undefined ? 'n/a' : fmtMs(s.lag.maxMetricMs)]);
  rows.push([`max consumer lag (${kafka ? 'Kafka' : 'Redis'}, bench-side)`, fmtMs(s.lag.maxRedisMs)]);
  const p = s.pending;
  rows.push(['pending first / mid / last / max', `${fmtInt(p.first)} / ${fmtInt(p.mid)} / ${fmtInt(p.last)} / ${fmtInt(p.max)}  (producing phase)`]);
  rows.push(['max undelivered', fmtInt(p.maxUndelivered)]);
  rows.push(
    `resources (peak RSS: VmHWM of the process; ${kafka ? 'kafka broker: max sampled VmRSS of its JVM' : 'redis-server: max sampled used_memory_rss'})`,
  );
  const wall = s.resources.cpuWallSeconds;
  rows.push([
    'worker peak RSS / sampled max / CPU',
    `${fmtMb(s.resources.workerPeakRssBytes)} / ${fmtMb(s.resources.workerMaxSampledRssBytes)} / ${fmtCpu(s.resources.workerCpuSeconds, wall)}`,
  ]);
  rows.push([
    'bench peak RSS / sampled max / CPU',
    `${fmtMb(s.resources.benchPeakRssBytes)} / ${fmtMb(s.resources.benchMaxSampledRssBytes)} / ${fmtCpu(s.resources.benchCpuSeconds, wall)}`,
  ]);
  rows.push([
    `${kafka ? 'kafka broker' : 'redis-server'} sampled max RSS / CPU`,
    `${fmtMb(s.resources.redisPeakRssBytes)} / ${fmtCpu(s.resources.redisCpuSeconds, wall)}`,
  ]);
  if (s.resources.publisherPeakRssBytes !== undefined) rows.push(['publisher process peak RSS', fmtMb(s.resources.publisherPeakRssBytes)]);
  rows.push(...cpuRows(`CPU per event, production start → settled (${fmtInt(s.cpu.events)} events, ${s.cpu.wallSeconds.toFixed(1)} s)`, s.cpu));
  if (s.backlog !== null) {
    const b = s.backlog;
    rows.push(`consumer capacity (--backlog): ${fmtInt(b.events)} events pre-loaded with the consumers stopped, then drained`);
    rows.push(['pre-load', `${b.preloadSeconds.toFixed(1)} s, ${fmtInt(b.preloadPerSecond)} events/s published`]);
    rows.push(['drain into bars', `${fmtInt(b.drainPerSecond)} events/s  (${b.drainSeconds.toFixed(1)} s, consumers started → every event acknowledged)`]);
    rows.push(...cpuRows(`CPU per event during the drain (${b.cpu.wallSeconds.toFixed(1)} s)`, b.cpu));
  }
  rows.push([
    'drain: consumers / producer / worker exit',
    `${s.shutdown.consumerDrainMs.map(fmtMs).join(', ') || 'n/a'} / ${s.shutdown.producerDrainMs === undefined ? 'n/a' : fmtMs(s.shutdown.producerDrainMs)} / ${s.shutdown.workerExitMs === undefined ? 'n/a' : fmtMs(s.shutdown.workerExitMs)}`,
  ]);
  if (s.shutdown.inferenceDrainMs.length > 0) rows.push(['drain: inference consumers', s.shutdown.inferenceDrainMs.map(fmtMs).join(', ')]);
  rows.push('SLA (spec §6.2, §10.3)');
  const v = s.verdicts;
  rows.push([`throughput ≥ ${fmtInt(SLA_EVENTS_PER_MIN)}/min, no loss`, `${v.throughput.pass ? 'PASS' : 'FAIL'}  ${v.throughput.detail}`]);
  rows.push([`p95 latency ≤ ${SLA_LATENCY_WINDOWS} × window`, `${v.latencyP95.pass ? 'PASS' : 'FAIL'}  ${v.latencyP95.detail}`]);
  rows.push([`consumer lag < ${SLA_LAG_WINDOWS} × window`, `${v.lag.pass ? 'PASS' : 'FAIL'}  ${v.lag.detail}`]);
  rows.push(['no ack backlog growth', `${v.backlog.pass ? 'PASS' : 'FAIL'}  ${v.backlog.detail}`]);
  if (v.inference !== undefined)
    rows.push([`inference keeps up (lag < ${SLA_LAG_WINDOWS} × window)`, `${v.inference.pass ? 'PASS' : 'FAIL'}  ${v.inference.detail}`]);

  const width = Math.max(...rows.map((row) => (typeof row === 'string' ? 0 : row[0].length)));
  const lines = rows.map((row) => (typeof row === 'string' ? `\n${row}` : `  ${row[0].padEnd(width)}  ${row[1]}`));
  lines.push(
    '',
    "CPU percentages are of one core over production start → settled; the worker's VmHWM includes its start-up (workflow bundling).",
    `Histogram quantiles are interpolated inside the bucket that holds them (bounds ${s.latency.bucketBounds.join(', ')} ms):`,
    'precision is limited to those bounds, the true value lies somewhere in the bucket shown. Lag is sampled once a second.',
    `Features update buckets: ${f.updateDuration.bucketBounds.map(fmtSeconds).join(', ')}` +
      (inf === null ? '.' : `; inference eval buckets: ${inf.evalDuration.bucketBounds.map(fmtSeconds).join(', ')}.`),
    'A quantile in the first bucket is interpolated from 0, so it says little more than "below that bound"; the mean is exact.',
  );
  return lines.join('\n');
}
