import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { createMetrics } from '../../pipeline/telemetry/index.js';
import type { DashboardPanel } from '../helpers/prometheus.js';
import { GRAFANA_PROVISIONING_DIR, loadAlertRules, loadDashboards, metricNames } from '../helpers/prometheus.js';

const DATASOURCE_UID = 'mdp-prometheus';
const REQUIRED_TITLES = ['Streaming Overview', 'Micro-batch Performance', 'Store Operations', 'Feature Computation', 'Inference Engine', 'Error Monitoring'];
/** Grafana unit ids the dashboards may use (a typo would silently show raw numbers). */
const UNITS = new Set(['ms', 's', 'ops', 'wps', 'cps', 'short', 'percent', 'percentunit', 'bytes']);
/** Series Prometheus itself writes for every target. */
const PROMETHEUS_SERIES = ['up'];

/** Series names the worker exports: the pipeline's metrics and prom-client's default process metrics. */
async function exportedSeries(): Promise<Set<string>> {
  const registry = new Registry();
  createMetrics(registry);
  collectDefaultMetrics({ register: registry });
  const names = new Set<string>(PROMETHEUS_SERIES);
  for (const metric of await registry.getMetricsAsJSON()) {
    if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix);
    else names.add(metric.name);
  }
  return names;
}

/** The window the alert thresholds assume: the `mdp:microbatch_window_ms` recording rule of alerts.yml. */
function alertWindowMs(): number {
  const rule = loadAlertRules()
    .flatMap((g) => g.rules)
    .find((r) => r.record === 'mdp:microbatch_window_ms');
  const match = rule ? /^\s*vector\((\d+)\)\s*$/.exec(rule.expr) : null;
  assert.ok(match, 'alerts.yml records mdp:microbatch_window_ms as vector(<window ms>)');
  return Number(match[1]);
}

const dashboards = loadDashboards();
const panels = dashboards.flatMap(({ file, dashboard }) => (dashboard.panels ?? []).map((panel) => ({ file, panel })));
const where = (file: string, panel: DashboardPanel) => `${file}: panel ${panel.id} "${panel.title}"`;

