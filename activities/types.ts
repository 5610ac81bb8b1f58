/**
 * Inputs and results of the pipeline's activities and workflows. All plain JSON, so a person can
 * type them into `temporal workflow start --input …` or the Web UI's start form. Omitted fields
 * take the worker's `configs/streaming.yaml` values.
 */

import type { ConsumerRole } from '../pipeline/contracts/index.js';
import type { DatasetDefinition } from '../pipeline/datasets/index.js';

// Replay inputs carry a dataset definition; workflows may import types from here only.
export type { DatasetDefinition };

/** Input of one micro-batch shard consumer (`streamConsumerWorkflow` with role `microbatch`). */
export interface MicroBatchInput {
  /** Base event stream; the shard's stream is `${stream}.${shard}`. Default `bus.redis.stream`. */
  readonly stream?: string;
  readonly shard: number;
  /** Consumer group. Default `bus.redis.consumer_group`. */
  readonly group?: string;
  readonly windowMs?: number;
  readonly allowLateMs?: number;
  readonly flushTimeoutMs?: number;
  /** Events whose src_ts is further ahead of the wall clock go to the DLQ. Default `micro_batch.max_future_ms`. */
  readonly maxFutureMs?: number;
  /** Most entries read (and routed) in one round. Default `micro_batch.max_batch_size`. */
  readonly maxBatchSize?: number;
  /** Most events a shard buffers across open windows. Default `micro_batch.max_buffered_events`. */
  readonly maxBufferedEvents?: number;
  /** The activity returns after this long (a fresh attempt then continues), bounding each run. */
  readonly maxRunMs?: number;
  /** Base name of the feature snapshot streams. Default `bus.redis.features_stream`. */
  readonly featuresStream?: string;
  /** Shard count (to pick this shard's symbols when warming features). Default `bus.shards`. */
  readonly shards?: number;
}

export interface MicroBatchCounts {
  events: number;
  accepted: number;
  duplicates: number;
  late: number;
  invalid: number;
  /** Entries settled before a restart and seen again (own pending, lost acknowledgements): acknowledged only. */
  redelivered: number;
  /** Entries dead-lettered because the store refused their bar (`store_rejected`), after they were accepted. */
  rejected: number;
  windows: number;
  bars: number;
  inserted: number;
  updated: number;
  unchanged: number;
  forcedFlushes: number;
}

export interface MicroBatchRunResult {
  readonly counts: MicroBatchCounts;
  /** End of the last persisted window (epoch ms), or undefined when nothing was flushed yet. */
  readonly frontierMs: number | undefined;
  readonly stoppedBy: 'max_run' | 'cancelled';
}

/** What a micro-batch attempt heartbeats (visible in `temporal workflow describe` and `mdp status`). */
export interface MicroBatchHeartbeat {
  readonly consumer: string;
  readonly stream: string;
  readonly frontierMs: number | undefined;
  readonly watermarkMs: number | undefined;
  /** The same instants as ISO-8601, for people reading the heartbeat in the Web UI or `temporal workflow describe`. */
  readonly frontierIso?: string;
  readonly watermarkIso?: string;
  readonly lastId: string | undefined;
  readonly openWindows: number;
  readonly bufferedEvents: number;
  readonly lagMs: number;
  readonly counts: MicroBatchCounts;
  readonly jobRunId: number;
}

/** Input of a producer (`producerWorkflow`): the synthetic one, or the IBKR live feed. */
export interface ProducerInput {
  /**
   * Kind of producer: `synthetic` (default; events carry `producers.synthetic.provider`) or `ibkr`
   * (Interactive Brokers through TWS / IB Gateway, `producers.ibkr`; of the fields below it takes
   * `stream`, `shards`, `maxRunMs` and `resume`).
   */
  readonly provider?: 'synthetic' | 'ibkr';
  /** Base event stream (sharded as `${stream}.${shard}`). Default `bus.redis.stream`. */
  readonly stream?: string;
  readonly shards?: number;
  readonly symbols?: readonly string[];
  readonly seed?: number;
  readonly tickRate?: number;
  readonly priceVolatility?: number;
  /** Load mode: total events per second across symbols, instead of `tickRate` per symbol. */
  readonly rate?: number;
  /** Finite mode: publish this many events, then finish. */
  readonly count?: number;
  /** Finite mode: src_ts of the first event (ISO-8601); default now. */
  readonly startTs?: string;
  /**
   * Live/rate mode: return after this long (the workflow then continues), bounding each run. Finite
   * mode: the longest the producer waits for its consumers' backlog to fall under retention before
   * the attempt fails (and is retried from its heartbeat).
   */
  readonly maxRunMs?: number;
  /** Set by the workflow between runs: where the previous run stopped. Leave unset when starting. */
  readonly resume?: ProducerResume;
}

