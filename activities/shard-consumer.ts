import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { OwnerFencedError } from '../pipeline/contracts/index.js';
import type { Bus, BusEntry } from '../pipeline/bus/index.js';
import { isRedisConnectionError, RetentionKeeper } from '../pipeline/bus/index.js';
import type { ConsumerRole } from '../pipeline/contracts/index.js';
import type { Logger, Metrics } from '../pipeline/telemetry/index.js';
import { activityFailure, benignFailure } from './expected-failure.js';

/** Why a consumer run ended without failing. */
export type StoppedBy = 'max_run' | 'cancelled';

/** Longest a read blocks, so cancellation and idle flushes are noticed promptly. */
const BLOCK_MS = 100;
const LAG_EVERY_MS = 1000;

/**
 * Reports an activity's failure once: `errors_total{component, reason="activity_failure"}` and an
 * error line. A cancellation is how a run is asked to stop, not a failure: it is not reported.
 * A Redis outage is counted but logged at debug only: the worker's `OutageLog` says it once for
 * every client (throw {@link activityFailure} of it, so the SDK does not log every attempt either).
 * Returns whether it was a failure.
 */
export function reportFailure(metrics: Metrics, log: Logger, component: string, message: string, err: unknown): boolean {
  if (err instanceof CancelledFailure) return false;
  metrics.errors.inc({ component, reason: 'activity_failure' });
  if (isRedisConnectionError(err)) log.debug(message, { err });
  else log.error(message, { err });
  return true;
}

/** The shard stream a consumer run owns. */
export interface ShardConsumerTarget {
  readonly role: ConsumerRole;
  /** The shard's stream, e.g. `mdp.events.3`. */
  readonly stream: string;
  readonly group: string;
  /** Most entries one read returns. */
  readonly readCount: number;
  /** The run returns after this long (a fresh run then continues), bounding each run. */
  readonly maxRunMs: number;
}

/** What a role does with the entries of its shard; built once per run by {@link ShardConsumerDeps}' caller. */
export interface ShardConsumerHandler<R> {
  /** Entries just read, in stream order: the run's own pending ones first, then new ones. */
  process(entries: readonly BusEntry[], nowMs: number): Promise<void>;
  /** After every read, also an empty one (e.g. flush the windows the watermark closed). */
  afterRead?(nowMs: number): Promise<void>;
  /** Entries the handler can take now (default: any number); at 0 `relieve` runs instead of a read. */
  room?(): number;
  /** Frees room (e.g. cuts the oldest window) when `room()` is 0. */
  relieve?(): Promise<void>;
  /** The heartbeat details of the run (resume point and counts), given the last entry read and the lag. */
  heartbeat(progress: { readonly lastId: string | undefined; readonly lagMs: number }): unknown;
  /** After each heartbeat (e.g. keep an audit row current). */
  afterHeartbeat?(): Promise<void>;
  /** The run's result; also attached to the `CancelledFailure` of a cancelled run. */
  result(stoppedBy: StoppedBy): R;
  /** The run ended without failing (before its result is returned). */
  stopped?(result: R): Promise<void>;
  /** The run failed (best effort: its own errors are ignored). */
  failed?(err: unknown): Promise<void>;
  /** Releases what the handler holds (an adapter); runs on every path. */
  close?(): Promise<void>;
}

export interface ShardConsumerDeps {
  readonly openBus: () => Bus;
  readonly metrics: Metrics;
  readonly log: Logger;
}

/** What a role's `start` gets: the run's bus, its consumer name (the workflow id) and logger. */
export interface ShardConsumerRun {
  readonly bus: Bus;
  readonly consumer: string;
  /**
   * The attempt's fencing token: when the server scheduled this attempt, so a later attempt (a
   * retry, or the next run after continue-as-new) always has a larger one. Reads are fenced with it.
   */
  readonly epoch: number;
  readonly log: Logger;
  readonly ctx: Context;
  /** Runs `work` (e.g. a store commit that may wait on a lock) heartbeating every second meanwhile. */
  readonly keepAlive: <T>(work: () => Promise<T>) => Promise<T>;
}

/** How often {@link ShardConsumerRun.keepAlive} heartbeats while its work is pending. */
const KEEP_ALIVE_MS = 1000;

/**
 * The one consume loop of every shard owner (micro-batch and inference). It runs inside the
 * shard's workflow, whose id is the consumer name, so a retried attempt is the same consumer:
 * it first re-reads its own pending entries from the start (a crashed attempt's work that was never
 * acknowledged), then reads new ones until cancelled or `maxRunMs` is up. It heartbeats after
 * every read, measures lag every second, counts `activity_failure`, and on every path removes the
 * run's gauges, releases the handler and closes the bus. A cancelled run throws a
 * `CancelledFailure` carrying its result.
 */