describe('Grafana dashboards (configs/grafana/dashboards)', function () {
  it('are the six dashboards of spec §14.2, with unique uids and titles', function () {
    assert.deepEqual(dashboards.map((d) => d.dashboard.title).sort(), [...REQUIRED_TITLES].sort());
    const uids = dashboards.map((d) => d.dashboard.uid);
    assert.ok(
      uids.every((uid) => typeof uid === 'string' && /^[a-z0-9-]{1,40}$/.test(uid)),
      `uids: ${uids.join(', ')}`,
    );
    assert.equal(new Set(uids).size, uids.length, 'dashboard uids are unique');
    for (const { file, dashboard } of dashboards) {
      assert.ok(typeof dashboard.schemaVersion === 'number' && dashboard.schemaVersion >= 36, `${file}: schemaVersion ${dashboard.schemaVersion}`);
      assert.ok((dashboard.panels ?? []).length > 0, `${file} has panels`);
    }
  });

  it('give every panel a unique id and a place on the 24-column grid', function () {
    for (const { file, dashboard } of dashboards) {
      const ids = (dashboard.panels ?? []).map((p) => p.id);
      assert.ok(
        ids.every((id) => Number.isInteger(id)),
        `${file}: every panel has an integer id`,
      );
      assert.equal(new Set(ids).size, ids.length, `${file}: panel ids are unique`);
    }
    for (const { file, panel } of panels) {
      const g = panel.gridPos;
      assert.ok(g && g.w > 0 && g.h > 0 && g.x >= 0 && g.x + g.w <= 24 && g.y >= 0, `${where(file, panel)} has a gridPos inside 24 columns`);
    }
  });

  it('are timeseries or stat panels with a unit, thresholds and at least one query with a legend', function () {
    for (const { file, panel } of panels) {
      assert.ok(panel.type === 'timeseries' || panel.type === 'stat', `${where(file, panel)}: type ${panel.type}`);
      const unit = panel.fieldConfig?.defaults?.unit;
      assert.ok(unit && UNITS.has(unit), `${where(file, panel)}: unit ${unit} is one of ${[...UNITS].join(', ')}`);
      const steps = panel.fieldConfig?.defaults?.thresholds?.steps ?? [];
      assert.ok(steps.length > 0 && steps[0].value === null, `${where(file, panel)}: thresholds start with a base step`);
      assert.ok((panel.targets ?? []).length > 0, `${where(file, panel)} has a query`);
      const refIds = (panel.targets ?? []).map((t) => t.refId);
      assert.equal(new Set(refIds).size, refIds.length, `${where(file, panel)}: refIds are unique`);
      for (const target of panel.targets ?? []) {
        assert.ok(target.expr && target.expr.trim().length > 0, `${where(file, panel)} [${target.refId}] has an expr`);
        assert.ok(target.legendFormat && target.legendFormat.trim().length > 0, `${where(file, panel)} [${target.refId}] has a legend`);
        // Grafana variables ($__rate_interval, $instance) would not run verbatim in Prometheus and its tests.
        assert.ok(!target.expr.includes('$'), `${where(file, panel)} [${target.refId}] uses no dashboard variables`);
      }
    }
  });

  it('refer only to the provisioned Prometheus datasource', function () {
    const provisioned = yaml.load(readFileSync(join(GRAFANA_PROVISIONING_DIR, 'datasources/prometheus.yml'), 'utf8')) as {
      datasources: { uid: string; type: string }[];
    };
    assert.deepEqual(
      provisioned.datasources.map((d) => [d.uid, d.type]),
      [[DATASOURCE_UID, 'prometheus']],
    );
    for (const { file, panel } of panels) {
      for (const ref of [panel.datasource, ...(panel.targets ?? []).map((t) => t.datasource)]) {
        assert.deepEqual(ref, { type: 'prometheus', uid: DATASOURCE_UID }, `${where(file, panel)} uses datasource ${DATASOURCE_UID}`);
      }
    }
  });

  it('query only metrics the worker exports', async function () {
    const exported = await exportedSeries();
    const used = new Set<string>();
    for (const { file, panel } of panels) {
      for (const target of panel.targets ?? []) {
        const names = metricNames(target.expr ?? '');
        assert.ok(names.length > 0, `${where(file, panel)} [${target.refId}] selects a metric: ${target.expr}`);
        for (const name of names) {
          assert.ok(exported.has(name), `${where(file, panel)} [${target.refId}] queries ${name}, which no worker exports`);
          used.add(name);
        }
      }
    }
    // Every pipeline metric of spec §6.1 appears on some dashboard.
    for (const name of [
      'stream_events_ingested_total',
      'stream_consumer_lag_ms',
      'microbatch_flush_total',
      'microbatch_flush_rows',
      'microbatch_window_latency_ms_bucket',
      'store_write_duration_seconds_bucket',
      'features_update_duration_seconds_bucket',
      'inference_eval_duration_seconds_bucket',
      'signals_emitted_total',
      'errors_total',
    ]) {
      assert.ok(used.has(name), `some panel shows ${name}`);
    }
  });

  it('draw the SLA thresholds of the alert rules: latency 1.5× window, lag 2× window, heartbeat 60 s', function () {
    const windowMs = alertWindowMs();
    const expectations = [
      { metric: 'microbatch_window_latency_ms_bucket', unit: 'ms', red: 1.5 * windowMs },
      { metric: 'stream_consumer_lag_ms', unit: 'ms', red: 2 * windowMs },
      { metric: 'stream_consumer_last_heartbeat_seconds', unit: 's', red: 60 },
    ];
    for (const { metric, unit, red } of expectations) {
      const showing = panels.filter(
        ({ panel }) => panel.fieldConfig?.defaults?.unit === unit && (panel.targets ?? []).some((t) => metricNames(t.expr ?? '').includes(metric)),
      );
      assert.ok(showing.length > 0, `some panel shows ${metric} in ${unit}`);
      for (const { file, panel } of showing) {
        const steps = panel.fieldConfig?.defaults?.thresholds?.steps ?? [];
        assert.ok(
          steps.some((s) => s.color === 'red' && s.value === red),
          `${where(file, panel)} turns red at ${red} ${unit}`,
        );
      }
    }
  });

  it('are loaded by the Grafana file provider from the documented path', function () {
    const provider = yaml.load(readFileSync(join(GRAFANA_PROVISIONING_DIR, 'dashboards/mdp.yml'), 'utf8')) as {
      providers: { type: string; options: { path: string } }[];
    };
    assert.deepEqual(
      provider.providers.map((p) => [p.type, p.options.path]),
      [['file', '/var/lib/grafana/dashboards']],
    );
  });
});

