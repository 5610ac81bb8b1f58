import type { Bus } from '../pipeline/bus/index.js';
import { shardStream } from '../pipeline/bus/index.js';
import type { FeatureSnapshot, SignalEventV1, SignalSink } from '../pipeline/contracts/index.js';
import { parseDurationMs } from '../pipeline/contracts/index.js';
import type { FeatureWindowSpec } from '../pipeline/features/index.js';
import { FeatureEngine } from '../pipeline/features/index.js';
import { routeEntries, SNAPSHOT_PAYLOADS } from '../pipeline/routing/index.js';
import type { Logger, Metrics } from '../pipeline/telemetry/index.js';
import { addUpserts } from './counts.js';
import type { OutcomeTarget } from './entry-outcomes.js';
import { sendToDlq, zeroOutcomeMetrics } from './entry-outcomes.js';
import type { StoredBarsReader } from './replay-chunk.js';
import { runShardConsumer } from './shard-consumer.js';
import { warmOnStoredBars, warmSpanMs } from './adapter-warmup.js';
import type { AdapterFactory } from './signal-emitter.js';
import { loadAdapter, SignalEmitter } from './signal-emitter.js';
import type { InferenceCounts, InferenceHeartbeat, InferenceInput, InferenceRunResult } from './types.js';

/** Settings an inference run needs beyond its input (from the worker's config). */
export interface InferenceDefaults {
  readonly featuresStream: string;
  readonly signalsStream: string;
  readonly inferenceGroup: string;
  readonly dlqStream: string;
  readonly maxDeliveries: number;
  readonly maxRunMs: number;
  /** Inference consumers are one per shard of the features stream. */
  readonly shards: number;
  /** `features.windows`, to rebuild rule state from stored bars at the start of a run. */
  readonly featureWindows: readonly FeatureWindowSpec[];
  /** Longest `cooldown` of the rules file, ms (0 without rules); read per run, so edits apply. */
  readonly maxRuleCooldownMs: () => number;
}

export interface InferenceDeps {
  readonly openBus: () => Bus;
  readonly signals: SignalSink;
  readonly createAdapter: AdapterFactory;
  readonly readStoredBars: StoredBarsReader;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly inference: InferenceDefaults;
}

/** Snapshots per read: each is evaluated in order before the next read. */
const READ_COUNT = 500;

function zeroCounts(): InferenceCounts {
  return { snapshots: 0, signals: 0, invalid: 0, inserted: 0, updated: 0, unchanged: 0 };
}

/**
 * One shard's inference consumer (on the shared {@link runShardConsumer} loop): reads feature
 * snapshots from `${features}.${shard}` in order, evaluates the adapter on each (sequentially, so
 * per-symbol state such as edges and cooldowns is deterministic), upserts the signals, publishes
 * them to the signals stream, then acknowledges. A crash before the acknowledgement re-evaluates
 * the same snapshots and rewrites the same rows.
 */
export function createInferenceActivity(deps: InferenceDeps) {
  return async function runInferenceShard(input: InferenceInput): Promise<InferenceRunResult> {
    const d = deps.inference;
    const stream = shardStream(input.stream ?? d.featuresStream, input.shard);
    const group = input.group ?? d.inferenceGroup;
    const { metrics } = deps;
    const target: OutcomeTarget = { component: 'inference', stream, group, dlqStream: d.dlqStream };
    const adapter = await loadAdapter(deps.createAdapter, input.adapter, input.modelPath);
    try {
      return await runShardConsumer<InferenceRunResult>(
        deps,
        { role: 'inference', stream, group, readCount: READ_COUNT, maxRunMs: input.maxRunMs ?? d.maxRunMs },
        ({ bus, consumer, log }) => {
          const counts = zeroCounts();
          const emitter = new SignalEmitter({ bus, sink: deps.signals, metrics, signalsStream: input.signalsStream ?? d.signalsStream });
          // The adapter is fresh each run: the rules' edges and cooldowns of every series are rebuilt
          // from its stored bars before its first snapshot here, as in one continuous pass.
          const warmed = new Set<string>();
          const engine = input.adapter === 'rules' ? new FeatureEngine({ windows: d.featureWindows }) : undefined;
          const maxCooldownMs = engine ? d.maxRuleCooldownMs() : 0;
          const warm = async (snapshots: readonly FeatureSnapshot[]) => {
            if (engine === undefined) return;
            const fresh = new Map<string, FeatureSnapshot>();
            for (const s of snapshots) {
              const key = `${s.provider}\u0000${s.symbol}\u0000${s.interval}`;
              if (!warmed.has(key) && !fresh.has(key)) fresh.set(key, s);
            }
            // One warm-up per interval (a read per provider inside it), not per series.
            const byInterval = new Map<string, FeatureSnapshot[]>();
            for (const [key, s] of fresh) {
              warmed.add(key);
              byInterval.set(s.interval, [...(byInterval.get(s.interval) ?? []), s]);
            }
            for (const [interval, firsts] of byInterval) {
              const windowMs = parseDurationMs(interval);
              if (windowMs === undefined || windowMs <= 0) continue;
              const bars = await warmOnStoredBars({
                adapter,
                engine,
                readStoredBars: deps.readStoredBars,
                series: firsts.map((s) => ({ provider: s.provider, symbol: s.symbol, interval, beforeMs: s.tsMs })),
                warmMs: warmSpanMs(d.featureWindows, windowMs, maxCooldownMs),
              });
              if (bars > 0) log.debug('rule state rebuilt from stored bars', { interval, series: firsts.length, bars });
            }
          };
          zeroOutcomeMetrics(metrics, target);
          log.info('inference consumer started', { adapter: adapter.name, version: adapter.version });
          return Promise.resolve({
            async process(entries) {
              const { decoded, dead } = routeEntries(entries, SNAPSHOT_PAYLOADS, { sourceStream: stream, maxDeliveries: d.maxDeliveries });
              const emitted: SignalEventV1[] = [];
              await warm(decoded.map(({ value }) => value));
              for (const { value: snapshot } of decoded) {
                counts.snapshots++;
                emitted.push(...(await emitter.evaluate(adapter, snapshot)));
              }
              addUpserts(counts, await emitter.emit(emitted));
              counts.signals += emitted.length;
              counts.invalid += dead.length;
              await sendToDlq(bus, metrics, log, target, dead);
              await bus.ack(
                stream,
                group,
                decoded.map(({ entry }) => entry.id),
              );
            },
            heartbeat: ({ lastId }): InferenceHeartbeat => ({
              consumer,
              stream,
              adapter: adapter.name,
              version: adapter.version,
              lastId,
              counts: { ...counts },
            }),
            result: (stoppedBy) => ({ counts: { ...counts }, adapter: adapter.name, version: adapter.version, stoppedBy }),
          });
        },
      );
    } finally {
      await adapter.close?.();
    }
  };
}
