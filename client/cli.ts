#!/usr/bin/env node
/**
 * The `mdp` command line: `mdp --help` lists the commands, `mdp help <command>` (or
 * `mdp <command> --help`) explains one. The command tree is built in `commands/program.ts`, one
 * file per group.
 *
 * Exit codes: 0 ok, 1 runtime failure, 2 invalid configuration or usage.
 */
import { readFileSync } from 'node:fs';
import { CommanderError } from 'commander';
import type { Command } from 'commander';
import { commandPath, createProgram } from './commands/program.js';
import { DeployError } from './deploy-error.js';
import { ProducerConfigError } from './producer-config-error.js';
import { UsageError } from './usage-error.js';
import { OptionError } from './option-error.js';
import { ReplayInputError } from './replay-input-error.js';

/** Exit codes of `mdp`, as the README states them. */
const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** Commander's exits that are not errors. */
const COMMANDER_OK = new Set(['commander.helpDisplayed', 'commander.version']);

function packageVersion(): string {
  const file = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

/** Prints what went wrong (one line, a pointer to `--help` for usage errors) and returns the exit code. */
async function report(err: unknown, command: Command): Promise<number> {
  // Commander printed the message (or the help). `mdp help` exits 0; help shown for a missing command is a usage error.
  if (err instanceof CommanderError) return COMMANDER_OK.has(err.code) || err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (err instanceof UsageError || err instanceof OptionError || err instanceof ReplayInputError) {
    console.error(`mdp: ${err.message}\nRun '${commandPath(command)} --help' for usage.`);
    return EXIT.usage;
  }
  // Loaded here: `mdp` does not load the config schema until a command needs it.
  const { ConfigError } = await import('../pipeline/config/index.js');
  if (err instanceof ConfigError || err instanceof ProducerConfigError) {
    console.error(`mdp: invalid configuration: ${err.message}`);
    return EXIT.usage;
  }
  if (err instanceof DeployError) {
    console.error(`mdp deploy: ${err.message}`);
    return EXIT.failure;
  }
  console.error(`mdp: ${err instanceof Error ? err.message : String(err)}`);
  return EXIT.failure;
}

async function run(argv: string[]): Promise<number> {
  const program = createProgram(packageVersion());
  // `mdp help stream replay` is `mdp stream replay --help` (commander's help command takes one word).
  const words = argv.slice(2);
  if (words[0] === 'help' && words.length > 1) argv = [...argv.slice(0, 2), ...words.slice(1), '--help'];
  let current: Command = program;
  program.hook('preAction', (_program, action) => {
    current = action;
  });
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    return await report(err, current);
  }
}

run(process.argv).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(EXIT.failure);
  },
);
