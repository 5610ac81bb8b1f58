/**
 * One fault-matrix scenario on a private {@link FaultStack}: its config (unique streams, group,
 * provider and task queue) on the Redis or the Kafka bus, real worker processes, the shard consumer
 * workflows, deterministic events published straight to the shard streams (every id the bus
 * returned recorded), waits on observable states, and the exact accounting at the end.
 *
 * Use {@link useFaultStack} in a `describe`: it starts the stack once for the file, closes every
 * run after each test (printing the tails of every log when the test failed), and stops the stack.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import pg from 'pg';
import type { Bus } from '../../pipeline/bus/index.js';
import { openBus, shardOf, shardStream } from '../../pipeline/bus/index.js';
import type { BusType, StreamingConfig } from '../../pipeline/config/index.js';
import { busNames } from '../../pipeline/config/index.js';
import type { Bar, StreamEventV1 } from '../../pipeline/contracts/index.js';
import { SyntheticProducer } from '../../pipeline/producers/index.js';
import type { Database, JobRun } from '../../store/index.js';
import { createDb, JobRunTracker, migrateToLatest, StoreClient } from '../../store/index.js';
import type { LoopStatus } from '../../workflows/index.js';
import { microBatchWorkflowId } from '../../workflows/index.js';
import type { Accounting, AccountingOptions, ProducedEntry, StreamReader } from './accounting.js';
import { accountFor, assertWindowsOpen, busReader, installBarAudit, redisReader, waitForExactBars, waitForPending, waitSettled } from './accounting.js';
import { commitThenOpen } from './event-plan.js';
import type { FaultStack, FaultStackOptions } from './fault-stack.js';
import { FAULTS_DIR, startFaultStack, tailFile, track, untrack } from './fault-stack.js';
import { deepMerge, symbolsCoveringShards, testConfig, uniqueTag } from './services.js';
import { waitFor } from './wait.js';
import type { WorkerProcess } from './worker-process.js';
import { startWorkerProcess, writeConfigFile } from './worker-process.js';

/** `temporal.api.enums.v1` values used here (the proto package is CommonJS and not a direct dependency). */
const TASK_QUEUE_TYPE_WORKFLOW = 1;
const TASK_QUEUE_TYPE_ACTIVITY = 2;
const PENDING_ACTIVITY_STATES = ['UNSPECIFIED', 'SCHEDULED', 'STARTED', 'CANCEL_REQUESTED', 'PAUSED', 'PAUSE_REQUESTED'];

export interface FaultRunOptions {
  /** Shard streams (default 1). */
  readonly shards?: number;
  /** Config overrides on top of the test config (e.g. `{ micro_batch: { flush_timeout_ms: 4000 } }`). */
  readonly overrides?: Record<string, unknown>;
  /** The bus (default `redis`); `kafka` needs a stack started with `kafka: true`. */
  readonly bus?: BusType;
}

/** A worker process of a run, with the identity Temporal knows it by. */
export interface RunWorker extends WorkerProcess {
  readonly label: string;
  readonly pid: number;
  /** `${pid}@${hostname}`: the SDK's default worker identity. */
  readonly identity: string;
}

/** The pending consumer activity of a shard as Temporal describes it. */
export interface ShardAttempt {
  readonly attempt: number;
  readonly state: string;
  readonly workerIdentity: string;
  readonly lastStartedMs: number | undefined;
  readonly lastHeartbeatMs: number | undefined;
}

function timestampMs(ts: { seconds?: unknown; nanos?: number | null } | null | undefined): number | undefined {
  if (!ts || ts.seconds === undefined || ts.seconds === null) return undefined;
  return Number(ts.seconds) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6);
}

/** Splits events (in src_ts order) into consecutive windows of `windowMs` from `startMs`. */
function byWindow(events: readonly StreamEventV1[], startMs: number, windowMs: number, windows: number): StreamEventV1[][] {
  const out: StreamEventV1[][] = Array.from({ length: windows }, () => []);
  for (const e of events) {
    const ms = Date.parse(e.src_ts);
    out[Math.floor((ms - startMs) / windowMs)].push(e);
  }
  return out;
}

/** Event time between a plan and one made with `after` (longer than any pause a row makes). */
export const AFTER_PAUSE_GAP_MS = 120_000;

