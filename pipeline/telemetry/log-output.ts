import type { LogFormat } from './logger.js';

/** `telemetry.log_format`: `auto` is pretty on a terminal and JSON otherwise. */
export const LOG_FORMAT_SETTINGS = ['auto', 'json', 'pretty'] as const;
export type LogFormatSetting = (typeof LOG_FORMAT_SETTINGS)[number];

/** How a process writes its logs, from its setting and where the lines go. */
export interface LogOutput {
  readonly format: LogFormat;
  readonly color: boolean;
}

/**
 * Pretty and coloured only for a person at a terminal: `auto` is pretty when the stream is a TTY,
 * JSON otherwise (files, pipes, log shippers); colours only in the pretty format on a TTY, never
 * with `NO_COLOR` set (https://no-color.org) or `TERM=dumb`.
 *
 * @example
 * resolveLogOutput(config.telemetry.log_format, { isTTY: process.stdout.isTTY, env: process.env })
 */
export function resolveLogOutput(
  setting: LogFormatSetting,
  where: { readonly isTTY: boolean | undefined; readonly env: Readonly<Record<string, string | undefined>> },
): LogOutput {
  const tty = where.isTTY === true;
  const format: LogFormat = setting === 'auto' ? (tty ? 'pretty' : 'json') : setting;
  const noColor = (where.env.NO_COLOR ?? '') !== '' || where.env.TERM === 'dumb';
  return { format, color: format === 'pretty' && tty && !noColor };
}
