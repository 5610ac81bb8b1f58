import { ApplicationFailure, CancelledFailure, Context, sleep } from '@temporalio/activity';
import type { Bus } from '../pipeline/bus/index.js';
import { BacklogGate, ShardPublisher } from '../pipeline/bus/index.js';
import type { IbkrProducerConfig } from '../pipeline/config/index.js';
import type { IbkrEventState } from '../pipeline/producers/ibkr/index.js';
import { IbkrEventBuilder, IbkrFeed, IbSession, Pacer, planIbkrFeed, refusedLinesMessage } from '../pipeline/producers/ibkr/index.js';
import type { Logger, Metrics } from '../pipeline/telemetry/index.js';
import { reportFailure } from './shard-consumer.js';
import { activityFailure } from './expected-failure.js';
import type { IbkrFeedView, IbkrResumeState, ProducerHeartbeat, ProducerInput, ProducerResume, ProducerRunResult } from './types.js';

export interface IbkrProducerDefaults {
  readonly stream: string;
  readonly shards: number;
  readonly ibkr: IbkrProducerConfig;
  /** The micro-batcher's lateness reach, which 5-second bars must fit in. */
  readonly microBatch: { readonly allow_late_ms: number; readonly window_ms: number };
  readonly maxRunMs: number;
}

export interface IbkrProducerDeps {
  readonly openBus: () => Bus;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly ibkrProducer: IbkrProducerDefaults;
}

/** How often received events are published (and the attempt heartbeats). */
const PUBLISH_EVERY_MS = 100;

function resumeState(state: unknown): IbkrResumeState | undefined {
  if (state === undefined || state === null) return undefined;
  const s = state as Partial<IbkrResumeState>;
  if (s.ver !== 1) throw ApplicationFailure.nonRetryable('IBKR producer resume state must have ver 1', 'IbkrResumeStateInvalid');
  return s as IbkrResumeState;
}

/**
 * The IBKR live producer: Interactive Brokers' trades (tick-by-tick AllLast) and/or 5-second
 * real-time bars through TWS / IB Gateway (`producers.ibkr`), as v1 events on the shard streams.
 * The IB side (pacing, connection, reconnects, subscriptions, gaps) lives in
 * `pipeline/producers/ibkr`; this activity wires it to the bus and to Temporal:
 *
 * - config errors (no contracts, a repeated symbol, bars that would be late) fail it at once,
 *   non-retryably, naming the key; contracts beyond `market_data_lines` are refused by name;
 * - it publishes what arrived every 100 ms, asking {@link BacklogGate} for room first (the feed
 *   holds events meanwhile, up to a bound past which it drops them and reports a gap);
 * - it heartbeats its resume state (the per-second tick counts that keep `seq` deterministic, the
 *   moment the feed was last live) and the feed's view for `mdp status`; a retried attempt resumes
 *   the counts and reports the time since its predecessor was last live as a gap (`restart`);
 * - a run lasts `maxRunMs` (default 24 h: TWS restarts daily anyway); drained, it cancels its
 *   subscriptions, publishes what it holds, and stops.
 */
