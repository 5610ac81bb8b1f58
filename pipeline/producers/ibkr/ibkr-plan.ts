import type { IbkrContractConfig, IbkrProducerConfig } from '../../config/index.js';
import { EVENT_FIELD_LIMITS } from '../../contracts/index.js';
import type { LineAllocation } from './pacer.js';
import { allocateLines } from './pacer.js';

/** Length of IB's real-time bars: the only size reqRealTimeBars offers. */
export const REAL_TIME_BAR_MS = 5000;
/** Time a real-time bar takes to reach the micro-batcher after its 5 s end (TWS, publish loop, bus). */
const BAR_DELIVERY_MS = 1000;
const BARS_SUFFIX = '-bars';

/** Which feeds a contract gets: tick-by-tick trades, 5-second real-time bars, or both. */
export type IbkrFeedKind = 'trades' | 'bars';

/** What the IBKR producer will do with a config, decided in one place for the CLI and the activity. */
export interface IbkrPlan {
  /** Provider on tick events. */
  readonly provider: string;
  /** Provider on bar events: the provider, or `<provider>-bars` with `data: both` so the two feeds never sum into one bar. */
  readonly barsProvider: string;
  readonly feeds: readonly IbkrFeedKind[];
  /** Lines each contract takes (one per feed). */
  readonly linesEach: number;
  readonly lines: LineAllocation<IbkrContractConfig>;
  /** Config errors: the producer must not start while there are any. */
  readonly errors: readonly string[];
}

/** `SPY (STK SMART USD, primary ARCA)`: a contract as people read it in logs and errors. */
export function describeContract(c: IbkrContractConfig): string {
  return `${c.symbol} (${c.sec_type} ${c.exchange} ${c.currency}${c.primary_exchange ? `, primary ${c.primary_exchange}` : ''})`;
}

/**
 * Plans the live feed of `producers.ibkr`: feeds per contract, the market data lines they take (the
 * contracts beyond `market_data_lines` are refused, by name), and the config errors that must stop
 * it: no contracts; a symbol listed twice (events are keyed by provider and symbol); 5-second bars
 * that the micro-batcher would find late (they are published when they end, stamped with their
 * start, IB's time: `allow_late_ms + window_ms` must cover the bar and its delivery); a provider
 * too long for its `-bars` sibling.
 */
export function planIbkrFeed(ibkr: IbkrProducerConfig, microBatch: { readonly allow_late_ms: number; readonly window_ms: number }): IbkrPlan {
  const errors: string[] = [];
  const feeds: IbkrFeedKind[] = ibkr.data === 'both' ? ['trades', 'bars'] : [ibkr.data];
  const barsProvider = ibkr.data === 'both' ? `${ibkr.provider}${BARS_SUFFIX}` : ibkr.provider;
  if (ibkr.contracts.length === 0)
    errors.push('producers.ibkr.contracts is empty: there is nothing to subscribe (add { symbol, sec_type, exchange, currency })');
  const seen = new Map<string, number>();
  ibkr.contracts.forEach((c, i) => {
    const first = seen.get(c.symbol);
    if (first !== undefined)
      errors.push(
        `producers.ibkr.contracts[${i}] repeats symbol ${c.symbol} of entry ${first}: events are keyed by provider and symbol, so two contracts would mix into one bar`,
      );
    else seen.set(c.symbol, i);
  });
  if (feeds.includes('bars')) {
    const reach = microBatch.allow_late_ms + microBatch.window_ms;
    if (reach < REAL_TIME_BAR_MS + BAR_DELIVERY_MS) {
      errors.push(
        `producers.ibkr.data "${ibkr.data}" publishes each 5-second bar when it ends, stamped with its start (IB's time): ` +
          `micro_batch.allow_late_ms + micro_batch.window_ms must be at least ${REAL_TIME_BAR_MS + BAR_DELIVERY_MS} ms or every bar is late ` +
          `(got ${microBatch.allow_late_ms} + ${microBatch.window_ms})`,
      );
    }
    if (barsProvider.length > EVENT_FIELD_LIMITS.provider) {
      errors.push(
        `producers.ibkr.provider must be at most ${EVENT_FIELD_LIMITS.provider - BARS_SUFFIX.length} characters with data "both" (bars go to "${barsProvider}")`,
      );
    }
  }
  const linesEach = feeds.length;
  const lines = allocateLines(ibkr.contracts, linesEach, ibkr.market_data_lines);
  return { provider: ibkr.provider, barsProvider, feeds, linesEach, lines, errors };
}

/** The warning about contracts beyond the line budget, or undefined when every contract fits. */
export function refusedLinesMessage(plan: IbkrPlan, budget: number): string | undefined {
  if (plan.lines.refused.length === 0) return undefined;
  return (
    `producers.ibkr.market_data_lines is ${budget} and each contract takes ${plan.linesEach} (${plan.feeds.join(' + ')}): ` +
    `subscribing ${plan.lines.granted.length} of ${plan.lines.granted.length + plan.lines.refused.length} contracts; ` +
    `refused: ${plan.lines.refused.map(describeContract).join(', ')}`
  );
}
