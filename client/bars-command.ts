import type { StreamingConfig } from '../pipeline/config/index.js';
import { intervalLabel, parseDurationMs } from '../pipeline/contracts/index.js';
import { formatCount } from '../pipeline/contracts/readable-text.js';
import { alignUp, parseReplayBound } from '../pipeline/datasets/replay-range.js';
import { barGaps, createDb, exportBars } from '../store/index.js';
import type { BarGap, BarRow, BarsRangeQuery } from '../store/index.js';
import { OptionError } from './option-error.js';
import { parseOutput } from './output-format.js';

/** Flags of `mdp bars export` and `mdp bars gaps`, as given on the command line. */
export interface BarsOptions {
  readonly symbol?: string | undefined;
  readonly provider?: string | undefined;
  readonly from?: string | undefined;
  readonly to?: string | undefined;
  /** Bar interval; default the configured `micro_batch.window_ms`. */
  readonly interval?: string | undefined;
  /** `-o`: export `csv` (default) or `jsonl`; gaps `text` (default) or `json`. */
  readonly output?: string | undefined;
  /** `gaps` only: shortest gap listed (default one interval). */
  readonly minGap?: string | undefined;
}

/** Where command output goes; awaited, so a slow reader (a pipe) holds the export back. */
export type Write = (text: string) => void | Promise<void>;

/** The columns of `bars_ohlcv`, in export order (the CSV header). */
export const BAR_COLUMNS = ['provider', 'symbol', 'interval', 'ts', 'open', 'high', 'low', 'close', 'volume', 'trades', 'updated_at'] as const;

/** What `mdp bars gaps -o json` prints. */
export interface BarGapsReport {
  readonly provider: string | null;
  readonly symbol: string;
  readonly interval: string;
  /** The range, widened to window boundaries. */
  readonly from: string;
  readonly to: string;
  readonly windows: number;
  readonly missing: number;
  readonly gaps: readonly { readonly from: string; readonly to: string; readonly durationMs: number; readonly missing: number }[];
}

/**
 * `mdp bars export`: the bars of one symbol in `[--from, --to)` from `bars_ohlcv`, in `ts` order,
 * as CSV with a header or as JSON lines, streamed from a server-side cursor page by page. Numbers
 * are written in their shortest exact form, so reading the output back gives the table's values.
 * Returns the exit code (0; bad flags throw {@link OptionError}).
 */
export async function barsExport(config: StreamingConfig, options: BarsOptions, write: Write): Promise<number> {
  const output = parseOutput(options.output ?? 'csv', ['csv', 'jsonl']);
  const query = rangeQuery(config, options, 'export');
  const db = createDb(config.store.url);
  try {
    if (output === 'csv') await write(BAR_COLUMNS.join(',') + '\n');
    await exportBars(db, query, (rows) => write(rows.map(output === 'csv' ? csvLine : jsonLine).join('')));
  } finally {
    await db.destroy();
  }
  return 0;
}

/**
 * `mdp bars gaps`: the runs of windows without a bar in `[--from, --to)` (the feed was down, the
 * pipeline stopped), at least `--min-gap` long, as `from → to (duration, N missing windows)`
 * lines and a summary, or one JSON document with `-o json`. Computed in SQL over the stored bars;
 * no market hours are assumed, so a closed market shows as a gap. Returns the exit code (0).
 */
