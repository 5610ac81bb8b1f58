import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import convict from 'convict';
import { CORE_SCHEMA, YAMLException, load as parseYaml } from 'js-yaml';
import { EVENT_FIELD_LIMITS, parseDurationMs } from '../contracts/index.js';
import { ConfigError, redactValue } from './config-error.js';
import type { ConfigIssue } from './config-error.js';
import { expandEnv } from './expand-env.js';
import { DEFAULT_MAX_RULES, DEFAULT_MAX_RULES_BYTES } from '../inference/rules/index.js';
import { BUS_ENCODINGS } from '../bus/event-codec.js';
import type { BusEncoding } from '../bus/event-codec.js';
import { LOG_FORMAT_SETTINGS, LOG_LEVELS } from '../telemetry/index.js';
import type { LogFormatSetting, LogLevel } from '../telemetry/index.js';

// One list of log levels: the logger's (the config only validates against it).
export { LOG_LEVELS };
export type { LogLevel };

export const BUS_TYPES = ['redis', 'kafka'] as const;
export type BusType = (typeof BUS_TYPES)[number];

/** `bus.redis`: the Redis Streams bus. */
export interface RedisBusConfig {
  /** `redis://` or `rediss://` URL (env `REDIS_URI`). */
  readonly uri: string;
  /** Event stream base name; shard `n` is `<stream>.<n>`. */
  readonly stream: string;
  readonly signals_stream: string;
  readonly consumer_group: string;
  /**
   * Retention bound per stream, in entries: the most a stream should hold for its consumer groups.
   * Streams are trimmed only below what every group acknowledged; producers wait while a group's
   * unacknowledged backlog is at 90% of it; a stream no group reads is capped at it (`MAXLEN ~`).
   */
  readonly maxlen: number;
  /** Dead-letter stream for invalid or over-delivered messages. */
  readonly dlq_stream: string;
  /** Stream for events that arrive after their window flushed. */
  readonly late_stream: string;
  /** Feature snapshot stream base name; shard `n` is `<features_stream>.<n>`. */
  readonly features_stream: string;
  /** Consumer group of the inference consumers on the features streams. */
  readonly inference_group: string;
  /**
   * Most consecutive events of one shard stream a producer puts in one entry (a frame); 1 = one
   * event per entry. Readers take frames whatever this says. `maxlen` counts entries, so a stream
   * can then hold up to `maxlen × frame_events` events.
   */
  readonly frame_events: number;
}

/** The stream (topic) and consumer group names of a bus: the same keys under `bus.redis` and `bus.kafka`. */
export type BusNames = Pick<
  RedisBusConfig,
  'stream' | 'signals_stream' | 'consumer_group' | 'dlq_stream' | 'late_stream' | 'features_stream' | 'inference_group'
>;

/**
 * `bus.kafka`: the Kafka bus. A sharded stream (`stream`, `features_stream`) is one topic with
 * `bus.shards` partitions, shard n being partition n; the others are one-partition topics.
 */
export interface KafkaBusConfig extends BusNames {
  /** Bootstrap brokers, `host:port` (env `KAFKA_BROKERS`, comma-separated). */
  readonly brokers: readonly string[];
  readonly client_id: string;
  /** Replication factor of the topics mdp creates (1 for a single broker; 3 in production). */
  readonly replication_factor: number;
  /** `retention.ms` of the topics mdp creates, as a duration: Kafka deletes older records, read or not. */
  readonly retention: string;
  /** Most records a consumer group may have unconsumed on a partition: producers wait at 90% of it. */
  readonly max_backlog: number;
}

/** `bus`: which bus, how many shards, and redelivery limits. */
export interface BusConfig {
  readonly type: BusType;
  /** Event streams per role; shard = hash(provider|symbol) % shards (env `MDP_SHARDS`). */
  readonly shards: number;
  /** A message delivered more often than this goes to the DLQ. */
  readonly max_deliveries: number;
  /** How producers encode events (env `MDP_BUS_ENCODING`); every entry says its own, so readers take both. */
  readonly encoding: BusEncoding;
  readonly redis: RedisBusConfig;
  readonly kafka: KafkaBusConfig;
}

/** `producers.synthetic`: the seeded synthetic tick source. */
export interface SyntheticProducerConfig {
  readonly enabled: boolean;
  readonly provider: string;
  readonly symbols: readonly string[];
  /** Ticks per second per symbol. */
  readonly tick_rate: number;
  /** Annualized sigma of the price walk (over 252 × 6.5 h trading years). */
  readonly price_volatility: number;
  readonly seed: number;
}

/** One contract of `producers.ibkr.contracts`, as IB names it (`Contract`). */
export interface IbkrContractConfig {
  readonly symbol: string;
  /** `STK`, `FUT`, `CASH`, `IND`, … (IB's secType). */
  readonly sec_type: string;
  readonly exchange: string;
  readonly currency: string;
  /** IB's primaryExch, to tell SMART-routed stocks apart (e.g. `ARCA` for SPY). */
  readonly primary_exchange?: string;
}

/**
 * `producers.ibkr.pacing`: IB's published API limits, enforced before every request (requests wait
 * rather than violate). Defaults are IB's: 50 messages/s client→TWS; historical data: 50
 * simultaneous open requests, no identical request within 15 s, no 6 or more requests for the same
 * contract, exchange and tick type within 2 s, at most 60 requests in any 10 minutes.
 */
export interface IbkrPacingConfig {
  readonly enabled: boolean;
  readonly messages_per_second: number;
  readonly historical_max_open: number;
  readonly historical_identical_ms: number;
  /** At most this many requests for one contract, exchange and tick type within `historical_same_contract_ms`. */
  readonly historical_same_contract_max: number;
  readonly historical_same_contract_ms: number;
  /** At most this many historical requests in any `historical_window_ms` (BID_ASK counts twice). */
  readonly historical_window_max: number;
  readonly historical_window_ms: number;
}