/** Where a producer run stopped, so the next run continues the same deterministic sequence. */
export interface ProducerResume {
  readonly published: number;
  readonly state: unknown;
}

export interface ProducerRunResult {
  /** Events published by this run. */
  readonly published: number;
  readonly finished: boolean;
  readonly resume: ProducerResume;
}

export interface ProducerHeartbeat {
  readonly published: number;
  /** The producer's state (SyntheticProducer's, or {@link IbkrResumeState}), so a retried attempt continues the same sequence. */
  readonly state: unknown;
  /** IBKR producer: the live feed as `mdp status` shows it. */
  readonly feed?: IbkrFeedView;
}

/** What an IBKR producer run carries to the next attempt or run. */
export interface IbkrResumeState {
  readonly ver: 1;
  /** The event builder's per-second tick counts (see IbkrEventBuilder). */
  readonly events: unknown;
  /** The last moment the feed was known live (epoch ms): a successor reports the time since as a gap. */
  readonly lastLiveMs: number | null;
  /** Gaps closed so far (all runs of this workflow), and their total length. */
  readonly gaps: number;
  readonly gapSeconds: number;
  readonly lastGap: IbkrGapView | null;
}

export interface IbkrGapView {
  readonly fromMs: number;
  readonly toMs: number;
  readonly seconds: number;
  readonly reason: string;
}

/** The IBKR live feed in a heartbeat. */
export interface IbkrFeedView {
  /** `starting` until first subscribed, then `live`, or `gap` while data is not flowing. */
  readonly status: 'starting' | 'live' | 'gap';
  /** The gap open now (`sinceIso`: the same instant, for people). */
  readonly openGap: { readonly sinceMs: number; readonly sinceIso?: string; readonly reason: string } | null;
  readonly gaps: number;
  readonly gapSeconds: number;
  readonly lastGap: (IbkrGapView & { readonly fromIso?: string; readonly toIso?: string }) | null;
  /** Contracts subscribed (of those within the line budget) and the ones refused, with why. */
  readonly contracts: number;
  readonly refused: readonly { readonly contract: string; readonly reason: string }[];
  /** Events dropped because the bus could not take them in time (reported as a gap too). */
  readonly dropped: number;
}

/** Input of one inference shard consumer (`streamConsumerWorkflow` with role `inference`). */
export interface InferenceInput {
  /** Base features stream; the shard's stream is `${stream}.${shard}`. Default `bus.redis.features_stream`. */
  readonly stream?: string;
  readonly shard: number;
  readonly group?: string;
  readonly signalsStream?: string;
  /** `rules` (configs/rules.yaml) or `sklearn` (an ONNX model, with rules as its fallback). */
  readonly adapter: 'rules' | 'sklearn';
  /** ONNX model for `sklearn`; default `inference.adapters.sklearn.model_path`. */
  readonly modelPath?: string;
  readonly maxRunMs?: number;
}

export interface InferenceCounts {
  snapshots: number;
  signals: number;
  invalid: number;
  inserted: number;
  updated: number;
  unchanged: number;
}

export interface InferenceRunResult {
  readonly counts: InferenceCounts;
  readonly adapter: string;
  readonly version: string;
  readonly stoppedBy: 'max_run' | 'cancelled';
}

export interface InferenceHeartbeat {
  readonly consumer: string;
  readonly stream: string;
  readonly adapter: string;
  readonly version: string;
  readonly lastId: string | undefined;
  readonly counts: InferenceCounts;
}

/** Input of `planReplay`: the replay's dataset and range as the user gave them. */
export interface ReplayPlanInput {
  readonly dataset: string;
  readonly from: string;
  readonly to: string;
  readonly chunkSpan?: string;
  readonly windowMs?: number;
  /** The dataset as the starter resolved it (absolute paths); absent: looked up in the worker's datasets file. */
  readonly definition?: DatasetDefinition;
}

