/**
 * One scenario of the integration suite that runs on both buses: its own config (unique streams,
 * groups, provider and task queue on the bus named by `bus.type`), workers on the file's Temporal
 * dev server (in-process, or real worker processes to kill), the shard consumer workflows, known
 * events published through the `Bus` with the ids it returned, and the exact accounting of them,
 * all read through {@link BusProbe}, so one scenario's code holds for Redis and for Kafka.
 *
 * {@link useBusRuns} wires it into mocha: runs are closed after each test, with the tails of their
 * logs printed when the test failed.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { Kysely } from 'kysely';
import type { BusPayload } from '../../pipeline/bus/index.js';
import { decodePacked, DEFAULT_EVENT_FORMAT, encodeEvent, encodeShardBatch, shardOf, shardStream } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import { busNames } from '../../pipeline/config/index.js';
import type { Bar, StreamEventV1 } from '../../pipeline/contracts/index.js';
import type { Database } from '../../store/index.js';
import { StoreClient } from '../../store/index.js';
import type { LoopStatus } from '../../workflows/index.js';
import { inferenceWorkflowId, microBatchWorkflowId } from '../../workflows/index.js';
import type { Accounting, AccountingOptions, ProducedEntry } from './accounting.js';
import { accountFor, assertWindowsOpen, waitForExactBars, waitForPending } from './accounting.js';
import { BusProbe } from './bus-probe.js';
import { commitThenOpen, planWindows } from './event-plan.js';
import { tailFile, track, untrack } from './fault-stack.js';
import { withTimeout } from './fault-run.js';
import { createTestWorker, deepMerge, removeTestRun, REPO_ROOT, symbolsCoveringShards, testConfig, uniqueTag } from './services.js';
import type { PolledWorker } from './worker-process.js';
import { startLabelledWorker, waitUntilPolling, writeConfigFile } from './worker-process.js';

export type BusType = 'redis' | 'kafka';

/** Every run's tag starts with this, so its provider is `synth-<prefix>…` (what the suite's bar audit watches). */
export const BUS_RUN_TAG_PREFIX = 'bs';
/** The provider prefix of every {@link BusRun}: see `installBarAudit`. */
export const BUS_RUN_PROVIDER_PREFIX = `synth-${BUS_RUN_TAG_PREFIX}`;

const LOG_DIR = resolve(REPO_ROOT, '.data/test/logs/bus-suite');
/** Files a run writes for its workers (config, datasets catalog). */
export const RUN_DIR = resolve(REPO_ROOT, '.data/test/bus-suite');

export interface BusRunOptions {
  /** Shard streams (default 2). */
  readonly shards?: number;
  /** Config overrides on top of the test config. */
  readonly overrides?: Record<string, unknown>;
}

export class BusRun {
  readonly name: string;
  readonly tag: string;
  readonly config: StreamingConfig;
  /** The stream and group names of the run's bus. */
  readonly names: ReturnType<typeof busNames>;
  readonly provider: string;
  readonly shards: number;
  readonly windowMs: number;
  /** The event shard streams, `streams[shard]`. */
  readonly streams: readonly string[];
  /** The feature snapshot shard streams. */
  readonly featureStreams: readonly string[];
  readonly probe: BusProbe;
  readonly db: Kysely<Database>;
  readonly client: Client;
  /** Every entry this run published and the bus acknowledged, in order. */
  readonly produced: ProducedEntry[] = [];
  readonly processes: PolledWorker[] = [];
  /** The in-process worker's log, and every worker process's. */
  readonly logFile: string;
  readonly #env: TestWorkflowEnvironment;
  readonly #started = new Set<string>();
  #worker: { worker: Worker; running: Promise<void> } | undefined;
  #configFile: string | undefined;
  #closed: Promise<void> | undefined;

  private constructor(init: { name: string; tag: string; config: StreamingConfig; env: TestWorkflowEnvironment; db: Kysely<Database>; probe: BusProbe }) {
    this.name = init.name;
    this.tag = init.tag;
    this.config = init.config;
    this.names = busNames(init.config);
    this.provider = init.config.producers.synthetic.provider;
    this.shards = init.config.bus.shards;
    this.windowMs = init.config.micro_batch.window_ms;
    this.streams = Array.from({ length: this.shards }, (_, shard) => shardStream(this.names.stream, shard));
    this.featureStreams = Array.from({ length: this.shards }, (_, shard) => shardStream(this.names.features_stream, shard));
    this.#env = init.env;
    this.client = init.env.client;
    this.db = init.db;
    this.probe = init.probe;
    this.logFile = resolve(LOG_DIR, `${init.tag}-worker.log`);
  }

