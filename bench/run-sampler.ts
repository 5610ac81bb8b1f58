/**
 * Sampling while the run produces and settles: every second, the consumer groups' state on the bus,
 * the worker's metrics, and the RSS and CPU of the worker, the bench and the bus's server (Redis, or
 * the Kafka broker); with `--inference`,
 * the inference group's lag every 200 ms too. Prints a progress line every 5 s.
 */
import { loadavg } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import type { Bus } from '../pipeline/bus/index.js';
import { busNames } from '../pipeline/config/index.js';
import { pollUntil } from '../test/helpers/wait.js';
import type { BenchWorker } from './bench-worker.js';
import type { BusServer } from './bus-server.js';
import type { Cleanup } from './run-cleanup.js';
import { progress } from './bench-progress.js';
import type { Sample } from './bench-report.js';
import { fmtInt, fmtMs } from './bench-report.js';
import { readCpuSeconds, readCpuSecondsOfCommand, readMemory } from './proc-stats.js';
import { select } from './prometheus-text.js';
import type { PromSample } from './prometheus-text.js';
import type { RunPlan } from './run-plan.js';
import type { RunServices } from './run-services.js';

/**
 * `--inference` on: how often the inference group's lag is sampled. Snapshots come in bursts (one
 * per symbol per window) and are acknowledged within milliseconds, so the 1 s sampler would
 * rarely see one unacknowledged; this one is cheap (a few bus requests per shard).
 */
export const INFERENCE_LAG_EVERY_MS = 200;
/**
 * How often the first published entry is looked for until found: Redis trims a window's entries
 * once it is acknowledged, which can be well under a second after its first event.
 */
const FIRST_ENTRY_EVERY_MS = 50;
const SAMPLE_EVERY_MS = 1000;
const PROGRESS_EVERY_MS = 5000;

/** The inference group on the features streams, summed (lag: max) over shards. */
export interface InferenceState {
  readonly atMs: number;
  /** Snapshots ever added to the features streams. */
  readonly published: number;
  readonly pending: number;
  readonly undelivered: number;
  /** Age of the oldest unacknowledged snapshot. */
  readonly lagMs: number;
}

/** The consumer group on the event streams, summed (lag: max) over shards, and the features streams after it. */
export interface PipelineState {
  readonly atMs: number;
  readonly published: number;
  readonly pending: number;
  readonly undelivered: number;
  readonly lagMs: number;
  readonly pendingByShard: readonly number[];
  readonly featuresPublished: number;
  /** `--inference` on only. */
  readonly inference: InferenceState | undefined;
}

/** How the wait for every event (and snapshot) to be acknowledged ended. */
export interface SettleOutcome {
  /** Every published event was acknowledged at some point. */
  readonly settled: boolean;
  /** When the events first read as settled. */
  readonly eventsSettledAtMs: number | undefined;
  /** `--inference` on: every snapshot was acknowledged by the inference group too. */
  readonly inferenceSettled: boolean;
  /** The state that settled, or one read when the wait ran out. */
  readonly finalState: PipelineState;
}

/** CPU seconds (user + system) of each process so far, at `atMs`. */
export interface CpuReading {
  readonly atMs: number;
  readonly worker: number | undefined;
  readonly bench: number | undefined;
  /** The bus's server: redis-server, or the Kafka broker. */
  readonly server: number | undefined;
  /** Every `postgres` process (server and backends), and the `temporal` dev server. */
  readonly postgres: number;
  readonly temporal: number;
}

/** Max `stream_consumer_lag_ms` over the consumers of `topics`; undefined when none exports it. */
function lagOf(metrics: readonly PromSample[], topics: readonly string[]): number | undefined {
  const values = select(metrics, 'stream_consumer_lag_ms')
    .filter((m) => topics.includes(m.labels.topic ?? ''))
    .map((m) => m.value);
  return values.length > 0 ? Math.max(...values) : undefined;
}

export class RunSampler {
  /** One a second from production start until {@link stop}. */
  readonly samples: Sample[] = [];
  /** `--inference` on: one every {@link INFERENCE_LAG_EVERY_MS}. */
  readonly inferenceLags: InferenceState[] = [];
  /** Production start: when sampling started. */
  readonly startedAtMs: number;
  /** 1-minute load average at production start. */
  readonly loadAtStart: number;
  readonly cpuStart: CpuReading;
  readonly #plan: RunPlan;
  readonly #server: BusServer;
  readonly #bus: Bus;
  readonly #worker: BenchWorker;
  #phase: Sample['phase'] = 'produce';
  #sampling = true;
  #loops: Promise<void>[] = [];
  #lastPrinted: Sample | undefined;
  #sampleError: string | undefined;
  #firstEntryMs: number | undefined;

