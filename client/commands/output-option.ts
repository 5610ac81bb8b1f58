import { Option } from 'commander';
import type { Command } from 'commander';
import { UsageError } from '../usage-error.js';
import type { OutputFormat } from '../output-format.js';

/**
 * Adds `-o, --output FORMAT` (choices `formats`, default `fallback`) and, when JSON is among them,
 * `--json` (`-o json`) to a command that prints data. With JSON, stdout carries the JSON only;
 * progress goes to stderr.
 */
export function addOutputOptions(command: Command, formats: readonly OutputFormat[] = ['text', 'json'], fallback: OutputFormat = 'text'): Command {
  command.addOption(new Option('-o, --output <format>', 'output format').choices(formats).default(fallback));
  return formats.includes('json') ? command.addOption(new Option('--json', 'the same as -o json')) : command;
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
