import { readFile, rm } from 'node:fs/promises';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { IbkrProducerConfig } from '../pipeline/config/index.js';
import type { JobRunSink } from '../pipeline/contracts/index.js';
import { backfillChunk, backfillChunkFile, chunkFileBars, removeTempFiles, writeFileAtomically, writeJsonlAtomically } from '../pipeline/datasets/index.js';
import type { HistoricalBarsSource, HistoricalProgress } from '../pipeline/producers/ibkr/index.js';
import { chunkBarsToEvents, HistoricalDataError, historicalChunkRequest } from '../pipeline/producers/ibkr/index.js';
import type { Logger } from '../pipeline/telemetry/index.js';
import { describeContract, planIbkrBackfill } from './ibkr-backfill-plan.js';
import { jobAudit } from './job-audit.js';
import type {
  IbkrBackfillCounts,
  IbkrBackfillInput,
  IbkrBackfillPlan,
  IbkrChunkHeartbeat,
  IbkrChunkInput,
  IbkrChunkResult,
  IbkrSentRequest,
} from './ibkr-backfill-types.js';

/** What the backfill needs from the worker's config. */
export interface IbkrBackfillDefaults {
  readonly ibkr: IbkrProducerConfig;
  /** The datasets file replays read (`replay.datasets_file`): new datasets are registered there. */
  readonly datasetsFile: string;
  /** Directory new datasets are created under (`producers.ibkr.backfill_dir`). */
  readonly backfillDir: string;
}

export interface IbkrBackfillDeps {
  readonly jobs: JobRunSink;
  readonly log: Logger;
  readonly ibkrBackfill: IbkrBackfillDefaults;
  /** The worker's paced connection for historical requests (connected on first use). */
  readonly historicalBars: () => HistoricalBarsSource;
}

export function zeroBackfillCounts(): IbkrBackfillCounts {
  return { requests: 0, cached: 0, empty: 0, bars: 0, dropped: 0, pacingWaitMs: 0 };
}

/**
 * One chunk of a backfill: unless its file exists (then nothing is requested), one paced
 * `reqHistoricalData`, its bars written to the chunk's file all or nothing. Heartbeats while it
 * waits for the pacer and for IB. IB's "no data" answer is an empty chunk (an empty file).
 */