describe('Prometheus alert rules (configs/prometheus/alerts.yml)', function () {
  const groups = loadAlertRules();
  const rules = groups.flatMap((g) => g.rules);

  it('cover the five SLA alert kinds in group mdp-sla, each with for, severity and annotations', function () {
    assert.deepEqual(
      groups.map((g) => g.name),
      ['mdp-sla'],
    );
    const alerts = rules.filter((r) => r.alert !== undefined);
    for (const name of [
      'MdpWindowLatencyHigh',
      'MdpConsumerLagHigh',
      'MdpPendingBacklogGrowing',
      'MdpErrorRateHigh',
      'MdpDlqRateHigh',
      'MdpConsumerHeartbeatStale',
      'MdpUnreadEntriesLost',
      'MdpBacklogNearRetention',
    ]) {
      assert.ok(
        alerts.some((a) => a.alert === name),
        `alert ${name} exists`,
      );
    }
    for (const alert of alerts) {
      assert.match(alert.for ?? '', /^\d+[smh]$/, `${alert.alert} has a for: duration`);
      assert.ok(['warning', 'critical'].includes(alert.labels?.severity ?? ''), `${alert.alert} has a severity label`);
      assert.ok(alert.annotations?.summary && alert.annotations.description, `${alert.alert} has summary and description`);
    }
  });

  it('query only metrics the worker exports (or rules of the same file)', async function () {
    const exported = await exportedSeries();
    for (const r of rules) if (r.record) exported.add(r.record);
    for (const rule of rules) {
      for (const name of metricNames(rule.expr)) assert.ok(exported.has(name), `${rule.alert ?? rule.record} queries ${name}, which no worker exports`);
    }
  });

  it('keep the window constant and its mismatch guard in step', function () {
    const windowMs = alertWindowMs();
    const guard = rules.find((r) => r.alert === 'MdpWindowConfigMismatch');
    assert.ok(guard?.expr.includes(`window_ms!="${windowMs}"`), `MdpWindowConfigMismatch compares window_ms with ${windowMs}`);
  });
});

describe('metricNames (PromQL metric names for the checks above)', function () {
  it('skips functions, keywords, label names, strings, durations and numbers', function () {
    assert.deepEqual(metricNames('histogram_quantile(0.95, sum by (job, le) (rate(a_bucket{le="3000", x=~"y|z"}[5m]))) > 1.5 * scalar(mdp:w)'), [
      'a_bucket',
      'mdp:w',
    ]);
    assert.deepEqual(metricNames('min_over_time(p[1m]) > max_over_time(p[1m] offset 4m)'), ['p']);
    assert.deepEqual(metricNames('time() - max by (topic) (hb) > bool 60 or on() vector(0) unless up == 1e3'), ['hb', 'up']);
    assert.deepEqual(metricNames('sum(rate(x_total[5m])) / ignoring(outcome) group_left sum(y)'), ['x_total', 'y']);
  });
});
