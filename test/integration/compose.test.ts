import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import yaml from 'js-yaml';
import { Registry } from 'prom-client';
import { loadStreamingConfig } from '../../pipeline/config/index.js';
import { startMetricsServer } from '../../workers/metrics-server.js';

const run = promisify(execFile);
// dist/test/integration/ → repo root
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const COMPOSE_FILE = resolve(REPO_ROOT, 'docker-compose.yml');

/** The services of spec §14.4, plus the one-shot migration. */
const SERVICES = ['redis', 'postgres', 'temporal', 'temporal-ui', 'prometheus', 'grafana', 'migrate', 'worker', 'worker-next', 'kafka'];
/** Services whose data must outlive their containers. */
const STATEFUL: Readonly<Record<string, string>> = {
  redis: '/data',
  postgres: '/var/lib/postgresql/data',
  prometheus: '/prometheus',
  grafana: '/var/lib/grafana',
};

interface Healthcheck {
  readonly test: string[] | string;
  readonly interval?: string;
  readonly start_period?: string;
}
interface Service {
  readonly image?: string;
  readonly build?: { context: string; dockerfile?: string };
  readonly command?: string[] | string;
  readonly environment?: Record<string, string | null>;
  readonly volumes?: string[];
  readonly ports?: string[];
  readonly depends_on?: Record<string, { condition: string }>;
  readonly healthcheck?: Healthcheck;
  readonly profiles?: string[];
}
interface ComposeModel {
  readonly version?: string;
  readonly services: Record<string, Service>;
  readonly volumes?: Record<string, unknown>;
}
interface Mount {
  readonly source: string;
  readonly target: string;
  readonly named: boolean;
  readonly readOnly: boolean;
}

function mountsOf(service: Service): Mount[] {
  return (service.volumes ?? []).map((spec) => {
    const [source, target, mode] = spec.split(':');
    return { source, target, named: !source.startsWith('/') && !source.startsWith('.'), readOnly: mode === 'ro' };
  });
}

function mountAt(service: Service, target: string): Mount | undefined {
  return mountsOf(service).find((m) => m.target === target);
}

/** An environment without the caller's variables, so the file's own defaults are what is checked. */
function cleanEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME };
}

