import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Metric } from 'prom-client';
import { loadStreamingConfig } from '../../pipeline/config/index.js';
import type { FeatureSnapshot } from '../../pipeline/contracts/index.js';
import { createLogger, createMetrics } from '../../pipeline/telemetry/index.js';
import type { Metrics } from '../../pipeline/telemetry/index.js';
import { adapterFactory } from '../../workers/adapters.js';

// dist/test/unit/ → repo root
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

type MetricType = 'counter' | 'gauge' | 'histogram';

interface Expected {
  readonly type: MetricType;
  readonly labels: readonly string[];
  /** Property of the {@link Metrics} object that holds it. */
  readonly key: keyof Omit<Metrics, 'registry'>;
}

/** Spec §6.1, word for word: name, type, labels. */
const SPEC: Readonly<Record<string, Expected>> = {
  stream_events_ingested_total: { type: 'counter', labels: ['bus', 'topic', 'provider'], key: 'eventsIngested' },
  stream_consumer_lag_ms: { type: 'gauge', labels: ['topic', 'group', 'consumer'], key: 'consumerLagMs' },
  microbatch_flush_total: { type: 'counter', labels: ['window_ms', 'symbol'], key: 'flushTotal' },
  microbatch_flush_rows: { type: 'counter', labels: ['window_ms'], key: 'flushRows' },
  microbatch_window_latency_ms: { type: 'histogram', labels: [], key: 'windowLatencyMs' },
  store_write_duration_seconds: { type: 'histogram', labels: ['table'], key: 'storeWriteSeconds' },
  features_update_duration_seconds: { type: 'histogram', labels: ['symbol', 'window'], key: 'featuresUpdateSeconds' },
  inference_eval_duration_seconds: { type: 'histogram', labels: ['adapter'], key: 'inferenceEvalSeconds' },
  signals_emitted_total: { type: 'counter', labels: ['name', 'adapter'], key: 'signalsEmitted' },
  errors_total: { type: 'counter', labels: ['component', 'reason'], key: 'errors' },
};

/** mdp's own metrics beyond the spec (progress view, alerts, breaker). */
const EXTRA: Readonly<Record<string, Expected>> = {
  microbatch_events_total: { type: 'counter', labels: ['topic', 'outcome'], key: 'consumedEvents' },
  inference_breaker_state: { type: 'gauge', labels: ['adapter'], key: 'breakerState' },
  inference_breaker_transitions_total: { type: 'counter', labels: ['adapter', 'from', 'to'], key: 'breakerTransitions' },
  stream_pending_entries: { type: 'gauge', labels: ['topic', 'group'], key: 'pendingEntries' },
  microbatch_watermark_ms: { type: 'gauge', labels: ['topic'], key: 'watermarkMs' },
  stream_consumer_last_heartbeat_seconds: { type: 'gauge', labels: ['topic', 'consumer'], key: 'consumerHeartbeat' },
  stream_backlog_ratio: { type: 'gauge', labels: ['topic'], key: 'backlogRatio' },
  stream_trimmed_entries_total: { type: 'counter', labels: ['topic'], key: 'trimmedEntries' },
  ibkr_requests_total: { type: 'counter', labels: ['kind'], key: 'ibkrRequests' },
  ibkr_pacing_wait_seconds: { type: 'histogram', labels: ['kind'], key: 'ibkrPacingWaitSeconds' },
  ibkr_pacing_violations_total: { type: 'counter', labels: ['code'], key: 'ibkrPacingViolations' },
  ibkr_connected: { type: 'gauge', labels: ['provider'], key: 'ibkrConnected' },
  ibkr_gap_seconds: { type: 'histogram', labels: ['provider', 'reason'], key: 'ibkrGapSeconds' },
  // A replay's own counters: replays never move the live signals_emitted_total / microbatch_flush_rows.
  replay_signals_total: { type: 'counter', labels: ['name', 'adapter'], key: 'replaySignals' },
  replay_bars_written_total: { type: 'counter', labels: ['window_ms'], key: 'replayBarsWritten' },
};

