import type { StreamEventV1 } from '../../contracts/index.js';
import { formatMicros, makeEventId } from '../../contracts/index.js';
import type { HistoricalBarSize } from './historical-request.js';

/** One bar of a `historicalData` reply, as the client library hands it over. */
export interface IbHistoricalBar {
  /** With formatDate 2: the bar's start as epoch seconds (a decimal string). */
  readonly time: string;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  /** -1 when IB has no volume (MIDPOINT). */
  readonly volume: number;
}

/** The bar's start in epoch ms, or `undefined` when `time` is not whole epoch seconds. */
export function ibBarTimeMs(time: string): number | undefined {
  if (!/^\d{1,12}$/.test(time.trim())) return undefined;
  return Number(time.trim()) * 1000;
}

/** The chunk's bars as v1 `bar` events, and how many were set aside. */
export interface ChunkEvents {
  readonly events: StreamEventV1[];
  /** Bars IB returned outside `[fromMs, toMs)` (e.g. around a session edge): they belong to another chunk. */
  readonly outside: number;
  /** Bars with a start already seen in the reply: the first one is kept. */
  readonly repeated: number;
}

/**
 * A chunk's IB bars as v1 events: `kind: 'bar'`, `interval` the bar size, `src_ts` IB's bar start,
 * `seq` 0 (one bar per provider, symbol and start, so `event_id` is the same whenever the bar is
 * fetched again), `ingest_ts` the receipt time. Volume -1 (none, as IB reports for MIDPOINT) is 0.
 * Bars outside the chunk are dropped and counted, so overlapping replies never duplicate a bar.
 *
 * @throws Error naming the bar when IB's time is not epoch seconds.
 */
export function chunkBarsToEvents(
  bars: readonly IbHistoricalBar[],
  options: { provider: string; symbol: string; bar: HistoricalBarSize; fromMs: number; toMs: number; receivedAtMs: number },
): ChunkEvents {
  const events: StreamEventV1[] = [];
  const ingestTs = formatMicros(options.receivedAtMs * 1000);
  const seen = new Set<number>();
  let outside = 0,
    repeated = 0;
  for (const [i, bar] of bars.entries()) {
    const startMs = ibBarTimeMs(bar.time);
    if (startMs === undefined) throw new Error(`bar ${i + 1} of the reply has time ${JSON.stringify(bar.time)}, not epoch seconds (formatDate 2)`);
    if (startMs < options.fromMs || startMs >= options.toMs) {
      outside++;
      continue;
    }
    if (seen.has(startMs)) {
      repeated++;
      continue;
    }
    seen.add(startMs);
    const srcTs = formatMicros(startMs * 1000);
    events.push({
      ver: 1,
      provider: options.provider,
      symbol: options.symbol,
      kind: 'bar',
      interval: options.bar,
      src_ts: srcTs,
      ingest_ts: ingestTs,
      o: bar.open,
      h: bar.high,
      l: bar.low,
      c: bar.close,
      v: bar.volume < 0 ? 0 : bar.volume,
      seq: 0,
      event_id: makeEventId(options.provider, options.symbol, srcTs, 0),
    });
  }
  events.sort((a, b) => (a.src_ts < b.src_ts ? -1 : a.src_ts > b.src_ts ? 1 : 0));
  return { events, outside, repeated };
}