async function fetchIbkrChunk(deps: IbkrBackfillDeps, input: IbkrChunkInput): Promise<IbkrChunkResult> {
  const ctx = Context.current();
  const { plan, chunk, index } = input;
  const started = Date.now();
  const file = backfillChunkFile(plan.datasetDir, plan.symbol, plan, chunk);
  const counts = zeroBackfillCounts();
  let sent: IbkrSentRequest | undefined;
  const done = (): IbkrChunkResult => ({
    index,
    ...chunk,
    file,
    counts,
    ...(sent ? { sent } : {}),
    attempt: ctx.info.attempt,
    elapsedMs: Date.now() - started,
  });
  const log = deps.log.child({ activity: 'fetchIbkrChunk', chunk: new Date(chunk.fromMs).toISOString(), attempt: ctx.info.attempt });

  const marker = `${file}${SENDING}`;
  const written = await chunkFileBars(file);
  if (written !== undefined) {
    // Written by an attempt that died before it could say so: its marker may still be there.
    await rm(marker, { force: true });
    counts.cached = 1;
    counts.bars = written;
    if (written === 0) counts.empty = 1;
    await auditProgress(deps, input, counts);
    return done();
  }
  const removed = await removeTempFiles(file);
  if (removed > 0) log.info('removed the partial file of an attempt that was killed', { file, removed });

  const request = historicalChunkRequest(chunk, plan.bar, plan.what, plan.useRth);
  const source = deps.historicalBars();
  const contract = {
    symbol: plan.contract.symbol,
    secType: plan.contract.secType,
    exchange: plan.contract.exchange,
    currency: plan.contract.currency,
    ...(plan.contract.primaryExch ? { primaryExch: plan.contract.primaryExch } : {}),
  };
  // Requests other worker processes sent count against IB's limits here too: the backfill's
  // recent ones (exact times), and this chunk's own when an attempt of another process may have
  // sent it before it died (its time unknown: counted as now, which is never too early).
  const previous = await readSending(marker);
  source.recordPast(contract, [
    ...(input.recentRequests ?? [])
      .filter((r) => r.requester !== source.requesterId)
      .map((r) => ({
        id: `${r.requester}|${r.index}|${r.atMs}`,
        request: historicalChunkRequest(backfillChunk(plan, r.index), plan.bar, plan.what, plan.useRth),
        atMs: r.atMs,
      })),
    ...(previous && previous.requester !== source.requesterId ? [{ id: `${previous.requester}|${index}|sending`, request, atMs: Date.now() }] : []),
  ]);
  if (previous && previous.requester !== source.requesterId)
    log.info('an attempt of another worker may have sent this chunk; counted for pacing', { requester: previous.requester });
  await removeTempFiles(marker);
  await writeFileAtomically(marker, JSON.stringify({ requester: source.requesterId, atMs: Date.now() }) + '\n');
  const what = `reqHistoricalData ${describeContract(plan.contract)} ${request.barSizeSetting} ${request.whatToShow} ending ${request.endDateTime} UTC (${request.durationStr})`;
  let beat: IbkrChunkHeartbeat = {
    index,
    chunk: `${new Date(chunk.fromMs).toISOString()} .. ${new Date(chunk.toMs).toISOString()}`,
    phase: 'pacing',
    waitedMs: 0,
    chunksDone: input.totalsBefore.chunksDone ?? 0,
    chunksTotal: plan.chunksTotal,
  };
  ctx.heartbeat(beat);
  // Heartbeats keep flowing while the request waits (for the pacer: up to a whole pacing window).
  const timer = setInterval(() => ctx.heartbeat(beat), 1000);
  let reply;
  try {
    reply = await source.request(contract, request, {
      signal: ctx.cancellationSignal,
      onProgress: (p: HistoricalProgress) => {
        beat = { ...beat, ...p };
        if (p.phase === 'requesting') sent = { index, atMs: Date.now(), requester: source.requesterId };
      },
    });
  } catch (err) {
    if (ctx.cancellationSignal.aborted) throw new CancelledFailure('backfill chunk cancelled', [done()]);
    if (err instanceof HistoricalDataError) {
      const message = `${what}: ${err.message}`;
      log.warn('historical request failed', { code: err.code, ibCode: err.ibCode, message: err.message, retryable: err.retryable });
      if (!err.retryable) throw ApplicationFailure.nonRetryable(message, err.code, { ibCode: err.ibCode });
      throw ApplicationFailure.retryable(message, err.code, { ibCode: err.ibCode });
    }
    throw err;
  } finally {
    clearInterval(timer);
  }
  counts.requests = 1;
  counts.pacingWaitMs = reply.pacingWaitMs;
  beat = { ...beat, phase: 'writing' };
  ctx.heartbeat(beat);
  let converted;
  try {
    converted = chunkBarsToEvents(reply.bars, { provider: plan.provider, symbol: plan.symbol, bar: plan.bar, ...chunk, receivedAtMs: Date.now() });
  } catch (err) {
    throw ApplicationFailure.nonRetryable(`${what}: ${(err as Error).message}`, 'BAD_REPLY');
  }
  await writeJsonlAtomically(file, converted.events);
  await rm(marker, { force: true });
  counts.bars = converted.events.length;
  counts.dropped = converted.outside + converted.repeated;
  if (converted.events.length === 0) counts.empty = 1;
  if (counts.empty === 1) log.debug('no bars for chunk', { noData: reply.noData, file });
  await auditProgress(deps, input, counts);
  return done();
}

/** Beside a chunk's file while its request may be out: `{requester, atMs}` of the process sending it. */
const SENDING = '.sending';

async function readSending(marker: string): Promise<{ requester: string; atMs: number } | undefined> {
  try {
    return JSON.parse(await readFile(marker, 'utf8')) as { requester: string; atMs: number };
  } catch {
    return undefined;
  }
}

/** The `job_runs` row's counts after this chunk (a store outage is logged, not fatal: the chunk is written). */
async function auditProgress(deps: IbkrBackfillDeps, input: IbkrChunkInput, counts: IbkrBackfillCounts): Promise<void> {
  const totals: Record<string, number> = { ...input.totalsBefore };
  for (const [key, value] of Object.entries(counts) as [string, number][]) totals[key] = (totals[key] ?? 0) + value;
  totals.chunksDone = (totals.chunksDone ?? 0) + 1;
  try {
    await deps.jobs.heartbeat(input.jobRunId, totals);
  } catch (err) {
    deps.log.warn('could not update the backfill audit row', { jobRunId: input.jobRunId, error: (err as Error).message });
  }
}

/** The backfill's activities: plan, fetch one chunk, and the `job_runs` audit (kind `backfill`). */
export function createIbkrBackfillActivities(deps: IbkrBackfillDeps) {
  const audit = jobAudit(deps.jobs, 'backfill');
  return {
    planIbkrBackfill: (input: IbkrBackfillInput): Promise<IbkrBackfillPlan> => planIbkrBackfill(deps, input),
    fetchIbkrChunk: (input: IbkrChunkInput): Promise<IbkrChunkResult> => fetchIbkrChunk(deps, input),
    startBackfillAudit: audit.start,
    finishBackfillAudit: audit.finish,
  };
}
