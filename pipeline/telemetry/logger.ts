import { redactSecrets } from '../config/redact.js';

/** Structured JSON logs, one object per line; levels follow `telemetry.log_level`. */
export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function createLogger(level: LogLevel, write: (line: string) => void, base: Record<string, unknown> = {}): Logger {
  const threshold = LOG_LEVELS.indexOf(level);
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (LOG_LEVELS.indexOf(lvl) < threshold) return;
    const line = JSON.stringify({ ts: new Date().toISOString(), level: lvl.toLowerCase(), msg, ...base, ...fields }, (_k, v: unknown) =>
      // The cause chain is where Temporal keeps the real reason ("Activity failed" ← the activity's error).
      v instanceof Error ? { name: v.name, message: v.message, ...(v.cause === undefined ? {} : { cause: v.cause }) } : v,
    );
    write(redactSecrets(line)); // passwords in URLs never reach a log line
  };
  return {
    debug: (msg, fields) => emit('DEBUG', msg, fields),
    info: (msg, fields) => emit('INFO', msg, fields),
    warn: (msg, fields) => emit('WARNING', msg, fields),
    error: (msg, fields) => emit('ERROR', msg, fields),
    child: (fields) => createLogger(level, write, { ...base, ...fields }),
  };
}
