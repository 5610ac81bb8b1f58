/**
 * The numbers of a finished run, from what it measured: accounting of every published event,
 * rates, window latency, lag, backlog, resources, and with `--inference` the inference leg.
 */
import { availableParallelism, loadavg } from 'node:os';
import type { BenchOptions } from './bench-options.js';
import type { BenchSummary, CpuBreakdown, DurationHistogram, InferenceSummary, Sample } from './bench-report.js';
import { SHARD_MAP_LISTED, SLA_LAG_WINDOWS, SLA_LATENCY_WINDOWS, percentile, slope, symbolsPerShard, verdicts } from './bench-report.js';
import { readMemory } from './proc-stats.js';
import { fractionAtOrBelow, histogramOf, histogramQuantile, select, sumOf } from './prometheus-text.js';
import type { PromSample } from './prometheus-text.js';
import type { KafkaBaseline } from './kafka-baseline.js';
import type { RedisBaseline } from './redis-baseline.js';
import type { LoadResult } from './run-load.js';
import type { RunPlan } from './run-plan.js';
import type { RunReadback } from './run-readback.js';
import type { CpuReading, InferenceState, SettleOutcome } from './run-sampler.js';
import { INFERENCE_LAG_EVERY_MS } from './run-sampler.js';
import type { Drained } from './run-workflows.js';

const LATENCY_METRIC = 'microbatch_window_latency_ms';
const FEATURES_UPDATE_METRIC = 'features_update_duration_seconds';
const INFERENCE_EVAL_METRIC = 'inference_eval_duration_seconds';

/** What the samplers recorded (a RunSampler), with the CPU reading at the end. */
export interface SamplingRecord {
  readonly samples: readonly Sample[];
  readonly inferenceLags: readonly InferenceState[];
  readonly startedAtMs: number;
  readonly loadAtStart: number;
  readonly cpuStart: CpuReading;
}

/** Everything a run measured, in the order it was measured. */
export interface RunResults {
  readonly baseline: RedisBaseline | KafkaBaseline | { skipped: string };
  readonly warmUp: BenchSummary['run']['warmUp'];
  readonly sampling: SamplingRecord;
  readonly load: LoadResult;
  /** `--backlog N`: when the consumers were started on the pre-loaded streams, and the CPU then. */
  readonly drain: BacklogDrain | undefined;
  readonly settle: SettleOutcome;
  readonly cpuEnd: CpuReading;
  /** The worker's metrics once settled. */
  readonly finalMetrics: readonly PromSample[];
  readonly firstEntryMs: number;
  readonly lastEntryMs: number;
  readonly readback: RunReadback;
  /** The drained workflows' results: micro-batch consumers, inference consumers. */
  readonly drained: readonly Drained[];
  readonly drainedInference: readonly Drained[];
  readonly workerPeakRssBytes: number | undefined;
  readonly workerExitMs: number | undefined;
  /** Length of the late stream and the DLQ after the worker stopped. */
  readonly lateStream: number;
  readonly dlqStream: number;
}

/** `--backlog N`: the drain's start (consumers started on the pre-loaded streams) and the CPU readings then. */
export interface BacklogDrain {
  readonly startedMs: number;
  readonly cpuAtStart: CpuReading;
}

/**
 * CPU seconds, µs per event and share of all cores of each process between two readings (with
 * `--publisher process`, the publisher's whole life: it starts just before and exits before the
 * end), and their total.
 */
function cpuBreakdown(
  start: CpuReading,
  end: CpuReading,
  events: number,
  serverName: string,
  publisher: LoadResult['publisherUsage'],
  includePublisher: boolean,
): CpuBreakdown {
  const wallSeconds = Math.max(0.001, (end.atMs - start.atMs) / 1000);
  const cores = availableParallelism();
  const delta = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined ? Math.max(0, b - a) : undefined);
  const row = (name: string, cpuSeconds: number | undefined) => ({
    name,
    cpuSeconds,
    usPerEvent: cpuSeconds === undefined || events === 0 ? undefined : (cpuSeconds * 1e6) / events,
    shareOfCores: cpuSeconds === undefined ? undefined : cpuSeconds / (wallSeconds * cores),
  });
  const rows = [
    row('worker', delta(start.worker, end.worker)),
    ...(includePublisher && publisher !== undefined ? [row('publisher process', publisher.cpuSeconds)] : []),
    row(serverName, delta(start.server, end.server)),
    row('postgres (all processes)', delta(start.postgres, end.postgres)),
    row('temporal dev server', delta(start.temporal, end.temporal)),
    row('bench (sampling, report)', delta(start.bench, end.bench)),
  ];
  const total = rows.reduce((acc, r) => acc + (r.cpuSeconds ?? 0), 0);
  return { wallSeconds, cores, events, processes: [...rows, row('total', total)] };
}

