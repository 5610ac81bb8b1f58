export type { Logger, LogLevel } from './logger.js';
export { LOG_LEVELS, createLogger } from './logger.js';
export type { Metrics } from './metrics.js';
export { createMetrics } from './metrics.js';
export { OUTAGE_LOG_INTERVAL_MS, OutageLog } from './outage-log.js';
export type { OutageLogOptions } from './outage-log.js';
