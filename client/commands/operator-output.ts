import { Option } from 'commander';
import type { Command } from 'commander';
import { UsageError } from '../usage-error.js';

/**
 * `-o, --output FORMAT` and `--json` for the commands whose module checks the format itself
 * (`rules`, `dlq`, `bars`: each accepts its own subset and names it in the error). `--json` is
 * `-o json`.
 */
export function addFormatOption(command: Command, formats: readonly string[], fallback = 'text'): Command {
  return command
    .addOption(new Option('-o, --output <format>', `output format: ${formats.join(', ')}`).default(fallback))
    .addOption(new Option('--json', 'the same as -o json'));
}

/** The `-o` value a command module gets: `--json` wins over the default, disagrees with another explicit format. */
export function formatOf(options: { readonly output?: string; readonly json?: boolean }, command: Command): string | undefined {
  const explicit = command.getOptionValueSource('output') === 'cli' || command.getOptionValueSource('output') === 'env';
  if (options.json && explicit && options.output !== 'json') throw new UsageError(`--json and -o ${options.output} disagree: give one of them`);
  return options.json ? 'json' : options.output;
}

/** Like `out`, but waits while stdout's buffer is full, so a long export into a slow pipe stays small in memory. */
export async function outPaced(text: string): Promise<void> {
  if (!process.stdout.write(text)) await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
}
