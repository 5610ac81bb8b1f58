import { formatAge, formatClock, formatCount } from '../pipeline/contracts/index.js';
import type { FiredSignal, PipelineProgress } from './progress.js';

/** What `mdp up` shows on a terminal, redrawn in place every second. */
export interface LivePanelState {
  /** What runs and where to look (pipeline, workflows, Web UI, metrics, log): stays at the top. */
  readonly header: readonly string[];
  readonly progress: PipelineProgress;
  /** The reading a second or so before, for rates; absent on the first frame. */
  readonly previous?: PipelineProgress;
  /** When `mdp up` started, epoch ms. */
  readonly startedMs: number;
  /** The newest signals of the live signals stream, newest last. */
  readonly signals: readonly FiredSignal[];
  readonly warnings: readonly string[];
}

/** The terminal's size: lines are cut to `columns`, the panel to `rows - 1` lines. */
export interface PanelSize {
  readonly columns: number;
  readonly rows: number;
}

/** Signals listed at most; fewer when the terminal is short. */
const MAX_SIGNALS = 5;

function cut(line: string, columns: number): string {
  return line.length <= columns ? line : `${line.slice(0, Math.max(0, columns - 1))}…`;
}

function perSecond(now: number, before: number | undefined, secs: number): string {
  return before === undefined || secs <= 0 ? '-' : `${formatCount(Math.round((now - before) / secs))}/s`;
}

/** Columns padded to their widest cell, two spaces apart. */
function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) =>
    r
      .map((cell, i) => cell.padEnd(widths[i]))
      .join('  ')
      .trimEnd(),
  );
}

/**
 * The panel's lines for `state`, each at most `size.columns` wide and at most `size.rows - 1` of
 * them (the last signals give way first on a short terminal). Pure: the same state and size give
 * the same frame.
 *
 * @example
 * write(redrawPanel(renderLivePanel(state, { columns: 100, rows: 40 }), previousHeight));
 */
export function renderLivePanel(state: LivePanelState, size: PanelSize): string[] {
  const p = state.progress;
  const prev = state.previous;
  const secs = prev ? (p.atMs - prev.atMs) / 1000 : 0;
  // Two lines, so that an 80-column terminal shows them whole.
  const totals = [
    [
      `${formatClock(p.atMs)}  up ${formatAge(p.atMs - state.startedMs)}`,
      `events in ${formatCount(p.eventsIn)} (${perSecond(p.eventsIn, prev?.eventsIn, secs)})`,
      `bars written ${formatCount(p.bars)} (${perSecond(p.bars, prev?.bars, secs)})`,
    ].join(' | '),
    [`signals ${formatCount(p.signals)}`, `late ${formatCount(p.late)}`, `dlq ${formatCount(p.dlq)}`, `pending ${formatCount(p.pending)}`].join(' | '),
  ];
  const shards = table([
    ['shard', 'events in', 'rate', 'lag', 'pending'],
    ...p.shards.map((s) => [
      String(s.shard),
      formatCount(s.eventsIn),
      perSecond(s.eventsIn, prev?.shards.find((x) => x.shard === s.shard)?.eventsIn, secs),
      `${(s.lagMs / 1000).toFixed(1)}s`,
      formatCount(s.pending),
    ]),
  ]);
  const warnings = state.warnings.length === 0 ? [] : ['warnings', ...state.warnings.map((w) => `  ${w}`)];
  const footer = ['Ctrl-C stops the worker and pauses the recovery schedule; mdp up again resumes.'];
  const fixed = [...state.header, '─'.repeat(Math.min(size.columns, 80)), ...totals, ...shards, 'last signals'];
  const room = Math.max(1, size.rows - 1 - fixed.length - warnings.length - footer.length);
  const signals = state.signals.slice(-Math.min(MAX_SIGNALS, room));
  const signalLines =
    signals.length === 0
      ? ['  (none yet)']
      : table(
          signals
            .slice()
            .reverse()
            .map((s) => [`  ${s.ts.slice(11, 19) || '-'}`, s.symbol, s.name, Number.isFinite(s.score) ? `score ${s.score.toFixed(2)}` : '', s.provider]),
        );
  return [...fixed, ...signalLines, ...warnings, ...footer].slice(0, Math.max(1, size.rows - 1)).map((line) => cut(line, size.columns));
}

/** ANSI: hide / show the cursor. */
export const HIDE_CURSOR = '\x1b[?25l';
export const SHOW_CURSOR = '\x1b[?25h';

/**
 * The bytes that replace the previous frame (`previousHeight` lines, 0 for the first) with `lines`:
 * cursor up to the frame's first line, each line rewritten and cleared to its end, anything below
 * cleared. No dependency: plain ANSI/VT100 sequences every terminal emulator knows.
 */
export function redrawPanel(lines: readonly string[], previousHeight: number): string {
  const up = previousHeight > 0 ? `\x1b[${previousHeight}A` : '';
  return `${up}\r${lines.map((line) => `${line}\x1b[K`).join('\n')}\n\x1b[J`;
}

/** The summary `mdp up` prints when it stops: how long it ran and what went through. */
export function formatRunSummary(first: PipelineProgress, last: PipelineProgress, startedMs: number): string {
  return [
    `ran ${formatAge(last.atMs - startedMs)}`,
    `events in ${formatCount(last.eventsIn - first.eventsIn)}`,
    `bars written ${formatCount(last.bars - first.bars)}`,
    `signals ${formatCount(last.signals - first.signals)}`,
    `late ${formatCount(last.late - first.late)}`,
    `dlq ${formatCount(last.dlq - first.dlq)}`,
  ].join(' | ');
}