export class FaultRun {
  readonly name: string;
  readonly stack: FaultStack;
  readonly config: StreamingConfig;
  readonly provider: string;
  readonly shards: number;
  readonly group: string;
  readonly windowMs: number;
  /** The shard streams, `streams[shard]`. */
  readonly streams: readonly string[];
  /** The private Redis (the bus of a Redis run; idle in a Kafka run). */
  readonly redis: Redis;
  /** Where the run's streams and group are read: Redis itself, or the Kafka bus. */
  readonly reader: StreamReader;
  readonly db: Kysely<Database>;
  readonly client: Client;
  /** Every entry this run published and the bus acknowledged, in order. */
  readonly produced: ProducedEntry[] = [];
  /**
   * Entries of publish calls that failed ({@link tryPublish}): the bus may have appended them
   * anyway (a broker that wrote a batch and died before answering). {@link settleUnconfirmed}
   * looks them up in the streams.
   */
  readonly unconfirmed: Omit<ProducedEntry, 'id'>[] = [];
  readonly workers: RunWorker[] = [];
  readonly #connection: Connection;
  readonly #configFile: string;
  /** This run's log directory (worker logs, and whatever a row writes down for people). */
  readonly logDir: string;
  #bus: Bus | undefined;
  #closed: Promise<void> | undefined;

  private constructor(init: {
    name: string;
    stack: FaultStack;
    config: StreamingConfig;
    connection: Connection;
    redis: Redis;
    db: Kysely<Database>;
    logDir: string;
    configFile: string;
  }) {
    this.name = init.name;
    this.stack = init.stack;
    this.config = init.config;
    this.provider = init.config.producers.synthetic.provider;
    this.shards = init.config.bus.shards;
    const names = busNames(init.config);
    this.group = names.consumer_group;
    this.windowMs = init.config.micro_batch.window_ms;
    this.streams = Array.from({ length: this.shards }, (_, shard) => shardStream(names.stream, shard));
    this.#connection = init.connection;
    this.client = new Client({ connection: init.connection, namespace: init.config.temporal.namespace });
    this.redis = init.redis;
    this.reader = init.config.bus.type === 'kafka' ? busReader(this.bus) : redisReader(init.redis);
    this.db = init.db;
    this.logDir = init.logDir;
    this.#configFile = init.configFile;
  }

  /** A bus of the test's own on the run's config (opened on first use): what a producer would publish through. */
  get bus(): Bus {
    this.#bus ??= openBus(this.config);
    return this.#bus;
  }

  /** Symbols of the run's provider that land on every shard (SPY, AAPL, MSFT, … as needed). */
  get symbols(): readonly string[] {
    return symbolsCoveringShards(this.provider, this.shards);
  }

  /** A run with its own names on `stack`; migrates the stack's database and installs the bar audit. */
  static async create(stack: FaultStack, name: string, options: FaultRunOptions = {}): Promise<FaultRun> {
    const tag = uniqueTag('f');
    const busType = options.bus ?? 'redis';
    if (busType === 'kafka' && !stack.kafka) throw new Error(`run ${name} is on Kafka: start the fault stack with { kafka: true }`);
    const kafka = stack.kafka ? { kafka: { brokers: [stack.kafka.address], client_id: tag } } : {};
    const config = testConfig(
      tag,
      deepMerge(
        {
          bus: { type: busType, shards: options.shards ?? 1, redis: { uri: stack.redis.uri }, ...kafka },
          store: { url: stack.postgres.url },
          temporal: { address: stack.temporal.address },
          telemetry: { metrics_port: 0, log_level: 'INFO' },
        },
        options.overrides ?? {},
      ),
    );
    const logDir = resolve(stack.dir, name);
    mkdirSync(logDir, { recursive: true });
    const configFile = writeConfigFile(config, `${relativeToTestData(logDir)}/config`);
    const redis = new Redis(stack.redis.uri, { maxRetriesPerRequest: 2, retryStrategy: () => 100 });
    redis.on('error', () => undefined); // the private Redis is killed on purpose; commands report their own errors
    const db = createDb(stack.postgres.url, { onPoolError: () => undefined });
    await migrateToLatest(db);
    await installBarAudit(db);
    const connection = await Connection.connect({ address: stack.temporal.address });
    return new FaultRun({ name, stack, config, connection, redis, db, logDir, configFile });
  }

