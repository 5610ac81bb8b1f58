/**
 * Prometheus for tests: the Debian `prometheus` binary started on a free loopback port with the
 * shipped configs/prometheus/ (targets swapped for the test's workers), an HTTP API client, and
 * readers of the shipped dashboards and alert rules whose queries the tests run through it.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import yaml from 'js-yaml';
import { freePort } from './wait.js';

const REPO_ROOT = resolve(import.meta.dirname, '../../..');
export const PROMETHEUS_CONFIG = resolve(REPO_ROOT, 'configs/prometheus/prometheus.yml');
export const ALERT_RULES = resolve(REPO_ROOT, 'configs/prometheus/alerts.yml');
export const DASHBOARDS_DIR = resolve(REPO_ROOT, 'configs/grafana/dashboards');
export const GRAFANA_PROVISIONING_DIR = resolve(REPO_ROOT, 'configs/grafana/provisioning');

const INSTALL_HINT = 'install it with bash scripts/install.sh (Debian package "prometheus", which also brings promtool)';

/** Absolute path of `name` on PATH (or `MDP_<NAME>_BIN`); fails with the install hint when absent. */
export function prometheusBinary(name: 'prometheus' | 'promtool'): string {
  const override = process.env[`MDP_${name.toUpperCase()}_BIN`];
  if (override) {
    if (!existsSync(override)) throw new Error(`${name} not found at ${override}; ${INSTALL_HINT}`);
    return override;
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  throw new Error(`${name} is not installed (not on PATH); ${INSTALL_HINT}`);
}

/** Runs promtool with `args`; never throws on a non-zero exit, the caller asserts on `status`. */
export function promtool(args: readonly string[]): { status: number | null; output: string } {
  const run = spawnSync(prometheusBinary('promtool'), args, { encoding: 'utf8', timeout: 60_000 });
  if (run.error) throw run.error;
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

interface PrometheusConfigFile {
  global?: Record<string, unknown>;
  rule_files?: string[];
  scrape_configs?: { job_name: string; static_configs?: { targets: string[] }[] }[];
}

/**
 * The shipped prometheus.yml for a test: job `mdp` scrapes `targets`, scrapes and rule evaluations
 * run every `intervalS` seconds, and rule files are absolute paths into configs/prometheus/.
 */
export function testPrometheusConfig(targets: readonly string[], intervalS = 1): string {
  const config = yaml.load(readFileSync(PROMETHEUS_CONFIG, 'utf8')) as PrometheusConfigFile;
  config.global = { ...config.global, scrape_interval: `${intervalS}s`, scrape_timeout: `${intervalS}s`, evaluation_interval: `${intervalS}s` };
  config.rule_files = (config.rule_files ?? []).map((file) => resolve(PROMETHEUS_CONFIG, '..', file));
  const job = config.scrape_configs?.find((c) => c.job_name === 'mdp');
  if (!job) throw new Error(`${PROMETHEUS_CONFIG} has no scrape job "mdp"`);
  job.static_configs = [{ targets: [...targets] }];
  return yaml.dump(config);
}

/** One answer of the Prometheus HTTP API (`/api/v1/query`). */
export interface QueryResponse {
  readonly status: 'success' | 'error';
  readonly data?: { readonly resultType: 'vector' | 'matrix' | 'scalar' | 'string'; readonly result: unknown };
  readonly errorType?: string;
  readonly error?: string;
}

/** A vector or matrix sample series of a query answer. */
interface Series {
  readonly metric: Record<string, string>;
  readonly value?: [number, string];
  readonly values?: [number, string][];
}

/** The series of a vector/matrix answer (a scalar counts as one series), none for an error. */
export function seriesOf(response: QueryResponse): readonly Series[] {
  if (response.status !== 'success' || !response.data) return [];
  const { resultType, result } = response.data;
  if (resultType === 'scalar') return [{ metric: {}, value: result as [number, string] }];
  if (resultType === 'vector' || resultType === 'matrix') return result as Series[];
  return [];
}

/** Whether any sample of the answer is a finite number (NaN from e.g. a quantile of nothing is not). */
export function hasFiniteSample(response: QueryResponse): boolean {
  return seriesOf(response).some((s) => [...(s.value ? [s.value] : []), ...(s.values ?? [])].some(([, v]) => Number.isFinite(Number(v))));
}

/** A rule as `/api/v1/rules` reports it after evaluating it. */
export interface EvaluatedRule {
  readonly name: string;
  readonly query: string;
  readonly type: 'alerting' | 'recording';
  readonly health: 'ok' | 'err' | 'unknown';
  readonly lastError?: string;
  readonly lastEvaluation: string;
}

/** A Prometheus server of our own: {@link startPrometheus}. */
export class PrometheusServer {
  readonly url: string;
  readonly dir: string;
  readonly logFile: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<number | null>;
  #stopping: Promise<void> | undefined;

  constructor(url: string, dir: string, logFile: string, child: ChildProcess) {
    this.url = url;
    this.dir = dir;
    this.logFile = logFile;
    this.#child = child;
    this.#exited = new Promise((done) => {
      if (child.exitCode !== null || child.signalCode !== null) done(child.exitCode);
      else child.once('exit', (code) => done(code));
    });
  }

  get exited(): Promise<number | null> {
    return this.#exited;
  }

  /** An instant query at `time` (default now); HTTP errors of bad queries come back as `status: 'error'`. */
  async query(expr: string, time?: number): Promise<QueryResponse> {
    const body = new URLSearchParams({ query: expr, ...(time === undefined ? {} : { time: String(time) }) });
    const res = await fetch(`${this.url}/api/v1/query`, { method: 'POST', body });
    return (await res.json()) as QueryResponse;
  }

  /** Every rule of every loaded group with its evaluation health. */
  async rules(): Promise<{ group: string; rules: EvaluatedRule[] }[]> {
    const res = await fetch(`${this.url}/api/v1/rules`);
    const body = (await res.json()) as { data: { groups: { name: string; rules: EvaluatedRule[] }[] } };
    return body.data.groups.map((g) => ({ group: g.name, rules: g.rules }));
  }

  /** Scrape targets and their health. */
  async targets(): Promise<{ scrapeUrl: string; health: string; lastError: string }[]> {
    const res = await fetch(`${this.url}/api/v1/targets?state=active`);
    const body = (await res.json()) as { data: { activeTargets: { scrapeUrl: string; health: string; lastError: string }[] } };
    return body.data.activeTargets;
  }

  /** Stops the server and removes its directory (config and TSDB); idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      if (this.#child.exitCode === null && this.#child.signalCode === null) {
        this.#child.kill('SIGTERM');
        const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
        await this.#exited;
        clearTimeout(timer);
      }
      rmSync(this.dir, { recursive: true, force: true });
    })();
    return this.#stopping;
  }
}

/**
 * Starts Debian's `prometheus` on a free 127.0.0.1 port, scraping `targets` as job `mdp` with the
 * shipped alert rules, its TSDB in a fresh directory under .data/test; resolves once `/-/ready`.
 */
export async function startPrometheus(targets: readonly string[], options: { intervalS?: number } = {}): Promise<PrometheusServer> {
  const binary = prometheusBinary('prometheus');
  const dir = resolve(REPO_ROOT, '.data/test', `prometheus-${randomUUID().slice(0, 8)}`);
  mkdirSync(join(dir, 'data'), { recursive: true });
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, testPrometheusConfig(targets, options.intervalS ?? 1));
  const port = await freePort();
  const logFile = join(dir, 'prometheus.log');
  const fd = openSync(logFile, 'a');
  const child = spawn(
    binary,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn',
    ],
    { stdio: ['ignore', fd, fd] },
  );
  closeSync(fd);
  const server = new PrometheusServer(`http://127.0.0.1:${port}`, dir, logFile, child);
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const log = readFileSync(logFile, 'utf8');
      await server.stop();
      throw new Error(`prometheus exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${log}`);
    }
    const ready = await fetch(`${server.url}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return server;
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`prometheus on ${server.url} not ready after 30 s (log: ${logFile})`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The parts of a Grafana dashboard JSON the tests look at. */
export interface DashboardTarget {
  readonly refId?: string;
  readonly expr?: string;
  readonly legendFormat?: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
}

export interface ThresholdStep {
  readonly color: string;
  readonly value: number | null;
}

export interface DashboardPanel {
  readonly id?: number;
  readonly type?: string;
  readonly title?: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
  readonly gridPos?: { readonly h: number; readonly w: number; readonly x: number; readonly y: number };
  readonly fieldConfig?: { readonly defaults?: { readonly unit?: string; readonly thresholds?: { readonly steps?: readonly ThresholdStep[] } } };
  readonly targets?: readonly DashboardTarget[];
}

export interface Dashboard {
  readonly uid?: string;
  readonly title?: string;
  readonly schemaVersion?: number;
  readonly panels?: readonly DashboardPanel[];
}

/** Every dashboard of configs/grafana/dashboards/, parsed, with its file name. */
export function loadDashboards(): { file: string; dashboard: Dashboard }[] {
  return readdirSync(DASHBOARDS_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ file, dashboard: JSON.parse(readFileSync(join(DASHBOARDS_DIR, file), 'utf8')) as Dashboard }));
}

/** One query of one dashboard panel, named for messages ("Streaming Overview / Consumer lag [A]"). */
export interface PanelQuery {
  readonly where: string;
  readonly dashboard: string;
  readonly panel: string;
  readonly expr: string;
}

export function dashboardQueries(): PanelQuery[] {
  return loadDashboards().flatMap(({ dashboard }) =>
    (dashboard.panels ?? []).flatMap((panel) =>
      (panel.targets ?? []).map((t) => ({
        where: `${dashboard.title} / ${panel.title} [${t.refId}]`,
        dashboard: dashboard.title ?? '',
        panel: panel.title ?? '',
        expr: t.expr ?? '',
      })),
    ),
  );
}

/** A rule of configs/prometheus/alerts.yml. */
export interface RuleDefinition {
  readonly alert?: string;
  readonly record?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

export function loadAlertRules(): { name: string; rules: RuleDefinition[] }[] {
  const file = yaml.load(readFileSync(ALERT_RULES, 'utf8')) as { groups: { name: string; rules: RuleDefinition[] }[] };
  return file.groups;
}

/** PromQL words that are not metric names where they stand outside a call and a label list. */
const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'offset', 'bool', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects: identifiers that are not calls, keywords, label
 * names (in `{…}` matchers and `by`/`on`/… lists), strings, durations or numbers.
 */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ')
    .replace(/\boffset\s+-?\w+/gi, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w:.])([a-zA-Z_:][\w:]*)(\s*\()?/g)) {
    if (m[2] !== undefined || PROMQL_KEYWORDS.has(m[1].toLowerCase())) continue;
    names.add(m[1]);
  }
  return [...names];
}
