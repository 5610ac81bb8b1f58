import type { StreamEventV1 } from '../contracts/index.js';
import { SeededRandom, SyntheticProducer } from '../producers/index.js';
import { newYorkOffsetHours } from '../contracts/index.js';

/** Options of {@link generateSampleDay}. */
export interface SampleDayOptions {
  /** Trading date, `YYYY-MM-DD` (a weekday). */
  readonly date: string;
  readonly provider: string;
  readonly symbols: readonly string[];
  /** Same seed and date, same events (byte for byte). */
  readonly seed: number;
  /** Expected ticks per symbol over the session. Default 60 000. */
  readonly ticksPerDay?: number;
  /** Annualized volatility of the price walk. Default 0.15. */
  readonly volatility?: number;
  readonly startPrices?: Readonly<Record<string, number>>;
}

const SESSION_SECONDS = 6.5 * 3600;

/** The regular session 09:30–16:00 New York time of `date` as epoch ms `[open, close)`. */
export function sessionBounds(date: string): { openMs: number; closeMs: number } {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) throw new RangeError(`date must be YYYY-MM-DD (got ${JSON.stringify(date)})`);
  const [y, mo, d] = [Number(m[1]), Number(m[2]) - 1, Number(m[3])];
  const midnight = Date.UTC(y, mo, d);
  const check = new Date(midnight);
  if (check.getUTCMonth() !== mo || check.getUTCDate() !== d) throw new RangeError(`${date} is not a calendar date`);
  const dow = check.getUTCDay();
  if (dow === 0 || dow === 6) throw new RangeError(`${date} is a ${dow === 0 ? 'Sunday' : 'Saturday'}: no regular session`);
  const openMs = midnight + (9.5 - newYorkOffsetHours(y, mo, d)) * 3_600_000;
  return { openMs, closeMs: openMs + SESSION_SECONDS * 1000 };
}

/**
 * Relative trading intensity at `x` ∈ [0, 1] of the session: the familiar U shape — a burst at
 * the open decaying over the first half hour, a quiet midday, and a ramp into the close.
 */
export function intradayIntensity(x: number): number {
  return 0.45 + 2.2 * Math.exp(-x / 0.05) + 1.3 * Math.exp(-(1 - x) / 0.06);
}

/**
 * A deterministic, realistic sample trading day of ticks: arrivals follow
 * {@link intradayIntensity} (a non-homogeneous Poisson process, so volume per minute is U-shaped),
 * prices a geometric Brownian motion and sizes odd and round lots (both from
 * {@link SyntheticProducer}). Events are in `src_ts` order with `ingest_ts = src_ts`.
 */
export function generateSampleDay(options: SampleDayOptions): StreamEventV1[] {
  const { openMs, closeMs } = sessionBounds(options.date);
  const ticksPerDay = options.ticksPerDay ?? 60_000;
  if (!(ticksPerDay > 0)) throw new RangeError(`ticksPerDay must be > 0 (got ${ticksPerDay})`);
  // Scale the curve so its integral over the session is ticksPerDay.
  let integral = 0;
  for (let s = 0; s < SESSION_SECONDS; s++) integral += intradayIntensity((s + 0.5) / SESSION_SECONDS);
  const scale = ticksPerDay / integral;
  const rng = SeededRandom.fromSeed(options.seed);
  const arrivals: { us: number; symbol: string }[] = [];
  for (const symbol of options.symbols) {
    let t = 0; // seconds into the session
    let lastUs = -1;
    for (;;) {
      t += -Math.log(1 - rng.next()) / (scale * intradayIntensity(Math.min(1, t / SESSION_SECONDS)));
      if (t >= SESSION_SECONDS) break;
      let us = openMs * 1000 + Math.floor(t * 1e6);
      if (us <= lastUs) us = lastUs + 1;
      if (us >= closeMs * 1000) break;
      arrivals.push({ us, symbol });
      lastUs = us;
    }
  }
  arrivals.sort((a, b) => a.us - b.us || (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
  const producer = new SyntheticProducer({
    provider: options.provider,
    symbols: options.symbols,
    seed: options.seed,
    tickRate: 1,
    priceVolatility: options.volatility ?? 0.15,
    startPrices: options.startPrices,
  });
  return arrivals.map((a) => producer.nextTick(a.symbol, a.us, a.us));
}