  // ------------------------------------------------------------------------------------------
  // Workers and consumers

  /**
   * Starts a real worker process on this run's config and waits until it polls both task types;
   * `env` adds variables (e.g. `MDP_BUILD_ID`, `MDP_ROLLOUT` for a version of a rollout).
   */
  async startWorker(label = `worker-${this.workers.length + 1}`, env: NodeJS.ProcessEnv = {}): Promise<RunWorker> {
    const proc = startWorkerProcess(this.#configFile, `${relativeToTestData(this.logDir)}/${label}`, env);
    const pid = proc.child.pid!;
    const worker: RunWorker = { ...proc, label, pid, identity: `${pid}@${hostname()}` };
    this.workers.push(worker);
    track(pid);
    void proc.exited.then(() => untrack(pid));
    await waitFor(
      `${label} (pid ${pid}) polling task queue ${this.config.temporal.task_queue}`,
      120_000,
      async () => {
        for (const type of [TASK_QUEUE_TYPE_WORKFLOW, TASK_QUEUE_TYPE_ACTIVITY]) {
          const { pollers } = await this.client.workflowService.describeTaskQueue({
            namespace: this.config.temporal.namespace,
            taskQueue: { name: this.config.temporal.task_queue },
            taskQueueType: type,
          });
          if (!pollers?.some((p) => p.identity === worker.identity)) return undefined;
        }
        return true;
      },
      {
        everyMs: 250,
        guard: () => {
          if (proc.child.exitCode !== null || proc.child.signalCode !== null) throw new Error(`${label} exited while starting:\n${tailFile(proc.logFile)}`);
        },
      },
    );
    return worker;
  }

  /** SIGKILL, and wait for the process to be gone. */
  async killWorker(worker: RunWorker): Promise<void> {
    worker.child.kill('SIGCONT');
    worker.child.kill('SIGKILL');
    await worker.exited;
  }

  consumerId(shard: number): string {
    return microBatchWorkflowId(busNames(this.config).stream, shard);
  }

  consumer(shard: number): WorkflowHandle {
    return this.client.workflow.getHandle(this.consumerId(shard));
  }

  /** Starts `streamConsumerWorkflow` for every shard (or the given ones). */
  async startConsumers(shards: readonly number[] = this.streams.map((_, s) => s)): Promise<void> {
    for (const shard of shards) {
      await this.client.workflow.start('streamConsumerWorkflow', {
        taskQueue: this.config.temporal.task_queue,
        workflowId: this.consumerId(shard),
        args: [{ role: 'microbatch', shard }],
      });
    }
  }

  /** The shard's pending consumer activity (undefined while none is scheduled). */
  async attempt(shard: number): Promise<ShardAttempt | undefined> {
    const { raw } = await this.consumer(shard).describe();
    const pending = raw.pendingActivities?.[0];
    if (!pending) return undefined;
    return {
      attempt: pending.attempt ?? 0,
      state: PENDING_ACTIVITY_STATES[pending.state ?? 0] ?? String(pending.state),
      workerIdentity: pending.lastWorkerIdentity ?? '',
      lastStartedMs: timestampMs(pending.lastStartedTime),
      lastHeartbeatMs: timestampMs(pending.lastHeartbeatTime),
    };
  }

  /** Waits until the shard's consumer activity runs on `worker` and has heartbeated in that attempt. */
  async waitForAttemptOn(shard: number, worker: RunWorker, timeoutMs: number, minAttempt = 1): Promise<ShardAttempt> {
    return waitFor(
      `shard ${shard}'s consumer attempt ≥ ${minAttempt} running and heartbeating on ${worker.label}`,
      timeoutMs,
      async () => {
        const a = await this.attempt(shard);
        return a &&
          a.attempt >= minAttempt &&
          a.workerIdentity === worker.identity &&
          a.state === 'STARTED' &&
          a.lastHeartbeatMs !== undefined &&
          a.lastStartedMs !== undefined &&
          a.lastHeartbeatMs >= a.lastStartedMs
          ? a
          : undefined;
      },
      { everyMs: 250 },
    );
  }

  /**
   * Waits until every shard's consumer activity runs and has heartbeated on one of `workers`;
   * returns each shard's attempt and the worker running it.
   */
  async shardOwners(workers: readonly RunWorker[], timeoutMs: number): Promise<Map<number, { worker: RunWorker; attempt: ShardAttempt }>> {
    const owners = new Map<number, { worker: RunWorker; attempt: ShardAttempt }>();
    for (let shard = 0; shard < this.shards; shard++) {
      const owner = await waitFor(
        `shard ${shard}'s consumer attempt running and heartbeating on one of ${workers.map((w) => w.label).join(', ')}`,
        timeoutMs,
        async () => {
          const a = await this.attempt(shard);
          const worker = workers.find((w) => w.identity === a?.workerIdentity);
          return a &&
            worker &&
            a.state === 'STARTED' &&
            a.lastHeartbeatMs !== undefined &&
            a.lastStartedMs !== undefined &&
            a.lastHeartbeatMs >= a.lastStartedMs
            ? { worker, attempt: a }
            : undefined;
        },
        { everyMs: 250 },
      );
      owners.set(shard, owner);
    }
    return owners;
  }

  /** The consumer activity's heartbeat timeout, from the workflow's history (10 s today). */
  async heartbeatTimeoutMs(shard = 0): Promise<number> {
    return waitFor('the consumer activity to be scheduled', 30_000, async () => {
      const history = await this.consumer(shard).fetchHistory();
      for (const event of history.events ?? []) {
        const timeout = event.activityTaskScheduledEventAttributes?.heartbeatTimeout;
        if (timeout) return Number(timeout.seconds ?? 0) * 1000 + Math.floor((timeout.nanos ?? 0) / 1e6);
      }
      return undefined;
    });
  }

  /** Signals `drain` to every shard's consumer and waits for the workflows to finish. */
  async drain(timeoutMs = 60_000): Promise<LoopStatus[]> {
    const handles = this.streams.map((_, shard) => this.consumer(shard));
    for (const h of handles) await h.signal('drain');
    return Promise.all(handles.map((h) => withTimeout(h.result() as Promise<LoopStatus>, timeoutMs, `consumer ${h.workflowId} to drain`)));
  }

  /** The `job_runs` rows of a shard's consumer, newest first. */
  async jobRuns(shard = 0): Promise<JobRun[]> {
    return new JobRunTracker(this.db).listRecent(this.consumerId(shard), 100);
  }

  // ------------------------------------------------------------------------------------------
  // Events

  /**
   * Deterministic events for `windows` consecutive windows of `perWindow` events each (across this
   * run's symbols), starting at an aligned window 10 minutes ago: `plan[i]` are window i's events
   * in src_ts order. Event time is the producer's, not the wall clock, so windows close only when
   * the test publishes later events (or the consumer's idle rule fires).
   *
   * Events published after a pause (an outage) come from a plan made with `after`: it starts
   * {@link AFTER_PAUSE_GAP_MS} of event time after the previous plan, as a live producer's clock
   * would have moved on. Otherwise a consumer that sat idle through the pause (its idle rule
   * advancing the watermark by wall clock, as designed) would rightly find them late.
   */
  plan(
    windows: number,
    perWindow: number,
    options: { seed?: number; provider?: string; symbols?: readonly string[]; startMs?: number; after?: readonly StreamEventV1[][] } = {},
  ): StreamEventV1[][] {
    const symbols = options.symbols ?? this.symbols;
    const startMs =
      options.startMs ??
      (options.after
        ? Math.floor(Date.parse(options.after.flat().at(-1)!.src_ts) / this.windowMs) * this.windowMs + AFTER_PAUSE_GAP_MS
        : Math.floor((Date.now() - 10 * 60_000) / this.windowMs) * this.windowMs);
    const producer = new SyntheticProducer({
      provider: options.provider ?? this.provider,
      symbols: [...symbols],
      seed: options.seed ?? 7,
      priceVolatility: 0.3,
      tickRate: perWindow / symbols.length / (this.windowMs / 1000),
    });
    return byWindow(producer.generateFinite({ count: windows * perWindow, startUs: startMs * 1000 }), startMs, this.windowMs, windows);
  }

  /** The shard stream an event belongs on (by the pipeline's own sharding rule). */
  streamOf(event: StreamEventV1): string {
    return this.streams[shardOf(event.provider, event.symbol, this.shards)];
  }

  /**
   * Appends events to their shard streams (XADD, no trimming: retention is not what these rows test;
   * on Kafka, the bus' `publish`) and records each with the id the bus returned. Throws if the bus
   * refused any.
   */
  async publish(events: readonly StreamEventV1[], label?: string): Promise<ProducedEntry[]> {
    return this.publishEntries(
      events.map((event) => ({ stream: this.streamOf(event), payload: JSON.stringify(event), event, expect: 'valid' as const, ...(label ? { label } : {}) })),
    );
  }

  /** Appends entries as given (e.g. poison), in order, and records them with their ids. */
  async publishEntries(entries: readonly (Omit<ProducedEntry, 'id'> & { readonly fields?: readonly string[] })[]): Promise<ProducedEntry[]> {
    if (entries.length === 0) return [];
    if (this.config.bus.type === 'kafka') return this.#publishToBus(entries);
    const pipe = this.redis.pipeline();
    for (const e of entries) pipe.xadd(e.stream, '*', ...(e.fields ?? ['d', e.payload]));
    const results = (await pipe.exec()) ?? [];
    const out: ProducedEntry[] = [];
    results.forEach(([err, id], i) => {
      if (err) throw new Error(`XADD refused: ${err.message}`);
      const { fields: _fields, ...entry } = entries[i];
      out.push({ ...entry, id: id as string });
    });
    this.produced.push(...out);
    return out;
  }

  /**
   * Like {@link publish}, one bus call per stream, but a call that fails is recorded instead of
   * thrown: its entries go to {@link unconfirmed}. Returns how many entries were acknowledged and
   * the failed calls' errors.
   */
  async tryPublish(events: readonly StreamEventV1[]): Promise<{ acknowledged: number; errors: string[] }> {
    const byStream = new Map<string, StreamEventV1[]>();
    for (const e of events) byStream.set(this.streamOf(e), [...(byStream.get(this.streamOf(e)) ?? []), e]);
    const outcomes = await Promise.allSettled(
      [...byStream].map(async ([stream, batch]) => {
        const entries = batch.map((event) => ({ stream, payload: JSON.stringify(event), event, expect: 'valid' as const }));
        try {
          return await this.publishEntries(entries);
        } catch (err) {
          this.unconfirmed.push(...entries);
          throw err;
        }
      }),
    );
    return {
      acknowledged: outcomes.reduce((n, o) => n + (o.status === 'fulfilled' ? o.value.length : 0), 0),
      errors: outcomes.flatMap((o) => (o.status === 'rejected' ? [(o.reason as Error).message] : [])),
    };
  }

  /**
   * Reads the shard streams whole and settles what the bus holds against what was published: an
   * {@link unconfirmed} entry found there joins {@link produced} with its id (the bus did append
   * it); one not found was never appended and counts nowhere. Also returns what must never happen:
   * acknowledged entries the streams do not hold at their ids (lost), and payloads held more than once.
   */
  async settleUnconfirmed(): Promise<{ appended: number; absent: number; lost: string[]; duplicated: string[] }> {
    const held = new Map<string, string[]>();
    for (const stream of this.streams) {
      for (const [id, fields] of await this.reader.entries(stream)) {
        const payload = fields.get('d');
        if (payload !== undefined) held.set(payload, [...(held.get(payload) ?? []), `${stream}|${id}`]);
      }
    }
    const lost = this.produced
      .filter((e) => !held.get(e.payload)?.includes(`${e.stream}|${e.id}`))
      .map((e) => `${e.stream} ${e.id} ${e.event?.event_id ?? e.payload}`);
    const duplicated = [...held].filter(([, at]) => at.length > 1).map(([payload, at]) => `${at.join(', ')}: ${payload.slice(0, 80)}`);
    let appended = 0,
      absent = 0;
    for (const entry of this.unconfirmed.splice(0)) {
      const at = held.get(entry.payload)?.[0];
      if (at === undefined) {
        absent++;
        continue;
      }
      this.produced.push({ ...entry, id: at.slice(at.lastIndexOf('|') + 1) });
      appended++;
    }
    return { appended, absent, lost, duplicated };
  }

  /** Publishes through the bus, one call per stream (in order within each stream), and records the entries with their ids. */
  async #publishToBus(entries: readonly (Omit<ProducedEntry, 'id'> & { readonly fields?: readonly string[] })[]): Promise<ProducedEntry[]> {
    const byStream = new Map<string, number[]>();
    entries.forEach((e, i) => {
      if (e.fields) throw new Error(`entries with fields of their own are Redis-only (stream ${e.stream})`);
      byStream.set(e.stream, [...(byStream.get(e.stream) ?? []), i]);
    });
    const ids: string[] = [];
    await Promise.all(
      [...byStream].map(async ([stream, indexes]) => {
        const got = await this.bus.publish(
          stream,
          indexes.map((i) => entries[i].payload),
        );
        indexes.forEach((i, k) => (ids[i] = got[k]));
      }),
    );
    const out = entries.map(({ fields: _fields, ...entry }, i): ProducedEntry => ({ ...entry, id: ids[i] }));
    this.produced.push(...out);
    return out;
  }

