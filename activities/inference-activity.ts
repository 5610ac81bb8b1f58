import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { Bus, BusEntry, DeadLetter } from '../pipeline/bus/index.js';
import { shardStream } from '../pipeline/bus/index.js';
import type { FeatureSnapshot, InferenceAdapter, SignalEventV1, UpsertCounts } from '../pipeline/contracts/index.js';
import type { Logger, Metrics } from '../pipeline/telemetry/index.js';
import type { InferenceCounts, InferenceHeartbeat, InferenceInput, InferenceRunResult } from './types.js';

export interface InferenceDefaults {
  readonly featuresStream: string;
  readonly signalsStream: string;
  readonly inferenceGroup: string;
  readonly dlqStream: string;
  readonly maxDeliveries: number;
  readonly maxRunMs: number;
}

export interface InferenceDeps {
  readonly openBus: () => Bus;
  readonly signals: { upsertSignals(signals: readonly SignalEventV1[]): Promise<UpsertCounts> };
  /** Builds the adapter a run uses (`rules`, or `sklearn` with rules as its fallback). */
  readonly createAdapter: (kind: InferenceInput['adapter'], modelPath?: string) => Promise<InferenceAdapter>;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly defaults: InferenceDefaults;
}

const READ_COUNT = 500;
const BLOCK_MS = 100;
const LAG_EVERY_MS = 1000;

function zeroCounts(): InferenceCounts {
  return { snapshots: 0, signals: 0, invalid: 0, inserted: 0, updated: 0, unchanged: 0 };
}

/** A feature snapshot from the bus, or why it is not one. */
function decodeSnapshot(payload: string | undefined): { ok: true; snapshot: FeatureSnapshot } | { ok: false; reason: string } {
  if (payload === undefined) return { ok: false, reason: 'entry has no payload field "d"' };
  try {
    const value = JSON.parse(payload) as Partial<FeatureSnapshot> | null;
    if (!value || value.ver !== 1 || typeof value.symbol !== 'string' || typeof value.provider !== 'string' ||
        typeof value.tsMs !== 'number' || typeof value.values !== 'object' || value.values === null) {
      return { ok: false, reason: 'not a v1 feature snapshot (ver, provider, symbol, tsMs, values)' };
    }
    return { ok: true, snapshot: value as FeatureSnapshot };
  } catch (err) {
    return { ok: false, reason: `malformed JSON: ${(err as Error).message}` };
  }
}

/**
 * One shard's inference consumer: reads feature snapshots from `${features}.${shard}` in order,
 * evaluates the adapter on each (sequentially, so per-symbol state such as edges and cooldowns is
 * deterministic), upserts the signals, publishes them to the signals stream, then acknowledges.
 * A crash before the acknowledgement re-evaluates the same snapshots and rewrites the same rows.
 */