  /** Starts sampling now; it stops at the end of the run, whatever happened. */
  static async start(plan: RunPlan, services: RunServices, worker: BenchWorker, cleanup: Cleanup): Promise<RunSampler> {
    const startedAtMs = Date.now();
    const loadAtStart = loadavg()[0];
    const sampler = new RunSampler(plan, services, worker, startedAtMs, loadAtStart, await RunSampler.#cpuAt(services.server, worker));
    sampler.#loops = [sampler.#watchFirstEntry(), sampler.#sampleEverySecond(), plan.inferenceOn ? sampler.#sampleInferenceLag() : Promise.resolve()];
    cleanup.add('stop sampling', () => sampler.stop());
    return sampler;
  }

  private constructor(plan: RunPlan, services: RunServices, worker: BenchWorker, startedAtMs: number, loadAtStart: number, cpuStart: CpuReading) {
    this.#plan = plan;
    this.#server = services.server;
    this.#bus = services.bus;
    this.#worker = worker;
    this.startedAtMs = startedAtMs;
    this.loadAtStart = loadAtStart;
    this.cpuStart = cpuStart;
  }

  /** When the run's first event was appended (from the bus), once seen. */
  get firstEntryMs(): number | undefined {
    return this.#firstEntryMs;
  }

  /** The first error of a sample, if any failed (sampling goes on). */
  get sampleError(): string | undefined {
    return this.#sampleError;
  }

  /** Stops both samplers and waits for their last sample; idempotent. */
  async stop(): Promise<void> {
    this.#sampling = false;
    await Promise.all(this.#loops);
  }

  cpuAt(): Promise<CpuReading> {
    return RunSampler.#cpuAt(this.#server, this.#worker);
  }

  static async #cpuAt(server: BusServer, worker: BenchWorker): Promise<CpuReading> {
    return {
      atMs: Date.now(),
      worker: readCpuSeconds(worker.pid),
      bench: readCpuSeconds('self'),
      server: (await server.stats()).cpuSeconds,
      postgres: readCpuSecondsOfCommand('postgres'),
      temporal: readCpuSecondsOfCommand('temporal'),
    };
  }

  /** The inference group on the features streams: pending, undelivered, oldest unacknowledged age (max over shards). */
  async readInference(): Promise<InferenceState> {
    const now = Date.now();
    const states = await Promise.all(
      this.#plan.featureStreams.map(async (stream) => {
        const lag = await this.#bus.lag(stream, busNames(this.#plan.config).inference_group, now);
        return { lag, added: await this.#bus.added(stream) };
      }),
    );
    return {
      atMs: now,
      published: states.reduce((acc, s) => acc + s.added, 0),
      pending: states.reduce((acc, s) => acc + s.lag.pending, 0),
      undelivered: states.reduce((acc, s) => acc + s.lag.undelivered, 0),
      lagMs: Math.max(0, ...states.map((s) => s.lag.lagMs)),
    };
  }