const ALL: Readonly<Record<string, Expected>> = { ...SPEC, ...EXTRA };

/** Declared label names; prom-client keeps them on the metric (not in its typings). */
function labelNamesOf(metric: Metric): string[] {
  return [...((metric as unknown as { labelNames?: readonly string[] }).labelNames ?? [])];
}

/** Records one sample with every expected label set to `v_<label>`, the way the metric's type records. */
function record(name: string, metric: Metric, labels: readonly string[]): void {
  const values = Object.fromEntries(labels.map((l) => [l, `v_${l}`]));
  if (metric instanceof Histogram) metric.observe(values, 0.5);
  else if (metric instanceof Counter) metric.inc(values, 2);
  else if (metric instanceof Gauge) metric.set(values, 3);
  else assert.fail(`unexpected metric class for ${name}`);
}

async function valuesOf(registry: Registry, name: string) {
  const json = await registry.getMetricsAsJSON();
  const metric = json.find((m) => m.name === name);
  assert.ok(metric, `${name} is registered`);
  return metric.values;
}

describe('metrics (spec §6.1 names, types and labels)', function () {
  it('createMetrics registers exactly the spec metrics plus the documented extras', async function () {
    const metrics = createMetrics(new Registry());
    const names = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name).sort();
    assert.deepEqual(names, Object.keys(ALL).sort());
    // Every property but the registry is one of them, under the documented key.
    const keys = Object.keys(metrics)
      .filter((k) => k !== 'registry')
      .sort();
    assert.deepEqual(
      keys,
      Object.values(ALL)
        .map((e) => e.key)
        .sort(),
    );
  });

  for (const [name, expected] of Object.entries(ALL)) {
    const labels = expected.labels.length > 0 ? `{${expected.labels.join(',')}}` : '';
    const origin = name in SPEC ? 'spec' : 'extra';
    it(`${origin}: ${name}${labels} is a ${expected.type}`, async function () {
      const metrics = createMetrics(new Registry());
      const registry = metrics.registry;
      const json = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
      assert.ok(json, `${name} is registered`);
      assert.equal(json.type, expected.type);
      assert.ok(json.help.length > 10, `${name} has a help text`);

      const metric = registry.getSingleMetric(name)!;
      assert.equal(metric, metrics[expected.key], `metrics.${expected.key} is ${name}`);
      assert.deepEqual(labelNamesOf(metric).sort(), [...expected.labels].sort(), 'declared label names');

      // A sample carries exactly those labels (histograms add `le` to their buckets only).
      record(name, metric, expected.labels);
      const values = await valuesOf(registry, name);
      const sample = expected.type === 'histogram' ? values.find((v) => (v as { metricName?: string }).metricName === `${name}_count`) : values[0];
      assert.ok(sample, `${name} has a sample`);
      assert.deepEqual(Object.keys(sample.labels).sort(), [...expected.labels].sort());
      assert.equal(sample.value, expected.type === 'histogram' ? 1 : expected.type === 'counter' ? 2 : 3);
      if (expected.type === 'histogram') {
        const buckets = values.filter((v) => (v as { metricName?: string }).metricName === `${name}_bucket`);
        assert.ok(buckets.length > 3 && buckets.every((b) => 'le' in b.labels), `${name} has buckets`);
      }

      // A label outside the set is refused rather than silently creating a new series.
      assert.throws(() => record(name, metric, [...expected.labels, 'bogus']), /bogus/);

      const text = await registry.metrics();
      assert.match(text, new RegExp(`^# TYPE ${name} ${expected.type}$`, 'm'));
    });
  }

  it('a second createMetrics on the same registry reuses the registered metrics', function () {
    const registry = new Registry();
    const first = createMetrics(registry);
    const second = createMetrics(registry);
    for (const expected of Object.values(ALL)) assert.equal(second[expected.key], first[expected.key]);
    assert.equal(registry.getMetricsAsArray().length, Object.keys(ALL).length);
  });
});

