import { Command, Option } from 'commander';
import { DEFAULT_CONFIG_FILE } from './command-context.js';
import { registerDatasetCommands } from './dataset.js';
import { registerDeployCommands } from './deploy.js';
import { registerLifecycleCommands } from './lifecycle.js';
import { registerModelCommands } from './model.js';
import { registerStreamCommands } from './stream.js';
import { registerRulesCommands } from './rules.js';
import { registerDlqCommands } from './dlq.js';
import { registerBarsCommands } from './bars.js';

/**
 * The `mdp` command tree. Each group registers itself from its own file; a new group is one file
 * and one line here. Every command gets the global `--config`, a suggestion for a typo, and a
 * pointer to its own `--help` after a usage error; commander's exits are turned into exceptions
 * (`exitOverride`) so `cli.ts` decides the exit code (usage errors: 2).
 *
 * @example
 * const program = createProgram('0.4.0');
 * await program.parseAsync(['node', 'mdp', 'stream', 'tail', '--topic', 'mdp.events']);
 */
export function createProgram(version: string): Command {
  const program = new Command('mdp')
    .description('mdp: market-data streaming pipeline (providers → Redis Streams or Kafka → event-time micro-batches → PostgreSQL), run by Temporal')
    .version(version, '-V, --version', 'print the version')
    .addOption(new Option('--config <file>', 'the configuration file').env('MDP_CONFIG').default(DEFAULT_CONFIG_FILE))
    .helpCommand('help [command]', 'help for a command')
    // Settings below are copied to every subcommand created after them.
    .showSuggestionAfterError(true)
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({ outputError: (text, write) => write(errorText(text)) })
    .exitOverride();
  program.addHelpText(
    'after',
    '\nExit codes: 0 ok, 1 runtime failure, 2 invalid configuration or usage.\n' +
      '\nExamples:\n  mdp up\n  mdp stream tail --topic mdp.events -f\n  mdp help stream replay',
  );

  registerLifecycleCommands(program);
  registerStreamCommands(program);
  registerModelCommands(program);
  registerDatasetCommands(program);
  registerDeployCommands(program);
  registerRulesCommands(program);
  registerDlqCommands(program);
  registerBarsCommands(program);

  forEachCommand(program, (command) => command.showHelpAfterError(`Run '${commandPath(command)} --help' for usage.`));
  return program;
}

/**
 * Commander's error as `mdp` prints it: `mdp: ` instead of `error: `, and an invalid value's own
 * message alone (the parsers' messages name the option and the value already).
 */
function errorText(text: string): string {
  const invalid =
    /^error: (?:option '(?:-\w, )?([^ ']+)[^']*'|command-argument value '[^']*' is invalid for argument '([^']*)'|)(?: argument '([^']*)' is invalid)?\. (.*)$/s.exec(
      text,
    );
  if (invalid && (invalid[1] !== undefined || invalid[2] !== undefined)) {
    const name = invalid[1] ?? invalid[2].toUpperCase();
    const choices = /^Allowed choices are (.*)\.\n?$/s.exec(invalid[4]);
    const value = invalid[3] ?? /value '([^']*)'/.exec(text)?.[1] ?? '';
    return choices ? `mdp: ${name} must be one of ${choices[1]} (got "${value}")\n` : `mdp: ${invalid[4]}`;
  }
  return text.replace(/^error: /, 'mdp: ');
}

/** `mdp stream replay` for the replay command. */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

function forEachCommand(command: Command, fn: (command: Command) => void): void {
  fn(command);
  for (const sub of command.commands) forEachCommand(sub, fn);
}
