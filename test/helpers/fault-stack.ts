/**
 * Private services for fault-injection tests: a Redis (AOF `everysec`), a PostgreSQL 15 cluster
 * and a Temporal dev server (SQLite file) of the test file's own — and a one-node Kafka when asked
 * for — on free loopback ports, with their data and logs under `.data/test/faults/<name>/`. A test
 * may SIGKILL, SIGSTOP/SIGCONT, stop and restart them; the shared local stack (6379/5432/7233/9092)
 * is never touched.
 *
 * Every process started here is also killed when the test process exits, even if an `after`
 * hook never ran.
 *
 * @example
 * const stack = await startFaultStack('redis-kill');
 * stack.redis.kill();                 // SIGKILL, AOF intact
 * await stack.redis.start();          // same port, same data
 * await stack.stop();                 // in `after`, on every path
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { Admin, ProduceAcks, Producer, stringSerializers } from '@platformatic/kafka';
import { Connection } from '@temporalio/client';
import { Redis } from 'ioredis';
import pg from 'pg';
import { REPO_ROOT, TEST_NAMESPACE, temporalCliPath } from './services.js';
import { freePort, waitFor } from './wait.js';
import type { AofCut, AofMark } from './redis-aof.js';
import { cutAofToMark, markAof } from './redis-aof.js';

const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
/** Root of every fault test's data and logs (git-ignored: `.data/`). */
export const FAULTS_DIR = resolve(REPO_ROOT, '.data/test/faults');

/** Pids to kill if the test process exits without stopping them (crash, mocha --exit, Ctrl-C). */
const live = new Map<number, NodeJS.Signals>();
let exitHookInstalled = false;
/** Kills `pid` with `signal` if it is still tracked when this process exits; see {@link untrack}. */
export function track(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (pid === undefined) return;
  live.set(pid, signal);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [p, sig] of live) {
      try {
        process.kill(p, 'SIGCONT'); // a stopped process would not act on SIGQUIT
        process.kill(p, sig);
      } catch {
        // already gone
      }
    }
  });
}
export function untrack(pid: number | undefined): void {
  if (pid !== undefined) live.delete(pid);
}

/** The last `lines` lines of a log file, or a note that it is missing. */
export function tailFile(file: string, lines = 40): string {
  if (!existsSync(file)) return `(no ${file})`;
  const all = readFileSync(file, 'utf8').trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}