/** The effective plan of a replay (range widened to whole windows, chunk span a multiple of the window). */
export interface ReplayPlan {
  readonly dataset: string;
  readonly format: 'jsonl' | 'csv' | 'store';
  readonly fromMs: number;
  readonly toMs: number;
  readonly windowMs: number;
  readonly chunkSpanMs: number;
  /** Bar interval label the replay writes, e.g. `2s`. */
  readonly interval: string;
  /** The dataset the chunks read (absent in plans made before it was carried: chunks look it up by name). */
  readonly definition?: DatasetDefinition;
  /** Events in the range (null when unknown up front: store datasets). */
  readonly eventsTotal: number | null;
  /** Chunks holding data (all chunks of the range for store datasets). */
  readonly chunksTotal: number;
  /** First minute holding data, or null when the range is empty. */
  readonly firstDataMs: number | null;
  /** Lines skipped for want of a parseable time, and a few of them as `file:line: reason`. */
  readonly skippedLines: number;
  readonly skippedSample: readonly string[];
}

/** Counts of a replay (or of one chunk): the micro-batch counts; `events` = events published to the replay's stream. */
export type ReplayCounts = Omit<MicroBatchCounts, 'forcedFlushes' | 'redelivered' | 'rejected'>;

export interface ReplayChunkInput {
  readonly dataset: string;
  /** The dataset to read, from the plan; absent: looked up by name in the worker's datasets file. */
  readonly definition?: DatasetDefinition;
  /** Publish the chunk's signals to the live signals stream too (marked `meta.source` `replay:<id>`); default false. */
  readonly publishSignals?: boolean;
  readonly chunk: { readonly fromMs: number; readonly toMs: number };
  readonly range: { readonly fromMs: number; readonly toMs: number; readonly windowMs: number; readonly chunkSpanMs: number };
  /** Event-time speed-up over the wall clock (e.g. 60 = one minute per second); omit for as fast as possible. */
  readonly speed?: number;
  readonly jobRunId: number;
  /** Totals of the chunks before, so the audit row's counts stay current. */
  readonly totalsBefore: Readonly<Record<string, number>>;
  /**
   * Features and signals after the chunk's bars: the adapter the live pipeline runs (`sklearn`
   * when `inference.adapters.sklearn.enabled`, else `rules` when `rules.enabled`), or `off`.
   * Default: that choice from the worker's config.
   */
  readonly inference?: 'rules' | 'sklearn' | 'off';
}

/** Inference counts of a replay chunk: feature snapshots evaluated (warm-up excluded) and signals emitted. */
export interface ReplayInferenceCounts {
  snapshots: number;
  signals: number;
}

export interface ReplayChunkResult {
  readonly fromMs: number;
  readonly toMs: number;
  /** `snapshots`/`signals` stay 0 when the replay runs no inference. */
  readonly counts: ReplayCounts & ReplayInferenceCounts;
  /** First minute with data after the chunk (so empty spans are skipped), or null when none is left. */
  readonly nextDataMs: number | null;
  /** The activity attempt that completed the chunk (> 1: a crashed attempt's chunk was redone). */
  readonly attempt: number;
  readonly elapsedMs: number;
}

export interface ReplayChunkHeartbeat {
  readonly chunkFromMs: number;
  readonly chunkToMs: number;
  /** The same instants as ISO-8601, for people reading the heartbeat. */
  readonly chunkFromIso?: string;
  readonly chunkToIso?: string;
  readonly events: number;
  readonly published: number;
  readonly counts: ReplayCounts;
}

/** Opens the `job_runs` row of a workflow-level job (a replay, a model reload). */
export interface JobAuditStart {
  readonly jobName: string;
  readonly meta: Readonly<Record<string, unknown>>;
}

/** Closes a job's `job_runs` row with its outcome and counts. */
export interface JobAuditFinish {
  readonly jobRunId: number;
  readonly status: 'success' | 'failure';
  readonly counts: Record<string, number>;
  readonly error?: string;
}

/** Input of `validateModel`: the model a reload would switch to (paths as the worker sees them). */
export interface ModelValidateInput {
  readonly modelPath: string;
  /** Reference inputs/outputs; default `<model>.reference.json` beside the model, when it exists. */
  readonly referencePath?: string;
}