/** `producers.ibkr`: Interactive Brokers through a TWS or IB Gateway next to mdp. */
export interface IbkrProducerConfig {
  readonly enabled: boolean;
  /** Provider name on its events. */
  readonly provider: string;
  readonly host: string;
  /** TWS 7497 (paper) / 7496 (live), IB Gateway 4002 / 4001. */
  readonly port: number;
  readonly client_id: number;
  readonly contracts: readonly IbkrContractConfig[];
  /** `trades`: tick-by-tick AllLast; `bars`: 5-second real-time bars; `both`. */
  readonly data: 'trades' | 'bars' | 'both';
  /** Market data lines the account has: subscriptions beyond it are refused, and named. */
  readonly market_data_lines: number;
  /** Reconnect backoff after a disconnect: first wait, doubling up to the max. */
  readonly reconnect_initial_ms: number;
  readonly reconnect_max_ms: number;
  readonly pacing: IbkrPacingConfig;
  /** `mdp dataset fetch ibkr` creates new datasets under this directory (and registers them in `replay.datasets_file`). */
  readonly backfill_dir: string;
  /** API client id of a worker's historical (backfill) connection; must differ from `client_id` (one TWS refuses a second connection with the same id). */
  readonly backfill_client_id: number;
}

/** `micro_batch`: event-time tumbling windows. */
export interface MicroBatchConfig {
  readonly window_ms: number;
  readonly max_batch_size: number;
  /** Most events a shard buffers in open windows before cutting the oldest (memory bound). */
  readonly max_buffered_events: number;
  readonly allow_late_ms: number;
  readonly flush_timeout_ms: number;
  /** An event whose src_ts is further ahead of the consumer's wall clock goes to the DLQ (`future_event`). */
  readonly max_future_ms: number;
}

/** One entry of `features.windows`; `horizon` is a duration such as `60s` (see `parseDurationMs`). */
export interface FeatureWindowConfig {
  readonly name: string;
  readonly horizon: string;
}

/** `inference.adapters`. */
export interface InferenceAdaptersConfig {
  /** `max_rules`/`max_bytes` bound how long loading the file holds the worker's event loop. */
  readonly rules: { readonly enabled: boolean; readonly file: string; readonly max_rules: number; readonly max_bytes: number };
  readonly sklearn: { readonly enabled: boolean; readonly model_path: string; readonly timeout_ms: number };
}

/** `temporal`: where workers and the CLI find Temporal. */
export interface TemporalConfig {
  /** `host:port` (env `TEMPORAL_ADDRESS`). */
  readonly address: string;
  /** Env `TEMPORAL_NAMESPACE`. */
  readonly namespace: string;
  /** Env `MDP_TASK_QUEUE`. */
  readonly task_queue: string;
  readonly deployment: DeploymentConfig;
}

/** How a worker chooses when its version starts taking work (`temporal.deployment.rollout`). */
export const ROLLOUTS = ['auto', 'manual'] as const;
export type Rollout = (typeof ROLLOUTS)[number];

/** `temporal.deployment`: the Temporal Worker Deployment a worker is a version of. */
export interface DeploymentConfig {
  /** Worker Deployment versioning on (env `MDP_WORKER_VERSIONING`); off = unversioned workers. */
  readonly versioning: boolean;
  /**
   * Deployment name, shared by every version of this fleet (env `MDP_DEPLOYMENT_NAME`); empty = the
   * task queue's name ({@link deploymentNameOf}): one deployment per pipeline, since a version made
   * current routes every task queue it polls, and two pipelines in one namespace must not share one.
   */
  readonly name: string;
  /** This build's id (env `MDP_BUILD_ID`); empty = `<package version>-<hash of the compiled code>` (see workers/build-id.ts). */
  readonly build_id: string;
  /**
   * `auto`: a starting worker makes its version current and hands the running consumers over to it
   * (one box, `mdp up`); `manual`: it only registers, and `mdp deploy promote|ramp` moves work to it
   * (a fleet). Either way the first version of a deployment becomes current. Env `MDP_ROLLOUT`.
   */
  readonly rollout: Rollout;
}

/** `replay`: historical replays (`mdp stream replay`, `replayWorkflow`). */
export interface ReplayConfig {
  /**
   * Catalog of named datasets, absolute once loaded: as written in a config file, relative to that
   * file (`datasets.yaml` beside `configs/streaming.yaml`); from env, overrides or the default
   * (`configs/datasets.yaml`), relative to the working directory.
   */
  readonly datasets_file: string;
  /** Base name of a replay's own streams: `<stream>.<workflow id>.<chunk start ms>`. */
  readonly stream: string;
  /** Default chunk length, a duration such as `15m` (rounded up to a multiple of `micro_batch.window_ms`). */
  readonly chunk_span: string;
}

/** `recovery`: the pending-entry sweep (`consumerRecoveryWorkflow`, `mdp stream recover`). */
export interface RecoveryConfig {
  /**
   * How often the `mdp-recovery` Temporal Schedule runs the sweep, a duration such as `5m` (the
   * default): a safety net, since each shard's owner re-reads its own pending entries on restart.
   */
  readonly interval: string;
  /** Pending entries idle at least this long (ms) and held by a consumer other than the shard's owner are claimed or dead-lettered. */
  readonly min_idle_ms: number;
}

/** `telemetry`. */
export interface TelemetryConfig {
  /** Env `MDP_METRICS_PORT`. */
  readonly metrics_port: number;
  readonly metrics_host: string;
  /** Upper-cased on load (env `LOG_LEVEL`, any case). */
  readonly log_level: LogLevel;
  /** `auto` (pretty and coloured on a terminal, JSON otherwise), `json` or `pretty`; env `MDP_LOG_FORMAT`. */
  readonly log_format: LogFormatSetting;
}

export interface StoreConfig {
  /** PostgreSQL URL (env `STORE_URL`). */
  readonly url: string;
  /** A flush of at least this many bars is written with COPY into a staging table (0 = never; env `MDP_STORE_COPY_MIN_ROWS`). */
  readonly copy_min_rows: number;
}

/**
 * The validated `configs/streaming.yaml` (spec §4.2 plus mdp's own keys). Key names are the YAML
 * names. Objects returned by {@link loadStreamingConfig} are deeply frozen.
 */
