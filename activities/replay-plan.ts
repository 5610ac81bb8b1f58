import { ApplicationFailure } from '@temporalio/activity';
import { intervalLabel, parseDurationMs } from '../pipeline/contracts/index.js';
import type { DatasetDefinition } from '../pipeline/datasets/index.js';
import {
  DatasetCatalogError,
  findDataset,
  loadDatasetCatalog,
  openFileDataset,
  parseDatasetDefinition,
  parseReplayBound,
  replayRange,
} from '../pipeline/datasets/index.js';
import type { Logger } from '../pipeline/telemetry/index.js';
import type { ReplayPlan, ReplayPlanInput } from './types.js';

/** Fails the activity for good: the input or the dataset is wrong, and a retry would not change that. */
export function nonRetryable(err: unknown): never {
  throw ApplicationFailure.nonRetryable((err as Error).message, (err as Error).name);
}

/** The dataset named `name` in the worker's datasets file. */
export function replayDataset(datasetsFile: string, name: string): DatasetDefinition {
  try {
    return findDataset(loadDatasetCatalog(datasetsFile), name, datasetsFile);
  } catch (err) {
    if (err instanceof DatasetCatalogError) nonRetryable(err);
    throw err;
  }
}

/**
 * The dataset a replay reads: the definition its starter resolved and carried in the input (so the
 * CLI and the worker cannot read different files), checked; else the one named in the worker's
 * datasets file (a replay started with just a name, e.g. from the Web UI).
 */
export function replayDefinition(datasetsFile: string, name: string, carried: unknown): DatasetDefinition {
  if (carried === undefined) return replayDataset(datasetsFile, name);
  try {
    return parseDatasetDefinition(name, carried, 'input.definition', undefined);
  } catch (err) {
    if (err instanceof DatasetCatalogError) nonRetryable(err);
    throw err;
  }
}

/** What planning needs from the worker's config. */
export interface ReplayPlanDefaults {
  readonly datasetsFile: string;
  readonly chunkSpan: string;
  readonly windowMs: number;
}

/**
 * The effective plan of a replay: the range widened to whole windows, window-aligned chunks, and
 * (for file datasets) the events and chunks holding data. Bad input fails without retry.
 */
export async function planReplay(d: ReplayPlanDefaults, log: Logger, input: ReplayPlanInput): Promise<ReplayPlan> {
  const def = replayDefinition(d.datasetsFile, input.dataset, input.definition);
  const fromMs = parseReplayBound(input.from);
  const toMs = parseReplayBound(input.to);
  if (fromMs === undefined) nonRetryable(new Error(`from must be a date (2025-10-01) or an ISO-8601 timestamp with zone (got ${JSON.stringify(input.from)})`));
  if (toMs === undefined) nonRetryable(new Error(`to must be a date (2025-10-02) or an ISO-8601 timestamp with zone (got ${JSON.stringify(input.to)})`));
  const windowMs = input.windowMs ?? d.windowMs;
  if (!Number.isSafeInteger(windowMs) || windowMs <= 0) nonRetryable(new Error(`windowMs must be a positive integer (got ${windowMs})`));
  const spanMs = parseDurationMs(input.chunkSpan ?? d.chunkSpan);
  if (spanMs === undefined || spanMs <= 0) nonRetryable(new Error(`chunkSpan must be a duration such as "15m" (got ${JSON.stringify(input.chunkSpan)})`));
  let range;
  try {
    range = replayRange(fromMs, toMs, windowMs, spanMs);
  } catch (err) {
    nonRetryable(err);
  }
  if (def.format === 'store' && intervalLabel(windowMs) === def.interval && (def.as_provider ?? def.provider) === def.provider) {
    nonRetryable(
      new Error(`dataset ${def.name} re-aggregates ${def.provider} ${def.interval} bars into the same rows; set as_provider or replay with another window`),
    );
  }
  const base = { dataset: def.name, format: def.format, ...range, interval: intervalLabel(windowMs), definition: def };
  if (def.format === 'store') {
    const chunksTotal = Math.ceil((range.toMs - range.fromMs) / range.chunkSpanMs);
    return { ...base, eventsTotal: null, chunksTotal, firstDataMs: range.fromMs, skippedLines: 0, skippedSample: [] };
  }
  let summary;
  try {
    summary = await openFileDataset(def).summary(range.fromMs, range.toMs, range.chunkSpanMs);
  } catch (err) {
    nonRetryable(err);
  }
  if (summary.skippedLines > 0)
    log.warn('dataset lines without a parseable time were skipped', { dataset: def.name, skipped: summary.skippedLines, first: summary.skippedSample[0] });
  return {
    ...base,
    eventsTotal: summary.events,
    chunksTotal: summary.chunks,
    firstDataMs: summary.firstMs,
    skippedLines: summary.skippedLines,
    skippedSample: summary.skippedSample.map((s) => `${s.file}:${s.line}: ${s.reason}`),
  };
}
