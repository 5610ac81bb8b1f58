/**
 * A Redis and a PostgreSQL of a test's own, on free loopback ports, that the test may stop and
 * start again (outage tests must never stop the shared local stack). Each is a child process of
 * the test, stopped by `destroy()` in `after`.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { freePort, waitFor } from './wait.js';

const REDIS_SERVER = process.env.MDP_REDIS_SERVER ?? 'redis-server';
const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** A private `redis-server` (no persistence) on a free port; `stop()` kills it, `start()` brings it back on the same port. */
export class PrivateRedis {
  readonly port: number;
  readonly uri: string;
  #child: ChildProcess | undefined;

  private constructor(port: number) {
    this.port = port;
    this.uri = `redis://127.0.0.1:${port}/0`;
  }

  static async start(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort());
    await redis.start();
    return redis;
  }

  async start(): Promise<void> {
    if (this.#child) return;
    const child = spawn(REDIS_SERVER, ['--bind', '127.0.0.1', '--port', String(this.port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    child.once('error', () => undefined);
    this.#child = child;
    await waitFor(
      `the private redis-server on :${this.port}`,
      10_000,
      async () => {
        if (child.exitCode !== null) throw new Error(`${REDIS_SERVER} exited with ${child.exitCode}`);
        const probe = new Redis(this.uri, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
        probe.on('error', () => undefined);
        try {
          await probe.connect();
          return (await probe.ping()) === 'PONG' ? true : undefined;
        } finally {
          probe.disconnect();
        }
      },
      { everyMs: 50 },
    );
  }

  /** Kills the server (SIGKILL: an outage, not a shutdown) and waits until it is gone. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((done) => child.once('exit', done));
      child.kill('SIGKILL');
      await exited;
    }
  }

  destroy(): Promise<void> {
    return this.stop();
  }
}

/**
 * A private PostgreSQL cluster (`initdb` into a temp dir, user `mdp`, password `mdp`, database
 * `mdp`) on a free port. As root the cluster runs as the `postgres` user, which PostgreSQL requires.
 */
export class PrivatePostgres {
  readonly port: number;
  readonly url: string;
  readonly #dir: string;
  #running = false;

  private constructor(port: number, dir: string) {
    this.port = port;
    this.#dir = dir;
    this.url = `postgres://mdp:mdp@127.0.0.1:${port}/mdp`;
  }

  static async start(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'mdp-pg-'));
    const data = join(dir, 'data');
    const pwfile = join(dir, 'pw');
    writeFileSync(pwfile, 'mdp\n');
    if (asRoot()) {
      const uid = Number((await run('id', ['-u', 'postgres'])).trim());
      const gid = Number((await run('id', ['-g', 'postgres'])).trim());
      chownSync(dir, uid, gid);
      chownSync(pwfile, uid, gid);
    }
    await pgTool('initdb', ['-D', data, '-U', 'mdp', `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8']);
    const server = new PrivatePostgres(await freePort(), dir);
    await server.start();
    const admin = new pg.Client({ connectionString: server.url.replace(/\/mdp$/, '/postgres') });
    await admin.connect();
    try {
      await admin.query('CREATE DATABASE mdp');
    } finally {
      await admin.end();
    }
    return server;
  }

  /** Starts the cluster (again) and waits until it accepts connections. */
  async start(): Promise<void> {
    if (this.#running) return;
    await pgTool('pg_ctl', [
      '-D',
      join(this.#dir, 'data'),
      '-l',
      join(this.#dir, 'server.log'),
      '-w',
      '-t',
      '30',
      '-o',
      `-c listen_addresses=127.0.0.1 -p ${this.port} -k ${this.#dir} -c fsync=off`,
      'start',
    ]);
    this.#running = true;
  }

  /** Stops the cluster at once (`-m immediate`: connections are cut, as in an outage). */
  async stop(): Promise<void> {
    if (!this.#running) return;
    await pgTool('pg_ctl', ['-D', join(this.#dir, 'data'), '-m', 'immediate', '-w', 'stop']);
    this.#running = false;
  }

  async destroy(): Promise<void> {
    await this.stop().catch(() => undefined);
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

function asRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Runs a command to completion without blocking the event loop (in-process workers keep heartbeating). */
async function run(command: string, args: readonly string[]): Promise<string> {
  try {
    return (await promisify(execFile)(command, args, { encoding: 'utf8' })).stdout;
  } catch (err) {
    throw new Error(`${command} ${args.join(' ')} failed: ${(err as { stderr?: string }).stderr || (err as Error).message}`);
  }
}

/** Runs a PostgreSQL tool, as the `postgres` user when this process is root. */
function pgTool(tool: string, args: readonly string[]): Promise<string> {
  const path = join(PG_BIN, tool);
  return asRoot() ? run('runuser', ['-u', 'postgres', '--', path, ...args]) : run(path, args);
}
