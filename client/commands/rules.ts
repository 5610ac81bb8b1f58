import type { Command } from 'commander';
import { configOf, out } from './command-context.js';
import { addOutputOptions, outputFormat } from './output-option.js';

/** `mdp rules check [FILE]`. */
export function registerRulesCommands(program: Command): void {
  const rules = program.command('rules').summary('check the inference rules file');
  addOutputOptions(
    rules
      .command('check')
      .summary('check a rules file as the worker loads it; every problem as FILE:LINE:COLUMN')
      .description(
        'Check a rules file (default: inference.adapters.rules.file of the config) with the checks the worker runs when it loads it, ' +
          'and print every problem at once as FILE:LINE:COLUMN: message. Exit 2 if there is any, 0 with a one-line summary otherwise.',
      )
      .argument('[file]', "the rules file (default: the config's inference.adapters.rules.file)"),
    ['text', 'json'],
  )
    .addHelpText('after', '\nExamples:\n  mdp rules check\n  mdp rules check configs/rules.yaml -o json')
    .action(async (file: string | undefined, o: { output?: string; json?: boolean }, command: Command) => {
      const { rulesCheck } = await import('../rules-command.js');
      const config = await configOf(command);
      process.exitCode = rulesCheck(config, { file, output: outputFormat(o) }, out);
    });
}