export function createIbkrProducerActivity(deps: IbkrProducerDeps) {
  return async function runIbkrProducer(input: ProducerInput): Promise<ProducerRunResult> {
    const ctx = Context.current();
    const d = deps.ibkrProducer;
    const ibkr = d.ibkr;
    const plan = planIbkrFeed(ibkr, d.microBatch);
    const log = deps.log.child({ activity: 'runIbkrProducer', provider: ibkr.provider, attempt: ctx.info.attempt });
    if (plan.errors.length > 0) throw ApplicationFailure.nonRetryable(plan.errors.join('; '), 'IbkrConfigError');
    const refusedLines = refusedLinesMessage(plan, ibkr.market_data_lines);
    if (refusedLines) log.warn(refusedLines);
    const baseStream = input.stream ?? d.stream;
    const shards = input.shards ?? d.shards;

    const heartbeat = ctx.info.heartbeatDetails as ProducerHeartbeat | undefined;
    const resume = heartbeat ?? input.resume;
    const previous = resumeState(resume?.state);
    const startPublished = input.resume?.published ?? 0;
    let total = resume?.published ?? 0;
    const builder = new IbkrEventBuilder({ provider: plan.provider, barsProvider: plan.barsProvider, state: previous?.events as IbkrEventState | undefined });
    const pacer = new Pacer({ limits: ibkr.pacing, metrics: deps.metrics });
    const session = new IbSession({
      host: ibkr.host,
      port: ibkr.port,
      clientId: ibkr.client_id,
      pacer,
      reconnectInitialMs: ibkr.reconnect_initial_ms,
      reconnectMaxMs: ibkr.reconnect_max_ms,
      log,
    });
    const feed = new IbkrFeed({
      session,
      contracts: plan.lines.granted,
      feeds: plan.feeds,
      builder,
      log,
      metrics: deps.metrics,
      ...(previous?.lastLiveMs ? { openGap: { sinceMs: previous.lastLiveMs, reason: 'restart' as const } } : {}),
    });
    const refusedByBudget = plan.lines.refused.map((c) => ({
      contract: `${c.symbol} (${c.sec_type} ${c.exchange} ${c.currency})`,
      reason: 'beyond producers.ibkr.market_data_lines',
    }));

    const bus = deps.openBus();
    const gate = new BacklogGate({ bus, metrics: deps.metrics, log, component: 'producer' });
    const providers = [...new Set(plan.feeds.map((f) => (f === 'trades' ? plan.provider : plan.barsProvider)))];
    const publisher = new ShardPublisher({ bus, metrics: deps.metrics, stream: baseStream, shards, gate });
    const streams = publisher.streamsOf(plan.lines.granted.flatMap((c) => providers.map((provider) => ({ provider, symbol: c.symbol }))));

    const carried = { gaps: previous?.gaps ?? 0, gapSeconds: previous?.gapSeconds ?? 0, lastGap: previous?.lastGap ?? null };
    const state = (): IbkrResumeState => {
      const gaps = feed.gaps;
      const last = gaps.at(-1);
      return {
        ver: 1,
        events: builder.state(),
        lastLiveMs: feed.lastLiveMs ?? previous?.lastLiveMs ?? null,
        gaps: carried.gaps + gaps.length,
        gapSeconds: Math.round((carried.gapSeconds + gaps.reduce((n, g) => n + g.seconds, 0)) * 1000) / 1000,
        lastGap: last ? { ...last } : carried.lastGap,
      };
    };
    const view = (s: IbkrResumeState): IbkrFeedView => ({
      status: feed.status,
      openGap: feed.openGap ? { ...feed.openGap, sinceIso: new Date(feed.openGap.sinceMs).toISOString() } : null,
      gaps: s.gaps,
      gapSeconds: s.gapSeconds,
      lastGap: s.lastGap ? { ...s.lastGap, fromIso: new Date(s.lastGap.fromMs).toISOString(), toIso: new Date(s.lastGap.toMs).toISOString() } : null,
      contracts: plan.lines.granted.length - feed.refused.length,
      refused: [...refusedByBudget, ...feed.refused],
      dropped: feed.counts.dropped,
    });
    const snapshot = (): ProducerResume => ({ published: total, state: state() });
    const beat = () => {
      const s = state();
      ctx.heartbeat({ published: total, state: s, feed: view(s) } satisfies ProducerHeartbeat);
    };
    const publish = async (max = Number.POSITIVE_INFINITY) => {
      const events = feed.drain(max);
      await publisher.publish(events);
      total += events.length;
    };

    let stopping = false;
    try {
      log.info('IBKR producer started', {
        contracts: plan.lines.granted.map((c) => c.symbol),
        feeds: plan.feeds,
        resumedAt: resume?.published,
        tws: `${ibkr.host}:${ibkr.port}`,
        clientId: ibkr.client_id,
      });
      feed.start();
      session.start();
      const deadline = Date.now() + (input.maxRunMs ?? d.maxRunMs);
      while (Date.now() < deadline && !ctx.cancellationSignal.aborted) {
        const room = await gate.waitForRoom(streams, { untilMs: deadline, signal: ctx.cancellationSignal, onWait: beat });
        if (room > 0) await publish(room);
        if (plan.lines.granted.length > 0 && feed.refused.length === plan.lines.granted.length) {
          throw ApplicationFailure.nonRetryable(
            `TWS refused every contract of producers.ibkr.contracts: ${feed.refused.map((r) => `${r.contract}: ${r.reason}`).join('; ')}`,
            'IbkrContractsRefused',
          );
        }
        beat();
        await sleep(PUBLISH_EVERY_MS).catch(() => undefined);
      }
      // Drained or out of time: stop the subscriptions, then publish what arrived before they stopped.
      stopping = true;
      await feed.close();
      await publish();
      const result: ProducerRunResult = { published: total - startPublished, finished: false, resume: snapshot() };
      if (ctx.cancellationSignal.aborted) throw new CancelledFailure('IBKR producer drained', [result]);
      return result;
    } catch (err) {
      if (!(err instanceof CancelledFailure)) reportFailure(deps.metrics, log, 'producer', 'IBKR producer failed', err);
      throw activityFailure(err);
    } finally {
      if (!stopping) await feed.close(500).catch(() => undefined);
      await session.close();
      deps.metrics.ibkrConnected.set({ provider: plan.provider }, 0);
      gate.close();
      await bus.close();
    }
  };
}
