import type { Command } from 'commander';
import { configOf, out } from './command-context.js';
import { addOutputOptions, outputFormat } from './output-option.js';

interface DlqFlags {
  reason?: string;
  since?: string;
  limit?: string;
  all?: boolean;
  dryRun?: boolean;
  output?: string;
  json?: boolean;
}

/** `mdp dlq ls | show ID | redrive`: inspect dead letters and re-publish them after a fix. */
export function registerDlqCommands(program: Command): void {
  const dlq = program.command('dlq').summary('list, inspect and re-publish dead letters');
  const options = async (command: Command, o: DlqFlags, ids: readonly string[] = []) => ({
    config: await configOf(command),
    options: { ids, all: o.all === true, reason: o.reason, since: o.since, limit: o.limit, dryRun: o.dryRun === true, output: outputFormat(o) },
  });

  addOutputOptions(
    dlq
      .command('ls')
      .summary('the newest dead letters in aligned columns')
      .option('--reason <text>', 'only entries whose code is this, or whose reason contains it')
      .option('--since <duration|time>', 'only entries newer than this (1h, or an ISO time)')
      .option('--limit <n>', 'at most this many entries (newest)', '50'),
    ['text', 'json', 'jsonl'],
  )
    .addHelpText('after', '\nExamples:\n  mdp dlq ls\n  mdp dlq ls --reason invalid_event --since 1h -o jsonl')
    .action(async (o: DlqFlags, command: Command) => {
      const { dlqList } = await import('../dlq-command.js');
      const { config, options: opts } = await options(command, o);
      process.exitCode = await dlqList(config, opts, out);
    });

  addOutputOptions(dlq.command('show').summary('one dead letter, whole, with its payload').argument('<id>', 'the DLQ entry id (see mdp dlq ls)'), [
    'text',
    'json',
  ])
    .addHelpText('after', '\nExample:\n  mdp dlq show 1733094000000-0')
    .action(async (id: string, o: DlqFlags, command: Command) => {
      const { dlqShow } = await import('../dlq-command.js');
      const { config, options: opts } = await options(command, o, [id]);
      process.exitCode = await dlqShow(config, opts, out);
    });

  addOutputOptions(
    dlq
      .command('redrive')
      .summary("re-publish dead letters' original events (idempotent: a second redrive publishes nothing)")
      .description(
        'Re-publish the original events of the given dead letters (or --all matching --reason/--since) onto the events stream, after ' +
          'you fixed their cause. Each event is validated again; one that still fails is reported and not published (exit 1). ' +
          'A redriven entry is marked, never deleted: redriving it again publishes nothing.',
      )
      .argument('[ids...]', 'DLQ entry ids (see mdp dlq ls)')
      .option('--all', 'every entry matching --reason and --since', false)
      .option('--reason <text>', 'with --all: only entries whose code is this, or whose reason contains it')
      .option('--since <duration|time>', 'with --all: only entries newer than this')
      .option('--dry-run', 'say what would be published, publish nothing', false),
    ['text', 'json'],
  )
    .addHelpText('after', '\nExamples:\n  mdp dlq redrive 1733094000000-0\n  mdp dlq redrive --all --reason max_deliveries --dry-run')
    .action(async (ids: string[], o: DlqFlags, command: Command) => {
      const { dlqRedrive } = await import('../dlq-command.js');
      const { config, options: opts } = await options(command, o, ids);
      process.exitCode = await dlqRedrive(config, opts, out);
    });
}
