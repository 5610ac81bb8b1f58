/**
 * What the command handlers share: the configuration, loaded only by the commands that need it
 * (so `--help`, `--version` and usage errors never read a file), and a Temporal client that is
 * closed when the handler is done. The modules behind them (the config schema, the Temporal, Redis,
 * Kafka and PostgreSQL clients) are imported when a handler runs, not when `mdp` starts: help and
 * usage errors then answer in a tenth of the time.
 */
import type { Command } from 'commander';
import type { Client } from '@temporalio/client';
import type { StreamingConfig } from '../../pipeline/config/index.js';

/** The default of the global `--config` (env `MDP_CONFIG`). */
export const DEFAULT_CONFIG_FILE = 'configs/streaming.yaml';

/** The `--config` file a command runs with (global option, env `MDP_CONFIG`). */
export function configFileOf(command: Command): string {
  return command.optsWithGlobals<{ config?: string }>().config ?? DEFAULT_CONFIG_FILE;
}

/** Loads the configuration of `--config` (with the environment's overrides); throws `ConfigError` (exit 2). */
export async function configOf(command: Command): Promise<StreamingConfig> {
  const { loadStreamingConfig } = await import('../../pipeline/config/index.js');
  return loadStreamingConfig({ file: configFileOf(command), env: process.env });
}

/** Writes to stdout: data and results. Progress of a command asked for JSON goes to stderr instead. */
export const out = (text: string): void => {
  process.stdout.write(text);
};

/** Like `out`, but waits while stdout's buffer is full, so a long export into a slow pipe stays small in memory. */
export async function outPaced(text: string): Promise<void> {
  if (!process.stdout.write(text)) await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
}

/** Runs `fn` with a Temporal client; an unreachable server is one line naming it (exit 1). */
export async function withTemporal<T>(config: StreamingConfig, fn: (client: Client) => Promise<T>): Promise<T> {
  // connectTemporal's own error is the one line: it names the server and how to start it.
  const { connectTemporal } = await import('../temporal.js');
  const temporal = await connectTemporal(config);
  try {
    return await fn(temporal.client);
  } finally {
    await temporal.close();
  }
}