export interface StreamingConfig {
  readonly version: 1;
  readonly bus: BusConfig;
  readonly producers: { readonly synthetic: SyntheticProducerConfig; readonly ibkr: IbkrProducerConfig };
  readonly micro_batch: MicroBatchConfig;
  readonly features: { readonly windows: readonly FeatureWindowConfig[] };
  readonly inference: { readonly adapters: InferenceAdaptersConfig };
  readonly store: StoreConfig;
  readonly temporal: TemporalConfig;
  readonly telemetry: TelemetryConfig;
  readonly replay: ReplayConfig;
  readonly recovery: RecoveryConfig;
}

type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { readonly [K in keyof T]?: DeepPartial<T[K]> } : T;

/** Values that win over both the file and the environment, e.g. from CLI flags. */
export type StreamingConfigOverrides = DeepPartial<StreamingConfig>;

export interface LoadStreamingConfigOptions {
  /** YAML file to read; without it the schema defaults (plus env and overrides) are used. */
  readonly file?: string | undefined;
  /** The environment, for `${VAR}` expansion and env-bound keys; pass `process.env` from an entrypoint. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly overrides?: StreamingConfigOverrides | undefined;
}

// ---------------------------------------------------------------------------------------------
// Formats. convict keeps formats in one process-wide registry; the `mdp-` prefix keeps ours apart.
// A validator throws an Error whose message is the reason; coercers only see strings (env values,
// quoted YAML) and return them unchanged when they do not parse, so the validator reports them.

interface RangeSpec {
  readonly min?: number;
  readonly max?: number;
  readonly exclusiveMin?: number;
}

function fail(reason: string): never {
  throw new Error(reason);
}

function rangeText(spec: RangeSpec): string {
  if (spec.min !== undefined && spec.max !== undefined) return ` between ${spec.min} and ${spec.max}`;
  if (spec.exclusiveMin !== undefined) return ` > ${spec.exclusiveMin}`;
  if (spec.min !== undefined) return ` >= ${spec.min}`;
  return '';
}

function inRange(x: number, spec: RangeSpec): boolean {
  return (spec.min === undefined || x >= spec.min) && (spec.max === undefined || x <= spec.max) && (spec.exclusiveMin === undefined || x > spec.exclusiveMin);
}

const INT_TEXT = /^\s*[+-]?\d+\s*$/;
const NUMBER_TEXT = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$/;
const HOST_PORT = /^(?:\[[0-9A-Fa-f:.]+\]|[^\s:/[\]]+):(\d{1,5})$/;

function checkName(x: unknown): asserts x is string {
  if (typeof x !== 'string' || x.trim() === '' || /\s/.test(x)) fail('must be a non-empty string without spaces');
}

function checkUrl(x: unknown, protocols: readonly string[]): void {
  const expected = `must be a ${protocols.map((p) => `${p}//`).join(' or ')} URL with a host`;
  if (typeof x !== 'string') fail(expected);
  let url: URL;
  try {
    url = new URL(x);
  } catch {
    return fail(expected);
  }
  if (!protocols.includes(url.protocol) || url.hostname === '') fail(expected);
}

const FORMATS: Record<string, convict.Format> = {
  'mdp-int': {
    validate(x: unknown, schema: convict.SchemaObj & RangeSpec) {
      if (!Number.isSafeInteger(x) || !inRange(x as number, schema)) fail(`must be an integer${rangeText(schema)}`);
    },
    coerce: (x: string) => (INT_TEXT.test(x) ? Number(x) : x),
  },
  'mdp-number': {
    validate(x: unknown, schema: convict.SchemaObj & RangeSpec) {
      if (typeof x !== 'number' || !Number.isFinite(x) || !inRange(x, schema)) fail(`must be a number${rangeText(schema)}`);
    },
    coerce: (x: string) => (NUMBER_TEXT.test(x) ? Number(x) : x),
  },
  'mdp-boolean': {
    validate(x: unknown) {
      if (typeof x !== 'boolean') fail('must be true or false');
    },
    coerce: (x: string) => {
      const lower = x.trim().toLowerCase();
      return lower === 'true' ? true : lower === 'false' ? false : x;
    },
  },
  'mdp-choice': {
    validate(x: unknown, schema: convict.SchemaObj & { choices: readonly string[] }) {
      if (typeof x !== 'string' || !schema.choices.includes(x)) fail(`must be one of ${schema.choices.join(', ')}`);
    },
  },
  'mdp-log-level': {
    validate(x: unknown) {
      if (typeof x !== 'string' || !(LOG_LEVELS as readonly string[]).includes(x)) fail(`must be one of ${LOG_LEVELS.join(', ')}`);
    },
    coerce: (x: string) => x.trim().toUpperCase(),
  },
  'mdp-version': {
    validate(x: unknown) {
      if (x !== 1) fail('must be 1 (the only config version this build reads)');
    },
    coerce: (x: string) => (INT_TEXT.test(x) ? Number(x) : x),
  },
  'mdp-name': { validate: checkName },
  'mdp-deployment-name': {
    validate(x: unknown) {
      if (typeof x !== 'string' || (x !== '' && !/^[A-Za-z0-9_-]{1,100}$/.test(x)))
        fail('must be empty (the task queue name) or letters, digits, "_" and "-" only (Temporal joins name and build id with ".")');
    },
  },
  'mdp-build-id': {
    validate(x: unknown) {
      if (typeof x !== 'string' || (x !== '' && !/^[A-Za-z0-9._+-]{1,200}$/.test(x)))
        fail('must be empty or letters, digits, ".", "_", "+" and "-" (at most 200)');
    },
  },
  'mdp-topic': {
    validate(x: unknown) {
      checkName(x);
      if (typeof x === 'string' && !/^[A-Za-z0-9._-]{1,200}$/.test(x))
        fail('must be a Kafka topic or group name: letters, digits, ".", "_" and "-" only (at most 200)');
    },
  },
  'mdp-brokers': {
    validate(x: unknown) {
      if (!Array.isArray(x) || x.length === 0) fail('must be a non-empty list of host:port');
      x.forEach((broker: unknown, i) => {
        const m = typeof broker === 'string' ? HOST_PORT.exec(broker) : null;
        const port = m ? Number(m[1]) : 0;
        if (port < 1 || port > 65535) fail(`entry ${i} must be host:port with a port between 1 and 65535 (got ${JSON.stringify(broker)})`);
      });
    },
    // From an env var or a CLI flag: `127.0.0.1:9092,127.0.0.1:9094`.
    coerce: (x: string) => x.split(',').map((s) => s.trim()),
  },
  'mdp-key-part': {
    validate(x: unknown) {
      if (typeof x !== 'string' || x.trim() === '' || /[\s|]/.test(x)) fail('must be a non-empty string without spaces or "|"');
      if (x.length > EVENT_FIELD_LIMITS.provider)
        fail(`must be at most ${EVENT_FIELD_LIMITS.provider} characters, the event contract's limit (got ${x.length})`);
    },
  },
  'mdp-duration': {
    validate(x: unknown) {
      const ms = typeof x === 'string' ? parseDurationMs(x) : undefined;
      if (ms === undefined || ms <= 0) fail('must be a duration such as "15m", "30s" or "1h"');
    },
  },
  'mdp-path': {
    validate(x: unknown) {
      if (typeof x !== 'string') fail('must be a string (a file path, or "" for none)');
    },
  },
  'mdp-url': {
    validate(x: unknown, schema: convict.SchemaObj & { protocols: readonly string[] }) {
      checkUrl(x, schema.protocols);
    },
  },
  'mdp-host-port': {
    validate(x: unknown) {
      const m = typeof x === 'string' ? HOST_PORT.exec(x) : null;
      const port = m ? Number(m[1]) : 0;
      if (port < 1 || port > 65535) fail('must be host:port with a port between 1 and 65535');
    },
  },
  'mdp-symbols': {
    validate(x: unknown) {
      if (!Array.isArray(x) || x.length === 0) fail('must be a non-empty list of symbols');
      const seen = new Set<string>();
      x.forEach((symbol: unknown, i) => {
        if (typeof symbol !== 'string' || symbol.trim() === '' || /[\s|]/.test(symbol)) {
          fail(`entry ${i} must be a non-empty string without spaces or "|" (got ${JSON.stringify(symbol)})`);
        }
        if (symbol.length > EVENT_FIELD_LIMITS.symbol) {
          fail(`entry ${i} must be at most ${EVENT_FIELD_LIMITS.symbol} characters, the event contract's limit (got ${symbol.length})`);
        }
        if (seen.has(symbol)) fail(`entry ${i} repeats ${JSON.stringify(symbol)}`);
        seen.add(symbol);
      });
    },
    // From an env var or a CLI flag: `SPY,AAPL`.
    coerce: (x: string) => x.split(',').map((s) => s.trim()),
  },
  'mdp-ibkr-contracts': {
    validate(x: unknown) {
      if (!Array.isArray(x)) fail('must be a list of { symbol, sec_type, exchange, currency, primary_exchange }');
      const keys = ['symbol', 'sec_type', 'exchange', 'currency', 'primary_exchange'];
      const seen = new Set<string>();
      x.forEach((entry: unknown, i) => {
        if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail(`entry ${i} must be a mapping { symbol, sec_type, exchange, currency }`);
        const c = entry as Record<string, unknown>;
        const extra = Object.keys(c).filter((k) => !keys.includes(k));
        if (extra.length > 0) fail(`entry ${i} has unknown key ${JSON.stringify(extra[0])} (allowed: ${keys.join(', ')})`);
        for (const k of keys.slice(0, 4)) {
          if (typeof c[k] !== 'string' || c[k].trim() === '' || /[\s|]/.test(c[k])) fail(`entry ${i}: ${k} must be a non-empty string without spaces or "|"`);
        }
        if (c.primary_exchange !== undefined && typeof c.primary_exchange !== 'string') fail(`entry ${i}: primary_exchange must be a string`);
        if ((c.symbol as string).length > EVENT_FIELD_LIMITS.symbol) fail(`entry ${i}: symbol must be at most ${EVENT_FIELD_LIMITS.symbol} characters`);
        const key = `${String(c.symbol)}|${String(c.sec_type)}|${String(c.exchange)}|${String(c.currency)}`;
        if (seen.has(key)) fail(`entry ${i} repeats ${String(c.symbol)} ${String(c.sec_type)} on ${String(c.exchange)}`);
        seen.add(key);
      });
    },
  },
  'mdp-feature-windows': {
    validate(x: unknown) {
      if (!Array.isArray(x)) fail('must be a list of { name, horizon }');
      const seen = new Set<string>();
      x.forEach((entry: unknown, i) => {
        if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail(`entry ${i} must be a mapping { name, horizon }`);
        const { name, horizon, ...rest } = entry as Record<string, unknown>;
        const extra = Object.keys(rest);
        if (extra.length > 0) fail(`entry ${i} has unknown key ${JSON.stringify(extra[0])} (allowed: name, horizon)`);
        if (typeof name !== 'string' || name.trim() === '' || /\s/.test(name)) fail(`entry ${i}: name must be a non-empty string without spaces`);
        if (seen.has(name)) fail(`entry ${i}: name ${JSON.stringify(name)} is used twice`);
        seen.add(name);
        const ms = typeof horizon === 'string' ? parseDurationMs(horizon) : undefined;
        if (ms === undefined || ms <= 0)
          fail(`entry ${i} (${name}): horizon must be a duration such as "60s", "500ms" or "5m" (got ${JSON.stringify(horizon)})`);
      });
    },
  },
};

convict.addFormats(FORMATS);

// ---------------------------------------------------------------------------------------------
// Schema: every key of spec §4.2 plus mdp's own. Defaults reproduce the spec's file with
// loopback addresses for the services, so an empty file gives a working local setup.

const SCHEMA = {
  version: { doc: 'Config format version.', format: 'mdp-version', default: 1 },
  bus: {
    type: { doc: 'Stream bus implementation.', format: 'mdp-choice', choices: BUS_TYPES, default: 'redis', env: 'MDP_BUS' },
    shards: { doc: 'Event streams per role; shard = hash(provider|symbol) % shards.', format: 'mdp-int', min: 1, max: 1024, default: 4, env: 'MDP_SHARDS' },
    max_deliveries: { doc: 'Deliveries after which a message goes to the DLQ.', format: 'mdp-int', min: 1, default: 5 },
    encoding: {
      doc: 'How producers encode events on the bus: json (the v1 JSON text) or msgpack. Entries say their own format, so consumers, tail and the DLQ read both.',
      format: 'mdp-choice',
      choices: BUS_ENCODINGS,
      default: 'json',
      env: 'MDP_BUS_ENCODING',
    },
    redis: {
      uri: { doc: 'Redis URL.', format: 'mdp-url', protocols: ['redis:', 'rediss:'], default: 'redis://127.0.0.1:6379/0', env: 'REDIS_URI', sensitive: true },
      stream: { doc: 'Event stream base name (shard n is <stream>.<n>).', format: 'mdp-name', default: 'mdp.events' },
      signals_stream: { doc: 'Signals stream.', format: 'mdp-name', default: 'mdp.signals' },
      consumer_group: { doc: 'Consumer group name.', format: 'mdp-name', default: 'mdp-consumers' },
      maxlen: {
        doc:
          "Retention bound per stream (entries): producers wait while a consumer group's unacknowledged backlog is at 90% of it; " +
          'streams are trimmed only below what every group acknowledged; a stream no group reads is capped at it (XADD MAXLEN ~).',
        format: 'mdp-int',
        min: 1,
        default: 1_000_000,
      },
      dlq_stream: { doc: 'Dead-letter stream.', format: 'mdp-name', default: 'mdp.dlq' },
      late_stream: { doc: 'Stream for events later than their window.', format: 'mdp-name', default: 'mdp.events.late' },
      features_stream: { doc: 'Feature snapshot stream base name (shard n is <features_stream>.<n>).', format: 'mdp-name', default: 'mdp.features' },
      inference_group: { doc: 'Consumer group of the inference consumers.', format: 'mdp-name', default: 'mdp-inference' },
      frame_events: {
        doc:
          'Most consecutive events of one shard stream a producer puts in one entry (a frame); 1 = one event per entry. ' +
          'Consumers read frames whatever this says; maxlen then counts entries of up to this many events.',
        format: 'mdp-int',
        min: 1,
        max: 10_000,
        default: 1,
        env: 'MDP_BUS_FRAME_EVENTS',
      },
    },
    kafka: {
      brokers: {
        doc: 'Bootstrap brokers, host:port (comma-separated in KAFKA_BROKERS).',
        format: 'mdp-brokers',
        default: ['127.0.0.1:9092'],
        env: 'KAFKA_BROKERS',
      },
      client_id: { doc: 'Kafka client id of mdp processes.', format: 'mdp-name', default: 'mdp' },
      stream: { doc: 'Event topic; shard n is its partition n (bus.shards partitions).', format: 'mdp-topic', default: 'mdp.events' },
      signals_stream: { doc: 'Signals topic.', format: 'mdp-topic', default: 'mdp.signals' },
      consumer_group: { doc: 'Consumer group of the micro-batch consumers.', format: 'mdp-topic', default: 'mdp-consumers' },
      dlq_stream: { doc: 'Dead-letter topic.', format: 'mdp-topic', default: 'mdp.dlq' },
      late_stream: { doc: 'Topic for events later than their window.', format: 'mdp-topic', default: 'mdp.events.late' },
      features_stream: { doc: 'Feature snapshot topic; shard n is its partition n.', format: 'mdp-topic', default: 'mdp.features' },
      inference_group: { doc: 'Consumer group of the inference consumers.', format: 'mdp-topic', default: 'mdp-inference' },
      replication_factor: { doc: 'Replication factor of the topics mdp creates.', format: 'mdp-int', min: 1, max: 32, default: 1 },
      retention: {
        doc: 'retention.ms of the topics mdp creates, as a duration (Kafka deletes older records, read or not).',
        format: 'mdp-duration',
        default: '7d',
      },
      max_backlog: {
        doc: "Most records a consumer group may have unconsumed on a partition: producers wait at 90% of it (Kafka's own retention deletes by age).",
        format: 'mdp-int',
        min: 1,
        default: 1_000_000,
      },
    },
  },
  producers: {
    synthetic: {
      enabled: { doc: 'Run the synthetic producer.', format: 'mdp-boolean', default: true },
      provider: { doc: 'Provider name on synthetic events.', format: 'mdp-key-part', default: 'synthetic' },
      symbols: { doc: 'Symbols to simulate.', format: 'mdp-symbols', default: ['SPY', 'AAPL', 'MSFT'] },
      tick_rate: { doc: 'Ticks per second per symbol.', format: 'mdp-number', exclusiveMin: 0, default: 1 },
      price_volatility: { doc: 'Annualized sigma of the price walk.', format: 'mdp-number', min: 0, default: 0.02 },
      seed: { doc: 'PRNG seed; same seed, same events.', format: 'mdp-int', min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER, default: 42 },
    },
    ibkr: {
      enabled: { doc: 'Run the IBKR producer with mdp up.', format: 'mdp-boolean', default: false },
      provider: { doc: 'Provider name on IBKR events.', format: 'mdp-key-part', default: 'ibkr' },
      host: { doc: 'TWS / IB Gateway host.', format: 'mdp-name', default: '127.0.0.1', env: 'IBKR_HOST' },
      port: {
        doc: 'TWS / IB Gateway API port (TWS 7497 paper, 7496 live; Gateway 4002 / 4001).',
        format: 'mdp-int',
        min: 1,
        max: 65535,
        default: 7497,
        env: 'IBKR_PORT',
      },
      client_id: { doc: 'API client id (unique per connection to one TWS).', format: 'mdp-int', min: 0, max: 2147483647, default: 17, env: 'IBKR_CLIENT_ID' },
      contracts: { doc: 'Contracts to subscribe: [{ symbol, sec_type, exchange, currency, primary_exchange }].', format: 'mdp-ibkr-contracts', default: [] },
      data: {
        doc: 'trades (tick-by-tick AllLast), bars (5-second real-time bars) or both.',
        format: 'mdp-choice',
        choices: ['trades', 'bars', 'both'],
        default: 'trades',
      },
      market_data_lines: { doc: 'Market data lines of the account: subscriptions beyond it are refused.', format: 'mdp-int', min: 1, default: 100 },
      reconnect_initial_ms: { doc: 'First reconnect wait after a disconnect (doubles each try).', format: 'mdp-int', min: 100, default: 1000 },
      reconnect_max_ms: { doc: 'Longest reconnect wait.', format: 'mdp-int', min: 100, default: 30000 },
      backfill_dir: {
        doc: 'Directory under which mdp dataset fetch ibkr creates new datasets (registered in replay.datasets_file).',
        format: 'mdp-path',
        default: '.data/datasets',
      },
      backfill_client_id: {
        doc: 'API client id of the historical (backfill) connection; must differ from client_id.',
        format: 'mdp-int',
        min: 0,
        max: 2147483647,
        default: 18,
        env: 'IBKR_BACKFILL_CLIENT_ID',
      },
      pacing: {
        enabled: { doc: 'Enforce IB pacing limits before every request (only tests turn this off).', format: 'mdp-boolean', default: true },
        messages_per_second: { doc: 'API messages per second client→TWS (IB: 50).', format: 'mdp-int', min: 1, default: 50 },
        historical_max_open: { doc: 'Simultaneous open historical requests (IB: 50).', format: 'mdp-int', min: 1, default: 50 },
        historical_identical_ms: { doc: 'No identical historical request within this many ms (IB: 15 s).', format: 'mdp-int', min: 0, default: 15000 },
        historical_same_contract_max: {
          doc: 'Requests for one contract, exchange and tick type within historical_same_contract_ms (IB: fewer than 6 in 2 s).',
          format: 'mdp-int',
          min: 1,
          default: 5,
        },
        historical_same_contract_ms: { doc: 'Window of historical_same_contract_max (IB: 2 s).', format: 'mdp-int', min: 0, default: 2000 },
        historical_window_max: {
          doc: 'Historical requests in any historical_window_ms (IB: 60 in 10 minutes; BID_ASK counts twice).',
          format: 'mdp-int',
          min: 1,
          default: 60,
        },
        historical_window_ms: { doc: 'Window of historical_window_max (IB: 10 minutes).', format: 'mdp-int', min: 1, default: 600000 },
      },
    },
  },
  micro_batch: {
    window_ms: { doc: 'Tumbling window length (0.5–5 s).', format: 'mdp-int', min: 500, max: 5000, default: 2000 },
    max_batch_size: { doc: 'Most messages read (and routed, acknowledged) per batch.', format: 'mdp-int', min: 1, default: 5000 },
    max_buffered_events: {
      doc: 'Most events a shard holds in open windows; beyond it the oldest window is cut (memory bound).',
      format: 'mdp-int',
      min: 1,
      default: 500_000,
    },
    allow_late_ms: { doc: 'Grace for late events (watermark lag).', format: 'mdp-int', min: 0, default: 500 },
    flush_timeout_ms: { doc: 'Idle time after which the watermark follows the wall clock.', format: 'mdp-int', min: 1, default: 1000 },
    max_future_ms: { doc: 'Events whose src_ts is further ahead of the wall clock go to the DLQ (future_event).', format: 'mdp-int', min: 0, default: 5000 },
  },
  features: {
    windows: {
      doc: 'Rolling feature windows.',
      format: 'mdp-feature-windows',
      default: [
        { name: 'vwap_1m', horizon: '60s' },
        { name: 'ret_30s', horizon: '30s' },
        { name: 'vol_5m', horizon: '300s' },
      ],
    },
  },
  inference: {
    adapters: {
      rules: {
        enabled: { doc: 'Evaluate rules.', format: 'mdp-boolean', default: true },
        file: { doc: 'Rules file.', format: 'mdp-path', default: 'configs/rules.yaml' },
        max_rules: {
          doc: 'Most rules the file may hold; loading checks each rule on the event loop (about 0.1 ms per rule).',
          format: 'mdp-int',
          min: 1,
          default: DEFAULT_MAX_RULES,
        },
        max_bytes: {
          doc: 'Largest rules file in bytes; a larger one is refused before it is read.',
          format: 'mdp-int',
          min: 1,
          default: DEFAULT_MAX_RULES_BYTES,
        },
      },
      sklearn: {
        enabled: { doc: 'Evaluate the ML model.', format: 'mdp-boolean', default: false },
        model_path: { doc: 'Model file (ONNX).', format: 'mdp-path', default: '' },
        timeout_ms: { doc: 'Longest one model call may take before the breaker counts a failure and rules answer.', format: 'mdp-int', min: 1, default: 200 },
      },
    },
  },
  store: {
    url: {
      doc: 'PostgreSQL URL.',
      format: 'mdp-url',
      protocols: ['postgres:', 'postgresql:'],
      default: 'postgres://mdp:mdp@127.0.0.1:5432/mdp',
      env: 'STORE_URL',
      sensitive: true,
    },
    copy_min_rows: {
      doc: 'A flush (or bars upsert) of at least this many bars is written with COPY into a staging table and one upsert from it (0 = never); bench/store-flush.ts: below ~2,000 bars the extra statements of COPY cost what its cheaper parsing saves.',
      format: 'mdp-int',
      min: 0,
      default: 2000,
      env: 'MDP_STORE_COPY_MIN_ROWS',
    },
  },
  temporal: {
    address: { doc: 'Temporal frontend host:port.', format: 'mdp-host-port', default: '127.0.0.1:7233', env: 'TEMPORAL_ADDRESS' },
    namespace: { doc: 'Temporal namespace.', format: 'mdp-name', default: 'default', env: 'TEMPORAL_NAMESPACE' },
    task_queue: { doc: 'Task queue of the mdp worker.', format: 'mdp-name', default: 'mdp-pipeline', env: 'MDP_TASK_QUEUE' },
    deployment: {
      versioning: { doc: 'Run workers as versions of a Temporal Worker Deployment.', format: 'mdp-boolean', default: true, env: 'MDP_WORKER_VERSIONING' },
      name: { doc: 'Worker Deployment name (no "."); empty = the task queue name.', format: 'mdp-deployment-name', default: '', env: 'MDP_DEPLOYMENT_NAME' },
      build_id: {
        doc: 'Build id of this worker; empty = <package version>-<hash of the compiled code>.',
        format: 'mdp-build-id',
        default: '',
        env: 'MDP_BUILD_ID',
      },
      rollout: {
        doc: 'auto: a starting worker makes its version current; manual: mdp deploy promote does.',
        format: 'mdp-choice',
        choices: ROLLOUTS,
        default: 'auto',
        env: 'MDP_ROLLOUT',
      },
    },
  },
  telemetry: {
    metrics_port: { doc: 'Port of /metrics (0 = any free port).', format: 'mdp-int', min: 0, max: 65535, default: 9101, env: 'MDP_METRICS_PORT' },
    metrics_host: { doc: 'Interface /metrics listens on.', format: 'mdp-name', default: '127.0.0.1' },
    log_level: { doc: 'DEBUG, INFO, WARNING or ERROR (any case).', format: 'mdp-log-level', default: 'INFO', env: 'LOG_LEVEL' },
    log_format: {
      doc: 'auto: pretty and coloured on a terminal (no colour with NO_COLOR), one JSON object per line otherwise; json; pretty.',
      format: 'mdp-choice',
      choices: LOG_FORMAT_SETTINGS,
      default: 'auto',
      env: 'MDP_LOG_FORMAT',
    },
  },
  replay: {
    datasets_file: {
      doc: 'Catalog of named replay datasets (relative to the config file that names it).',
      format: 'mdp-path',
      default: 'configs/datasets.yaml',
    },
    stream: { doc: "Base name of a replay's own streams.", format: 'mdp-name', default: 'mdp.replay' },
    chunk_span: { doc: 'Event time one replay chunk (one activity) covers, e.g. 15m.', format: 'mdp-duration', default: '15m' },
  },
  recovery: {
    interval: { doc: 'How often the mdp-recovery schedule sweeps pending entries, e.g. 5m.', format: 'mdp-duration', default: '5m' },
    min_idle_ms: {
      doc: "Idle time (ms) after which a pending entry not held by its shard's owner is claimed for the owner (or dead-lettered past max_deliveries).",
      format: 'mdp-int',
      min: 0,
      default: 60_000,
    },
  },
} satisfies convict.Schema<StreamingConfig>;

// ---------------------------------------------------------------------------------------------
// Helpers for walking plain objects by dotted key.

type Json = Record<string, unknown>;

function isMapping(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Dotted paths of the leaves of a plain object (arrays are leaves, empty mappings have none). */
function leaves(value: Json, prefix = ''): Array<[string, unknown]> {
  return Object.entries(value).flatMap(([k, v]): Array<[string, unknown]> => (isMapping(v) ? leaves(v, `${prefix}${k}.`) : [[`${prefix}${k}`, v]]));
}

function lookup(root: unknown, key: string): { found: boolean; value?: unknown } {
  let node = root;
  for (const part of key.split('.')) {
    if (!isMapping(node) || !Object.hasOwn(node, part)) return { found: false };
    node = node[part];
  }
  return { found: true, value: node };
}

/** Env var bound to each schema key, e.g. `bus.redis.uri` → `REDIS_URI`. */
const ENV_BINDINGS: ReadonlyMap<string, string> = new Map(
  leaves(SCHEMA as unknown as Json)
    .filter(([key]) => key.endsWith('.env'))
    .map(([key, envVar]) => [key.slice(0, -'.env'.length), envVar as string]),
);

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** A value for an error message: passwords masked first, so the cut can never keep half of one. */
function render(value: unknown): string {
  const redacted = redactValue(value);
  const text = JSON.stringify(redacted) ?? String(redacted);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

// ---------------------------------------------------------------------------------------------

/** Reads the file and parses it as `${VAR}`-expanded YAML; the top level must be a mapping. */
function readDocument(file: string, env: LoadStreamingConfigOptions['env']): Json {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ConfigError(`${file}: config file not found (looked at ${resolve(file)})`, { code: 'CONFIG_FILE_NOT_FOUND', file, cause: err });
    }
    throw new ConfigError(`${file}: cannot read config file: ${(err as Error).message}`, { code: 'CONFIG_READ', file, cause: err });
  }
  let expanded: string;
  try {
    expanded = expandEnv(text, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new ConfigError(`${file}: ${err.message}`, { code: err.code, file, line: err.line });
  }
  let doc: unknown;
  try {
    doc = parseYaml(expanded, { filename: file, schema: CORE_SCHEMA });
  } catch (err) {
    if (!(err instanceof YAMLException)) throw err;
    const line = err.mark.line + 1;
    // No `cause`: js-yaml's own message quotes the source line, which may hold a secret.
    throw new ConfigError(`${file}: line ${line}, column ${err.mark.column + 1}: invalid YAML: ${err.reason}`, { code: 'CONFIG_PARSE', file, line });
  }
  if (doc === undefined || doc === null) return {};
  if (!isMapping(doc))
    throw new ConfigError(`${file}: the top level must be a mapping of keys (got ${Array.isArray(doc) ? 'a list' : typeof doc})`, {
      code: 'CONFIG_PARSE',
      file,
      line: 1,
    });
  return doc;
}

const UNDECLARED = /^configuration param '(.+)' not declared in the schema$/;
const MISSING = /^configuration param '(.+)' missing from config/;
const INVALID = /^([^\s:]+): (.*?)(?:: value was .*)?$/;

/**
 * Loads `configs/streaming.yaml` (or only defaults when `file` is omitted): reads the file, expands
 * `${VAR}` / `${VAR:-default}` from `env`, parses YAML, then applies env-bound keys (`REDIS_URI`,
 * `STORE_URL`, `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `MDP_TASK_QUEUE`, `MDP_METRICS_PORT`,
 * `MDP_SHARDS`, `LOG_LEVEL`; empty values count as unset) and finally `overrides`. Unknown keys
 * are errors. Pure apart from reading `file`: the environment is an argument.
 *
 * @throws {@link ConfigError} naming the file, key and offending value (URL passwords masked).
 * @example
 * ```ts
 * const config = loadStreamingConfig({ file: 'configs/streaming.yaml', env: process.env, overrides: { micro_batch: { window_ms: 1000 } } });
 * config.micro_batch.window_ms; // 1000
 * ```
 */
export function loadStreamingConfig(options: LoadStreamingConfigOptions): StreamingConfig {
  const { file, overrides } = options;
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(options.env)) if (value !== undefined && value !== '') env[name] = value;
  const doc = file === undefined ? {} : readDocument(file, env);
  const overrideLeaves = overrides === undefined ? [] : leaves(overrides);
  const overrideMap = new Map(overrideLeaves);
  const label = file ?? 'config';

