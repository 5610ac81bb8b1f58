import { Option } from 'commander';
import type { Command } from 'commander';
import { UsageError } from '../usage-error.js';

/** How a command prints its data: for people (`text`), one JSON document, or one JSON object per line. */
export type OutputFormat = 'text' | 'json' | 'jsonl';

/**
 * Adds `-o, --output FORMAT` (choices `formats`, default `text`) and `--json` (`-o json`) to a
 * command that prints data. With JSON, stdout carries the JSON only; progress goes to stderr.
 */
export function addOutputOptions(command: Command, formats: readonly OutputFormat[] = ['text', 'json']): Command {
  return command
    .addOption(new Option('-o, --output <format>', 'output format').choices(formats).default('text'))
    .addOption(new Option('--json', 'the same as -o json'));
}

/** The format a command was asked for: `--json` is `-o json`; both with different formats is a usage error. */
export function outputFormat(options: { readonly output?: string; readonly json?: boolean }): OutputFormat {
  const output = (options.output ?? 'text') as OutputFormat;
  if (options.json && output !== 'text' && output !== 'json') throw new UsageError(`--json and -o ${output} disagree: give one of them`);
  return options.json ? 'json' : output;
}

/** Writes one JSON document (and a newline) to stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}