export async function barsGaps(config: StreamingConfig, options: BarsOptions, write: Write): Promise<number> {
  const output = parseOutput(options.output, ['text', 'json']);
  const query = rangeQuery(config, options, 'gaps');
  const stepMs = parseDurationMs(query.interval)!;
  let minGapMs = stepMs;
  if (options.minGap !== undefined) {
    const parsed = parseDurationMs(options.minGap);
    if (parsed === undefined) throw new OptionError(`--min-gap must be a duration such as 5s (got "${options.minGap}")`);
    minGapMs = parsed;
  }
  // Whole windows: a gap is a run of window starts without a bar.
  const range = { ...query, fromMs: alignUp(query.fromMs, stepMs), toMs: Math.max(alignUp(query.fromMs, stepMs), alignUp(query.toMs, stepMs)) };
  const db = createDb(config.store.url);
  let gaps: BarGap[];
  try {
    gaps = await barGaps(db, { ...range, stepMs, minGapMs });
  } finally {
    await db.destroy();
  }
  const report: BarGapsReport = {
    provider: range.provider ?? null,
    symbol: range.symbol,
    interval: range.interval,
    from: new Date(range.fromMs).toISOString(),
    to: new Date(range.toMs).toISOString(),
    windows: (range.toMs - range.fromMs) / stepMs,
    missing: gaps.reduce((n, g) => n + g.missing, 0),
    gaps: gaps.map((g) => ({ from: new Date(g.fromMs).toISOString(), to: new Date(g.toMs).toISOString(), durationMs: g.toMs - g.fromMs, missing: g.missing })),
  };
  if (output === 'json') {
    await write(JSON.stringify(report) + '\n');
    return 0;
  }
  for (const g of report.gaps) {
    await write(`${g.from} → ${g.to} (${formatGapSpan(g.durationMs)}, ${formatCount(g.missing)} missing window${g.missing === 1 ? '' : 's'})\n`);
  }
  const who = `${report.provider === null ? 'any provider' : report.provider} ${report.symbol} ${report.interval}`;
  const share = report.windows === 0 ? '' : ` (${((100 * report.missing) / report.windows).toFixed(1)} %)`;
  await write(
    `${formatCount(gaps.length)} gap${gaps.length === 1 ? '' : 's'}: ${formatCount(report.missing)} of ${formatCount(report.windows)} windows without a bar${share} for ${who} in [${report.from}, ${report.to})\n`,
  );
  return 0;
}

/** Checks `--symbol`, `--provider`, `--from`, `--to` and `--interval`. */
function rangeQuery(config: StreamingConfig, options: BarsOptions, verb: string): BarsRangeQuery {
  if (!options.symbol) throw new OptionError(`bars ${verb} needs --symbol SYMBOL`);
  if (options.provider === '') throw new OptionError('--provider must not be empty');
  const bound = (flag: 'from' | 'to'): number => {
    const text = options[flag];
    if (text === undefined) throw new OptionError(`bars ${verb} needs --from and --to (a date such as 2025-10-24 or a time such as 2025-10-24T14:30:00Z)`);
    const ms = parseReplayBound(text);
    if (ms === undefined) throw new OptionError(`--${flag} must be a date (2025-10-24) or an ISO-8601 time with a zone (2025-10-24T14:30:00Z) (got "${text}")`);
    return ms;
  };
  const fromMs = bound('from');
  const toMs = bound('to');
  if (toMs <= fromMs) throw new OptionError(`--to must be after --from (got ${options.from} → ${options.to})`);
  let interval = intervalLabel(config.micro_batch.window_ms);
  if (options.interval !== undefined) {
    const ms = parseDurationMs(options.interval);
    if (ms === undefined || ms <= 0) throw new OptionError(`--interval must be a bar interval such as 1s or 500ms (got "${options.interval}")`);
    interval = intervalLabel(ms); // the label the pipeline stores: 1000ms → 1s
  }
  return { symbol: options.symbol, ...(options.provider !== undefined ? { provider: options.provider } : {}), interval, fromMs, toMs };
}

function csvLine(row: BarRow): string {
  return (
    [row.provider, row.symbol, row.interval, row.ts.toISOString(), row.open, row.high, row.low, row.close, row.volume, row.trades, row.updated_at.toISOString()]
      .map((v) => (typeof v === 'number' ? String(v) : csvField(v)))
      .join(',') + '\n'
  );
}

/** RFC 4180: quoted when it holds a comma, quote or line break, quotes doubled. */
function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function jsonLine(row: BarRow): string {
  return JSON.stringify({ ...row, ts: row.ts.toISOString(), updated_at: row.updated_at.toISOString() }) + '\n';
}

/** A gap's length as kubectl and Go print durations: `36m8s`, `5h11m58s`, `1d2h`, `500ms`. */
export function formatGapSpan(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) parts.push(`${n}${unit}`);
  }
  if (rest > 0) parts.push(`${rest}ms`);
  return parts.join('');
}