  /** Where a key's value came from, and the value as given there. */
  const origin = (key: string, fallback: unknown): { source: string; value: unknown } => {
    if (overrideMap.has(key)) return { source: 'overrides', value: overrideMap.get(key) };
    const envVar = ENV_BINDINGS.get(key);
    if (envVar !== undefined && env[envVar] !== undefined) return { source: `env ${envVar}`, value: env[envVar] };
    const inDoc = lookup(doc, key);
    if (inDoc.found) return { source: label, value: inDoc.value };
    return { source: 'defaults', value: fallback };
  };

  // `args: []` and an explicit env keep convict away from process.argv and process.env.
  const config = convict<StreamingConfig>(SCHEMA, { env, args: [] });
  const issues: ConfigIssue[] = [];
  try {
    config.load(doc);
    for (const [key, value] of overrideLeaves) config.set(key, value);
    config.validate({ allowed: 'strict' });
  } catch (err) {
    const instance: unknown = config.getProperties();
    for (const line of (err as Error).message.split('\n')) {
      let m: RegExpExecArray | null;
      if ((m = UNDECLARED.exec(line))) {
        issues.push({ key: m[1], reason: 'is not a known key', ...origin(m[1], lookup(instance, m[1]).value) });
      } else if ((m = MISSING.exec(line))) {
        // A key goes missing when a section above it is not a mapping; report that section once.
        const parts = m[1].split('.');
        let key = m[1];
        for (let n = 1; n < parts.length; n++) {
          const prefix = parts.slice(0, n).join('.');
          if (!isMapping(lookup(instance, prefix).value)) {
            key = prefix;
            break;
          }
        }
        if (key === m[1]) issues.push({ key, reason: 'is missing', source: label, value: undefined });
        else issues.push({ key, reason: 'must be a mapping of keys', ...origin(key, lookup(instance, key).value) });
      } else if ((m = INVALID.exec(line))) {
        issues.push({ key: m[1], reason: m[2], ...origin(m[1], lookup(instance, m[1]).value) });
      } else {
        issues.push({ key: '', reason: line, source: label, value: undefined });
      }
    }
  }
  if (issues.length === 0) {
    const adapters = config.get('inference').adapters;
    if (adapters.rules.enabled && adapters.rules.file === '') {
      issues.push({
        key: 'inference.adapters.rules.file',
        reason: 'must be set when inference.adapters.rules.enabled is true',
        ...origin('inference.adapters.rules.file', ''),
      });
    }
    const ibkr = config.get('producers').ibkr;
    if (ibkr.backfill_client_id === ibkr.client_id) {
      issues.push({
        key: 'producers.ibkr.backfill_client_id',
        reason: `must differ from producers.ibkr.client_id (${ibkr.client_id}): TWS refuses a second connection with the same client id`,
        ...origin('producers.ibkr.backfill_client_id', ibkr.backfill_client_id),
      });
    }
    if (adapters.sklearn.enabled && adapters.sklearn.model_path === '') {
      issues.push({
        key: 'inference.adapters.sklearn.model_path',
        reason: 'must be set when inference.adapters.sklearn.enabled is true',
        ...origin('inference.adapters.sklearn.model_path', ''),
      });
    }
  }
  if (issues.length > 0) {
    // convict reports a replaced section both as missing children and as an unknown key.
    const unique = issues.filter((issue, i) => issues.findIndex((other) => other.key === issue.key) === i);
    const lines = unique.map((issue) => {
      // Reasons about one list entry already quote the offending entry.
      const got = issue.value === undefined || issue.reason.includes('(got ') ? '' : ` (got ${render(issue.value)})`;
      const from = issue.source === label || issue.source === 'defaults' ? '' : ` [from ${issue.source}]`;
      return `${label}: ${issue.key === '' ? '' : `${issue.key}: `}${issue.reason}${got}${from}`;
    });
    const first = unique[0];
    throw new ConfigError(lines.join('\n'), { code: 'CONFIG_INVALID', file, key: first.key, value: first.value, issues: unique });
  }
  // The datasets file a config file names is relative to that file (so the CLI and a worker started
  // elsewhere read the same one); one from the environment, overrides or defaults, to the working directory.
  const datasetsFile = config.get('replay').datasets_file;
  const named = file !== undefined && origin('replay.datasets_file', datasetsFile).source === label;
  config.set('replay.datasets_file', resolve(named ? dirname(resolve(file)) : '.', datasetsFile));
  return deepFreeze(config.getProperties());
}

/** The stream (topic) and group names of the configured bus (`bus.redis` or `bus.kafka`). */
/** The Worker Deployment of this pipeline: `temporal.deployment.name`, or the task queue's name with anything but letters, digits, `_` and `-` as `-`. */
export function deploymentNameOf(config: StreamingConfig): string {
  return config.temporal.deployment.name || config.temporal.task_queue.replace(/[^A-Za-z0-9_-]/g, '-');
}

export function busNames(config: StreamingConfig): BusNames {
  const { stream, signals_stream, consumer_group, dlq_stream, late_stream, features_stream, inference_group } = config.bus[config.bus.type];
  return { stream, signals_stream, consumer_group, dlq_stream, late_stream, features_stream, inference_group };
}

/**
 * The inference adapter the pipeline runs: the ML model when enabled (rules as its fallback), else
 * rules, else none. Live inference consumers and replays both follow it.
 */
export function configuredAdapter(config: StreamingConfig): 'rules' | 'sklearn' | undefined {
  const adapters = config.inference.adapters;
  return adapters.sklearn.enabled ? 'sklearn' : adapters.rules.enabled ? 'rules' : undefined;
}
