import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, deploymentNameOf, expandEnv, loadStreamingConfig, redactSecrets } from '../../pipeline/config/index.js';
import type { ConfigErrorCode, StreamingConfig } from '../../pipeline/config/index.js';

// dist/test/unit/ → repo root
const SHIPPED = fileURLToPath(new URL('../../../configs/streaming.yaml', import.meta.url));

/** Asserts `fn` throws a ConfigError with `code` and returns it for further checks. */
function configError(fn: () => unknown, code: ConfigErrorCode): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.name, 'ConfigError');
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('expandEnv', () => {
  it('expands ${VAR} and ${VAR:-default} for set, unset and empty variables', () => {
    const env = { SET: 'value', EMPTY: '' };
    assert.equal(expandEnv('a=${SET}', env), 'a=value');
    assert.equal(expandEnv('a=${UNSET}|', env), 'a=|');
    assert.equal(expandEnv('a=${EMPTY}|', env), 'a=|');
    assert.equal(expandEnv('a=${SET:-dflt}', env), 'a=value');
    assert.equal(expandEnv('a=${UNSET:-dflt}', env), 'a=dflt');
    assert.equal(expandEnv('a=${EMPTY:-dflt}', env), 'a=dflt');
    assert.equal(expandEnv('uri: ${UNSET:-redis://h:6379/0}', env), 'uri: redis://h:6379/0');
    assert.equal(expandEnv('${UNSET:-}x', env), 'x');
  });

  it('turns $$ into $ and leaves other dollars alone', () => {
    assert.equal(expandEnv('price: $$5 and $${SET}', { SET: 'x' }), 'price: $5 and ${SET}');
    assert.equal(expandEnv('cost $5, $NAME, end$', { NAME: 'x' }), 'cost $5, $NAME, end$');
  });

  it('reports an unterminated ${ with its line number', () => {
    const err = configError(() => expandEnv('a: 1\nb: 2\nc: ${OOPS\nd: 4\n', {}), 'CONFIG_PARSE');
    assert.equal(err.line, 3);
    assert.match(err.message, /line 3/);
    assert.match(err.message, /unterminated/);
    const bad = configError(() => expandEnv('x: ${1BAD}', {}), 'CONFIG_PARSE');
    assert.equal(bad.line, 1);
  });
});

describe('redactSecrets', () => {
  it('masks URL passwords and nothing else', () => {
    assert.equal(redactSecrets('redis://:secret@host:6379/0'), 'redis://:***@host:6379/0');
    assert.equal(redactSecrets('url postgres://mdp:pw@db:5432/mdp here'), 'url postgres://mdp:***@db:5432/mdp here');
    assert.equal(redactSecrets('"rediss://user:p@ss@host"'), '"rediss://user:***@host"');
    assert.equal(redactSecrets('redis://redis:6379/0'), 'redis://redis:6379/0');
    assert.equal(redactSecrets('postgres://mdp@db/mdp'), 'postgres://mdp@db/mdp');
  });
});

