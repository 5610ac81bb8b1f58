import { OptionError } from './option-error.js';

/** What `-o`/`--output` may ask for; each command accepts a subset. */
export type OutputFormat = 'text' | 'json' | 'jsonl' | 'csv';

/**
 * The `-o` value of a command, checked against the formats it supports (`text` when absent).
 *
 * @example
 * const output = parseOutput(options.output, ['text', 'json', 'jsonl']); // throws OptionError for "-o yaml"
 */
export function parseOutput<F extends OutputFormat>(value: string | undefined, allowed: readonly F[]): F {
  const format = value ?? 'text';
  if (!(allowed as readonly string[]).includes(format)) {
    throw new OptionError(`-o must be one of ${allowed.join(', ')} (got "${format}")`);
  }
  return format as F;
}

/** Rows as text columns padded to their widest cell (the last column is not padded). */
export function alignColumns(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '));
}
