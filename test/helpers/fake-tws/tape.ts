/**
 * A tape: the trades the fake TWS replays, as IB reports them tick by tick (`time` in epoch
 * seconds, price, size, exchange, special conditions) plus what IB does not send but the replay
 * needs: when within its second each trade printed (`ms`, the replay schedule) and the prevailing
 * quote (`bid`/`ask`, for MIDPOINT/BID/ASK bars).
 *
 * Tapes come from {@link generateTape} (deterministic: same options, same tape) or from a CSV file
 * ({@link readTapeFile}, {@link writeTapeFile}) with the header
 * `symbol,time,ms,price,size,exchange,conditions,bid,ask`.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface TapeTick {
  readonly symbol: string;
  /** Epoch seconds, as IB sends tick-by-tick times. */
  readonly time: number;
  /** 0..999: when within `time`'s second the trade printed (replay schedule only; IB does not send it). */
  readonly ms: number;
  readonly price: number;
  readonly size: number;
  readonly exchange: string;
  /** IB's special conditions (`I` odd lot, …); empty for a regular trade. */
  readonly conditions: string;
  readonly bid: number;
  readonly ask: number;
}

/** Ticks sorted by (time, ms), ties in print order. */
export interface Tape {
  readonly ticks: readonly TapeTick[];
}

export interface GenerateTapeOptions {
  readonly symbols: readonly string[];
  /** Epoch seconds of the tape's first second. */
  readonly startSec: number;
  readonly durationSec: number;
  readonly seed: number;
  /** Mean trades per second per symbol (bursts make some seconds busier, others empty). Default 4. */
  readonly ticksPerSecond?: number;
  /** Start mid price per symbol; others get a price from their name. */
  readonly startPrices?: Readonly<Record<string, number>>;
}

/** mulberry32: a small, fast, seedable generator (the tape's own, independent of mdp's producers). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b_79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function normal(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

function poisson(rand: () => number, mean: number): number {
  // Knuth's method; the busiest seconds stay far below where it gets slow.
  const limit = Math.exp(-Math.min(mean, 200));
  let k = 0;
  for (let p = rand(); p > limit; p *= rand()) k++;
  return k;
}

const LIT_VENUES = ['ARCA', 'NASDAQ', 'NYSE', 'BATS', 'IEX', 'EDGX', 'ARCA', 'NASDAQ'];

function startPrice(symbol: string): number {
  let h = 2166136261;
  for (let i = 0; i < symbol.length; i++) h = Math.imul(h ^ symbol.charCodeAt(i), 16777619) >>> 0;
  return 20 + (h % 48_000) / 100;
}

/**
 * A deterministic tape with the microstructure a trade feed has: prices on the penny grid at the
 * bid or the ask (bid-ask bounce), sub-penny midpoint prints off-exchange (`FINRA`), a quote that
 * walks and sometimes widens, round lots, odd lots (`I`) and the odd block, and clustered activity
 * (a second's intensity follows a persistent log-normal process, so busy seconds bunch up and some
 * seconds have no trade at all). Several trades often share a second.
 */
