import { Argument, Option } from 'commander';
import type { Command } from 'commander';
import type { RolloutResult } from '../deploy-command.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import type { Client } from '@temporalio/client';
import { configOf, out, withTemporal } from './command-context.js';
import { percentage } from './option-parsers.js';
import { addOutputOptions, outputFormat, printJson } from './output-option.js';

type OutputFlags = { output?: string; json?: boolean };

/** `mdp deploy …`: the Worker Deployment's versions and moving the routing between them. */
export function registerDeployCommands(program: Command): void {
  const deploy = program
    .command('deploy')
    .summary('Worker Deployment versions: status, check, promote, ramp, rollback, unpin')
    .addHelpText('after', '\nSee "Deploying a new version" in the README for a rollout step by step.');

  addOutputOptions(deploy.command('status').summary('versions, the workers polling each, what runs where, and when an old one is safe to stop'))
    .addHelpText('after', '\nExamples:\n  mdp deploy status\n  mdp deploy status --json')
    .action(async (o: OutputFlags, command: Command) => {
      const { deployStatus, formatDeployStatus } = await import('../deploy-command.js');
      const json = outputFormat(o) === 'json';
      const config = await configOf(command);
      const status = await withTemporal(config, (client) => deployStatus(client, config));
      if (json) printJson(status);
      else out(formatDeployStatus(status).join('\n') + '\n');
    });

  addOutputOptions(
    deploy
      .command('check')
      .summary("replay every running consumer's and producer's history against this build's workflow code")
      .description(
        "Replay every running consumer's and producer's history against this build's workflow code (run it from the " +
          'new build before promoting it); exit 1 naming those it could not continue.',
      ),
  )
    .addHelpText('after', '\nExamples:\n  mdp deploy check\n  mdp deploy check --json')
    .action(async (o: OutputFlags, command: Command) => {
      const { checkReplay, formatReplayCheck } = await import('../deploy-command.js');
      const json = outputFormat(o) === 'json';
      const config = await configOf(command);
      const checks = await withTemporal(config, (client) => checkReplay(client, config));
      if (json) printJson(checks);
      else out(formatReplayCheck(checks).join('\n') + '\n');
      if (checks.some((c) => c.error !== undefined)) process.exitCode = 1;
    });

  addOutputOptions(
    deploy
      .command('promote')
      .summary('make a version current and hand every consumer and producer over to it')
      .argument('[build]', 'the build id (default: the newest version with workers polling that is not current)'),
  )
    .addHelpText('after', '\nExamples:\n  mdp deploy promote\n  mdp deploy promote 0.5.0-3f2a1c9')
    .action(async (build: string | undefined, o: OutputFlags, command: Command) => {
      const { promote } = await import('../deploy-command.js');
      await rollout(command, o, (client, config) => promote(client, config, build));
    });

  addOutputOptions(
    deploy
      .command('ramp')
      .summary('send PERCENT % of the workflows that follow routing to a version (0 ends the ramp)')
      .addArgument(new Argument('<percent>', 'a whole percentage, 0 to 100').argParser(percentage('PERCENT')))
      .argument('[build]', 'the build id (default: the newest version with workers polling that is not current)'),
  )
    .addHelpText('after', '\nExamples:\n  mdp deploy ramp 25\n  mdp deploy ramp 50 0.5.0-3f2a1c9\n  mdp deploy ramp 0')
    .action(async (percent: number, build: string | undefined, o: OutputFlags, command: Command) => {
      const { ramp } = await import('../deploy-command.js');
      await rollout(command, o, (client, config) => ramp(client, config, percent, build));
    });

  addOutputOptions(
    deploy
      .command('rollback')
      .summary('back to the version that was current before (its workers must run)')
      .addOption(new Option('--to <build>', 'the version to go back to (default: the previous current one)')),
  )
    .addHelpText('after', '\nExamples:\n  mdp deploy rollback\n  mdp deploy rollback --to 0.4.0-9e1d2c3')
    .action(async (o: OutputFlags & { to?: string }, command: Command) => {
      const { rollback } = await import('../deploy-command.js');
      await rollout(command, o, (client, config) => rollback(client, config, o.to));
    });

  addOutputOptions(
    deploy
      .command('unpin')
      .summary('move the replays and backfills pinned to a version whose workers are gone to the current one')
      .argument('<build>', 'the version they are pinned to (see mdp deploy status)'),
  )
    .addHelpText('after', '\nExample:\n  mdp deploy unpin 0.4.0-9e1d2c3')
    .action(async (build: string, o: OutputFlags, command: Command) => {
      const { unpin } = await import('../deploy-command.js');
      const json = outputFormat(o) === 'json';
      const config = await configOf(command);
      const moved = await withTemporal(config, (client) => unpin(client, config, build));
      if (json) return printJson(moved);
      for (const m of moved) out(`  ${m.workflowId} (${m.type}): runs on the current version from its next task\n`);
      out(`${moved.length} workflow${moved.length === 1 ? '' : 's'} moved off ${build}\n`);
    });
}

/** promote / ramp / rollback: print where each long-running workflow runs; exit 1 if one did not move (not for a ramp). */
async function rollout(command: Command, o: OutputFlags, act: (client: Client, config: StreamingConfig) => Promise<RolloutResult>): Promise<void> {
  const { formatRollout } = await import('../deploy-command.js');
  const json = outputFormat(o) === 'json';
  const config = await configOf(command);
  const result = await withTemporal(config, (client) => act(client, config));
  if (json) printJson(result);
  else out(formatRollout(result).join('\n') + '\n');
  if (result.action !== 'ramp' && result.handOvers.some((h) => !h.moved)) process.exitCode = 1;
}