  async readState(): Promise<PipelineState> {
    const { streams, featureStreams, inferenceOn } = this.#plan;
    const group = busNames(this.#plan.config).consumer_group;
    const now = Date.now();
    // Shards in parallel, so a sample stays short while the bus is busy with a flood.
    const shardStates = await Promise.all(
      streams.map(async (stream) => {
        // Group state first, then entries-added: read the other way round, entries published in
        // between would count as pending before they count as published.
        const lag = await this.#bus.lag(stream, group, now);
        return { lag, added: await this.#bus.added(stream) };
      }),
    );
    // The features streams after the events: a window's snapshots are published before its events
    // are acknowledged, so once the events read as settled every snapshot is already counted here.
    const inference = inferenceOn ? await this.readInference() : undefined;
    const featuresPublished =
      inference?.published ?? (await Promise.all(featureStreams.map((stream) => this.#bus.added(stream)))).reduce((acc, n) => acc + n, 0);
    return {
      atMs: now,
      published: shardStates.reduce((acc, s) => acc + s.added, 0),
      pending: shardStates.reduce((acc, s) => acc + s.lag.pending, 0),
      undelivered: shardStates.reduce((acc, s) => acc + s.lag.undelivered, 0),
      lagMs: Math.max(0, ...shardStates.map((s) => s.lag.lagMs)),
      pendingByShard: shardStates.map((s) => s.lag.pending),
      featuresPublished,
      inference,
    };
  }

  async #sampleEverySecond(): Promise<void> {
    const { streams, featureStreams, inferenceOn } = this.#plan;
    const workerPid = this.#worker.pid;
    let next = Date.now();
    while (this.#sampling) {
      try {
        const [state, metrics, serverStats] = await Promise.all([this.readState(), this.#worker.scrape(), this.#server.stats()]);
        const sample: Sample = {
          atMs: state.atMs,
          phase: this.#phase,
          published: state.published,
          pending: state.pending,
          pendingByShard: state.pendingByShard,
          undelivered: state.undelivered,
          busLagMs: state.lagMs,
          // The inference consumers export the same gauge for the features streams: keep the two apart.
          metricLagMs: metrics ? (lagOf(metrics, streams) ?? 0) : undefined,
          ...(inferenceOn && metrics ? { inferenceMetricLagMs: lagOf(metrics, featureStreams) } : {}),
          workerRssBytes: readMemory(workerPid)?.rssBytes,
          benchRssBytes: readMemory('self')?.rssBytes,
          serverRssBytes: serverStats.rssBytes,
          featuresPublished: state.featuresPublished,
          ...(state.inference
            ? { inferencePending: state.inference.pending, inferenceUndelivered: state.inference.undelivered, inferenceLagMs: state.inference.lagMs }
            : {}),
        };
        this.samples.push(sample);
        this.#printProgress(sample, state.inference);
      } catch (err) {
        this.#sampleError ??= (err as Error).message;
      }
      next += SAMPLE_EVERY_MS;
      await delay(Math.max(0, next - Date.now()));
    }
  }

  /** A progress line every {@link PROGRESS_EVERY_MS}, with rates since the previous one. */
  #printProgress(sample: Sample, inference: InferenceState | undefined): void {
    if (this.#lastPrinted !== undefined && sample.atMs - this.#lastPrinted.atMs < PROGRESS_EVERY_MS) return;
    const previous = this.#lastPrinted ?? sample;
    this.#lastPrinted = sample;
    const secs = Math.max(0.001, (sample.atMs - previous.atMs) / 1000);
    const acked = (s: Sample) => s.published - s.pending - s.undelivered;
    progress(
      `t+${String(Math.round((sample.atMs - this.startedAtMs) / 1000)).padStart(3)}s ${this.#phase.padEnd(7)} published ${fmtInt(sample.published)} (${fmtInt((sample.published - previous.published) / secs)}/s)` +
        ` acked ${fmtInt(acked(sample))} (${fmtInt((acked(sample) - acked(previous)) / secs)}/s) pending ${fmtInt(sample.pending)} undelivered ${fmtInt(sample.undelivered)}` +
        ` lag ${fmtMs(sample.metricLagMs ?? sample.busLagMs)} snapshots ${fmtInt(sample.featuresPublished)}` +
        (inference ? ` (inference pending ${fmtInt(inference.pending)} undelivered ${fmtInt(inference.undelivered)} lag ${fmtMs(inference.lagMs)})` : '') +
        ` worker RSS ${((sample.workerRssBytes ?? 0) / 1048576).toFixed(0)} MB`,
    );
  }

  /** Looks for the first published entry every {@link FIRST_ENTRY_EVERY_MS} until it appears. */
  async #watchFirstEntry(): Promise<void> {
    while (this.#sampling && this.#firstEntryMs === undefined) {
      try {
        this.#firstEntryMs = await this.#server.firstEntryMs(this.#plan.streams);
      } catch (err) {
        this.#sampleError ??= (err as Error).message;
      }
      await delay(FIRST_ENTRY_EVERY_MS);
    }
  }

  /** The inference lag, more often than the rest (see {@link INFERENCE_LAG_EVERY_MS}). */
  async #sampleInferenceLag(): Promise<void> {
    let next = Date.now();
    while (this.#sampling) {
      try {
        this.inferenceLags.push(await this.readInference());
      } catch (err) {
        this.#sampleError ??= (err as Error).message;
      }
      next += INFERENCE_LAG_EVERY_MS;
      await delay(Math.max(0, next - Date.now()));
    }
  }

  /**
   * After producing: polls every 250 ms until every published event is acknowledged — committed
   * in a bar, or routed late / to the DLQ — and with inference on, every feature snapshot too.
   * Samples from now on belong to the settle phase.
   */
  async waitUntilSettled(timeoutMs: number, guard: () => void): Promise<SettleOutcome> {
    this.#phase = 'settle';
    progress(`production stopped; waiting for every event${this.#plan.inferenceOn ? ' and every feature snapshot' : ''} to be acknowledged...`);
    let eventsSettledAtMs: number | undefined;
    const settledState = await pollUntil(
      timeoutMs,
      async () => {
        const state = await this.readState();
        const eventsDone = state.pending === 0 && state.undelivered === 0;
        if (eventsDone) eventsSettledAtMs ??= state.atMs;
        const inferenceDone = state.inference === undefined || (state.inference.pending === 0 && state.inference.undelivered === 0);
        return eventsDone && inferenceDone ? state : undefined;
      },
      { everyMs: 250, guard },
    );
    return {
      settled: eventsSettledAtMs !== undefined,
      eventsSettledAtMs,
      inferenceSettled: this.#plan.inferenceOn && settledState !== undefined,
      finalState: settledState ?? (await this.readState()),
    };
  }
}
