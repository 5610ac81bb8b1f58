import { redactSecrets } from '../config/redact.js';
import { formatPretty } from './pretty-log.js';

/** Log levels, least severe first; `telemetry.log_level` is one of them. */
export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** How a line is written: one JSON object, or a readable (optionally coloured) line for a terminal. */
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * One log line before it is written: `ts`, `level`, `component` (who logs: `worker`, `bus.redis`,
 * `temporal.core`, …) and `msg` first, then the fields.
 */
export interface LogRecord {
  readonly ts: string;
  readonly level: 'debug' | 'info' | 'warning' | 'error';
  readonly component?: string;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger adding `fields` to every line (`{ component: 'bus.redis' }` names the component). */
  child(fields: Record<string, unknown>): Logger;
  /** Whether a line of `level` would be written (skip building expensive fields otherwise). */
  enabled(level: LogLevel): boolean;
}

export interface LoggerOptions {
  /** `json` (default): one object per line; `pretty`: `HH:MM:SS.mmm LEVEL component msg key=value`. */
  readonly format?: LogFormat;
  /** Colours in the pretty format (a terminal without `NO_COLOR`); default false. */
  readonly color?: boolean;
}

/** The cause chain is where Temporal keeps the real reason ("Activity failed" ← the activity's error). */
function errorsAsObjects(_key: string, v: unknown): unknown {
  return v instanceof Error ? { name: v.name, message: v.message, ...(v.cause === undefined ? {} : { cause: v.cause }) } : v;
}

/** The record as one JSON line (what log shippers read). */
export function formatJson(record: LogRecord): string {
  return JSON.stringify(record, errorsAsObjects);
}

/**
 * The project's one logger: every line carries `ts`, `level`, `component` and `msg`, passwords in
 * URLs are masked, lines below `level` are dropped. `write` receives one finished line (no newline).
 *
 * @example
 * const log = createLogger('INFO', (line) => process.stdout.write(line + '\n'), { component: 'worker' });
 * log.child({ component: 'bus.redis' }).warn('redis connection error', { uri });
 */
export function createLogger(level: LogLevel, write: (line: string) => void, base: Record<string, unknown> = {}, options: LoggerOptions = {}): Logger {
  const threshold = LOG_LEVELS.indexOf(level);
  const format = options.format === 'pretty' ? (r: LogRecord) => formatPretty(r, { color: options.color ?? false }) : formatJson;
  const enabled = (lvl: LogLevel) => LOG_LEVELS.indexOf(lvl) >= threshold;
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (!enabled(lvl)) return;
    const { component, ...rest } = { ...base, ...fields };
    const record: LogRecord = {
      ts: new Date().toISOString(),
      level: lvl.toLowerCase() as LogRecord['level'],
      ...(typeof component === 'string' ? { component } : {}),
      msg,
      ...rest,
    };
    write(redactSecrets(format(record))); // passwords in URLs never reach a log line
  };
  return {
    debug: (msg, fields) => emit('DEBUG', msg, fields),
    info: (msg, fields) => emit('INFO', msg, fields),
    warn: (msg, fields) => emit('WARNING', msg, fields),
    error: (msg, fields) => emit('ERROR', msg, fields),
    child: (fields) => createLogger(level, write, { ...base, ...fields }, options),
    enabled,
  };
}

/** A logger that writes nothing (library defaults, tests that do not look at logs). */
export const SILENT_LOGGER: Logger = createLogger('ERROR', () => undefined, {}, {});
