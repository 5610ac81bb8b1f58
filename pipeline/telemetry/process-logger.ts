import type { Logger, LogLevel } from './logger.js';
import { createLogger } from './logger.js';
import type { LogFormatSetting } from './log-output.js';
import { resolveLogOutput } from './log-output.js';

export interface ProcessLoggerOptions {
  /** `telemetry.log_level`. */
  readonly level: LogLevel;
  /** `telemetry.log_format` (`auto`: pretty on a terminal, JSON otherwise). */
  readonly format: LogFormatSetting;
  /** Where the lines go (the worker: stdout; the CLI: stderr, its stdout is the command's output). */
  readonly stream: { readonly isTTY?: boolean; write(chunk: string): unknown };
  /** The process environment (`NO_COLOR`, `TERM`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The component of the process's own lines (`worker`, `cli`); children name theirs. */
  readonly component: string;
  /** Fields on every line (e.g. `pid`). */
  readonly fields?: Record<string, unknown>;
}

/**
 * The logger of a process entrypoint (worker, CLI): the project's logger writing to `stream` in
 * the format `telemetry.log_format` resolves to there.
 *
 * @example
 * const log = createProcessLogger({ level: 'INFO', format: 'auto', stream: process.stdout, env: process.env, component: 'worker' });
 */
export function createProcessLogger(options: ProcessLoggerOptions): Logger {
  const output = resolveLogOutput(options.format, { isTTY: options.stream.isTTY, env: options.env });
  return createLogger(options.level, (line) => options.stream.write(line + '\n'), { component: options.component, ...options.fields }, output);
}