/** A model that passed validation: loaded, shapes checked, reference rows matched, outputs in range. */
export interface ModelValidation {
  readonly modelPath: string;
  /** The sidecar's `version` (what signals carry as `meta.model_version`). */
  readonly version: string;
  /** The reference file checked, or null when there was none. */
  readonly referencePath: string | null;
  /** Rows run through the model for the range check (the reference rows, or a few probes). */
  readonly rows: number;
  /** Largest probability difference from the reference, or null without a reference. */
  readonly maxAbsDiff: number | null;
  readonly classes: readonly number[];
}

/** Input of `describeModel`: an inference consumer's check of the model it is about to run. */
export interface ModelDescribeInput {
  /** The model; omitted = the worker's `inference.adapters.sklearn.model_path`. */
  readonly modelPath?: string;
}

export interface ModelDescription {
  readonly adapter: string;
  readonly version: string;
}

/** The inference consumers a reload addresses by default (from the worker's config). */
export interface ModelReloadTargets {
  readonly featuresStream: string;
  readonly shards: number;
}

/** One consumer group on one shard stream that the recovery sweep looks at. */
export interface RecoveryTarget {
  readonly role: ConsumerRole;
  readonly shard: number;
  /** Base stream (`bus.redis.stream` for microbatch, `bus.redis.features_stream` for inference by default). */
  readonly stream?: string;
  /** Consumer group (`bus.redis.consumer_group` / `bus.redis.inference_group` by default). */
  readonly group?: string;
}

/**
 * Input of `sweepPendingEntries` and `consumerRecoveryWorkflow`, JSON, e.g. `{}` or
 * `{"minIdleMs":0,"targets":[{"role":"microbatch","shard":3}]}`. Omitted fields take the worker's config.
 */
export interface RecoveryInput {
  /** Every shard of both roles by default. */
  readonly targets?: readonly RecoveryTarget[];
  /** Default `recovery.min_idle_ms`. */
  readonly minIdleMs?: number;
  /** Default `bus.max_deliveries`. */
  readonly maxDeliveries?: number;
  /** Most pending entries examined per stream in one sweep (default 10000). */
  readonly maxEntries?: number;
  /**
   * Skip the sweep when no owner workflow of the swept shards is running (the `mdp-recovery`
   * Schedule sets it: with no consumer there is nothing to hand entries to). Default false: a sweep
   * on demand always runs.
   */
  readonly skipWhenNoConsumers?: boolean;
}

/** What the sweep did on one stream. */
export interface RecoveryStreamReport {
  readonly role: ConsumerRole;
  readonly shard: number;
  readonly stream: string;
  readonly group: string;
  /** The shard's owner: its workflow id, which is its Redis consumer name. */
  readonly owner: string;
  /** Pending entries examined (on Kafka: records delivered to the owner and not yet acknowledged). */
  readonly pending: number;
  /** Kafka: age of the group's oldest unacknowledged record, and records never delivered yet. */
  readonly lagMs?: number;
  readonly undelivered?: number;
  /** Entries of other consumers re-appended to the stream for the owner (and acknowledged). */
  readonly requeued: number;
  /** Entries delivered more than `maxDeliveries` times (or whose content is gone), written to the DLQ and acknowledged. */
  readonly deadLettered: number;
  /** Entries the owner itself holds (open windows, or read by a crashed attempt): left alone. */
  readonly skippedOwned: number;
  /** Entries of other consumers idle less than `minIdleMs`: left for a later sweep. */
  readonly skippedRecent: number;
  /** The group (or stream) does not exist yet. */
  readonly missing: boolean;
  /** More pending entries than `maxEntries`: the next sweep continues. */
  readonly truncated: boolean;
}

export interface RecoveryReport {
  /** Why nothing was swept (`no consumers running`); the streams are then empty. */
  readonly skipped?: string;
  /** The swept shards' owner workflows that were running, when the input asked to skip without them. */
  readonly ownersRunning?: readonly string[];
  /** The bus swept: on Kafka nothing is orphaned (see `note`); positions and lag are reported. */
  readonly bus?: 'redis' | 'kafka';
  readonly note?: string;
  readonly minIdleMs: number;
  readonly maxDeliveries: number;
  readonly dlqStream: string;
  readonly streams: readonly RecoveryStreamReport[];
  readonly totals: { readonly requeued: number; readonly deadLettered: number; readonly skippedOwned: number; readonly skippedRecent: number };
}
