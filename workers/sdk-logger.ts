import type { LogLevel as SdkLogLevel, LogMetadata, Logger as SdkLogger } from '@temporalio/common';
import type { RuntimeOptions } from '@temporalio/worker';
import type { Logger, LogLevel } from '../pipeline/telemetry/index.js';

/**
 * SDK and core lines that say what our own lines already say once (`worker running`, `worker
 * stopped`): kept at debug, so a worker start or stop is one line, not a block of state changes.
 */
const SAID_BY_US = new Set([
  'Worker state changed',
  'No Nexus services registered, not polling for Nexus tasks',
  'Initializing worker',
  'Initiated shutdown',
  'Workflow shutdown is done',
]);

/** Whether a line is one of {@link SAID_BY_US}, or the bundler's multi-line webpack report. */
function saidByUs(message: string): boolean {
  return SAID_BY_US.has(message) || (message.includes('\n') && message.includes('webpack'));
}

/** `sdkComponent` of the SDK's metadata → our `component`. */
function componentOf(meta: LogMetadata | undefined): string {
  switch (meta?.sdkComponent) {
    case 'core':
      return 'temporal.core';
    case 'workflow':
      return 'workflow';
    case 'activity':
      return 'activity';
    default:
      return 'temporal.sdk';
  }
}

/**
 * The Temporal SDK's {@link SdkLogger} writing through the project's logger, so SDK and core lines
 * have the same shape (`ts`, `level`, `component`, `msg`) and level filter as ours. Every level is
 * forwarded; the project logger drops what `telemetry.log_level` does not ask for.
 */
export function sdkLoggerOf(log: Logger): SdkLogger {
  const write = (level: SdkLogLevel, message: string, meta?: LogMetadata) => {
    // Symbol keys (the SDK's timestamp) never reach JSON; the core's span contexts are noise here.
    const { sdkComponent: _sdk, spanContexts: _spans, ...fields } = meta ?? {};
    const line = { component: componentOf(meta), ...fields };
    if (saidByUs(message) || level === 'TRACE' || level === 'DEBUG') log.debug(message, line);
    else if (level === 'INFO') log.info(message, line);
    else if (level === 'WARN') log.warn(message, line);
    else log.error(message, line);
  };
  return {
    log: write,
    trace: (m, meta) => write('TRACE', m, meta),
    debug: (m, meta) => write('DEBUG', m, meta),
    info: (m, meta) => write('INFO', m, meta),
    warn: (m, meta) => write('WARN', m, meta),
    error: (m, meta) => write('ERROR', m, meta),
  };
}

const CORE_LEVEL: Record<LogLevel, SdkLogLevel> = { DEBUG: 'DEBUG', INFO: 'INFO', WARNING: 'WARN', ERROR: 'ERROR' };

/**
 * `Runtime.install` options sending the SDK's logs and the SDK core's (Rust) logs through `log`,
 * filtered at `level` (`telemetry.log_level`).
 *
 * @example
 * Runtime.install(sdkRuntimeOptions(log, config.telemetry.log_level));
 */
export function sdkRuntimeOptions(log: Logger, level: LogLevel): RuntimeOptions {
  const core = CORE_LEVEL[level];
  return {
    logger: sdkLoggerOf(log),
    telemetryOptions: { logging: { filter: { core, other: core }, forward: {} } },
  };
}