/** Whether a pid is alive (signal 0). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A child process writing to a log file, with its exit as a promise. */
interface Spawned {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}
function spawnLogged(command: string, args: readonly string[], logFile: string): Spawned {
  const fd = openSync(logFile, 'a');
  const child = spawn(command, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  track(child.pid);
  const exited = new Promise<void>((done) =>
    child.once('exit', () => {
      untrack(child.pid);
      done();
    }),
  );
  return { child, exited };
}

// ---------------------------------------------------------------------------------------------
// Redis

/**
 * A private `redis-server`: AOF on with `appendfsync everysec`, automatic AOF rewrites and RDB
 * snapshots off (so the incremental AOF holds every write since start, and a cut stays meaningful).
 */
/** SIGKILLs a private server (a crash) and waits until it is gone; nothing when it is not running. */
async function sigkill(proc: Spawned | undefined): Promise<void> {
  if (!proc) return;
  proc.child.kill('SIGKILL');
  await proc.exited;
}

export class PrivateRedis {
  readonly port: number;
  readonly dir: string;
  readonly logFile: string;
  #proc: Spawned | undefined;

  constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
    this.logFile = resolve(dir, 'redis.log');
    mkdirSync(dir, { recursive: true });
  }

  get uri(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  get pid(): number | undefined {
    return this.#proc?.child.pid;
  }

  /** Starts (or restarts, on the same port and data) and waits until it answers PING. */
  async start(): Promise<void> {
    if (this.#proc) throw new Error('private redis is already running');
    this.#proc = spawnLogged(
      'redis-server',
      [
        '--bind',
        '127.0.0.1',
        '--port',
        String(this.port),
        '--dir',
        this.dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'everysec',
        '--auto-aof-rewrite-percentage',
        '0',
        '--save',
        '',
        '--daemonize',
        'no',
        '--logfile',
        '',
        '--protected-mode',
        'no',
      ],
      this.logFile,
    );
    const proc = this.#proc;
    await waitFor(
      `private redis on :${this.port} (log ${this.logFile})`,
      30_000,
      async () => {
        const probe = new Redis(this.uri, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        probe.on('error', () => undefined); // refused while starting: the poll retries
        try {
          await probe.connect();
          // While the AOF loads, commands answer LOADING: not up yet.
          return (await probe.ping()) === 'PONG' ? true : undefined;
        } finally {
          probe.disconnect();
        }
      },
      {
        everyMs: 100,
        guard: () => {
          if (proc.child.exitCode !== null) throw new Error(`private redis exited at start:\n${tailFile(this.logFile)}`);
        },
      },
    );
  }

  /** SIGKILL (a process crash: everything written to the AOF so far survives). */
  async kill(): Promise<void> {
    const proc = this.#proc;
    if (!proc) return;
    this.#proc = undefined;
    proc.child.kill('SIGKILL');
    await proc.exited;
  }

  /** SIGSTOP / SIGCONT: a frozen server whose sockets stay open. */
  freeze(): void {
    this.#proc?.child.kill('SIGSTOP');
  }

  thaw(): void {
    this.#proc?.child.kill('SIGCONT');
  }

  /**
   * Marks the current end of the AOF once Redis has written every command it acknowledged (INFO
   * `aof_buffer_length:0`; with `everysec` a write may be postponed while a background fsync runs).
   */
  async markAof(client: Redis): Promise<AofMark> {
    return waitFor(
      'the AOF buffer to be written',
      10_000,
      async () => {
        const before = await client.info('persistence');
        if (!/^aof_buffer_length:0\r?$/m.test(before)) return undefined;
        const mark = markAof(this.dir);
        const after = await client.info('persistence');
        return /^aof_buffer_length:0\r?$/m.test(after) ? mark : undefined;
      },
      { everyMs: 20 },
    );
  }

  /**
   * "Loses" every write after `mark`, as a host crash with `appendfsync everysec` may: call it
   * after {@link kill}, then {@link start} again. See `redis-aof.ts`.
   */
  loseWritesAfter(mark: AofMark): AofCut {
    if (this.#proc) throw new Error('kill the private redis before cutting its AOF');
    return cutAofToMark(this.dir, mark);
  }

  async stop(): Promise<void> {
    if (this.#proc) this.thaw();
    await this.kill();
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/** uid/gid of the `postgres` user when this process is root (PostgreSQL refuses to run as root). */
function postgresIds(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

/**
 * A private PostgreSQL 15 cluster (initdb into its own directory, trust auth on loopback, role and
 * database `mdp`). Stopping is `pg_ctl stop -m immediate` (a crash: recovery runs at the next start)
 * unless told otherwise. As root, every PostgreSQL binary runs as the `postgres` user.
 */
export class PrivatePostgres {
  readonly port: number;
  readonly dataDir: string;
  readonly logFile: string;
  readonly #ids = postgresIds();
  #running = false;

  constructor(port: number, dir: string) {
    this.port = port;
    this.dataDir = resolve(dir, 'data');
    this.logFile = resolve(dir, 'postgres.log');
    mkdirSync(dir, { recursive: true });
  }

  /** URL of database `mdp` as role `mdp`. */
  get url(): string {
    return `postgres://mdp:mdp@127.0.0.1:${this.port}/mdp`;
  }

  get running(): boolean {
    return this.#running;
  }

  async #run(bin: string, args: readonly string[]): Promise<string> {
    try {
      const { stdout } = await promisify(execFile)(resolve(PG_BIN, bin), args, { ...(this.#ids ?? {}), env: { ...process.env, LC_ALL: 'C' } });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`${bin} ${args.join(' ')} failed: ${e.stderr ?? e.message}\n${tailFile(this.logFile)}`);
    }
  }

  /** initdb, settings, first start, database `mdp`. */
  async init(): Promise<void> {
    mkdirSync(this.dataDir, { recursive: true });
    writeFileSync(this.logFile, '');
    if (this.#ids) execFileSync('chown', ['-R', `${this.#ids.uid}:${this.#ids.gid}`, resolve(this.dataDir, '..')]);
    await this.#run('initdb', ['-D', this.dataDir, '-U', 'mdp', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    // No unix socket (TCP on loopback only); fsync off: faults here are process crashes, which
    // lose nothing the OS already has, and the shared disk is spared.
    writeFileSync(
      resolve(this.dataDir, 'postgresql.auto.conf'),
      [
        `port = ${this.port}`,
        `listen_addresses = '127.0.0.1'`,
        `unix_socket_directories = ''`,
        'fsync = off',
        'full_page_writes = off',
        'max_connections = 100',
        'shared_buffers = 32MB',
        `log_line_prefix = '%m [%p] %a '`,
        'log_min_error_statement = error',
        'log_lock_waits = on',
        '',
      ].join('\n'),
    );
    if (this.#ids) execFileSync('chown', [`${this.#ids.uid}:${this.#ids.gid}`, resolve(this.dataDir, 'postgresql.auto.conf')]);
    await this.start();
    const admin = new pg.Client({ connectionString: `postgres://mdp@127.0.0.1:${this.port}/postgres` });
    await admin.connect();
    try {
      await admin.query('CREATE DATABASE mdp');
    } finally {
      await admin.end();
    }
  }

  async start(): Promise<void> {
    await this.#run('pg_ctl', ['start', '-D', this.dataDir, '-l', this.logFile, '-w', '-t', '60']);
    this.#running = true;
    track(this.#postmasterPid(), 'SIGQUIT');
  }

  /** `immediate`: a crash (no checkpoint, recovery at next start); `fast`: a clean shutdown. */
  async stop(mode: 'immediate' | 'fast' = 'immediate'): Promise<void> {
    if (!this.#running) return;
    const pid = this.#postmasterPid();
    await this.#run('pg_ctl', ['stop', '-D', this.dataDir, '-m', mode, '-w', '-t', '60']);
    this.#running = false;
    untrack(pid);
  }

  #postmasterPid(): number | undefined {
    const file = resolve(this.dataDir, 'postmaster.pid');
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
    return Number.isSafeInteger(pid) && alive(pid) ? pid : undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Temporal

/**
 * A private Temporal dev server (`temporal server start-dev`) with its state in a SQLite file, so a
 * SIGKILL and restart on the same port keeps every workflow's history. (The shared helper
 * `startTemporal` runs an in-memory server owned by the SDK, which a test cannot kill and restart.)
 */
export class PrivateTemporal {
  readonly port: number;
  readonly dbFile: string;
  readonly logFile: string;
  readonly #dynamicConfig: Readonly<Record<string, string | number | boolean>>;
  #proc: Spawned | undefined;

  /** `dynamicConfig`: server settings, e.g. `{ 'matching.longPollExpirationInterval': '5s' }`. */
  constructor(port: number, dir: string, dynamicConfig: Readonly<Record<string, string | number | boolean>> = {}) {
    this.#dynamicConfig = dynamicConfig;
    this.port = port;
    this.dbFile = resolve(dir, 'temporal.db');
    this.logFile = resolve(dir, 'temporal.log');
    mkdirSync(dir, { recursive: true });
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#proc?.child.pid;
  }

  /** Starts (or restarts on the same port and SQLite file) and waits until the tests' namespace (`mdp-test`) answers. */
  async start(): Promise<void> {
    if (this.#proc) throw new Error('private temporal is already running');
    this.#proc = spawnLogged(
      temporalCliPath(),
      [
        'server',
        'start-dev',
        '--ip',
        '127.0.0.1',
        '--port',
        String(this.port),
        '--headless',
        '--db-filename',
        this.dbFile,
        '--log-level',
        'warn',
        '--namespace',
        TEST_NAMESPACE,
        ...Object.entries(this.#dynamicConfig).flatMap(([key, value]) => ['--dynamic-config-value', `${key}=${JSON.stringify(value)}`]),
      ],
      this.logFile,
    );
    const proc = this.#proc;
    await waitFor(
      `private temporal on :${this.port} (log ${this.logFile})`,
      90_000,
      async () => {
        const connection = await Connection.connect({ address: this.address, connectTimeout: 1000 });
        try {
          await connection.workflowService.describeNamespace({ namespace: TEST_NAMESPACE });
          return true;
        } finally {
          await connection.close();
        }
      },
      {
        everyMs: 250,
        guard: () => {
          if (proc.child.exitCode !== null) throw new Error(`private temporal exited at start:\n${tailFile(this.logFile)}`);
        },
      },
    );
  }

  async kill(): Promise<void> {
    const proc = this.#proc;
    this.#proc = undefined;
    await sigkill(proc);
  }

  stop(): Promise<void> {
    return this.kill();
  }
}

// ---------------------------------------------------------------------------------------------
// Kafka

/**
 * Where the Kafka 4.x jars are: `$MDP_KAFKA_LIBS`, `$MDP_KAFKA_HOME/libs`, or the copy
 * `scripts/install.sh` makes in `.cache/kafka/libs`. The first that holds a `kafka_2.13` jar wins.
 */
export function kafkaLibsDir(): string {
  const candidates = [
    process.env.MDP_KAFKA_LIBS,
    process.env.MDP_KAFKA_HOME === undefined ? undefined : resolve(process.env.MDP_KAFKA_HOME, 'libs'),
    resolve(REPO_ROOT, '.cache/kafka/libs'),
  ].filter((dir): dir is string => dir !== undefined);
  for (const dir of candidates) {
    if (existsSync(dir) && readdirSync(dir).some((f) => /^kafka_2\.13-.*\.jar$/.test(f))) return dir;
  }
  throw new Error(`Kafka jars not found (looked in ${candidates.join(', ')}); run bash scripts/install.sh or set MDP_KAFKA_LIBS`);
}

/** Topic the readiness probe produces to: a broker is up when a write with acks=all succeeds. */
const KAFKA_PROBE_TOPIC = 'mdp-fault-probe';

/**
 * A private one-node Kafka (KRaft: broker and controller in one JVM, small heap) on two free ports,
 * its log directory formatted once. {@link kill} is a SIGKILL of the JVM (what the OS has of its
 * log files survives, page cache included); {@link start} brings it back on the same ports and data.
 * Settings follow `scripts/stack-start.sh`, with one partition for each internal topic.
 */
export class PrivateKafka {
  readonly port: number;
  readonly controllerPort: number;
  readonly dir: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly #libs: string;
  #formatted = false;
  #proc: Spawned | undefined;

  constructor(port: number, controllerPort: number, dir: string) {
    this.port = port;
    this.controllerPort = controllerPort;
    this.dir = dir;
    this.dataDir = resolve(dir, 'data');
    this.logFile = resolve(dir, 'kafka.log');
    this.#libs = kafkaLibsDir();
    mkdirSync(dir, { recursive: true });
  }

  /** `host:port` of the broker (`bus.kafka.brokers`). */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#proc?.child.pid;
  }

  #writeConfig(): { properties: string; log4j: string } {
    const properties = resolve(this.dir, 'server.properties');
    writeFileSync(
      properties,
      [
        'process.roles=broker,controller',
        'node.id=1',
        `controller.quorum.voters=1@127.0.0.1:${this.controllerPort}`,
        `listeners=PLAINTEXT://127.0.0.1:${this.port},CONTROLLER://127.0.0.1:${this.controllerPort}`,
        `advertised.listeners=PLAINTEXT://127.0.0.1:${this.port}`,
        'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
        'inter.broker.listener.name=PLAINTEXT',
        'controller.listener.names=CONTROLLER',
        `log.dirs=${this.dataDir}`,
        'num.partitions=1',
        'default.replication.factor=1',
        'offsets.topic.replication.factor=1',
        'offsets.topic.num.partitions=1',
        'transaction.state.log.replication.factor=1',
        'transaction.state.log.min.isr=1',
        'transaction.state.log.num.partitions=1',
        'share.coordinator.state.topic.replication.factor=1',
        'share.coordinator.state.topic.min.isr=1',
        'auto.create.topics.enable=false',
        'group.initial.rebalance.delay.ms=0',
        // A restarted broker registers again once its previous session expired (see stack-start.sh).
        'broker.heartbeat.interval.ms=1000',
        'broker.session.timeout.ms=4000',
        'num.network.threads=2',
        'num.io.threads=2',
        'background.threads=2',
        'num.recovery.threads.per.data.dir=1',
        'log.cleaner.threads=1',
        'log.cleaner.dedupe.buffer.size=16777216',
        '',
      ].join('\n'),
    );
    const log4j = resolve(this.dir, 'log4j2.properties');
    writeFileSync(
      log4j,
      [
        'appender.out.type = Console',
        'appender.out.name = STDOUT',
        'appender.out.layout.type = PatternLayout',
        'appender.out.layout.pattern = [%d] %p %m (%c)%n',
        'rootLogger.level = WARN',
        'rootLogger.appenderRef.out.ref = STDOUT',
        '',
      ].join('\n'),
    );
    return { properties, log4j };
  }

  /** Starts (formatting the log directory the first time) and waits until a write with acks=all succeeds. */
  async start(): Promise<void> {
    if (this.#proc) throw new Error('private kafka is already running');
    const { properties, log4j } = this.#writeConfig();
    const classpath = `${this.#libs}/*`;
    const jvm = ['-XX:+UseSerialGC', '-Djava.awt.headless=true', `-Dlog4j2.configurationFile=${log4j}`, '-cp', classpath];
    if (!this.#formatted) {
      const clusterId = randomBytes(16).toString('base64url');
      try {
        await promisify(execFile)('java', ['-Xmx256m', ...jvm, 'kafka.tools.StorageTool', 'format', '--cluster-id', clusterId, '--config', properties]);
      } catch (err) {
        const e = err as { stderr?: string; stdout?: string; message: string };
        throw new Error(`formatting the private kafka's storage in ${this.dataDir} failed: ${e.stderr || e.stdout || e.message}`);
      }
      this.#formatted = true;
    }
    this.#proc = spawnLogged('java', ['-Xms128m', '-Xmx384m', ...jvm, 'kafka.Kafka', properties], this.logFile);
    const proc = this.#proc;
    await waitFor(`private kafka on :${this.port} to take a write (log ${this.logFile})`, 120_000, () => this.#probe(), {
      everyMs: 250,
      guard: () => {
        if (proc.child.exitCode !== null) throw new Error(`private kafka exited at start:\n${tailFile(this.logFile)}`);
      },
    });
  }

  /** One write with acks=all to the probe topic (created the first time): true when the broker took it. */
  async #probe(): Promise<true> {
    const base = { clientId: 'mdp-fault-probe', bootstrapBrokers: [this.address], retries: 0, timeout: 2000, connectTimeout: 1000 };
    const admin = new Admin(base);
    const producer = new Producer({ ...base, serializers: stringSerializers, acks: ProduceAcks.ALL });
    try {
      if (!(await admin.listTopics()).includes(KAFKA_PROBE_TOPIC)) await admin.createTopics({ topics: [KAFKA_PROBE_TOPIC], partitions: 1, replicas: 1 });
      await producer.send({ messages: [{ topic: KAFKA_PROBE_TOPIC, partition: 0, value: String(Date.now()) }] });
      return true;
    } finally {
      await Promise.allSettled([producer.close(true), admin.close()]);
    }
  }

  /** SIGKILL of the JVM: a broker crash. */
  async kill(): Promise<void> {
    const proc = this.#proc;
    this.#proc = undefined;
    await sigkill(proc);
  }

  stop(): Promise<void> {
    return this.kill();
  }
}

// ---------------------------------------------------------------------------------------------
// The stack

export interface FaultStack {
  /** `.data/test/faults/<name>-<n>`: data and logs of this stack (and of its runs' workers). */
  readonly dir: string;
  readonly redis: PrivateRedis;
  readonly postgres: PrivatePostgres;
  readonly temporal: PrivateTemporal;
  /** The private Kafka broker, when the stack was started with `kafka: true`. */
  readonly kafka: PrivateKafka | undefined;
  /** Service log files, for printing their tails when a test fails. */
  readonly logFiles: readonly string[];
  /** Stops every service (idempotent, never throws); removes data unless MDP_FAULTS_KEEP=1 (logs stay). */
  stop(): Promise<void>;
}

export interface FaultStackOptions {
  /** Dynamic config of the Temporal dev server (see {@link PrivateTemporal}). */
  readonly temporalDynamicConfig?: Readonly<Record<string, string | number | boolean>>;
  /** Also start a private Kafka broker (for runs on the Kafka bus). */
  readonly kafka?: boolean;
}

/** Starts the private services (three, or four with Kafka) in parallel for one test file. */
export async function startFaultStack(name: string, options: FaultStackOptions = {}): Promise<FaultStack> {
  const dir = resolve(FAULTS_DIR, `${name}-${process.pid}-${Date.now().toString(36)}`);
  mkdirSync(dir, { recursive: true });
  const ports = new Set<number>();
  while (ports.size < (options.kafka ? 5 : 3)) ports.add(await freePort());
  const [redisPort, pgPort, temporalPort, kafkaPort, kafkaControllerPort] = [...ports];
  const redis = new PrivateRedis(redisPort, resolve(dir, 'redis'));
  const postgres = new PrivatePostgres(pgPort, resolve(dir, 'postgres'));
  const temporal = new PrivateTemporal(temporalPort, resolve(dir, 'temporal'), options.temporalDynamicConfig);
  const kafka = options.kafka ? new PrivateKafka(kafkaPort, kafkaControllerPort, resolve(dir, 'kafka')) : undefined;
  let stopping: Promise<void> | undefined;
  const stack: FaultStack = {
    dir,
    redis,
    postgres,
    temporal,
    kafka,
    logFiles: [redis.logFile, postgres.logFile, temporal.logFile, ...(kafka ? [kafka.logFile] : [])],
    stop() {
      stopping ??= (async () => {
        const results = await Promise.allSettled([redis.stop(), postgres.stop('immediate'), temporal.stop(), kafka?.stop()]);
        for (const r of results) if (r.status === 'rejected') console.error('fault stack: stopping a service failed:', r.reason);
        if (process.env.MDP_FAULTS_KEEP !== '1') {
          const temporalFiles = ['', '-journal', '-wal', '-shm'].map((suffix) => temporal.dbFile + suffix);
          const kafkaData = kafka ? [kafka.dataDir] : [];
          for (const data of [resolve(redis.dir, 'appendonlydir'), postgres.dataDir, ...temporalFiles, ...kafkaData])
            rmSync(data, { recursive: true, force: true });
        }
      })();
      return stopping;
    },
  };
  const started = await Promise.allSettled([redis.start(), postgres.init(), temporal.start(), kafka?.start()]);
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await stack.stop();
    throw failed.reason;
  }
  return stack;
}