/** A seconds histogram of the worker's metrics, all series matching `match` added up. */
function durationHistogram(metrics: readonly PromSample[], name: string, match: Readonly<Record<string, string>> = {}): DurationHistogram {
  const h = histogramOf(metrics, name, match);
  return {
    observations: h?.count ?? 0,
    meanSeconds: h && h.count > 0 ? h.sum / h.count : undefined,
    p50: h && histogramQuantile(h, 0.5),
    p99: h && histogramQuantile(h, 0.99),
    bucketBounds: h?.buckets.map((b) => b.le).filter((le) => Number.isFinite(le)) ?? [],
    distribution: h?.buckets.map((b, i) => ({ le: Number.isFinite(b.le) ? b.le : null, count: b.count - (i === 0 ? 0 : h.buckets[i - 1].count) })) ?? [],
  };
}

/** Sums a counter's samples by one label. */
function countBy(metrics: readonly PromSample[], name: string, label: string, match: Readonly<Record<string, string>> = {}): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of select(metrics, name, match)) {
    const key = s.labels[label] ?? '';
    out[key] = (out[key] ?? 0) + s.value;
  }
  return out;
}

function peak(values: (number | undefined)[]): number | undefined {
  const known = values.filter((v): v is number => v !== undefined);
  return known.length > 0 ? Math.max(...known) : undefined;
}

/**
 * Where every published event went: accepted, duplicate, late or invalid, from the consumer
 * workflows' totals, or from the worker's metrics when a drain failed.
 */
function scaled(value: number | undefined, factor: number): number | undefined {
  return value === undefined ? undefined : value * factor;
}

function accountEvents(results: RunResults): BenchSummary['events'] {
  const {
    drained,
    finalMetrics,
    settle: { finalState },
  } = results;
  // Events, not entries: with frames (bus.redis.frame_events > 1) one entry carries several.
  const published = results.load.publishedEvents ?? finalState.published;
  const total = (key: string) => drained.reduce((acc, d) => acc + (d.status?.totals[key] ?? 0), 0);
  const fromWorkflows = drained.every((d) => d.status !== undefined);
  // Fallback when a drain failed: the outcomes the micro-batcher counts (accepted, duplicate, late, invalid).
  const metricOutcome = (outcome: string) => sumOf(finalMetrics, 'microbatch_events_total', { outcome });
  const metricLate = metricOutcome('late');
  const metricInvalid = metricOutcome('invalid');
  const accepted = fromWorkflows ? total('accepted') : metricOutcome('accepted');
  const duplicates = fromWorkflows ? total('duplicates') : metricOutcome('duplicate');
  const late = fromWorkflows ? total('late') : metricLate;
  const invalid = fromWorkflows ? total('invalid') : metricInvalid;
  const accounted = accepted + duplicates + late + invalid;
  const forcedFlushes = fromWorkflows ? total('forcedFlushes') : sumOf(finalMetrics, 'errors_total', { component: 'microbatch', reason: 'forced_flush' });
  const bars = results.readback.bars;
  return {
    published,
    accepted,
    duplicates,
    late,
    invalid,
    accounted,
    lost: published - accounted,
    accountingSource: fromWorkflows ? 'workflow totals' : 'worker metrics',
    unacked: finalState.pending + finalState.undelivered,
    lateStream: results.lateStream,
    dlqStream: results.dlqStream,
    bars: bars.length,
    eventsInBars: bars.reduce((acc, row) => acc + row.trades, 0),
    forcedFlushes,
  };
}

