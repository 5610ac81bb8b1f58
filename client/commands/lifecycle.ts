import { Option } from 'commander';
import type { Command } from 'commander';
import { configFileOf, configOf, out, withTemporal } from './command-context.js';
import { duration } from './option-parsers.js';
import { addOutputOptions, outputFormat } from './output-option.js';

/** `mdp up`, `mdp down`, `mdp status`, `mdp migrate`: the pipeline as a whole. */
export function registerLifecycleCommands(program: Command): void {
  program
    .command('up')
    .summary('run the live pipeline on the local stack, with progress')
    .description(
      'Migrate, start a worker, start or find the live workflows, unpause the recovery schedule and print progress. ' +
        'Ctrl-C stops the worker and pauses the schedule; the workflows stay for the next up.',
    )
    .addHelpText('after', '\nExamples:\n  mdp up\n  MDP_WORKER_LOG=/tmp/worker.log mdp up --config configs/streaming.yaml')
    .action(async (_options: object, command: Command) => {
      const { up } = await import('../up-command.js');
      const config = await configOf(command);
      process.exitCode = await up(config, {
        configFile: configFileOf(command),
        logFile: process.env.MDP_WORKER_LOG ?? '.data/logs/worker.log',
        uiBase: process.env.MDP_TEMPORAL_UI ?? `http://127.0.0.1:${process.env.MDP_TEMPORAL_UI_PORT ?? '8233'}`,
        write: out,
      });
    });

  program
    .command('down')
    .summary('stop the live pipeline: drain producers, then consumers')
    .description(
      'Pause the recovery schedule, drain the producers, then the consumers, and wait until their workflows completed. ' +
        'Exit 1 naming the workflows still running after --timeout (a consumer drains through a worker: run it while mdp up or a worker runs).',
    )
    .addOption(
      new Option('--timeout <duration>', 'how long to wait for the workflows to complete').default(60_000, '60s').argParser(duration('--timeout', { min: 1 })),
    )
    .addHelpText('after', '\nExamples:\n  mdp down\n  mdp down --timeout 2m')
    .action(async (options: { timeout: number }, command: Command) => {
      const { down } = await import('../down-command.js');
      const config = await configOf(command);
      const result = await withTemporal(config, (client) => down(client, config, { timeoutMs: options.timeout, write: out }));
      if (result.notStopped.length === 0) return;
      const given = command.getOptionValueSource('timeout') === 'default' ? '60s' : rawOption('--timeout');
      console.error(`mdp: did not stop within ${given}: ${result.notStopped.join(', ')}`);
      process.exitCode = 1;
    });

  addOutputOptions(
    program
      .command('status')
      .summary('the fleet, its progress and the DLQ')
      .description(
        "Each consumer's role, shard, owner, last heartbeat, watermark, lag, pending and backlog (drained consumers say when), running replays, " +
          'the bars of every provider (live, then replays), how long the pipeline has stood still and the gap that left in bars, ' +
          'and events in, bars written, lag, pending, late and DLQ. -o json: the same as one JSON document (one per refresh with --watch).',
      )
      .option('-w, --watch', 'redraw every second until Ctrl-C', false),
  )
    .addHelpText('after', '\nExamples:\n  mdp status\n  mdp status --watch\n  mdp status --json | jq .providers')
    .action(async (options: { watch: boolean; output?: string; json?: boolean }, command: Command) => {
      const { statusCommand } = await import('../status-command.js');
      const output = outputFormat(options) === 'json' ? 'json' : 'text';
      process.exitCode = await statusCommand(await configOf(command), { watch: options.watch, write: out, tty: process.stdout.isTTY === true, output });
    });

  program
    .command('migrate')
    .summary('apply database migrations')
    .addHelpText('after', '\nExample:\n  mdp migrate --config configs/streaming.yaml')
    .action(async (_options: object, command: Command) => {
      const { createDb, migrateToLatest } = await import('../../store/index.js');
      const config = await configOf(command);
      const db = createDb(config.store.url);
      try {
        const applied = await migrateToLatest(db);
        out(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
      } finally {
        await db.destroy();
      }
    });
}

/** The text an option was given as on the command line (for messages that echo it). */
function rawOption(flag: string): string {
  const argv = process.argv;
  const i = argv.lastIndexOf(flag);
  if (i >= 0 && i + 1 < argv.length) return argv[i + 1];
  return (
    [...argv]
      .reverse()
      .find((a) => a.startsWith(`${flag}=`))
      ?.slice(flag.length + 1) ?? flag
  );
}
