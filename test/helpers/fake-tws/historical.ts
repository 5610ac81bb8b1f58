/**
 * How the fake TWS answers reqHistoricalData from its tape: parsing IB's request strings
 * (endDateTime, durationStr, barSizeSetting) the way TWS accepts them, and aggregating the tape into
 * bars. Independent of mdp's code (tests compare mdp's bars against what this sends).
 *
 * Simplifications, stated: the fake's TWS time zone is UTC (an endDateTime without a zone, and
 * formatDate=1 bar times, are UTC and say so with a ` UTC` suffix); `D`/`W`/`M`/`Y` durations are
 * calendar days (1, 7, 30, 365); daily bars are UTC days; regular trading hours are 09:30–16:00
 * America/New_York on weekdays (no holidays).
 */
import type { TapeTick } from './tape.js';

export const WHAT_TO_SHOW = ['TRADES', 'MIDPOINT', 'BID', 'ASK', 'BID_ASK'] as const;
export type WhatToShow = (typeof WHAT_TO_SHOW)[number];

/** IB's barSizeSetting strings and their seconds. */
export const BAR_SIZES: Readonly<Record<string, number>> = {
  '1 secs': 1,
  '5 secs': 5,
  '10 secs': 10,
  '15 secs': 15,
  '30 secs': 30,
  '1 min': 60,
  '2 mins': 120,
  '3 mins': 180,
  '5 mins': 300,
  '10 mins': 600,
  '15 mins': 900,
  '20 mins': 1200,
  '30 mins': 1800,
  '1 hour': 3600,
  '2 hours': 7200,
  '3 hours': 10800,
  '4 hours': 14400,
  '8 hours': 28800,
  '1 day': 86400,
};

const DAY = 86_400;

/**
 * The longest duration a bar size may be asked for, from IB's step-size table ("Historical Data
 * Limitations": 1800 S for 1 sec bars, 3600 S for 5 secs, 4 hours for 10 secs, 8 hours for 30 secs,
 * 1 D for 1 min, 2 D for 2 mins, 1 W for 3 mins, 1 M for 30 mins, 1 Y for 1 day).
 */
export function maxDurationSec(barSec: number): number {
  if (barSec < 5) return 1800;
  if (barSec < 10) return 3600;
  if (barSec < 30) return 14_400;
  if (barSec < 60) return 28_800;
  if (barSec < 120) return DAY;
  if (barSec < 180) return 2 * DAY;
  if (barSec < 1800) return 7 * DAY;
  if (barSec < DAY) return 30 * DAY;
  return 365 * DAY;
}

/** `N S|D|W|M|Y` in seconds, or undefined. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+) ([SDWMY])$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { S: 1, D: DAY, W: 7 * DAY, M: 30 * DAY, Y: 365 * DAY }[m[2] as 'S' | 'D' | 'W' | 'M' | 'Y'];
  return n > 0 ? n * unit : undefined;
}

/** Offset in ms of `zone` from UTC at the UTC instant `utcMs` (positive east of Greenwich). */
function zoneOffsetMs(zone: string, utcMs: number): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: zone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(new Date(utcMs));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return asUtc - Math.floor(utcMs / 1000) * 1000;
}

/**
 * endDateTime as TWS accepts it: empty (now), `yyyyMMdd HH:mm:ss` (the TWS zone: UTC here),
 * `yyyyMMdd HH:mm:ss <zone>` (UTC, GMT or an IANA name such as US/Eastern), or `yyyyMMdd-HH:mm:ss`
 * (UTC). Epoch ms, or an error text.
 */
export function parseEndDateTime(text: string, nowMs: number): number | string {
  if (text.trim() === '') return nowMs;
  const m = /^(\d{4})(\d{2})(\d{2})(?:[ -])(\d{2}):(\d{2}):(\d{2})(?: (\S+))?$/.exec(text.trim());
  if (!m) return `endDateTime must be "yyyyMMdd HH:mm:ss [zone]" or "yyyyMMdd-HH:mm:ss" (got "${text}")`;
  const [, y, mo, d, h, mi, s, zone] = m;
  const local = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (zone === undefined || zone === 'UTC' || zone === 'GMT') return local;
  try {
    // The zone's offset at the local time, corrected once for a DST change between the two guesses.
    let utc = local - zoneOffsetMs(zone, local);
    utc = local - zoneOffsetMs(zone, utc);
    return utc;
  } catch {
    return `endDateTime has an unknown time zone "${zone}"`;
  }
}

