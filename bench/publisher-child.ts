/** The bench's side of {@link ./publisher-process.ts}: forks it, starts it, follows its progress. */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import type { LoadPublisherResult } from './load-publisher.js';
import type { PublisherReply, PublisherRunMessage, PublisherUsage } from './publisher-process.js';
import { REPO_ROOT } from './repo-paths.js';

export const PUBLISHER_PATH = resolve(REPO_ROOT, 'dist/bench/publisher-process.js');

export class PublisherProcess {
  readonly #child: ChildProcess;
  readonly #done: Promise<LoadPublisherResult>;
  #published = 0;
  #usage: PublisherUsage | undefined;

  /** Forks the publisher with `env` (node flags such as --cpu-prof in `execArgv`) and sends it `message`. */
  constructor(message: Omit<PublisherRunMessage, 'type'>, env: NodeJS.ProcessEnv, execArgv: readonly string[], logFd: number) {
    this.#child = fork(PUBLISHER_PATH, [], { cwd: REPO_ROOT, env, execArgv: [...execArgv], stdio: ['ignore', logFd, logFd, 'ipc'] });
    this.#done = new Promise((done, fail) => {
      let settled = false;
      this.#child.on('message', (reply: PublisherReply) => {
        if (reply.type === 'progress') this.#published = reply.published;
        else if (reply.type === 'done') {
          settled = true;
          this.#published = reply.result.published;
          this.#usage = reply.usage;
          done(reply.result);
        } else {
          settled = true;
          fail(new Error(`the publisher process failed: ${reply.message}`));
        }
      });
      this.#child.on('exit', (code, signal) => {
        if (!settled) fail(new Error(`the publisher process exited (${signal ?? `code ${String(code)}`}) before it reported a result`));
      });
    });
    this.#child.send({ type: 'run', ...message } satisfies PublisherRunMessage);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Events confirmed so far (updated once a second, exact at the end). */
  get published(): number {
    return this.#published;
  }

  /** CPU and peak RSS of its whole life, once it reported its result. */
  get usage(): PublisherUsage | undefined {
    return this.#usage;
  }

  /** Asks it to stop after the batches in flight. */
  stop(): void {
    if (this.#child.connected) this.#child.send({ type: 'stop' });
  }

  /** Its result; rejects when it failed or died. */
  result(): Promise<LoadPublisherResult> {
    return this.#done;
  }

  /** Waits for it to exit (after its result), killing it after `timeoutMs`. */
  async exited(timeoutMs = 10_000): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    await new Promise<void>((done) => {
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), timeoutMs);
      this.#child.once('exit', () => {
        clearTimeout(timer);
        done();
      });
    });
  }
}
