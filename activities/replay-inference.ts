import { CancelledFailure } from '@temporalio/activity';
import type { Bar, SignalEventV1, UpsertCounts } from '../pipeline/contracts/index.js';
import { intervalLabel } from '../pipeline/contracts/index.js';
import type { FeatureWindowSpec } from '../pipeline/features/index.js';
import { FeatureEngine } from '../pipeline/features/index.js';
import { byTimeThenSymbol, warmOnStoredBars, warmSpanMs } from './adapter-warmup.js';
import { addUpserts } from './counts.js';
import type { AdapterFactory, SignalEmitter } from './signal-emitter.js';
import { loadAdapter } from './signal-emitter.js';
import type { StoredBarsReader } from './replay-chunk.js';
import type { ReplayInferenceCounts } from './types.js';

/** What a replay needs to compute features and signals like the live pipeline (from the worker's config). */
export interface ReplayInferenceDefaults {
  /** The adapter the live pipeline runs: `sklearn` if enabled, else `rules` if enabled, else `off`. */
  readonly adapter: 'rules' | 'sklearn' | 'off';
  /** `features.windows`. */
  readonly featureWindows: readonly FeatureWindowSpec[];
  /** Where live signals go (`bus.redis.signals_stream`): a replay publishes there only when asked (`publishSignals`). */
  readonly signalsStream: string;
  /** Longest `cooldown` of the rules file, ms (0 without rules); read per chunk, so edits apply. */
  readonly maxRuleCooldownMs: () => number;
}

/** Signals per upsert/publish round of a chunk's inference. */
const SIGNALS_BATCH = 1000;

export interface ChunkInference {
  readonly kind: 'rules' | 'sklearn';
  readonly settings: ReplayInferenceDefaults;
  readonly createAdapter: AdapterFactory;
  readonly readStoredBars: StoredBarsReader;
  readonly emitter: SignalEmitter;
  readonly signal: AbortSignal;
  /** Called after every emitted batch (the chunk heartbeats). */
  readonly progress: () => void;
}

/**
 * Features and signals of a chunk whose bars are committed, as the live pipeline computes them:
 * a fresh {@link FeatureEngine} and adapter are warmed on the stored bars of the chunk's
 * series just before it (see {@link warmSpanMs}) — their snapshots go through the
 * adapter so its edge and cooldown state matches one continuous pass, but their signals are
 * dropped — then every bar of the chunk, in window order, gives a snapshot whose signals go
 * through the shared {@link SignalEmitter}. Snapshots are not published: the live `features`
 * streams feed live inference, which must not see history.
 */
export async function inferChunk(
  options: ChunkInference,
  bars: readonly Bar[],
  fromMs: number,
  windowMs: number,
): Promise<ReplayInferenceCounts & UpsertCounts> {
  const { settings, emitter } = options;
  const result = { snapshots: 0, signals: 0, inserted: 0, updated: 0, unchanged: 0 };
  if (bars.length === 0) return result;
  const warmMs = warmSpanMs(settings.featureWindows, windowMs, settings.maxRuleCooldownMs());
  const adapter = await loadAdapter(options.createAdapter, options.kind);
  try {
    const engine = new FeatureEngine({ windows: settings.featureWindows });
    const interval = intervalLabel(windowMs);
    const series = new Map(bars.map((b) => [`${b.provider}\u0000${b.symbol}`, { provider: b.provider, symbol: b.symbol, interval, beforeMs: fromMs }]));
    await warmOnStoredBars({ adapter, engine, readStoredBars: options.readStoredBars, series: [...series.values()], warmMs });

    let pending: SignalEventV1[] = [];
    const emit = async () => {
      if (pending.length === 0) return;
      addUpserts(result, await emitter.emit(pending));
      result.signals += pending.length;
      pending = [];
      options.progress();
    };
    for (const bar of [...bars].sort(byTimeThenSymbol)) {
      if (options.signal.aborted) throw new CancelledFailure('replay chunk cancelled');
      result.snapshots++;
      pending.push(...(await emitter.evaluate(adapter, engine.update(bar))));
      if (pending.length >= SIGNALS_BATCH) await emit();
    }
    await emit();
    return result;
  } finally {
    await adapter.close?.();
  }
}