export function generateTape(options: GenerateTapeOptions): Tape {
  const { symbols, startSec, durationSec, seed } = options;
  if (!Number.isSafeInteger(startSec) || startSec < 0) throw new RangeError(`tape startSec must be epoch seconds (got ${startSec})`);
  if (!Number.isSafeInteger(durationSec) || durationSec <= 0) throw new RangeError(`tape durationSec must be a positive integer (got ${durationSec})`);
  const rate = options.ticksPerSecond ?? 4;
  const ticks: TapeTick[] = [];
  symbols.forEach((symbol, index) => {
    const rand = random(seed * 7919 + index * 104_729 + 17);
    let midCents = Math.round((options.startPrices?.[symbol] ?? startPrice(symbol)) * 100);
    let spreadCents = 1;
    let logIntensity = 0;
    for (let s = 0; s < durationSec; s++) {
      logIntensity = 0.85 * logIntensity + 0.55 * normal(rand);
      const count = poisson(rand, rate * Math.exp(logIntensity - 0.5));
      const times = Array.from({ length: count }, () => Math.floor(rand() * 1000)).sort((a, b) => a - b);
      for (const ms of times) {
        if (rand() < 0.12) midCents += rand() < 0.5 ? -1 : 1;
        if (rand() < 0.03) spreadCents = 1 + Math.floor(rand() * 3);
        const bid = (midCents - Math.floor(spreadCents / 2)) / 100;
        const ask = bid + spreadCents / 100;
        const side = rand();
        let price: number;
        let exchange: string;
        if (side < 0.1) {
          // Off-exchange midpoint print: may be a half penny.
          price = Math.round(((bid + ask) / 2) * 1000) / 1000;
          exchange = 'FINRA';
        } else {
          price = side < 0.55 ? ask : bid;
          exchange = LIT_VENUES[Math.floor(rand() * LIT_VENUES.length)];
        }
        const kind = rand();
        const size =
          kind < 0.22
            ? 1 + Math.floor(rand() * 99)
            : kind < 0.99
              ? 100 * Math.min(20, 1 + Math.floor(-Math.log(Math.max(rand(), 1e-9)) * 1.5))
              : 2000 + 100 * Math.floor(rand() * 80);
        ticks.push({
          symbol,
          time: startSec + s,
          ms,
          price: Math.round(price * 1000) / 1000,
          size,
          exchange,
          conditions: size < 100 ? 'I' : '',
          bid: Math.round(bid * 100) / 100,
          ask: Math.round(ask * 100) / 100,
        });
      }
    }
  });
  return { ticks: sortTicks(ticks) };
}

/** Ticks by (time, ms); a stable sort keeps one symbol's prints in their order. */
export function sortTicks(ticks: readonly TapeTick[]): TapeTick[] {
  return [...ticks].sort((a, b) => a.time - b.time || a.ms - b.ms);
}

const HEADER = 'symbol,time,ms,price,size,exchange,conditions,bid,ask';

/** Writes a tape as CSV (see the module comment for the columns). */
export function writeTapeFile(path: string, tape: Tape): void {
  const lines = tape.ticks.map((t) => [t.symbol, t.time, t.ms, t.price, t.size, t.exchange, t.conditions, t.bid, t.ask].join(','));
  writeFileSync(path, [HEADER, ...lines].join('\n') + '\n');
}

/** Reads a CSV tape; a malformed line is an error naming the file, the line and the column. */
export function readTapeFile(path: string): Tape {
  const lines = readFileSync(path, 'utf8').split(/\r?\n/);
  if (lines[0] !== HEADER) throw new Error(`${path}:1: a tape starts with the header "${HEADER}" (got ${JSON.stringify(lines[0])})`);
  const ticks: TapeTick[] = [];
  lines.slice(1).forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${path}:${i + 2}`;
    const cells = line.split(',');
    if (cells.length !== 9) throw new Error(`${where}: expected 9 columns (${HEADER}), got ${cells.length}`);
    const [symbol, time, ms, price, size, exchange, conditions, bid, ask] = cells;
    const num = (name: string, text: string, check: (n: number) => boolean, rule: string) => {
      const n = Number(text);
      if (text.trim() === '' || !check(n)) throw new Error(`${where}: column ${name} must be ${rule} (got ${JSON.stringify(text)})`);
      return n;
    };
    if (symbol === '') throw new Error(`${where}: column symbol is empty`);
    ticks.push({
      symbol,
      time: num('time', time, (n) => Number.isSafeInteger(n) && n >= 0, 'epoch seconds'),
      ms: num('ms', ms, (n) => Number.isInteger(n) && n >= 0 && n < 1000, 'an integer 0..999'),
      price: num('price', price, (n) => Number.isFinite(n) && n > 0, 'a positive number'),
      size: num('size', size, (n) => Number.isFinite(n) && n > 0, 'a positive number'),
      exchange,
      conditions,
      bid: num('bid', bid, Number.isFinite, 'a number'),
      ask: num('ask', ask, Number.isFinite, 'a number'),
    });
  });
  return { ticks: sortTicks(ticks) };
}

/** The tape's symbols, in order of first appearance. */
export function tapeSymbols(tape: Tape): string[] {
  return [...new Set(tape.ticks.map((t) => t.symbol))];
}