  /** A run with its own names on `busType`, on the file's Temporal server and database. */
  static async create(env: TestWorkflowEnvironment, db: Kysely<Database>, busType: BusType, name: string, options: BusRunOptions = {}): Promise<BusRun> {
    const tag = uniqueTag(BUS_RUN_TAG_PREFIX);
    const config = testConfig(
      tag,
      deepMerge(
        {
          bus: { type: busType, shards: options.shards ?? 2 },
          temporal: { address: env.address },
          // A replay's own streams are named after the run too; its catalog is the run's to write (see datasetsFile).
          replay: { stream: `${tag}.replay`, datasets_file: resolve(RUN_DIR, `${tag}-datasets.yaml`) },
        },
        options.overrides ?? {},
      ),
    );
    mkdirSync(LOG_DIR, { recursive: true });
    mkdirSync(RUN_DIR, { recursive: true });
    const probe = await BusProbe.open(config);
    return new BusRun({ name, tag, config, env, db, probe });
  }

  /** The run's replay dataset catalog (`replay.datasets_file`): written by a test that replays. */
  get datasetsFile(): string {
    return this.config.replay.datasets_file;
  }

  /** Symbols of the run's provider that land on every shard. */
  get symbols(): readonly string[] {
    return symbolsCoveringShards(this.provider, this.shards);
  }

  // ------------------------------------------------------------------------------------------
  // Workers and consumers

