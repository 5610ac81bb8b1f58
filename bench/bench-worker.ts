/**
 * The run's own worker process (`dist/workers/worker.js` with the run's config file), on its own
 * task queue and metrics port, its output in `.data/bench/<tag>.worker.log`.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { waitFor } from '../test/helpers/wait.js';
import type { Cleanup } from './run-cleanup.js';
import { parsePrometheusText } from './prometheus-text.js';
import type { PromSample } from './prometheus-text.js';
import { REPO_ROOT, WORKER_PATH } from './repo-paths.js';
import type { RunPlan } from './run-plan.js';

function tail(path: string, lines: number): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export class BenchWorker {
  readonly pid: number;
  readonly logPath: string;
  readonly metricsUrl: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  /** The exit code or signal, once the process has exited. */
  #exit: string | undefined;

  /** Spawns the worker; it is stopped at the end of the run, whatever happened. */
  static start(plan: RunPlan, env: NodeJS.ProcessEnv, cleanup: Cleanup, nodeArgs: readonly string[] = []): BenchWorker {
    const worker = new BenchWorker(plan, env, nodeArgs);
    cleanup.add('stop worker', () => worker.stop());
    return worker;
  }

  private constructor(plan: RunPlan, env: NodeJS.ProcessEnv, nodeArgs: readonly string[]) {
    this.logPath = plan.logPath;
    this.metricsUrl = `http://${plan.config.telemetry.metrics_host}:${plan.metricsPort}`;
    const logFd = openSync(this.logPath, 'a');
    this.#child = spawn(process.execPath, [...nodeArgs, WORKER_PATH, '--config', plan.configPath], { cwd: REPO_ROOT, env, stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    this.#exited = new Promise<void>((done) =>
      this.#child.once('exit', (code, signal) => {
        this.#exit = signal ?? String(code);
        done();
      }),
    );
    this.pid = this.#child.pid!;
  }

  /** How the worker exited (code or signal); undefined while it runs. */
  get exit(): string | undefined {
    return this.#exit;
  }

  /** Throws, with the last lines of its log, once the worker has exited: a guard for waits. */
  throwIfExited(): void {
    if (this.#exit !== undefined) throw new Error(`the worker exited (${this.#exit}); last lines of ${this.logPath}:\n${tail(this.logPath, 15)}`);
  }

  /** Resolves once the worker's `/healthz` answers OK. */
  async whenHealthy(guard: () => void): Promise<void> {
    await waitFor(
      "the worker's /healthz",
      60_000,
      async () => (await fetch(`${this.metricsUrl}/healthz`, { signal: AbortSignal.timeout(1000) })).ok || undefined,
      { guard },
    );
  }

  /** The worker's `/metrics`, parsed; undefined when it does not answer within 2 s. */
  async scrape(): Promise<PromSample[] | undefined> {
    try {
      const res = await fetch(`${this.metricsUrl}/metrics`, { signal: AbortSignal.timeout(2000) });
      return res.ok ? parsePrometheusText(await res.text()) : undefined;
    } catch {
      return undefined;
    }
  }

  /** SIGTERM, then SIGKILL after 30 s; resolves with how long the process took to exit (undefined if it was gone). */
  async stop(): Promise<number | undefined> {
    if (this.#exit !== undefined) return undefined;
    const started = Date.now();
    this.#child.kill('SIGTERM');
    const killer = setTimeout(() => this.#child.kill('SIGKILL'), 30_000);
    await this.#exited;
    clearTimeout(killer);
    return Date.now() - started;
  }
}