export async function runShardConsumer<R extends { readonly counts: object }>(
  deps: ShardConsumerDeps,
  target: ShardConsumerTarget,
  start: (run: ShardConsumerRun) => Promise<ShardConsumerHandler<R>>,
): Promise<R> {
  const ctx = Context.current();
  const execution = ctx.info.workflowExecution;
  if (!execution) throw ApplicationFailure.nonRetryable(`${ctx.info.activityType} must run inside a workflow: the workflow id names the shard owner`);
  const consumer = execution.workflowId;
  const { stream, group, role } = target;
  const { metrics } = deps;
  const log = deps.log.child({ activity: ctx.info.activityType, stream, consumer, attempt: ctx.info.attempt });
  const epoch = ctx.info.currentAttemptScheduledTimestampMs;
  let bus: Bus | undefined;
  let handler: ShardConsumerHandler<R> | undefined;
  let lastDetails: unknown;
  const keepAlive = async <T>(work: () => Promise<T>): Promise<T> => {
    const timer = setInterval(() => ctx.heartbeat(lastDetails), KEEP_ALIVE_MS);
    try {
      return await work();
    } finally {
      clearInterval(timer);
    }
  };
  let retention: RetentionKeeper | undefined;
  try {
    bus = deps.openBus();
    // Trims what every group acknowledged and counts what was lost unread (see RetentionKeeper). Its
    // first check runs before the group is (re)created, to notice a stream deleted while we were down.
    retention = new RetentionKeeper({ bus, metrics, log, stream, group, component: role });
    await retention.check();
    await bus.ensureGroup(stream, group);
    handler = await start({ bus, consumer, epoch, log, ctx, keepAlive });
    const h = handler;
    const openBus = bus;
    const keeper = retention;
    let lastId: string | undefined;
    let lagMs = 0;
    const readSize = (): number => Math.min(h.room?.() ?? target.readCount, target.readCount);
    const take = async (entries: readonly BusEntry[], nowMs: number) => {
      if (entries.length === 0) return;
      await h.process(entries, nowMs);
      lastId = entries[entries.length - 1].id;
    };
    const beat = async () => {
      lastDetails = h.heartbeat({ lastId, lagMs });
      ctx.heartbeat(lastDetails);
      metrics.consumerHeartbeat.set({ topic: stream, consumer }, Date.now() / 1000);
      await h.afterHeartbeat?.();
    };

    // 1. Our own pending entries: a previous attempt's, never acknowledged.
    let reread = 0;
    for (let after = '0'; ;) {
      const size = readSize();
      if (size <= 0) {
        await h.relieve!();
        continue;
      }
      const entries = await openBus.readPending(stream, group, consumer, after, size, epoch);
      if (entries.length === 0) break;
      await take(entries, Date.now());
      reread += entries.length;
      after = entries[entries.length - 1].id;
      await h.afterRead?.(Date.now());
      await beat();
    }
    if (reread > 0) log.info('re-read own pending entries', { entries: reread });

    // 2. New entries until cancelled or the run's time is up.
    const deadline = Date.now() + target.maxRunMs;
    let nextLagAt = 0;
    while (!ctx.cancellationSignal.aborted && Date.now() < deadline) {
      const size = readSize();
      if (size <= 0) {
        await h.relieve!();
        continue;
      }
      const entries = await openBus.readNew(stream, group, consumer, size, BLOCK_MS, epoch);
      const nowMs = Date.now();
      await take(entries, nowMs);
      await h.afterRead?.(Date.now());
      if (nowMs >= nextLagAt) {
        nextLagAt = nowMs + LAG_EVERY_MS;
        const lag = await openBus.lag(stream, group, Date.now());
        lagMs = lag.lagMs;
        metrics.consumerLagMs.set({ topic: stream, group, consumer }, lag.lagMs);
        metrics.pendingEntries.set({ topic: stream, group }, lag.pending);
      }
      await keeper.tick(Date.now()); // a retention check and a trim every second
      await beat();
    }
    const stoppedBy: StoppedBy = ctx.cancellationSignal.aborted ? 'cancelled' : 'max_run';
    const result = h.result(stoppedBy);
    await h.stopped?.(result);
    log.info(`${role} consumer stopped`, { stoppedBy, ...result.counts });
    // A cancelled activity has no result; it travels in the failure's details instead.
    if (stoppedBy === 'cancelled') throw new CancelledFailure(`${role} consumer cancelled`, [result]);
    return result;
  } catch (err) {
    if (err instanceof OwnerFencedError) {
      // Superseded: a newer attempt owns the shard. This one wrote nothing since; it just stops.
      metrics.errors.inc({ component: role, reason: 'owner_fenced' });
      log.warn(`${role} consumer fenced off by a newer owner`, { error: err.message });
      // That warning is the one line: the SDK logs the benign failure at debug.
      throw benignFailure(err.message, 'OwnerFenced');
    }
    if (reportFailure(metrics, log, role, `${role} consumer failed`, err)) await handler?.failed?.(err).catch(() => undefined);
    throw activityFailure(err);
  } finally {
    metrics.consumerHeartbeat.remove({ topic: stream, consumer });
    metrics.consumerLagMs.remove({ topic: stream, group, consumer });
    metrics.pendingEntries.remove({ topic: stream, group });
    retention?.close();
    await handler?.close?.().catch((err: unknown) => log.warn('consumer cleanup failed', { err }));
    await bus?.close();
  }
}