  /**
   * The state every mid-window fault starts from: windows `0..k-1` of `plan` published and
   * committed, and the first half of window `k` published and pending on every shard (read, its
   * window open). Returns window k's second half, still unpublished.
   */
  commitThenOpen(plan: readonly StreamEventV1[][], k: number): Promise<StreamEventV1[]> {
    return commitThenOpen(this, plan, k);
  }

  /** Fails unless no bar of these events' windows is stored (their windows are still open). */
  assertOpen(events: readonly StreamEventV1[], what: string): Promise<void> {
    return assertWindowsOpen(this.db, this.provider, events, this.windowMs, what);
  }

  /**
   * Holds `LOCK TABLE bars_ohlcv IN ACCESS EXCLUSIVE MODE` in an open transaction on a connection of
   * its own, until `release()` (a rollback). `waiters()` lists the other backends waiting on the table.
   */
  async lockBarsTable(): Promise<{
    waiters(): Promise<{ pid: number; query: string }[]>;
    activity(): Promise<string>;
    release(): Promise<void>;
    readonly lockedAt: number;
  }> {
    const client = new pg.Client({ connectionString: this.stack.postgres.url });
    client.on('error', () => undefined);
    await client.connect();
    await client.query('BEGIN');
    await client.query('LOCK TABLE bars_ohlcv IN ACCESS EXCLUSIVE MODE');
    const lockedAt = Date.now();
    let released: Promise<void> | undefined;
    return {
      lockedAt,
      async waiters() {
        const { rows } = await client.query<{ pid: number; query: string }>(`
          SELECT l.pid, a.query FROM pg_locks l JOIN pg_stat_activity a USING (pid)
          WHERE l.locktype = 'relation' AND l.relation = 'bars_ohlcv'::regclass AND NOT l.granted AND l.pid <> pg_backend_pid()`);
        return rows;
      },
      async activity() {
        const { rows } = await client.query<Record<string, unknown>>(`
          SELECT pid, state, wait_event_type, wait_event, left(query, 120) AS query FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()`);
        return rows.map((r) => JSON.stringify(r)).join('\n');
      },
      release() {
        released ??= (async () => {
          await client.query('ROLLBACK').catch(() => undefined);
          await client.end().catch(() => undefined);
        })();
        return released;
      },
    };
  }