function installed(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

/**
 * Runs `node -e <script>` the way a container health check would; resolves to its exit code.
 * (Asynchronously: the server it probes lives in this process.)
 */
async function healthcheckExit(script: string, env: NodeJS.ProcessEnv): Promise<number | null> {
  try {
    await run(process.execPath, ['-e', script], { env: { ...cleanEnv(), ...env }, timeout: 10_000 });
    return 0;
  } catch (err) {
    return (err as { code?: number | null }).code ?? null;
  }
}

describe('docker-compose.yml: the full stack of spec §14.4', function () {
  this.timeout(120_000);
  let model: ComposeModel;

  before(async function () {
    if (!installed('docker-compose', ['version'])) {
      // scripts/install.sh installs it (Debian's docker-compose 1.29), so CI always runs this suite.
      console.warn('    docker-compose is not installed (bash scripts/install.sh installs it): skipping the compose checks');
      this.skip();
    }
    const { stdout } = await run('docker-compose', ['-f', COMPOSE_FILE, 'config'], { cwd: REPO_ROOT, env: cleanEnv() });
    model = yaml.load(stdout) as ComposeModel;
  });

  it('validates with docker-compose config -q, without warnings', async function () {
    const { stdout, stderr } = await run('docker-compose', ['-f', COMPOSE_FILE, 'config', '-q'], { cwd: REPO_ROOT, env: cleanEnv() });
    assert.equal(stdout, '');
    assert.equal(stderr, '', 'no warnings (e.g. an unset variable without a default)');
  });

  it('is checked for real: the same validator rejects an unknown key', async function () {
    const dir = await mkdtemp(join(tmpdir(), 'mdp-compose-'));
    try {
      const broken = readFileSync(COMPOSE_FILE, 'utf8').replace(/^ {2}redis:\n/m, '  redis:\n    no_such_option: true\n');
      const file = join(dir, 'docker-compose.yml');
      await writeFile(file, broken);
      await assert.rejects(run('docker-compose', ['-f', file, 'config', '-q'], { cwd: dir, env: cleanEnv() }), /no_such_option/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('has every service of the stack', function () {
    assert.deepEqual(Object.keys(model.services).sort(), [...SERVICES].sort());
  });

  it('gives every stateful service a named volume and every long-running one a health check', function () {
    for (const [name, path] of Object.entries(STATEFUL)) {
      const mount = mountAt(model.services[name], path);
      assert.ok(mount?.named, `${name} keeps ${path} in a named volume`);
      assert.ok(mount && model.volumes && mount.source in model.volumes, `${name}'s volume ${mount?.source} is declared`);
    }
    for (const [name, service] of Object.entries(model.services)) {
      if (name === 'migrate') continue; // one-shot: its exit code is its health
      assert.ok(service.healthcheck?.test, `${name} has a health check`);
    }
  });

  it('runs Redis with AOF (fsync every second) and PostgreSQL with TimescaleDB', function () {
    const redis = model.services.redis;
    const command = ([] as string[]).concat(redis.command ?? []).join(' ');
    assert.match(command, /--appendonly yes/);
    assert.match(command, /--appendfsync everysec/);
    assert.match(JSON.stringify(redis.healthcheck?.test), /redis-cli ping/);
    const postgres = model.services.postgres;
    assert.match(postgres.image ?? '', /^timescale\/timescaledb:.*pg15/);
    assert.deepEqual(
      { user: postgres.environment?.POSTGRES_USER, password: postgres.environment?.POSTGRES_PASSWORD, db: postgres.environment?.POSTGRES_DB },
      { user: 'mdp', password: 'mdp', db: 'mdp' },
    );
    assert.match(JSON.stringify(postgres.healthcheck?.test), /pg_isready/);
  });

  it('runs Temporal on the postgres service, and its Web UI against it', function () {
    const temporal = model.services.temporal;
    assert.match(temporal.image ?? '', /^temporalio\/auto-setup:/);
    assert.equal(temporal.environment?.POSTGRES_SEEDS, 'postgres');
    assert.equal(temporal.environment?.POSTGRES_USER, model.services.postgres.environment?.POSTGRES_USER);
    assert.equal(temporal.environment?.POSTGRES_PWD, model.services.postgres.environment?.POSTGRES_PASSWORD);
    assert.equal(temporal.depends_on?.postgres?.condition, 'service_healthy');
    assert.match(JSON.stringify(temporal.healthcheck?.test), /namespace describe/);
    const ui = model.services['temporal-ui'];
    assert.match(ui.image ?? '', /^temporalio\/ui:/);
    assert.equal(ui.environment?.TEMPORAL_ADDRESS, 'temporal:7233');
    assert.ok(
      (ui.ports ?? []).some((p) => p.includes(':8233:8080')),
      'Web UI on host port 8233',
    );
  });

  it('starts the workers from the Dockerfile once Redis, PostgreSQL and Temporal are healthy and the store is migrated', function () {
    const worker = model.services.worker;
    assert.equal(worker.build?.dockerfile, 'Dockerfile');
    assert.equal(resolve(worker.build?.context ?? ''), resolve(REPO_ROOT));
    for (const dependency of ['redis', 'postgres', 'temporal']) {
      assert.equal(worker.depends_on?.[dependency]?.condition, 'service_healthy', `worker waits for ${dependency}`);
    }
    assert.equal(worker.depends_on?.migrate?.condition, 'service_completed_successfully');
    const migrate = model.services.migrate;
    assert.equal(migrate.image, worker.image, 'migrate runs the worker image');
    assert.deepEqual(migrate.command, ['node', 'dist/store/migrate-cli.js']);
    assert.equal(migrate.environment?.STORE_URL, worker.environment?.STORE_URL);
    assert.match(JSON.stringify(worker.healthcheck?.test), /\/healthz/);
    assert.deepEqual(
      worker.environment && {
        REDIS_URI: worker.environment.REDIS_URI,
        STORE_URL: worker.environment.STORE_URL,
        TEMPORAL_ADDRESS: worker.environment.TEMPORAL_ADDRESS,
        MDP_METRICS_PORT: worker.environment.MDP_METRICS_PORT,
      },
      {
        REDIS_URI: 'redis://redis:6379/0',
        STORE_URL: 'postgres://mdp:mdp@postgres:5432/mdp',
        TEMPORAL_ADDRESS: 'temporal:7233',
        MDP_METRICS_PORT: '9101',
      },
    );
  });

  it('has a second worker service for a rollout (profile rollout), a manual-rollout version with its own build id', function () {
    const worker = model.services.worker;
    const next = model.services['worker-next'];
    assert.deepEqual(next.profiles, ['rollout']);
    assert.equal(next.image, 'mdp:next');
    assert.deepEqual(next.command, worker.command);
    assert.equal(worker.environment?.MDP_ROLLOUT, 'manual', 'compose workers never promote themselves');
    assert.equal(next.environment?.MDP_ROLLOUT, 'manual');
    assert.deepEqual(next.depends_on, worker.depends_on);
  });

  it('gives the workers a config that serves /metrics on all interfaces and otherwise matches configs/streaming.yaml', function () {
    const worker = model.services.worker;
    const command = [...(worker.command as string[])];
    assert.deepEqual(command.slice(0, 3), ['node', 'dist/workers/worker.js', '--config']);
    const inContainer = command[3];
    const mount = mountAt(worker, `/app/${inContainer}`);
    assert.ok(mount && mount.readOnly, `the worker's --config ${inContainer} is mounted read-only`);
    assert.equal(resolve(mount.source), resolve(REPO_ROOT, inContainer));

    // Loaded exactly as in the container: its file, the service's environment.
    const env = Object.fromEntries(Object.entries(worker.environment ?? {}).map(([k, v]) => [k, v ?? '']));
    const compose = loadStreamingConfig({ file: mount.source, env });
    assert.equal(compose.telemetry.metrics_host, '0.0.0.0');
    assert.equal(compose.telemetry.metrics_port, 9101);
    assert.equal(compose.bus.redis.uri, 'redis://redis:6379/0');
    assert.equal(compose.store.url, 'postgres://mdp:mdp@postgres:5432/mdp');
    assert.equal(compose.temporal.address, 'temporal:7233');
    // Without the service's environment its defaults still name the compose services.
    const defaults = loadStreamingConfig({ file: mount.source, env: {} });
    assert.deepEqual(
      [defaults.bus.redis.uri, defaults.store.url, defaults.temporal.address],
      ['redis://redis:6379/0', 'postgres://mdp:mdp@postgres:5432/mdp', 'temporal:7233'],
    );
    // Every other key as shipped (a change to configs/streaming.yaml must reach the containers too).
    const shipped = loadStreamingConfig({ file: resolve(REPO_ROOT, 'configs/streaming.yaml'), env });
    assert.deepEqual(
      { ...compose, telemetry: { ...compose.telemetry, metrics_host: shipped.telemetry.metrics_host } },
      shipped,
      'deploy/streaming.compose.yaml differs from configs/streaming.yaml beyond metrics_host and the service URLs',
    );
  });

  it('has Prometheus scrape every worker container and load the SLA alerts', async function () {
    const prometheus = model.services.prometheus;
    const configs = mountAt(prometheus, '/etc/prometheus');
    assert.ok(configs?.readOnly, 'configs/prometheus is mounted at /etc/prometheus');
    assert.equal(resolve(configs.source), resolve(REPO_ROOT, 'configs/prometheus'));
    const flag = ([] as string[]).concat(prometheus.command ?? []).find((arg) => arg.startsWith('--config.file='));
    assert.ok(flag, 'prometheus runs with --config.file');
    const configPath = flag.slice('--config.file='.length);
    const configMount = mountsOf(prometheus).find((m) => m.target === configPath);
    assert.ok(configMount, `${configPath} is mounted`);

    interface PromConfig {
      rule_files: string[];
      scrape_configs: { job_name: string; dns_sd_configs?: { names: string[]; port: number }[]; static_configs?: { targets: string[] }[] }[];
    }
    const config = yaml.load(readFileSync(configMount.source, 'utf8')) as PromConfig;
    const job = config.scrape_configs.find((c) => c.job_name === 'mdp');
    assert.ok(job, 'the mdp job (the alerts select job="mdp")');
    const targets = [
      ...(job.dns_sd_configs ?? []).flatMap((sd) => sd.names.map((name) => `${name}:${sd.port}`)),
      ...(job.static_configs ?? []).flatMap((s) => s.targets),
    ];
    assert.deepEqual(targets, [`worker:${model.services.worker.environment?.MDP_METRICS_PORT}`]);
    // Rule files resolve inside the mounted configs/prometheus.
    assert.ok(config.rule_files.length > 0);
    const hostRules = config.rule_files.map((path) => {
      assert.ok(path.startsWith('/etc/prometheus/'), `${path} is under the mounted configs/prometheus`);
      return resolve(configs.source, path.slice('/etc/prometheus/'.length));
    });
    for (const file of hostRules) assert.ok(existsSync(file), `${file} exists`);

    if (!installed('promtool', ['--version'])) {
      console.warn('    promtool is not installed (bash scripts/install.sh installs it): skipping promtool check config');
      return;
    }
    const dir = await mkdtemp(join(tmpdir(), 'mdp-prom-'));
    try {
      const local = join(dir, 'prometheus.yml');
      await writeFile(local, readFileSync(configMount.source, 'utf8').replaceAll('/etc/prometheus/', `${configs.source}/`));
      const { stdout } = await run('promtool', ['check', 'config', local]);
      assert.match(stdout, /SUCCESS/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('provisions Grafana with the Prometheus datasource and the dashboards where the provisioning expects them', function () {
    const grafana = model.services.grafana;
    const provisioning = mountAt(grafana, '/etc/grafana/provisioning');
    assert.ok(provisioning?.readOnly);
    assert.equal(resolve(provisioning.source), resolve(REPO_ROOT, 'configs/grafana/provisioning'));
    const dashboards = mountsOf(grafana).find((m) => resolve(m.source) === resolve(REPO_ROOT, 'configs/grafana/dashboards'));
    assert.ok(dashboards?.readOnly, 'configs/grafana/dashboards is mounted');

    const providerDir = join(provisioning.source, 'dashboards');
    const paths = readdirSync(providerDir)
      .filter((f) => /\.ya?ml$/.test(f))
      .flatMap((f) =>
        ((yaml.load(readFileSync(join(providerDir, f), 'utf8')) as { providers?: { options?: { path?: string } }[] }).providers ?? []).map(
          (p) => p.options?.path,
        ),
      );
    assert.ok(paths.length > 0 && paths.every((p) => p === dashboards.target), `dashboard providers read ${paths.join(', ')}; mounted at ${dashboards.target}`);

    const datasourceDir = join(provisioning.source, 'datasources');
    const urls = readdirSync(datasourceDir)
      .filter((f) => /\.ya?ml$/.test(f))
      .flatMap((f) =>
        ((yaml.load(readFileSync(join(datasourceDir, f), 'utf8')) as { datasources?: { type?: string; url?: string }[] }).datasources ?? [])
          .filter((d) => d.type === 'prometheus')
          .map((d) => d.url),
      );
    assert.deepEqual(urls, ['http://prometheus:9090'], 'the datasource reaches the prometheus service');

    const home = grafana.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    if (home) assert.ok(existsSync(join(dashboards.source, home.slice(dashboards.target.length))), `home dashboard ${home} exists`);
  });

  it('mounts only files and folders that exist in the repository', function () {
    for (const [name, service] of Object.entries(model.services)) {
      for (const mount of mountsOf(service).filter((m) => !m.named)) {
        assert.ok(existsSync(mount.source), `${name}: ${mount.source} exists`);
      }
    }
  });

  describe('the worker health checks', function () {
    let server: Server;
    let port: number;

    before(async function () {
      server = await startMetricsServer(new Registry(), '127.0.0.1', 0);
      port = (server.address() as AddressInfo).port;
    });

    after(function () {
      server?.close();
    });

    it('compose: passes against a live /healthz and fails without one', async function () {
      const test = model.services.worker.healthcheck?.test as string[];
      assert.deepEqual(test.slice(0, 3), ['CMD', 'node', '-e']);
      const script = test[3];
      assert.match(script, /127\.0\.0\.1:9101\/healthz/);
      assert.equal(await healthcheckExit(script.replace(':9101/', `:${port}/`), {}), 0);
      assert.equal(await healthcheckExit(script.replace(':9101/', ':1/'), {}), 1);
    });

    it('Dockerfile: passes against a live /healthz on MDP_METRICS_PORT and fails without one', async function () {
      const dockerfile = readFileSync(resolve(REPO_ROOT, 'Dockerfile'), 'utf8');
      const cmd = /^HEALTHCHECK [^\n]*\\\n\s+CMD (\[.*\])$/m.exec(dockerfile);
      assert.ok(cmd, 'a HEALTHCHECK with an exec-form CMD');
      const [node, flag, script] = JSON.parse(cmd[1]) as string[];
      assert.deepEqual([node, flag], ['node', '-e']);
      assert.equal(await healthcheckExit(script, { MDP_METRICS_PORT: String(port) }), 0);
      assert.equal(await healthcheckExit(script, { MDP_METRICS_PORT: '1' }), 1);
    });
  });
});

describe('Dockerfile and .dockerignore', function () {
  const dockerfile = readFileSync(resolve(REPO_ROOT, 'Dockerfile'), 'utf8');
  const ignored = readFileSync(resolve(REPO_ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));

  it('builds on node:24-bookworm-slim in two stages and installs only production dependencies in the image', function () {
    assert.ok(instructions.includes('ARG NODE_IMAGE=node:24-bookworm-slim'));
    const stages = instructions.filter((l) => l.startsWith('FROM '));
    assert.deepEqual(stages, ['FROM ${NODE_IMAGE} AS build', 'FROM ${NODE_IMAGE} AS runtime']);
    const runtime = instructions.slice(instructions.indexOf('FROM ${NODE_IMAGE} AS runtime'));
    assert.ok(
      runtime.some((l) => /^RUN npm ci --omit=dev\b/.test(l)),
      'npm ci --omit=dev in the runtime stage',
    );
    assert.ok(runtime.some((l) => /^ENV .*ONNXRUNTIME_NODE_INSTALL=skip/.test(l)));
    assert.ok(
      instructions.some((l) => l === 'RUN npm run build'),
      'the build stage compiles',
    );
  });

  it('runs the worker as a non-root user', function () {
    const users = instructions.filter((l) => l.startsWith('USER '));
    assert.ok(users.length > 0 && !['root', '0'].includes(users.at(-1)!.slice(5).trim()));
    assert.equal(instructions.at(-1), 'CMD ["node", "dist/workers/worker.js", "--config", "configs/streaming.yaml"]');
  });

  it('copies only what exists and is not excluded by .dockerignore', function () {
    const sources = instructions.filter((l) => l.startsWith('COPY ') && !l.includes('--from=')).flatMap((l) => l.split(/\s+/).slice(1, -1));
    assert.ok(sources.length > 0);
    for (const source of sources) {
      assert.ok(existsSync(resolve(REPO_ROOT, source)), `${source} exists`);
      assert.ok(!ignored.includes(source) && !ignored.includes(source.replace(/\/$/, '')), `${source} is not in .dockerignore`);
    }
    for (const heavy of ['node_modules', 'dist', '.git', '.data', '.cache']) assert.ok(ignored.includes(heavy), `.dockerignore excludes ${heavy}`);
  });
});
