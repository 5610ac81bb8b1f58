/**
 * What the command handlers share: the configuration, loaded only by the commands that need it
 * (so `--help`, `--version` and usage errors never read a file), and a Temporal client that is
 * closed when the handler is done.
 */
import type { Command } from 'commander';
import type { Client } from '@temporalio/client';
import { loadStreamingConfig } from '../../pipeline/config/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import { connectTemporal } from '../temporal.js';

/** The default of the global `--config` (env `MDP_CONFIG`). */
export const DEFAULT_CONFIG_FILE = 'configs/streaming.yaml';

/** The `--config` file a command runs with (global option, env `MDP_CONFIG`). */
export function configFileOf(command: Command): string {
  return command.optsWithGlobals<{ config?: string }>().config ?? DEFAULT_CONFIG_FILE;
}

/** Loads the configuration of `--config` (with the environment's overrides); throws `ConfigError` (exit 2). */
export function configOf(command: Command): StreamingConfig {
  return loadStreamingConfig({ file: configFileOf(command), env: process.env });
}

/** Writes to stdout: data and results. Progress of a command asked for JSON goes to stderr instead. */
export const out = (text: string): void => {
  process.stdout.write(text);
};

/** Runs `fn` with a Temporal client; an unreachable server is one line naming it (exit 1). */
export async function withTemporal<T>(config: StreamingConfig, fn: (client: Client) => Promise<T>): Promise<T> {
  // connectTemporal's own error is the one line: it names the server and how to start it.
  const temporal = await connectTemporal(config);
  try {
    return await fn(temporal.client);
  } finally {
    await temporal.close();
  }
}
