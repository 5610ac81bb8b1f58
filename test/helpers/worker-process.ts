/** Runs the real worker entrypoint (`dist/workers/worker.js`) as a child process for crash tests. */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Client } from '@temporalio/client';
import yaml from 'js-yaml';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import { tailFile } from './fault-stack.js';
import { REPO_ROOT } from './services.js';
import { waitFor } from './wait.js';

/** Env vars bound to config keys (and the default config file); see {@link configFreeEnv}. */
const CONFIG_ENV = [
  'REDIS_URI',
  'KAFKA_BROKERS',
  'STORE_URL',
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'MDP_TASK_QUEUE',
  'MDP_METRICS_PORT',
  'MDP_SHARDS',
  'MDP_BUS',
  'LOG_LEVEL',
  'MDP_LOG_FORMAT',
  'MDP_CONFIG',
];

/**
 * This process's environment without the variables that override config keys, so a child started
 * with a test's config file takes every value from that file. (scripts/test.sh exports
 * TEMPORAL_ADDRESS & co. for the local stack; a child inheriting them would talk to the wrong server.)
 */
export function configFreeEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of CONFIG_ENV) delete env[key];
  return env;
}

/** Runs a node script of the repo (e.g. the `mdp` CLI) to completion with a config-free env; never throws on exit codes. */
export async function runNodeScript(script: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [script, ...args], { cwd: REPO_ROOT, env: configFreeEnv() });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly logFile: string;
  readonly exited: Promise<number | null>;
}

/** Writes `config` as a YAML file the worker can load (the loader's keys are the YAML keys). */
export function writeConfigFile(config: StreamingConfig, name: string): string {
  const dir = resolve(REPO_ROOT, '.data/test');
  mkdirSync(dir, { recursive: true });
  const file = resolve(dir, `${name}.yaml`);
  writeFileSync(file, yaml.dump(config));
  return file;
}

/** Starts the worker on `configFile`, logging to `.data/test/<name>.log`; `env` adds variables (e.g. `MDP_BUILD_ID`). */
export function startWorkerProcess(configFile: string, name: string, extraEnv: NodeJS.ProcessEnv = {}): WorkerProcess {
  const logFile = resolve(REPO_ROOT, '.data/test', `${name}.log`);
  const fd = openSync(logFile, 'a');
  const env = { ...configFreeEnv(), ...extraEnv };
  const child = spawn(process.execPath, [resolve(REPO_ROOT, 'dist/workers/worker.js'), '--config', configFile], { stdio: ['ignore', fd, fd], env });
  closeSync(fd);
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  return { child, logFile, exited };
}

/** `temporal.api.enums.v1` task queue types (the proto package is CommonJS and not a direct dependency): workflow, activity. */
const TASK_QUEUE_TYPES = [1, 2];

/** A worker process with a label for reports and the identity Temporal knows it by. */
export interface PolledWorker extends WorkerProcess {
  readonly label: string;
  readonly pid: number;
  /** `${pid}@${hostname}`: the SDK's default worker identity. */
  readonly identity: string;
}

/** Starts a worker process on `configFile` (see {@link startWorkerProcess}) and names it. */
export function startLabelledWorker(configFile: string, logName: string, label: string, extraEnv: NodeJS.ProcessEnv = {}): PolledWorker {
  const proc = startWorkerProcess(configFile, logName, extraEnv);
  const pid = proc.child.pid!;
  return { ...proc, label, pid, identity: `${pid}@${hostname()}` };
}

/**
 * Waits until `worker` polls both the workflow and the activity tasks of `taskQueue` (it has
 * bundled its workflows and connected everything); fails at once, with its log, if it exits first.
 */
export async function waitUntilPolling(client: Client, taskQueue: string, worker: PolledWorker, timeoutMs = 120_000): Promise<void> {
  await waitFor(
    `${worker.label} (pid ${worker.pid}) polling task queue ${taskQueue}`,
    timeoutMs,
    async () => {
      for (const taskQueueType of TASK_QUEUE_TYPES) {
        const { pollers } = await client.workflowService.describeTaskQueue({
          namespace: client.options.namespace,
          taskQueue: { name: taskQueue },
          taskQueueType,
        });
        if (!pollers?.some((p) => p.identity === worker.identity)) return undefined;
      }
      return true;
    },
    {
      everyMs: 250,
      guard: () => {
        if (worker.child.exitCode !== null || worker.child.signalCode !== null)
          throw new Error(`${worker.label} exited while starting:\n${tailFile(worker.logFile)}`);
      },
    },
  );
}
