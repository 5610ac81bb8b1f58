import { Connection } from '@temporalio/client';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Admin } from '@platformatic/kafka';
import { redactSecrets } from '../pipeline/config/index.js';

/** Where the process's dependencies live (the worker passes its loaded config). */
export interface ReadinessTargets {
  /** `bus.redis.uri`: checked when the bus is Redis (no `kafkaBrokers`). */
  readonly redisUri: string;
  /** `bus.kafka.brokers` when `bus.type` is kafka: checked instead of Redis. */
  readonly kafkaBrokers?: readonly string[];
  /** `store.url`. */
  readonly storeUrl: string;
  /** `temporal.address` (host:port of the frontend). */
  readonly temporalAddress: string;
  /** Budget of each check; they run in parallel, so also of the whole probe. Default 2000 ms. */
  readonly timeoutMs?: number;
}

/** Outcome of one dependency check. `target` and `error` never contain a password. */
export interface DependencyCheck {
  readonly ok: boolean;
  /** How long the check took, in milliseconds. */
  readonly ms: number;
  /** What was checked: the URL (password masked) or address. */
  readonly target: string;
  readonly error?: string;
}

export interface ReadinessReport {
  /** True when every check passed. */
  readonly ready: boolean;
  readonly checks: {
    /** The bus: `redis`, or `kafka` when `bus.type` is kafka. */
    readonly redis?: DependencyCheck;
    readonly kafka?: DependencyCheck;
    readonly postgres: DependencyCheck;
    readonly temporal: DependencyCheck;
  };
}

const DEFAULT_TIMEOUT_MS = 2000;
/** The service the Temporal frontend reports health for (what `temporal operator cluster health` asks). */
const TEMPORAL_HEALTH_SERVICE = 'temporal.api.workflowservice.v1.WorkflowService';
/** grpc.health.v1 ServingStatus, by number. */
const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const;

/**
 * Checks that the bus answers (Redis PING, or a Kafka metadata request), PostgreSQL answers `SELECT 1` and the Temporal frontend reports
 * SERVING, each over its own short-lived connection with no retries, in parallel, each bounded
 * by `timeoutMs`. Never throws: a failure is a check with `ok: false` and a redacted `error`.
 *
 * @example
 * const report = await checkReadiness({ redisUri: config.bus.redis.uri, storeUrl: config.store.url,
 *   temporalAddress: config.temporal.address });
 * if (!report.ready) console.error(report.checks);
 */
export async function checkReadiness(targets: ReadinessTargets): Promise<ReadinessReport> {
  const timeoutMs = targets.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const brokers = targets.kafkaBrokers;
  const [bus, postgres, temporal] = await Promise.all([
    brokers
      ? runCheck(brokers.join(','), [], timeoutMs, () => kafkaMetadata(brokers, timeoutMs))
      : runCheck(redactSecrets(targets.redisUri, [targets.redisUri]), [targets.redisUri], timeoutMs, () => pingRedis(targets.redisUri, timeoutMs)),
    runCheck(redactSecrets(targets.storeUrl, [targets.storeUrl]), [targets.storeUrl], timeoutMs, () => selectOne(targets.storeUrl, timeoutMs)),
    runCheck(targets.temporalAddress, [], timeoutMs, () => temporalServing(targets.temporalAddress, timeoutMs)),
  ]);
  return { ready: bus.ok && postgres.ok && temporal.ok, checks: { ...(brokers ? { kafka: bus } : { redis: bus }), postgres, temporal } };
}

async function runCheck(target: string, secrets: readonly string[], timeoutMs: number, probe: () => Promise<void>): Promise<DependencyCheck> {
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs + 250);
  });
  try {
    // The probes bound themselves; the outer deadline only guards against a driver that does not.
    await Promise.race([probe(), deadline]);
    return { ok: true, ms: elapsed(), target };
  } catch (err) {
    return { ok: false, ms: elapsed(), target, error: redactSecrets(describeError(err), secrets) };
  } finally {
    clearTimeout(timer);
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    // AggregateError (e.g. a host resolving to several addresses) has an empty message of its own.
    if (err.message === '' && err instanceof AggregateError) return err.errors.map(describeError).join('; ');
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

async function pingRedis(uri: string, timeoutMs: number): Promise<void> {
  const redis = new Redis(uri, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    enableReadyCheck: false,
  });
  // Without a listener ioredis prints every connection error to stderr itself (unredacted). The
  // event also carries the cause (ECONNREFUSED…); connect() itself only says "Connection is closed.".
  let cause: Error | undefined;
  redis.on('error', (err: Error) => {
    cause ??= err;
  });
  try {
    await redis.connect();
    await redis.ping(); // an error reply (NOAUTH, LOADING…) rejects
  } catch (err) {
    throw cause ?? err;
  } finally {
    redis.disconnect();
  }
}

/** A broker answers a metadata request (which lists the cluster's brokers). */
async function kafkaMetadata(brokers: readonly string[], timeoutMs: number): Promise<void> {
  const admin = new Admin({ clientId: 'mdp-readiness', bootstrapBrokers: [...brokers], retries: 0, timeout: timeoutMs, connectTimeout: timeoutMs });
  try {
    await admin.metadata({ topics: [] });
  } finally {
    await admin.close().catch(() => undefined);
  }
}

async function selectOne(url: string, timeoutMs: number): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function temporalServing(address: string, timeoutMs: number): Promise<void> {
  // No retry interceptor (the SDK's default retries UNAVAILABLE for seconds) and no HTTP proxy
  // (the worker's own connection uses none): one attempt, answered or failed within the deadline.
  const connection = Connection.lazy({
    address,
    connectTimeout: timeoutMs,
    interceptors: [],
    channelArgs: { 'grpc.enable_http_proxy': 0 },
  });
  try {
    const reply = await connection.withDeadline(Date.now() + timeoutMs, () => connection.healthService.check({ service: TEMPORAL_HEALTH_SERVICE }));
    const status = SERVING_STATUS[reply.status ?? 0] ?? String(reply.status);
    if (status !== 'SERVING') throw new Error(`frontend health is ${status}, not SERVING`);
  } finally {
    await connection.close();
  }
}