const NEW_YORK = new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', hourCycle: 'h23', weekday: 'short', hour: '2-digit', minute: '2-digit' });

/** Whether an epoch second is in US equities' regular hours (09:30–16:00 New York, Monday–Friday). */
export function inRegularHours(sec: number): boolean {
  const parts = NEW_YORK.formatToParts(new Date(sec * 1000));
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  if (get('weekday') === 'Sat' || get('weekday') === 'Sun') return false;
  const minutes = Number(get('hour')) * 60 + Number(get('minute'));
  return minutes >= 570 && minutes < 960;
}

export interface HistoricalBar {
  /** Bar start, epoch seconds. */
  readonly time: number;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  /** -1 when IB has none (MIDPOINT, BID, ASK, BID_ASK). */
  readonly volume: number;
  readonly wap: number;
  readonly count: number;
}

/** The price a tick contributes to a bar of `what` (BID_ASK: bid for open/low, ask for high/close). */
function prices(t: TapeTick, what: WhatToShow): { first: number; high: number; low: number; last: number } {
  switch (what) {
    case 'TRADES':
      return { first: t.price, high: t.price, low: t.price, last: t.price };
    case 'MIDPOINT': {
      const mid = Math.round(((t.bid + t.ask) / 2) * 1000) / 1000;
      return { first: mid, high: mid, low: mid, last: mid };
    }
    case 'BID':
      return { first: t.bid, high: t.bid, low: t.bid, last: t.bid };
    case 'ASK':
      return { first: t.ask, high: t.ask, low: t.ask, last: t.ask };
    case 'BID_ASK':
      return { first: t.bid, high: t.ask, low: t.bid, last: t.ask };
  }
}

/**
 * Bars of `barSec` (aligned to the epoch) over the ticks of `symbol` in [fromSec, toSec); a bar
 * with no tick is left out, as IB leaves out bars without trades. BID_ASK bars carry IB's meaning
 * (open: average bid, high: max ask, low: min bid, close: average ask).
 */
export function aggregateBars(
  ticks: readonly TapeTick[],
  options: { symbol: string; fromSec: number; toSec: number; barSec: number; what: WhatToShow; regularHoursOnly: boolean },
): HistoricalBar[] {
  const { symbol, fromSec, toSec, barSec, what, regularHoursOnly } = options;
  const buckets = new Map<number, TapeTick[]>();
  for (const t of ticks) {
    if (t.symbol !== symbol || t.time < fromSec || t.time >= toSec) continue;
    if (regularHoursOnly && !inRegularHours(t.time)) continue;
    const start = Math.floor(t.time / barSec) * barSec;
    const bucket = buckets.get(start);
    if (bucket) bucket.push(t);
    else buckets.set(start, [t]);
  }
  const bars: HistoricalBar[] = [];
  for (const [time, group] of [...buckets].sort((a, b) => a[0] - b[0])) {
    const p = group.map((t) => prices(t, what));
    const average = (xs: number[]) => Math.round((xs.reduce((a, b) => a + b, 0) / xs.length) * 10_000) / 10_000;
    const trades = what === 'TRADES';
    const volume = trades ? group.reduce((n, t) => n + t.size, 0) : -1;
    bars.push({
      time,
      open: what === 'BID_ASK' ? average(p.map((x) => x.first)) : p[0].first,
      high: Math.max(...p.map((x) => x.high)),
      low: Math.min(...p.map((x) => x.low)),
      close: what === 'BID_ASK' ? average(p.map((x) => x.last)) : p[p.length - 1].last,
      volume,
      wap: trades ? Math.round((group.reduce((n, t) => n + t.price * t.size, 0) / volume) * 10_000) / 10_000 : -1,
      count: trades ? group.length : -1,
    });
  }
  return bars;
}
