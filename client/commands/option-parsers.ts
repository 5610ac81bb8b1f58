/**
 * Parsers for option and argument values, run by commander at parse time: a bad value is a usage
 * error (exit 2) naming the option and the value before anything connects.
 */
import { InvalidArgumentError } from 'commander';
import { parseDurationMs } from '../../pipeline/contracts/index.js';
import { parseReplayBound, sessionBounds } from '../../pipeline/datasets/index.js';
import { parsePublishSpeed } from '../../pipeline/producers/index.js';
import type { PublishSpeed } from '../../pipeline/producers/index.js';

/** A whole number ≥ 1 (`--limit 50`, `--count 1000`). */
export function positiveInt(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a whole number >= 1 (got "${value}")`);
    return n;
  };
}

/** A number > 0 (`--rate 12.5`, `--speed 10`). */
export function positiveNumber(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number (got "${value}")`);
    return n;
  };
}

/** A duration such as `500ms`, `2s`, `5m`, `1h` (a bare number is milliseconds), within `[min, max]` ms. */
export function duration(name: string, bounds: { readonly min?: number; readonly max?: number; readonly example?: string } = {}): (value: string) => number {
  return (value) => {
    const ms = parseDurationMs(value);
    const { min = 0, max = Number.POSITIVE_INFINITY, example = '60s' } = bounds;
    if (ms === undefined || ms < min || ms > max) {
      const range = max === Number.POSITIVE_INFINITY ? (min > 0 ? ` of at least ${min} ms` : '') : ` between ${min}ms and ${max}ms`;
      throw new InvalidArgumentError(`${name} must be a duration${range} such as ${example} (units ms, s, m, h, d) (got "${value}")`);
    }
    return ms;
  };
}

/** A whole percentage 0..100, with or without `%` (`deploy ramp 25`). */
export function percentage(name: string): (value: string) => number {
  return (value) => {
    const m = /^\s*(\d+)\s*%?\s*$/.exec(value);
    const n = m ? Number(m[1]) : NaN;
    if (!(n >= 0 && n <= 100)) throw new InvalidArgumentError(`${name} must be a whole percentage from 0 to 100 (got "${value}")`);
    return n;
  };
}

/** A calendar date `YYYY-MM-DD` (`--date 2025-10-01`). */
export function calendarDate(name: string): (value: string) => string {
  return (value) => {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
    const d = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : undefined;
    if (!m || !d || d.getUTCMonth() !== Number(m[2]) - 1 || d.getUTCDate() !== Number(m[3]))
      throw new InvalidArgumentError(`${name} must be a calendar date YYYY-MM-DD, e.g. 2025-10-01 (got "${value}")`);
    return value;
  };
}

/** A trading date: a calendar date with a regular session (not a weekend). */
export function tradingDate(name: string): (value: string) => string {
  const date = calendarDate(name);
  return (value) => {
    date(value);
    try {
      sessionBounds(value);
    } catch (err) {
      throw new InvalidArgumentError(`${name}: ${(err as Error).message}`);
    }
    return value;
  };
}

/** A date or timestamp `Date.parse` understands (`--from 2025-10-01`, `--start-ts 2025-10-01T13:30:00Z`). */
export function timestamp(name: string): (value: string) => string {
  return (value) => {
    if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(Date.parse(value)))
      throw new InvalidArgumentError(`${name} must be a date or an ISO timestamp, e.g. 2025-10-01 or 2025-10-01T13:30:00Z (got "${value}")`);
    if (/^\d{4}-\d{2}-\d{2}$/.test(value)) calendarDate(name)(value);
    return value;
  };
}

/** `--speed` of a file or replay: a positive number (1 = the recorded pace) or `max`. */
export function publishSpeed(name: string): (value: string) => PublishSpeed {
  return (value) => {
    const speed = parsePublishSpeed(value);
    if (speed === undefined) throw new InvalidArgumentError(`${name} must be a positive number (1 = the recorded pace) or "max" (got "${value}")`);
    return speed;
  };
}

/** A replay bound: a date (UTC midnight) or an ISO-8601 timestamp with a zone. */
export function replayBound(name: string): (value: string) => string {
  return (value) => {
    if (parseReplayBound(value) === undefined)
      throw new InvalidArgumentError(`${name} must be a date or an ISO timestamp with a zone, e.g. 2025-10-01 or 2025-10-01T13:30:00Z (got "${value}")`);
    return value;
  };
}