  /** Starts the in-process worker (real activities, this run's config) on the run's task queue; once. */
  async startWorker(): Promise<void> {
    if (this.#worker) return;
    const worker = await createTestWorker(this.#env, this.config, this.db, { logLevel: 'INFO', logFile: this.logFile });
    this.#worker = { worker, running: worker.run() };
  }

  /** Starts a real worker process (`dist/workers/worker.js`) on this run's config and waits until it polls. */
  async startWorkerProcess(label = `worker-${this.processes.length + 1}`): Promise<PolledWorker> {
    this.#configFile ??= writeConfigFile({ ...this.config, telemetry: { ...this.config.telemetry, log_level: 'INFO' } }, `bus-suite/${this.tag}-config`);
    const worker = startLabelledWorker(this.#configFile, `logs/bus-suite/${this.tag}-${label}`, label);
    this.processes.push(worker);
    track(worker.pid);
    void worker.exited.then(() => untrack(worker.pid));
    await waitUntilPolling(this.client, this.config.temporal.task_queue, worker);
    return worker;
  }

  /** SIGKILL, and wait for the process to be gone. */
  async killWorker(worker: PolledWorker): Promise<void> {
    worker.child.kill('SIGKILL');
    await worker.exited;
  }

  consumerId(shard: number, role: 'microbatch' | 'inference' = 'microbatch'): string {
    return role === 'microbatch' ? microBatchWorkflowId(this.names.stream, shard) : inferenceWorkflowId(this.names.features_stream, shard);
  }

  /** Starts every shard's consumer workflow of `role` (inference with the rules adapter). */
  async startConsumers(role: 'microbatch' | 'inference' = 'microbatch'): Promise<WorkflowHandle[]> {
    const handles: WorkflowHandle[] = [];
    for (let shard = 0; shard < this.shards; shard++) {
      const workflowId = this.consumerId(shard, role);
      this.#started.add(workflowId);
      handles.push(
        await this.client.workflow.start('streamConsumerWorkflow', {
          taskQueue: this.config.temporal.task_queue,
          workflowId,
          args: [role === 'microbatch' ? { role, shard } : { role, shard, adapter: 'rules' }],
        }),
      );
    }
    return handles;
  }

  /** Signals `drain` to every shard's consumer of `role` and waits for the workflows to finish. */
  async drain(role: 'microbatch' | 'inference' = 'microbatch', timeoutMs = 60_000): Promise<LoopStatus[]> {
    const handles = this.streams.map((_, shard) => this.client.workflow.getHandle(this.consumerId(shard, role)));
    for (const h of handles) await h.signal('drain');
    return Promise.all(handles.map((h) => withTimeout(h.result() as Promise<LoopStatus>, timeoutMs, `consumer ${h.workflowId} to drain`)));
  }

  /** Workflows this run started itself or through the CLI's functions (terminated at close if still running). */
  started(workflowId: string): void {
    this.#started.add(workflowId);
  }

  // ------------------------------------------------------------------------------------------
  // Events

  /**
   * Deterministic events for `windows` consecutive windows of `perWindow` events each across the
   * run's symbols, from an aligned window 10 minutes ago (event time is the producer's: a window
   * closes when later events arrive, or by the idle rule).
   */
  plan(windows: number, perWindow: number, options: { seed?: number; symbols?: readonly string[] } = {}): StreamEventV1[][] {
    const startMs = Math.floor((Date.now() - 10 * 60_000) / this.windowMs) * this.windowMs;
    return planWindows({
      provider: this.provider,
      symbols: options.symbols ?? this.symbols,
      windowMs: this.windowMs,
      startMs,
      windows,
      perWindow,
      seed: options.seed,
    });
  }

  /** The shard stream an event belongs on (by the pipeline's own sharding rule). */
  streamOf(event: StreamEventV1): string {
    return this.streams[shardOf(event.provider, event.symbol, this.shards)];
  }

  /** How the run's producers encode events (`bus.encoding`, `bus.redis.frame_events`). */
  get eventFormat() {
    return this.probe.bus.eventFormat ?? DEFAULT_EVENT_FORMAT;
  }

  /**
   * Publishes events to their shard streams through the bus, encoded as the pipeline's producers
   * encode them (`encodeShardBatch`: the run's encoding and frames), each shard's events in order,
   * recording each with the id it got (`<entry>/<index>` in a frame).
   */
  async publish(events: readonly StreamEventV1[], label?: string): Promise<ProducedEntry[]> {
    const byStream = new Map<string, StreamEventV1[]>();
    for (const event of events) {
      const stream = this.streamOf(event);
      byStream.set(stream, [...(byStream.get(stream) ?? []), event]);
    }
    const out: ProducedEntry[] = [];
    for (const [stream, batch] of byStream) {
      const ids = await this.probe.bus.publish(stream, encodeShardBatch(batch, this.eventFormat), { trim: false });
      batch.forEach((event, k) => out.push({ stream, id: ids[k], payload: JSON.stringify(event), event, expect: 'valid', ...(label ? { label } : {}) }));
    }
    this.produced.push(...out);
    return out;
  }

  /**
   * Publishes entries as given (e.g. poison), in order, recording their ids: each encoded as the
   * run says (`bytes` as they are when given: malformed msgpack), framed like a producer's (a frame
   * holds consecutive entries of one stream alike in kind, text or bytes).
   */
  async publishEntries(entries: readonly Omit<ProducedEntry, 'id'>[]): Promise<ProducedEntry[]> {
    const { encoding, frameEvents } = this.eventFormat;
    // What goes in a frame: JSON text, or under msgpack the event itself (a frame packs its events
    // together). Bytes that are no msgpack value (poison) can only travel as an entry of their own.
    const encoded = (e: Omit<ProducedEntry, 'id'>): { text: string } | { value: unknown } | { bytes: Uint8Array } => {
      if (e.bytes !== undefined) {
        const decoded = decodePacked(e.bytes);
        return decoded.ok && frameEvents > 1 ? { value: decoded.value } : { bytes: e.bytes };
      }
      return encoding === 'msgpack' && e.event ? { value: e.event } : { text: e.payload };
    };
    const kindOf = (x: ReturnType<typeof encoded>) => ('text' in x ? 'text' : 'value' in x ? 'value' : 'bytes');
    const single = (x: ReturnType<typeof encoded>): BusPayload => ('text' in x ? x.text : 'value' in x ? encodeEvent(x.value, 'msgpack') : x.bytes);
    const out: ProducedEntry[] = [];
    for (let i = 0; i < entries.length;) {
      let j = i;
      while (j < entries.length && entries[j].stream === entries[i].stream) j++;
      const batch = entries.slice(i, j).map(encoded);
      const payloads: BusPayload[] = [];
      for (let k = 0; k < batch.length;) {
        const kind = kindOf(batch[k]);
        let end = k + 1;
        while (kind !== 'bytes' && end < batch.length && end - k < frameEvents && kindOf(batch[end]) === kind) end++;
        const piece = batch.slice(k, end);
        if (piece.length === 1) payloads.push(single(piece[0]));
        else if (kind === 'text') payloads.push({ frame: piece.map((x) => (x as { text: string }).text) });
        else payloads.push({ values: piece.map((x) => (x as { value: unknown }).value) });
        k = end;
      }
      const ids = await this.probe.bus.publish(entries[i].stream, payloads, { trim: false });
      entries.slice(i, j).forEach((e, k) => out.push({ ...e, id: ids[k] }));
      i = j;
    }
    this.produced.push(...out);
    return out;
  }

  /** Appends one entry with these raw fields (a foreign or broken entry no producer writes), recorded as poison. */
  async appendRaw(stream: string, fields: Record<string, string | Buffer>, label: string, payload: string): Promise<ProducedEntry> {
    const id = await this.probe.appendRaw(stream, fields);
    const entry: ProducedEntry = { stream, id, payload, expect: 'poison', label };
    this.produced.push(entry);
    return entry;
  }

  /**
   * Creates a group that never reads on each stream, so what the pipeline's groups acknowledge stays
   * readable for the test (Redis trims what every group acknowledged; Kafka keeps it anyway).
   */
  async keep(streams: readonly string[]): Promise<void> {
    for (const stream of streams) await this.probe.bus.ensureGroup(stream, `${this.tag}-keep`);
  }

  // ------------------------------------------------------------------------------------------
  // Observations

  async bars(): Promise<Bar[]> {
    return new StoreClient(this.db).listBars({ provider: this.provider });
  }

  /** Waits until the stored bars of these events' windows equal their aggregate. */
  waitForBars(events: readonly StreamEventV1[], what: string, timeoutMs = 60_000): Promise<Bar[]> {
    return waitForExactBars(this.db, this.provider, events, this.windowMs, what, timeoutMs);
  }

  /**
   * Waits until a shard has exactly `pending` events delivered and unacknowledged, and none unread:
   * with frames, the entries of `pending` events published in one {@link publish} (Redis counts entries).
   */
  waitForPending(shard: number, pending: number, what: string, timeoutMs = 60_000): Promise<void> {
    const n = this.probe.kind === 'redis' ? this.eventFormat.frameEvents : 1;
    return waitForPending(this.probe.reader(), this.streams[shard], this.names.consumer_group, Math.ceil(pending / n), what, timeoutMs);
  }

  /** See {@link commitThenOpen}: windows `0..k-1` committed, window k half published and open; returns its second half. */
  commitThenOpen(plan: readonly StreamEventV1[][], k: number): Promise<StreamEventV1[]> {
    return commitThenOpen(this, plan, k);
  }

  /** Fails unless no bar of these events' windows is stored (their windows are still open). */
  assertOpen(events: readonly StreamEventV1[], what: string): Promise<void> {
    return assertWindowsOpen(this.db, this.provider, events, this.windowMs, what);
  }

  /** Waits until the group has nothing pending and nothing unread on `streams` (default: the event shards); false after `timeoutMs`. */
  settle(timeoutMs = 60_000, streams: readonly string[] = this.streams, group = this.names.consumer_group): Promise<boolean> {
    return this.probe.waitSettled(streams, group, timeoutMs);
  }

  /** The exact accounting of everything this run produced, read through the bus (see accounting.ts). */
  account(options: Partial<Pick<AccountingOptions, 'allowLate' | 'allowValidInDlq' | 'produced'>> = {}): Promise<Accounting> {
    return accountFor({
      reader: this.probe.reader(),
      db: this.db,
      streams: this.streams,
      group: this.names.consumer_group,
      lateStream: this.names.late_stream,
      dlqStream: this.names.dlq_stream,
      windowMs: this.windowMs,
      produced: this.produced,
      ...options,
    });
  }

  /** Tails of the run's worker logs. */
  logs(lines = 40): string {
    return [this.logFile, ...this.processes.map((w) => w.logFile)].map((f) => `----- ${f}\n${tailFile(f, lines)}`).join('\n');
  }

  /**
   * Stops what the run started (worker processes, its still-running workflows, the in-process
   * worker) and removes what it wrote (rows, streams or topics, groups); idempotent, never throws.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.allSettled(this.processes.map((w) => this.killWorker(w)));
      await Promise.allSettled(
        [...this.#started].map(async (id) => {
          const handle = this.client.workflow.getHandle(id);
          if ((await handle.describe()).status.name === 'RUNNING') await handle.terminate('test run closed');
        }),
      );
      if (this.#worker) {
        this.#worker.worker.shutdown();
        await this.#worker.running.catch((err: unknown) => appendFileSync(this.logFile, `worker stopped with ${String(err)}\n`));
      }
      await removeTestRun(this.config, { db: this.db }).catch(() => undefined);
      await this.probe.removeRun(this.tag).catch(() => undefined);
      await this.probe.close().catch(() => undefined);
    })();
    return this.#closed;
  }
}

/**
 * Mocha wiring for one bus's describe block: `run()` creates a {@link BusRun} closed after the test
 * (its logs printed first when the test failed). `services()` gives the file's Temporal server and
 * database, started once for both buses.
 */
export function useBusRuns(
  busType: BusType,
  services: () => { readonly env: TestWorkflowEnvironment; readonly db: Kysely<Database> },
  /** Config every run of the block gets (a variant: `bus.encoding`, `bus.redis.frame_events`), under each run's own overrides. */
  variant: Record<string, unknown> = {},
): { run(name: string, options?: BusRunOptions): Promise<BusRun> } {
  let runs: BusRun[] = [];
  afterEach(async function () {
    this.timeout(60_000);
    if (this.currentTest?.state === 'failed') {
      for (const run of runs) console.error(`\n===== logs of ${run.name} on ${busType} (${this.currentTest.fullTitle()})\n${run.logs()}`);
    }
    for (const run of runs) await run.close();
    runs = [];
  });
  return {
    async run(name, options) {
      const { env, db } = services();
      const run = await BusRun.create(env, db, busType, name, { ...options, overrides: deepMerge(variant, options?.overrides ?? {}) });
      runs.push(run);
      return run;
    },
  };
}