/** `--inference` on: snapshots evaluated (or lost), eval durations, signals, the inference group's lag, and end-to-end rates. */
function summarizeInference(adapter: 'rules' | 'sklearn', plan: RunPlan, results: RunResults, accepted: number): InferenceSummary {
  const {
    finalMetrics,
    drainedInference,
    firstEntryMs,
    readback,
    settle: { finalState, inferenceSettled, eventsSettledAtMs },
  } = results;
  const { samples, inferenceLags } = results.sampling;
  const featuresPublished = finalState.featuresPublished;
  const infTotal = (key: string) => drainedInference.reduce((acc, d) => acc + (d.status?.totals[key] ?? 0), 0);
  const infFromWorkflows = drainedInference.every((d) => d.status !== undefined);
  const evalDuration = durationHistogram(finalMetrics, INFERENCE_EVAL_METRIC);
  const evaluated = infFromWorkflows ? infTotal('snapshots') : evalDuration.observations;
  const infInvalid = infFromWorkflows ? infTotal('invalid') : sumOf(finalMetrics, 'errors_total', { component: 'inference', reason: 'invalid_snapshot' });
  const infEndMs = inferenceSettled ? finalState.atMs : Date.now();
  const infSeconds = Math.max(0.001, (infEndMs - firstEntryMs) / 1000);
  const lagValues = [...inferenceLags.map((l) => l.lagMs), ...samples.map((s) => s.inferenceLagMs ?? 0)].sort((a, b) => a - b);
  const infPending = [...inferenceLags.map((l) => l.pending), ...samples.map((s) => s.inferencePending ?? 0)];
  const infUndelivered = [...inferenceLags.map((l) => l.undelivered), ...samples.map((s) => s.inferenceUndelivered ?? 0)];
  const evalByAdapter: Record<string, number> = {};
  for (const name of new Set(select(finalMetrics, `${INFERENCE_EVAL_METRIC}_count`).map((m) => m.labels.adapter ?? ''))) {
    evalByAdapter[name] = sumOf(finalMetrics, `${INFERENCE_EVAL_METRIC}_count`, { adapter: name });
  }
  const errors = countBy(finalMetrics, 'errors_total', 'reason', { component: 'inference' });
  return {
    adapter,
    source: plan.inferenceSource,
    settled: inferenceSettled,
    evaluated,
    modelReady: readback.readiness?.modelReady,
    invalid: infInvalid,
    lost: featuresPublished - evaluated - infInvalid,
    accountingSource: infFromWorkflows ? 'workflow totals' : 'worker metrics',
    unacked: (finalState.inference?.pending ?? 0) + (finalState.inference?.undelivered ?? 0),
    evalDuration,
    evalByAdapter,
    signals: {
      emitted: sumOf(finalMetrics, 'signals_emitted_total'),
      byName: countBy(finalMetrics, 'signals_emitted_total', 'name'),
      byAdapter: countBy(finalMetrics, 'signals_emitted_total', 'adapter'),
      stream: readback.signalsStreamAdded,
      rows: readback.signals?.rows ?? 0,
      barToSignal: readback.signals?.exact,
    },
    lag: {
      maxMs: lagValues.length > 0 ? lagValues[lagValues.length - 1] : 0,
      maxMetricMs: peak(samples.map((s) => s.inferenceMetricLagMs)),
      p50Ms: lagValues.length > 0 ? percentile(lagValues, 0.5) : 0,
      samples: lagValues.length,
      nonZeroSamples: lagValues.filter((ms) => ms > 0).length,
      everyMs: INFERENCE_LAG_EVERY_MS,
      maxPending: Math.max(0, ...infPending),
      maxUndelivered: Math.max(0, ...infUndelivered),
      targetMs: SLA_LAG_WINDOWS * plan.windowMs,
    },
    rates: {
      wholeRunSeconds: infSeconds,
      endToEndPerSecond: accepted / infSeconds,
      snapshotsPerSecond: evaluated / infSeconds,
      tailAfterEventsMs: inferenceSettled && eventsSettledAtMs !== undefined ? finalState.atMs - eventsSettledAtMs : undefined,
    },
    errors,
    breakerTransitions: sumOf(finalMetrics, 'inference_breaker_transitions_total'),
  };
}

