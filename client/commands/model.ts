import type { Command } from 'commander';
import { configOf, out, withTemporal } from './command-context.js';
import { addOutputOptions, outputFormat } from './output-option.js';

/** `mdp model reload`. */
export function registerModelCommands(program: Command): void {
  const model = program.command('model').summary('switch the inference consumers to another model');
  addOutputOptions(
    model
      .command('reload')
      .summary('validate a model, then switch every ONNX inference consumer to it')
      .description(
        'Validate the model (against --reference rows when given), then switch every ONNX inference consumer to it; ' +
          'if one fails, the switched ones are rolled back. A rejected model changes nothing: exit 1 with the reason; so does a reload when no inference consumer runs a model.',
      )
      .requiredOption('--path <model.onnx>', 'the model, as the workers see it (relative: their working directory)')
      .option('--reference <file>', 'reference rows whose probabilities the model must reproduce'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  mdp model reload --path models/momentum-1.4.0.onnx\n  mdp model reload --path models/momentum-1.4.0.onnx --reference models/reference.jsonl --json',
    )
    .action(async (o: { path: string; reference?: string; output?: string; json?: boolean }, command: Command) => {
      const { modelReloadCommand } = await import('../model-command.js');
      const output = outputFormat(o) === 'json' ? 'json' : 'text';
      const config = await configOf(command);
      process.exitCode = await withTemporal(config, (client) =>
        modelReloadCommand(client, config, {
          modelPath: o.path,
          ...(o.reference ? { referencePath: o.reference } : {}),
          output,
          write: out,
          writeError: (text) => process.stderr.write(text),
        }),
      );
    });
}