/**
 * The components that move metrics without a Temporal activity context. The activities'
 * metrics (ingest, lag, flushes, latency, store writes, features, inference, signals, errors) are
 * moved by a real pipeline run in test/integration/metrics-movement.test.ts.
 */
describe('metrics moved by the inference adapters (workers/adapters.ts)', function () {
  this.timeout(30_000);
  let dir: string;

  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'mdp-metrics-'));
  });

  after(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  const snapshot = (): FeatureSnapshot => ({
    ver: 1,
    provider: 'synthetic',
    symbol: 'SPY',
    interval: '2s',
    ts: '2025-10-24T14:02:02Z',
    tsMs: Date.UTC(2025, 9, 24, 14, 2, 2),
    price: 401,
    values: { returns: 0.001, momentum: 0.01, volatility: 0.2, rsi: 55, vwap: 400, price: 401, volume: 1200 },
    windows: { returns: '30s', momentum: '30s', volatility: '5m', rsi: '14 bars', vwap: '1m' },
  });
  const quietLog = createLogger('ERROR', () => undefined);

  it('errors_total{component="inference",reason="rule_evaluation"} counts a rule that fails to evaluate', async function () {
    const rulesFile = join(dir, 'failing-rules.yaml');
    // int() of an infinite double is a CEL runtime error, so the rule loads but cannot evaluate.
    await writeFile(rulesFile, '- name: "overflow"\n  condition: "int(price * 1.0e300 * 1.0e300) > 0"\n  signal: 1.0\n  score: 0.5\n  mode: level\n');
    const config = loadStreamingConfig({
      file: join(REPO_ROOT, 'configs/streaming.yaml'),
      env: {},
      overrides: { inference: { adapters: { rules: { file: rulesFile } } } },
    });
    const metrics = createMetrics(new Registry());
    const rules = await adapterFactory(config, metrics, quietLog, REPO_ROOT)('rules');
    assert.deepEqual(await rules.evaluate(snapshot()), []);
    assert.deepEqual(await rules.evaluate(snapshot()), []);
    assert.deepEqual(await valuesOf(metrics.registry, 'errors_total'), [{ value: 2, labels: { component: 'inference', reason: 'rule_evaluation' } }]);
  });

  it('inference_breaker_state and inference_breaker_transitions_total follow the sklearn breaker', async function () {
    // A 1 ms budget per model call, queueing included: of 100 concurrent calls on one worker
    // thread most time out, so the breaker opens (and the rules fallback answers).
    const config = loadStreamingConfig({
      file: join(REPO_ROOT, 'configs/streaming.yaml'),
      env: {},
      overrides: { inference: { adapters: { sklearn: { enabled: true, model_path: 'models/signal_model.onnx', timeout_ms: 1 } } } },
    });
    const metrics = createMetrics(new Registry());
    const ml = await adapterFactory(config, metrics, quietLog, REPO_ROOT)('sklearn');
    try {
      assert.deepEqual(await valuesOf(metrics.registry, 'inference_breaker_state'), [{ value: 0, labels: { adapter: 'sklearn' } }], 'closed once loaded');
      await Promise.all(Array.from({ length: 100 }, () => ml.evaluate(snapshot())));
      assert.deepEqual(await valuesOf(metrics.registry, 'inference_breaker_state'), [{ value: 2, labels: { adapter: 'sklearn' } }], 'open');
      assert.deepEqual(await valuesOf(metrics.registry, 'inference_breaker_transitions_total'), [
        { value: 1, labels: { adapter: 'sklearn', from: 'closed', to: 'open' } },
      ]);
    } finally {
      await ml.close?.();
    }
  });
});