export function createInferenceActivity(deps: InferenceDeps) {
  return async function runInferenceShard(input: InferenceInput): Promise<InferenceRunResult> {
    const ctx = Context.current();
    const d = deps.defaults;
    const execution = ctx.info.workflowExecution;
    if (!execution) throw ApplicationFailure.nonRetryable('runInferenceShard must run inside a workflow: the workflow id names the shard owner');
    const consumer = execution.workflowId;
    const stream = shardStream(input.stream ?? d.featuresStream, input.shard);
    const group = input.group ?? d.inferenceGroup;
    const signalsStream = input.signalsStream ?? d.signalsStream;
    const log = deps.log.child({ activity: 'runInferenceShard', stream, consumer, attempt: ctx.info.attempt });
    const metrics = deps.metrics;
    const counts = zeroCounts();
    let adapter: InferenceAdapter;
    try {
      adapter = await deps.createAdapter(input.adapter, input.modelPath);
    } catch (err) {
      // A rules file or model that does not load will not load on retry either.
      throw ApplicationFailure.nonRetryable(`cannot load the ${input.adapter} adapter: ${(err as Error).message}`, 'AdapterLoadError');
    }
    const bus = deps.openBus();
    let lastId: string | undefined;

    const process = async (entries: readonly BusEntry[]) => {
      const dead: DeadLetter[] = [];
      const emitted: SignalEventV1[] = [];
      for (const entry of entries) {
        if (entry.deliveries !== undefined && entry.deliveries > d.maxDeliveries) {
          dead.push({ sourceStream: stream, sourceId: entry.id, payload: entry.payload ?? entry.foreign, reason: `delivered ${entry.deliveries} times (max_deliveries ${d.maxDeliveries})`, deliveries: entry.deliveries });
          continue;
        }
        const decoded = decodeSnapshot(entry.payload);
        if (!decoded.ok) {
          dead.push({ sourceStream: stream, sourceId: entry.id, payload: entry.payload ?? entry.foreign, reason: decoded.reason });
          continue;
        }
        counts.snapshots++;
        const started = performance.now();
        const signals = await adapter.evaluate(decoded.snapshot);
        metrics.inferenceEvalSeconds.observe({ adapter: adapter.name }, (performance.now() - started) / 1000);
        emitted.push(...signals);
      }
      if (emitted.length > 0) {
        const written = await deps.signals.upsertSignals(emitted); // timed by the store's onWrite
        await bus.publish(signalsStream, emitted.map((s) => JSON.stringify(s)));
        counts.signals += emitted.length;
        counts.inserted += written.inserted;
        counts.updated += written.updated;
        counts.unchanged += written.unchanged;
        for (const s of emitted) metrics.signalsEmitted.inc({ name: s.name, adapter: s.meta.adapter });
      }
      if (dead.length > 0) {
        await bus.deadLetter(d.dlqStream, group, dead);
        counts.invalid += dead.length;
        metrics.errors.inc({ component: 'inference', reason: 'invalid_snapshot' }, dead.length);
      }
      const done = entries.map((e) => e.id).filter((id) => !dead.some((l) => l.sourceId === id));
      await bus.ack(stream, group, done);
      if (entries.length > 0) lastId = entries[entries.length - 1].id;
    };

    const beat = () => {
      const details: InferenceHeartbeat = { consumer, stream, adapter: adapter.name, version: adapter.version, lastId, counts: { ...counts } };
      ctx.heartbeat(details);
      metrics.consumerHeartbeat.set({ topic: stream, consumer }, Date.now() / 1000);
    };

    try {
      await bus.ensureGroup(stream, group);
      for (const reason of ['invalid_snapshot', 'activity_failure']) metrics.errors.inc({ component: 'inference', reason }, 0);
      log.info('inference consumer started', { adapter: adapter.name, version: adapter.version });
      for (let after = '0'; ;) {
        const entries = await bus.readPending(stream, group, consumer, after, READ_COUNT);
        if (entries.length === 0) break;
        await process(entries);
        after = entries[entries.length - 1].id;
        beat();
      }
      const deadline = Date.now() + (input.maxRunMs ?? d.maxRunMs);
      let nextLagAt = 0;
      while (!ctx.cancellationSignal.aborted && Date.now() < deadline) {
        const entries = await bus.readNew(stream, group, consumer, READ_COUNT, BLOCK_MS);
        if (entries.length > 0) await process(entries);
        if (Date.now() >= nextLagAt) {
          nextLagAt = Date.now() + LAG_EVERY_MS;
          const lag = await bus.lag(stream, group, Date.now());
          metrics.consumerLagMs.set({ topic: stream, group, consumer }, lag.lagMs);
          metrics.pendingEntries.set({ topic: stream, group }, lag.pending);
        }
        beat();
      }
      const stoppedBy = ctx.cancellationSignal.aborted ? 'cancelled' : 'max_run';
      const result: InferenceRunResult = { counts: { ...counts }, adapter: adapter.name, version: adapter.version, stoppedBy };
      log.info('inference consumer stopped', { stoppedBy, ...counts });
      if (stoppedBy === 'cancelled') throw new CancelledFailure('inference consumer cancelled', [result]);
      return result;
    } catch (err) {
      if (!(err instanceof CancelledFailure)) {
        metrics.errors.inc({ component: 'inference', reason: 'activity_failure' });
        log.error('inference consumer failed', { err });
      }
      throw err;
    } finally {
      metrics.consumerHeartbeat.remove({ topic: stream, consumer });
      metrics.consumerLagMs.remove({ topic: stream, group, consumer });
      metrics.pendingEntries.remove({ topic: stream, group });
      await adapter.close?.();
      await bus.close();
    }
  };
}