/** The run's summary with its SLA verdicts. Reads the clock, the load average and this process's peak RSS: call it right at the end. */
export function summarize(opts: BenchOptions, plan: RunPlan, results: RunResults): BenchSummary {
  const { config, tag, windowMs, shards, symbolShards } = plan;
  const {
    baseline,
    finalMetrics,
    firstEntryMs,
    lastEntryMs,
    readback,
    cpuEnd,
    settle: { settled, eventsSettledAtMs, finalState },
    drain,
  } = results;
  const { samples, startedAtMs, loadAtStart, cpuStart } = results.sampling;
  const events = accountEvents(results);
  const { published, accepted, unacked } = events;

  // Rates, latency, lag, backlog.
  const endMs = eventsSettledAtMs ?? Date.now();
  const producingSeconds = Math.max(0.001, (lastEntryMs - firstEntryMs) / 1000);
  const wholeRunSeconds = Math.max(0.001, (endMs - firstEntryMs) / 1000);
  const warmupMs = windowMs + config.micro_batch.allow_late_ms + 1000;
  const producing = samples.filter((s) => s.phase === 'produce');
  const steady = producing.filter((s) => s.atMs - firstEntryMs >= warmupMs && s.atMs <= lastEntryMs);
  const trend = steady.length >= 3 ? steady : producing;
  const at = (s: Sample) => (s.atMs - firstEntryMs) / 1000;
  const histogram = histogramOf(finalMetrics, LATENCY_METRIC);
  const latencyTargetMs = SLA_LATENCY_WINDOWS * windowMs;
  const lagMetrics = samples.map((s) => s.metricLagMs).filter((v): v is number => v !== undefined);
  const cpuDelta = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined ? b - a : undefined);
  const committed = published - unacked;
  const featuresPublished = finalState.featuresPublished;
  const featuresUpdate = durationHistogram(finalMetrics, FEATURES_UPDATE_METRIC);
  const inference = opts.inference === 'off' ? null : summarizeInference(opts.inference, plan, results, accepted);
  const serverName = plan.bus === 'kafka' ? 'kafka broker' : 'redis-server';
  // Entries → events for the sampled (entry) counts: 1 unless entries carry frames.
  const eventsPerEntry = finalState.published > 0 ? published / finalState.published : 1;
  const backlog =
    drain === undefined
      ? null
      : {
          events: published,
          preloadSeconds: ((results.load.stoppedMs ?? drain.startedMs) - (results.load.startedMs ?? startedAtMs)) / 1000,
          preloadPerSecond: published / Math.max(0.001, ((results.load.stoppedMs ?? drain.startedMs) - (results.load.startedMs ?? startedAtMs)) / 1000),
          drainSeconds: (endMs - drain.startedMs) / 1000,
          drainPerSecond: accepted / Math.max(0.001, (endMs - drain.startedMs) / 1000),
          cpu: cpuBreakdown(drain.cpuAtStart, cpuEnd, accepted, serverName, undefined, false),
        };

  const partial: Omit<BenchSummary, 'verdicts'> = {
    run: {
      tag,
      bus: plan.bus,
      mode: opts.rate === 'max' ? 'max' : 'rate',
      targetRate: opts.rate === 'max' ? undefined : opts.rate,
      loadSource: results.load.loadSource,
      durationMs: opts.durationMs,
      windowMs,
      allowLateMs: config.micro_batch.allow_late_ms,
      maxBatchSize: config.micro_batch.max_batch_size,
      shards,
      ...(plan.symbols.length <= SHARD_MAP_LISTED ? { symbolShards } : {}),
      symbols: plan.symbols.length,
      symbolsPerShard: symbolsPerShard(symbolShards, shards),
      encoding: config.bus.encoding,
      frameEvents: config.bus.redis.frame_events,
      copyMinRows: config.store.copy_min_rows,
      warmUp: results.warmUp,
      cpus: availableParallelism(),
      loadAverage: [loadAtStart, loadavg()[0]],
      startedAt: new Date(startedAtMs).toISOString(),
    },
    settled,
    events,
    rates: {
      producingSeconds,
      publishedPerSecond: published / producingSeconds,
      wholeRunSeconds,
      committedPerSecond: committed / wholeRunSeconds,
      intoBarsPerSecond: accepted / wholeRunSeconds,
      steadyPublishedPerSecond: scaled(slope(steady.map((s) => [at(s), s.published])), eventsPerEntry),
      steadyCommittedPerSecond: scaled(slope(steady.map((s) => [at(s), s.published - s.pending - s.undelivered])), eventsPerEntry),
      eventsPerEntry,
    },
    latency: {
      targetMs: latencyTargetMs,
      windows: histogram?.count ?? 0,
      bucketBounds: histogram?.buckets.map((b) => b.le).filter((le) => Number.isFinite(le)) ?? [],
      p50: histogram && histogramQuantile(histogram, 0.5),
      p95: histogram && histogramQuantile(histogram, 0.95),
      p99: histogram && histogramQuantile(histogram, 0.99),
      withinTarget: histogram && fractionAtOrBelow(histogram, latencyTargetMs),
      exactFromBars: readback.exact,
    },
    features: {
      published: featuresPublished,
      streamLength: readback.featuresStreamLength,
      complete: readback.readiness?.complete,
      nullByFeature: readback.readiness?.nullByFeature,
      updateDuration: featuresUpdate,
    },
    inference,
    lag: {
      maxMetricMs: lagMetrics.length > 0 ? Math.max(...lagMetrics) : undefined,
      maxRedisMs: Math.max(0, ...samples.map((s) => s.busLagMs)),
      targetMs: SLA_LAG_WINDOWS * windowMs,
    },
    pending: {
      first: trend[0]?.pending ?? 0,
      mid: trend[Math.floor(trend.length / 2)]?.pending ?? 0,
      last: trend[trend.length - 1]?.pending ?? 0,
      max: Math.max(0, ...producing.map((s) => s.pending)),
      maxUndelivered: Math.max(0, ...samples.map((s) => s.undelivered)),
      backlogSlopePerSecond: slope(steady.map((s) => [at(s), s.pending + s.undelivered])),
    },
    resources: {
      workerPeakRssBytes: results.workerPeakRssBytes,
      workerMaxSampledRssBytes: peak(samples.map((s) => s.workerRssBytes)),
      benchPeakRssBytes: readMemory('self')?.peakRssBytes,
      benchMaxSampledRssBytes: peak(samples.map((s) => s.benchRssBytes)),
      redisPeakRssBytes: peak(samples.map((s) => s.serverRssBytes)),
      publisherPeakRssBytes: results.load.publisherUsage?.peakRssBytes,
      cpuWallSeconds: (cpuEnd.atMs - cpuStart.atMs) / 1000,
      workerCpuSeconds: cpuDelta(cpuStart.worker, cpuEnd.worker),
      benchCpuSeconds: cpuDelta(cpuStart.bench, cpuEnd.bench),
      redisCpuSeconds: cpuDelta(cpuStart.server, cpuEnd.server),
    },
    cpu: cpuBreakdown(cpuStart, cpuEnd, accepted, serverName, results.load.publisherUsage, true),
    backlog,
    baseline:
      'xaddPerSecond' in baseline
        ? {
            xaddPerSecond: baseline.xaddPerSecond,
            command: baseline.command,
            payloadBytes: baseline.payloadBytes,
            publishedRatio: published / producingSeconds / baseline.xaddPerSecond,
            intoBarsRatio: accepted / wholeRunSeconds / baseline.xaddPerSecond,
          }
        : 'recordsPerSecond' in baseline
          ? {
              recordsPerSecond: baseline.recordsPerSecond,
              records: baseline.records,
              command: baseline.command,
              payloadBytes: baseline.payloadBytes,
              batchBytes: baseline.batchBytes,
              latencyMs: baseline.latencyMs,
              publishedRatio: published / producingSeconds / baseline.recordsPerSecond,
              intoBarsRatio: accepted / wholeRunSeconds / baseline.recordsPerSecond,
            }
          : baseline,
    shutdown: {
      consumerDrainMs: results.drained.map((d) => d.ms),
      inferenceDrainMs: results.drainedInference.map((d) => d.ms),
      producerDrainMs: results.load.producerDrainMs,
      workerExitMs: results.workerExitMs,
    },
  };
  return { ...partial, verdicts: verdicts(partial) };
}
