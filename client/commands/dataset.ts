import { Argument } from 'commander';
import type { Command } from 'commander';
import type { IbkrBackfillWorkflowInput } from '../../workflows/index.js';
import { UsageError } from '../usage-error.js';
import { configOf, out, withTemporal } from './command-context.js';
import { tradingDate } from './option-parsers.js';
import { addOutputOptions, outputFormat, printJson } from './output-option.js';

/** `mdp dataset ls|generate|fetch`: the datasets replays read. */
export function registerDatasetCommands(program: Command): void {
  const dataset = program.command('dataset').summary('list, generate and fetch the datasets replays read');

  addOutputOptions(dataset.command('ls').summary('the datasets of replay.datasets_file, with what each holds'))
    .addHelpText('after', "\nExamples:\n  mdp dataset ls\n  mdp dataset ls -o json | jq -r '.[].name'")
    .action(async (o: { output?: string; json?: boolean }, command: Command) => {
      const { formatDatasetListing, readDatasets } = await import('../dataset-command.js');
      const json = outputFormat(o) === 'json';
      const config = await configOf(command);
      const listings = await readDatasets(config);
      if (json) return printJson(listings);
      if (listings.length === 0) out(`(no datasets in ${config.replay.datasets_file})\n`);
      for (const d of listings) out(formatDatasetListing(d) + '\n');
    });

  dataset
    .command('generate')
    .summary('write a deterministic sample session day of a dataset')
    .argument('<name>', 'a dataset with a generate: block')
    .requiredOption('--date <YYYY-MM-DD>', 'the trading day (a weekday)', tradingDate('--date'))
    .addHelpText('after', '\nExample:\n  mdp dataset generate spy_1day_history --date 2025-10-01')
    .action(async (name: string, o: { date: string }, command: Command) => {
      const { generateDataset } = await import('../dataset-command.js');
      const written = await generateDataset(await configOf(command), name, o.date);
      out(`${written.file}: ${written.events} events\n`);
    });

  dataset
    .command('fetch')
    .summary('backfill IB history into a dataset (paced, resumable workflow)')
    .description(
      'Backfill IB history (reqHistoricalData through TWS / IB Gateway) into a dataset replays read, as a paced, ' +
        'resumable workflow; progress until done, Ctrl-C detaches, --follow WORKFLOW_ID reattaches. Exit 1 if it failed.',
    )
    .addArgument(new Argument('<source>', 'where from: ibkr'))
    .option('--symbol <symbol>', 'the contract (producers.ibkr.contracts, else a US stock on SMART)')
    .option('--from <date>', 'start: a date or an ISO timestamp')
    .option('--to <date>', 'end (excluded)')
    .option('--bar <size>', 'bar size: 1s, 5s or 1m')
    .option('--what <type>', 'TRADES (default) or MIDPOINT')
    .option('--dataset <name>', 'the dataset to write (default ibkr_<symbol>_<bar>_<what>)')
    .option('--rth', 'regular trading hours only', false)
    .option('--chunk-seconds <n>', "seconds per request (a multiple of the bar, up to IB's maximum)")
    .option('--follow <workflow-id>', 'reattach to a running (or finished) backfill')
    .addHelpText(
      'after',
      '\nExamples:\n  mdp dataset fetch ibkr --symbol SPY --from 2025-10-01 --to 2025-10-03 --bar 1s\n  mdp dataset fetch ibkr --follow mdp-fetch-ibkr-SPY-1s-TRADES-2025-10-01-2025-10-03',
    )
    .action(async (source: string, o: FetchOptions, command: Command) => {
      const [{ BackfillInputError }, { backfillInputFromFlags, followBackfill, startBackfill }] = await Promise.all([
        import('../../pipeline/producers/ibkr/index.js'),
        import('../fetch-command.js'),
      ]);
      if (source !== 'ibkr') throw new UsageError(`dataset fetch takes one source, ibkr (got ${JSON.stringify(source)})`);
      let input: IbkrBackfillWorkflowInput | undefined;
      if (o.follow === undefined) {
        try {
          input = backfillInputFromFlags({ ...o, 'chunk-seconds': o.chunkSeconds });
        } catch (err) {
          if (err instanceof BackfillInputError) throw new UsageError(err.message);
          throw err;
        }
      }
      const config = await configOf(command);
      const controller = new AbortController();
      const detach = () => controller.abort();
      process.once('SIGINT', detach);
      try {
        process.exitCode = await withTemporal(config, async (client) => {
          let workflowId = o.follow;
          if (input !== undefined) {
            const started = await startBackfill(client, config, input);
            workflowId = started.workflowId;
            out(`${workflowId}: ${started.started ? 'started' : 'already running (following it)'}\n`);
          }
          const outcome = await followBackfill(client, workflowId!, out, { signal: controller.signal, tty: process.stdout.isTTY === true });
          if (outcome === 'detached') out(`detached; the backfill keeps running. Reattach: mdp dataset fetch ibkr --follow ${workflowId}\n`);
          return outcome === 'failed' ? 1 : 0;
        });
      } finally {
        process.removeListener('SIGINT', detach);
      }
    });
}

interface FetchOptions {
  symbol?: string;
  from?: string;
  to?: string;
  bar?: string;
  what?: string;
  dataset?: string;
  rth: boolean;
  chunkSeconds?: string;
  follow?: string;
}
