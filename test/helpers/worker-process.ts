/** Runs the real worker entrypoint (`dist/workers/worker.js`) as a child process for crash tests. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import yaml from 'js-yaml';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import { REPO_ROOT } from './services.js';

/** Env vars bound to config keys; cleared so the child takes every value from its config file. */
const CONFIG_ENV = ['REDIS_URI', 'STORE_URL', 'TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'MDP_TASK_QUEUE', 'MDP_METRICS_PORT', 'MDP_SHARDS', 'LOG_LEVEL'];

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

export function startWorkerProcess(configFile: string, name: string): WorkerProcess {
  const logFile = resolve(REPO_ROOT, '.data/test', `${name}.log`);
  const fd = openSync(logFile, 'a');
  const env = { ...process.env };
  for (const key of CONFIG_ENV) delete env[key];
  const child = spawn(process.execPath, [resolve(REPO_ROOT, 'dist/workers/worker.js'), '--config', configFile], { stdio: ['ignore', fd, fd], env });
  closeSync(fd);
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  return { child, logFile, exited };
}
