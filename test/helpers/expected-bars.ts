/**
 * An independent, brute-force bar computation for tests: group events by (provider, symbol,
 * window), sort each group by (src_ts, seq), take o/c from the ends, h/l as max/min, v as the sum.
 */
import type { Bar, StreamEventV1 } from '../../pipeline/contracts/index.js';
import { intervalLabel, parseIsoToMicros } from '../../pipeline/contracts/index.js';

function micros(e: StreamEventV1): number {
  const us = parseIsoToMicros(e.src_ts);
  if (us === undefined) throw new Error(`test event has an unparseable src_ts: ${e.src_ts}`);
  return us;
}

export function expectedBars(events: readonly StreamEventV1[], windowMs: number): Bar[] {
  const unique = new Map(events.map((e) => [e.event_id, e]));
  const groups = new Map<string, StreamEventV1[]>();
  for (const e of unique.values()) {
    const tsMs = Math.floor(micros(e) / 1000 / windowMs) * windowMs;
    const key = `${e.provider}|${e.symbol}|${tsMs}`;
    groups.set(key, [...(groups.get(key) ?? []), e]);
  }
  const bars: Bar[] = [];
  for (const [key, group] of groups) {
    const [provider, symbol, ts] = key.split('|') as [string, string, string];
    group.sort((a, b) => micros(a) - micros(b) || a.seq - b.seq);
    bars.push({
      provider,
      symbol,
      interval: intervalLabel(windowMs),
      tsMs: Number(ts),
      open: group[0].o,
      close: group[group.length - 1].c,
      high: Math.max(...group.map((e) => e.h)),
      low: Math.min(...group.map((e) => e.l)),
      volume: group.reduce((sum, e) => sum + e.v, 0),
      trades: group.length,
    });
  }
  return bars.sort((a, b) => a.symbol.localeCompare(b.symbol) || a.tsMs - b.tsMs);
}
