import { CancelledFailure } from '@temporalio/activity';
import type { Bar, SignalEventV1, UpsertCounts } from '../pipeline/contracts/index.js';
import { intervalLabel } from '../pipeline/contracts/index.js';
import type { FeatureWindowSpec } from '../pipeline/features/index.js';
import { FeatureEngine, featureWarmSpanMs } from '../pipeline/features/index.js';
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
  /** Where live signals go (`bus.redis.signals_stream`): replayed signals are published there too. */
  readonly signalsStream: string;
  /** Longest `cooldown` of the rules file, ms (0 without rules); read per chunk, so edits apply. */
  readonly maxRuleCooldownMs: () => number;
}

/** Signals per upsert/publish round of a chunk's inference. */
const SIGNALS_BATCH = 1000;

/**
 * How far before a chunk its features and rule state are rebuilt from stored bars: the features'
 * warm-up span ({@link featureWarmSpanMs}) plus the longest rule cooldown (so a firing just before
 * the chunk still silences the rule inside it, as it would in one pass). A cooldown chain longer
 * than that (firings each inside the previous one's cooldown for the whole span) is the one case
 * not reproduced exactly.
 */
export function replayWarmSpanMs(windows: readonly FeatureWindowSpec[], windowMs: number, maxCooldownMs: number): number {
  return featureWarmSpanMs(windows, windowMs) + Math.max(0, maxCooldownMs);
}

/** Orders bars like the live consumer sees them: by window, then symbol. */
function byTimeThenSymbol(a: Bar, b: Bar): number {
  return a.tsMs - b.tsMs || (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0);
}

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
 * series just before it (see {@link replayWarmSpanMs}) — their snapshots go through the
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
  const warmMs = replayWarmSpanMs(settings.featureWindows, windowMs, settings.maxRuleCooldownMs());
  const adapter = await loadAdapter(options.createAdapter, options.kind);
  try {
    const engine = new FeatureEngine({ windows: settings.featureWindows });
    const interval = intervalLabel(windowMs);
    const series = new Set(bars.map((b) => `${b.provider}\u0000${b.symbol}`));
    const providers = [...new Set(bars.map((b) => b.provider))].sort();
    const warm: Bar[] = [];
    for (const provider of providers) {
      const stored = await options.readStoredBars({ provider, interval, fromMs: fromMs - warmMs, toMs: fromMs });
      for (const bar of stored) if (series.has(`${bar.provider}\u0000${bar.symbol}`)) warm.push(bar);
    }
    warm.sort(byTimeThenSymbol);
    for (const bar of warm) await adapter.evaluate(engine.update(bar));

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
