import type { Command } from 'commander';
import { configOf, outPaced } from './command-context.js';
import { addOutputOptions, outputFormat } from './output-option.js';

interface BarsFlags {
  symbol: string;
  provider?: string;
  from: string;
  to: string;
  interval?: string;
  minGap?: string;
  output?: string;
  json?: boolean;
}

function rangeOptions(command: Command): Command {
  return command
    .requiredOption('--symbol <symbol>', 'the symbol')
    .option('--provider <provider>', 'the provider (default: every provider)')
    .requiredOption('--from <time>', 'start of the range: a date (UTC midnight) or an ISO timestamp')
    .requiredOption('--to <time>', 'end of the range (excluded)')
    .option('--interval <duration>', 'bar interval (default: micro_batch.window_ms)');
}

/** `mdp bars export | gaps`: the stored bars of a symbol, and where they are missing. */
export function registerBarsCommands(program: Command): void {
  const bars = program.command('bars').summary('export stored bars, find where they are missing');
  // `mdp bars export … | head`: the reader went away, which is not a failure.
  const quietPipe = () =>
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0);
      throw err;
    });

  addOutputOptions(rangeOptions(bars.command('export').summary('stored bars of a symbol in ts order, as CSV or JSON lines')), ['csv', 'jsonl'], 'csv')
    .addHelpText(
      'after',
      '\nExamples:\n  mdp bars export --symbol SPY --from 2025-10-01 --to 2025-10-02 > spy.csv\n  mdp bars export --symbol SPY --provider history --from 2025-10-01 --to 2025-10-02 --interval 1s -o jsonl',
    )
    .action(async (o: BarsFlags, command: Command) => {
      const { barsExport } = await import('../bars-command.js');
      quietPipe();
      const config = await configOf(command);
      process.exitCode = await barsExport(config, { ...o, output: outputFormat(o) }, outPaced);
    });

  addOutputOptions(
    rangeOptions(bars.command('gaps').summary('the runs of windows without a bar (the feed down, the pipeline stopped)')).option(
      '--min-gap <duration>',
      'shortest gap listed (default: one interval)',
    ),
    ['text', 'json'],
  )
    .addHelpText(
      'after',
      '\nExamples:\n  mdp bars gaps --symbol SPY --from 2025-10-01 --to 2025-10-02\n  mdp bars gaps --symbol SPY --from 2025-10-01T13:30:00Z --to 2025-10-01T20:00:00Z --min-gap 1m --json',
    )
    .action(async (o: BarsFlags, command: Command) => {
      const { barsGaps } = await import('../bars-command.js');
      quietPipe();
      const config = await configOf(command);
      process.exitCode = await barsGaps(config, { ...o, output: outputFormat(o) }, outPaced);
    });
}