  /** JSON log lines of a worker, parsed (lines that are not JSON are skipped). */
  logLines(worker: RunWorker): Record<string, unknown>[] {
    if (!existsSync(worker.logFile)) return [];
    return readFileSync(worker.logFile, 'utf8')
      .split('\n')
      .flatMap((line) => {
        if (!line.startsWith('{')) return [];
        try {
          return [JSON.parse(line) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  }

  // ------------------------------------------------------------------------------------------
  // Observations

  async bars(): Promise<Bar[]> {
    return new StoreClient(this.db).listBars({ provider: this.provider });
  }

  /** Waits until the stored bars of these events' windows equal their aggregate (the windows are committed). */
  waitForBars(events: readonly StreamEventV1[], what: string, timeoutMs = 60_000): Promise<Bar[]> {
    return waitForExactBars(this.db, this.provider, events, this.windowMs, what, timeoutMs);
  }

  /** Waits until a shard has exactly `pending` entries delivered and unacknowledged, and none unread. */
  waitForPending(shard: number, pending: number, what: string, timeoutMs = 60_000): Promise<void> {
    return waitForPending(this.reader, this.streams[shard], this.group, pending, `${what} (shard ${shard})`, timeoutMs);
  }

  /**
   * Waits until every shard has nothing pending and nothing unread (the pipeline is done with what
   * was published); false after `timeoutMs`. Callers account either way: the oracle's report says
   * more than "timed out".
   */
  settle(timeoutMs = 60_000): Promise<boolean> {
    return waitSettled(this.reader, this.streams, this.group, timeoutMs);
  }

  /** The exact accounting of everything this run produced (see accounting.ts). */
  account(
    options: Partial<Pick<AccountingOptions, 'lost' | 'allowLate' | 'allowValidInDlq' | 'produced' | 'others' | 'streams' | 'redisRestarted'>> = {},
  ): Promise<Accounting> {
    const r = busNames(this.config);
    return accountFor({
      reader: this.reader,
      db: this.db,
      streams: this.streams,
      group: this.group,
      lateStream: r.late_stream,
      dlqStream: r.dlq_stream,
      windowMs: this.windowMs,
      produced: this.produced,
      ...options,
    });
  }

  /** Tails of every worker log of this run and of the stack's services. */
  logs(lines = 40): string {
    const files = [...this.workers.map((w) => w.logFile), ...this.stack.logFiles];
    return files.map((f) => `----- ${f}\n${tailFile(f, lines)}`).join('\n');
  }

  /** Kills the workers and closes the clients; idempotent, never throws. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.allSettled(this.workers.map((w) => this.killWorker(w)));
      this.redis.disconnect();
      await Promise.allSettled([this.db.destroy(), this.#connection.close(), this.#bus?.close()]);
    })();
    return this.#closed;
  }
}

export { halves } from './event-plan.js';

function relativeToTestData(dir: string): string {
  return `faults/${dir.slice(FAULTS_DIR.length + 1)}`;
}

/** Rejects with a message naming `what` if `promise` has not settled within `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, fail) => {
        timer = setTimeout(() => fail(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms` — only where time itself is the fault (an outage's length), never to wait for a state. */
export function outage(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Mocha wiring for a fault-matrix file: the private stack starts once in `before`; `run()` creates a
 * {@link FaultRun} that is closed after the test, `sharedRun()` one that lives until the file ends
 * (for a scenario run once in `before` and checked by several tests). The tails of the workers' and
 * the services' logs are printed when a test fails (a shared run's once, at the end, also when its
 * hook failed); the stack is stopped in `after`, whatever happened.
 */
export function useFaultStack(
  name: string,
  stackOptions: FaultStackOptions = {},
): {
  readonly stack: FaultStack;
  run(runName: string, options?: FaultRunOptions): Promise<FaultRun>;
  sharedRun(runName: string, options?: FaultRunOptions): Promise<FaultRun>;
} {
  let stack: FaultStack | undefined;
  let runs: FaultRun[] = [];
  const shared: FaultRun[] = [];
  before(async function () {
    this.timeout(240_000);
    stack = await startFaultStack(name, stackOptions);
  });
  afterEach(async function () {
    this.timeout(60_000);
    if (this.currentTest?.state === 'failed') {
      for (const run of runs) console.error(`\n===== logs of ${run.name} (${this.currentTest.fullTitle()})\n${run.logs()}`);
    }
    for (const run of runs) await run.close();
    runs = [];
  });
  after(async function () {
    this.timeout(120_000);
    // Shared runs serve several tests (or failed in a hook, when no test ran): their logs once.
    const suite = this.test?.parent;
    if (suite && shared.length > 0 && suite.tests.concat(suite.suites.flatMap((s) => s.tests)).some((t) => t.state !== 'passed')) {
      for (const run of shared) console.error(`\n===== logs of ${run.name} (${suite.fullTitle()})\n${run.logs()}`);
    }
    for (const run of [...runs, ...shared]) await run.close();
    await stack?.stop();
  });
  const create = async (runName: string, options: FaultRunOptions | undefined, into: FaultRun[]) => {
    if (!stack) throw new Error('the fault stack is not started');
    const run = await FaultRun.create(stack, runName, options);
    into.push(run);
    return run;
  };
  return {
    get stack() {
      if (!stack) throw new Error('the fault stack is not started (use it inside a test or hook)');
      return stack;
    },
    run: (runName, options) => create(runName, options, runs),
    sharedRun: (runName, options) => create(runName, options, shared),
  };
}