describe('loadStreamingConfig', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mdp-config-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  let fileCount = 0;
  /** Writes a YAML file into the temp dir and returns its path. */
  const yamlFile = (text: string): string => {
    const path = join(dir, `streaming-${++fileCount}.yaml`);
    writeFileSync(path, text);
    return path;
  };

  it('resolves replay.datasets_file written in a config file against that file, else against the working directory', () => {
    const sub = join(dir, 'nested');
    mkdirSync(sub, { recursive: true });
    const file = join(sub, 'streaming.yaml');
    writeFileSync(file, 'replay:\n  datasets_file: "catalog.yaml"\n');
    assert.equal(loadStreamingConfig({ file, env: {} }).replay.datasets_file, join(sub, 'catalog.yaml'));
    writeFileSync(file, 'replay:\n  datasets_file: "/srv/datasets.yaml"\n');
    assert.equal(loadStreamingConfig({ file, env: {} }).replay.datasets_file, '/srv/datasets.yaml');
    // Not named by the file: the default and overrides are the process's, relative to its cwd.
    writeFileSync(file, 'version: 1\n');
    assert.equal(loadStreamingConfig({ file, env: {} }).replay.datasets_file, resolve('configs/datasets.yaml'));
    assert.equal(loadStreamingConfig({ file, env: {}, overrides: { replay: { datasets_file: 'x.yaml' } } }).replay.datasets_file, resolve('x.yaml'));
    // The shipped config names the datasets file beside it.
    assert.equal(loadStreamingConfig({ file: SHIPPED, env: {} }).replay.datasets_file, join(dirname(SHIPPED), 'datasets.yaml'));
  });

  it('loads the shipped configs/streaming.yaml with the spec values', () => {
    const config: StreamingConfig = loadStreamingConfig({ file: SHIPPED, env: {} });
    assert.equal(config.version, 1);
    assert.equal(config.bus.type, 'redis');
    assert.equal(config.bus.redis.uri, 'redis://127.0.0.1:6379/0');
    assert.equal(config.bus.redis.stream, 'mdp.events');
    assert.equal(config.bus.redis.signals_stream, 'mdp.signals');
    assert.equal(config.bus.redis.consumer_group, 'mdp-consumers');
    assert.deepEqual(config.producers.synthetic.symbols, ['SPY', 'AAPL', 'MSFT']);
    assert.equal(config.producers.synthetic.tick_rate, 1);
    assert.equal(config.producers.synthetic.price_volatility, 0.02);
    assert.deepEqual(config.micro_batch, {
      window_ms: 2000,
      max_batch_size: 5000,
      max_buffered_events: 500_000,
      allow_late_ms: 500,
      flush_timeout_ms: 1000,
      max_future_ms: 5000,
    });
    assert.deepEqual(
      config.features.windows.map((w) => w.name),
      ['vwap_1m', 'ret_30s', 'vol_5m'],
    );
    assert.deepEqual(config.inference.adapters, {
      rules: { enabled: true, file: 'configs/rules.yaml', max_rules: 10_000, max_bytes: 2 * 1024 * 1024 },
      sklearn: { enabled: false, model_path: 'models/signal_model.onnx', timeout_ms: 200 },
    });
    assert.equal(config.telemetry.metrics_port, 9101);
    assert.equal(config.telemetry.log_level, 'INFO');
    assert.equal(config.bus.shards, 4);
    assert.equal(config.store.url, 'postgres://mdp:mdp@127.0.0.1:5432/mdp');
    assert.equal(config.temporal.address, '127.0.0.1:7233');
    assert.equal(config.temporal.task_queue, 'mdp-pipeline');
    assert.equal(config.recovery.interval, '5m', 'the recovery sweep is a safety net: every 5 minutes, not every minute');
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.features.windows[0]));
  });

  it('uses schema defaults when no file is given', () => {
    const config = loadStreamingConfig({ env: {} });
    assert.equal(config.bus.redis.uri, 'redis://127.0.0.1:6379/0');
    assert.equal(config.bus.redis.dlq_stream, 'mdp.dlq');
    assert.equal(config.bus.redis.late_stream, 'mdp.events.late');
    assert.equal(config.bus.redis.maxlen, 1_000_000);
    assert.equal(config.bus.max_deliveries, 5);
    assert.equal(config.producers.synthetic.seed, 42);
    assert.equal(config.producers.synthetic.provider, 'synthetic');
    assert.equal(config.temporal.namespace, 'default');
    assert.equal(config.recovery.interval, '5m');
    assert.equal(config.telemetry.metrics_host, '127.0.0.1');
    assert.equal(config.micro_batch.max_future_ms, 5000);
  });

  it('names what is wrong with a deployment name, build id or rollout', () => {
    const file = yamlFile('temporal:\n  deployment:\n    name: "my.fleet"\n');
    assert.throws(() => loadStreamingConfig({ file, env: {} }), /temporal\.deployment\.name.*Temporal joins name and build id/s);
    assert.throws(() => loadStreamingConfig({ file: yamlFile(''), env: { MDP_BUILD_ID: 'v 2' } }), /temporal\.deployment\.build_id/);
    assert.throws(() => loadStreamingConfig({ file: yamlFile(''), env: { MDP_ROLLOUT: 'sometimes' } }), /temporal\.deployment\.rollout.*auto, manual/s);
    const shipped = loadStreamingConfig({ file: SHIPPED, env: {} }).temporal.deployment;
    assert.deepEqual(shipped, { versioning: true, name: '', build_id: '', rollout: 'auto' });
    assert.equal(deploymentNameOf(loadStreamingConfig({ file: SHIPPED, env: {} })), 'mdp-pipeline');
    assert.equal(deploymentNameOf(loadStreamingConfig({ file: SHIPPED, env: { MDP_TASK_QUEUE: 'team.a/pipeline' } })), 'team-a-pipeline');
  });

  it('telemetry.log_format: auto by default, MDP_LOG_FORMAT sets it, a bad value names the key', () => {
    assert.equal(loadStreamingConfig({ file: SHIPPED, env: {} }).telemetry.log_format, 'auto');
    assert.equal(loadStreamingConfig({ file: SHIPPED, env: { MDP_LOG_FORMAT: 'json' } }).telemetry.log_format, 'json');
    assert.equal(loadStreamingConfig({ env: { MDP_LOG_FORMAT: 'pretty' } }).telemetry.log_format, 'pretty');
    assert.throws(() => loadStreamingConfig({ file: SHIPPED, env: { MDP_LOG_FORMAT: 'yaml' } }), /telemetry\.log_format.*auto, json, pretty/s);
  });

  it('store.copy_min_rows: 2000 shipped and by default, MDP_STORE_COPY_MIN_ROWS sets it (0 = never), a bad value names the key', () => {
    assert.equal(loadStreamingConfig({ file: SHIPPED, env: {} }).store.copy_min_rows, 2000);
    assert.equal(loadStreamingConfig({ env: {} }).store.copy_min_rows, 2000);
    assert.equal(loadStreamingConfig({ file: SHIPPED, env: { MDP_STORE_COPY_MIN_ROWS: '0' } }).store.copy_min_rows, 0);
    assert.equal(loadStreamingConfig({ env: { MDP_STORE_COPY_MIN_ROWS: '5000' } }).store.copy_min_rows, 5000);
    for (const bad of ['-1', 'many', '1.5']) {
      assert.throws(
        () => loadStreamingConfig({ file: SHIPPED, env: { MDP_STORE_COPY_MIN_ROWS: bad } }),
        new RegExp(`store\\.copy_min_rows.*${bad.replace('.', '\\.')}`, 's'),
      );
    }
  });

  it('expands ${VAR:-default} in the file for set, unset and empty variables', () => {
    const file = yamlFile('micro_batch:\n  window_ms: ${WIN_MS:-1000}\n');
    assert.equal(loadStreamingConfig({ file, env: {} }).micro_batch.window_ms, 1000);
    assert.equal(loadStreamingConfig({ file, env: { WIN_MS: '' } }).micro_batch.window_ms, 1000);
    assert.equal(loadStreamingConfig({ file, env: { WIN_MS: '3000' } }).micro_batch.window_ms, 3000);
    const shipped = loadStreamingConfig({ file: SHIPPED, env: { REDIS_URI: 'redis://10.0.0.5:6380/2' } });
    assert.equal(shipped.bus.redis.uri, 'redis://10.0.0.5:6380/2');
  });

  it('lets env-bound keys override the file, and overrides win over both', () => {
    const file = yamlFile('bus:\n  shards: 2\ntelemetry:\n  log_level: ERROR\n  metrics_port: 9200\n');
    const fromFile = loadStreamingConfig({ file, env: { MDP_SHARDS: '' } });
    assert.equal(fromFile.bus.shards, 2, 'an empty env var counts as unset');
    const env = {
      MDP_SHARDS: '6',
      LOG_LEVEL: 'debug',
      MDP_METRICS_PORT: '0',
      STORE_URL: 'postgresql://u:p@db:5432/x',
      TEMPORAL_ADDRESS: 'temporal:7233',
      TEMPORAL_NAMESPACE: 'mdp',
      MDP_TASK_QUEUE: 'q1',
      MDP_WORKER_VERSIONING: 'false',
      MDP_DEPLOYMENT_NAME: 'mdp-fleet',
      MDP_BUILD_ID: '1.2.3-abc',
      MDP_ROLLOUT: 'manual',
    };
    const fromEnv = loadStreamingConfig({ file, env });
    assert.equal(fromEnv.bus.shards, 6);
    assert.equal(fromEnv.telemetry.log_level, 'DEBUG');
    assert.equal(fromEnv.telemetry.metrics_port, 0);
    assert.equal(fromEnv.store.url, 'postgresql://u:p@db:5432/x');
    assert.deepEqual(fromEnv.temporal, {
      address: 'temporal:7233',
      namespace: 'mdp',
      task_queue: 'q1',
      deployment: { versioning: false, name: 'mdp-fleet', build_id: '1.2.3-abc', rollout: 'manual' },
    });
    const overridden = loadStreamingConfig({ file, env, overrides: { bus: { shards: 3 }, micro_batch: { window_ms: 1000 } } });
    assert.equal(overridden.bus.shards, 3);
    assert.equal(overridden.micro_batch.window_ms, 1000);
    assert.equal(overridden.telemetry.log_level, 'DEBUG');
  });

  it('rejects an out-of-range window_ms naming file, key and value', () => {
    const file = yamlFile('micro_batch:\n  window_ms: 10\n');
    const err = configError(() => loadStreamingConfig({ file, env: {} }), 'CONFIG_INVALID');
    assert.equal(err.message, `${file}: micro_batch.window_ms: must be an integer between 500 and 5000 (got 10)`);
    assert.equal(err.file, file);
    assert.equal(err.key, 'micro_batch.window_ms');
    assert.equal(err.value, 10);
  });

  it('rejects an unknown log_level, and says when the value came from the environment', () => {
    const file = yamlFile('telemetry:\n  log_level: LOUD\n');
    const err = configError(() => loadStreamingConfig({ file, env: {} }), 'CONFIG_INVALID');
    assert.equal(err.key, 'telemetry.log_level');
    assert.match(err.message, new RegExp(`^${file}: telemetry\\.log_level: must be one of DEBUG, INFO, WARNING, ERROR \\(got "LOUD"\\)$`));
    const fromEnv = configError(() => loadStreamingConfig({ file: SHIPPED, env: { LOG_LEVEL: 'verbose' } }), 'CONFIG_INVALID');
    assert.match(fromEnv.message, /telemetry\.log_level: .*\(got "verbose"\) \[from env LOG_LEVEL\]/);
  });

  it('rejects unknown keys (allowed: strict)', () => {
    const file = yamlFile('micro_batch:\n  window_ms: 2000\n  windw_ms: 1000\n');
    const err = configError(() => loadStreamingConfig({ file, env: {} }), 'CONFIG_INVALID');
    assert.equal(err.key, 'micro_batch.windw_ms');
    assert.equal(err.value, 1000);
    assert.equal(err.message, `${file}: micro_batch.windw_ms: is not a known key (got 1000)`);
  });

  it('reports every bad key at once', () => {
    const file = yamlFile('version: 2\nbus:\n  type: nats\nproducers:\n  synthetic:\n    symbols: ["SPY", "A|B"]\n    tick_rate: 0\n');
    const err = configError(() => loadStreamingConfig({ file, env: {} }), 'CONFIG_INVALID');
    assert.deepEqual(new Set(err.issues.map((i) => i.key)), new Set(['version', 'bus.type', 'producers.synthetic.symbols', 'producers.synthetic.tick_rate']));
    assert.equal(err.message.split('\n').length, 4);
    assert.match(err.message, /producers\.synthetic\.symbols: entry 1 .*"A\|B"/);
  });

  it("holds the synthetic provider and symbols to the event contract's field limits", () => {
    const file = yamlFile(`producers:\n  synthetic:\n    provider: "${'p'.repeat(65)}"\n    symbols: ["SPY", "${'S'.repeat(65)}"]\n`);
    const err = configError(() => loadStreamingConfig({ file, env: {} }), 'CONFIG_INVALID');
    assert.match(err.message, /producers\.synthetic\.provider: must be at most 64 characters, the event contract's limit \(got 65\)/);
    assert.match(err.message, /producers\.synthetic\.symbols: entry 1 must be at most 64 characters/);
    const ok = loadStreamingConfig({
      file: yamlFile(`producers:\n  synthetic:\n    provider: "${'p'.repeat(64)}"\n    symbols: ["${'S'.repeat(64)}"]\n`),
      env: {},
    });
    assert.equal(ok.producers.synthetic.symbols[0].length, 64);
  });

  it('reports a section replaced by a scalar once, and cross-key rules', () => {
    const err = configError(() => loadStreamingConfig({ env: {}, overrides: { bus: { redis: 'x' as never } } }), 'CONFIG_INVALID');
    assert.equal(err.message, 'config: bus.redis: must be a mapping of keys (got "x") [from overrides]');
    const sk = configError(() => loadStreamingConfig({ env: {}, overrides: { inference: { adapters: { sklearn: { enabled: true } } } } }), 'CONFIG_INVALID');
    assert.equal(sk.key, 'inference.adapters.sklearn.model_path');
  });

  it('rejects bad YAML naming the file and line', () => {
    const file = yamlFile('bus:\n  type: redis\n  redis: [unclosed\nmicro_batch:\n  window_ms: 2000\n');
    const err = configError(() => loadStreamingConfig({ file, env: {} }), 'CONFIG_PARSE');
    assert.ok(err.line !== undefined && err.line >= 3, `line ${err.line}`);
    assert.ok(err.message.startsWith(`${file}: line ${err.line}, column `), err.message);
    const top = configError(() => loadStreamingConfig({ file: yamlFile('- a\n- b\n'), env: {} }), 'CONFIG_PARSE');
    assert.match(top.message, /top level must be a mapping/);
    const unterminated = configError(() => loadStreamingConfig({ file: yamlFile('version: 1\nbus:\n  shards: ${MDP_SHARDS:-4\n'), env: {} }), 'CONFIG_PARSE');
    assert.equal(unterminated.line, 3);
    assert.ok(unterminated.message.startsWith(`${unterminated.file}: line 3`));
  });

  it('reports a missing file', () => {
    const file = join(dir, 'does-not-exist.yaml');
    const err = configError(() => loadStreamingConfig({ file, env: {} }), 'CONFIG_FILE_NOT_FOUND');
    assert.equal(err.file, file);
    assert.ok(err.message.startsWith(`${file}: config file not found`));
  });

  it('masks passwords of URLs quoted in errors', () => {
    const err = configError(() => loadStreamingConfig({ file: SHIPPED, env: { REDIS_URI: 'http://:secret@cache:6379' } }), 'CONFIG_INVALID');
    assert.equal(err.key, 'bus.redis.uri');
    assert.ok(!err.message.includes('secret'), err.message);
    assert.match(
      err.message,
      /bus\.redis\.uri: must be a redis:\/\/ or rediss:\/\/ URL with a host \(got "http:\/\/:\*\*\*@cache:6379"\) \[from env REDIS_URI\]/,
    );
    assert.equal(err.value, 'http://:***@cache:6379');
    assert.ok(!JSON.stringify(err.issues).includes('secret'));
    const store = configError(() => loadStreamingConfig({ env: { STORE_URL: 'mysql://mdp:hunter2@db/mdp' } }), 'CONFIG_INVALID');
    assert.ok(!store.message.includes('hunter2'), store.message);
  });

  it('masks URL passwords with unencoded reserved characters, spaces or any length in errors', () => {
    const cases: Array<[string, string, string]> = [
      ['STORE_URL', 'postgres://mdp:pa/ss@host:5432/mdp', 'postgres://mdp:***@host:5432/mdp'],
      ['STORE_URL', 'postgres://u:p@ss:w/rd@h/db', 'postgres://u:***@h/db'],
      ['STORE_URL', 'postgres://mdp:p@ss w#rd@db:5432/mdp', 'postgres://mdp:***@db:5432/mdp'],
      ['REDIS_URI', 'redis://:se/cr#et@127.0.0.1:6379/0', 'redis://:***@127.0.0.1:6379/0'],
      ['REDIS_URI', 'redis://:a?b"c@127.0.0.1:6379/0', 'redis://:***@127.0.0.1:6379/0'],
    ];
    for (const [envVar, url, masked] of cases) {
      const err = configError(() => loadStreamingConfig({ env: { [envVar]: url } }), 'CONFIG_INVALID');
      const secret = url.slice(url.indexOf(':', url.indexOf('//')) + 1, url.lastIndexOf('@'));
      for (const text of [err.message, JSON.stringify(err.value), JSON.stringify(err.issues)]) {
        assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
      }
      assert.ok(err.message.includes(`(got ${JSON.stringify(masked)})`), err.message);
      assert.equal(err.value, masked);
    }
    // A value too long for the message is cut after masking, so no prefix of the password survives.
    const long = `postgres://mdp:${'x/'.repeat(80)}@host:5432/mdp`;
    const err = configError(() => loadStreamingConfig({ env: { STORE_URL: long } }), 'CONFIG_INVALID');
    assert.ok(!err.message.includes('x/x/'), err.message);
    assert.match(err.message, /\(got "postgres:\/\/mdp:\*\*\*@host:5432\/mdp"\)/);
  });
});
