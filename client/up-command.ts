import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBus } from '../pipeline/bus/index.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { configuredAdapter, redactSecrets } from '../pipeline/config/index.js';
import { createDb, migrateToLatest, StoreClient } from '../store/index.js';
import { RECOVERY_SCHEDULE_ID } from '../workflows/index.js';
import { formatRunSummary, HIDE_CURSOR, redrawPanel, renderLivePanel, SHOW_CURSOR } from './live-panel.js';
import { formatProgress, readProgress, readRecentSignals } from './progress.js';
import type { PipelineProgress } from './progress.js';
import { ensureRecoverySchedule, PAUSED_BY_UP, setRecoveryPaused, UNPAUSED_BY_UP } from './recover-command.js';
import { startInference, startMicroBatchers, startProducer } from './stream-commands.js';
import { searchAttributesReady } from './search-attributes.js';
import { connectTemporal, workflowUrl } from './temporal.js';

const WORKER_PATH = fileURLToPath(new URL('../workers/worker.js', import.meta.url));

export interface UpOptions {
  readonly configFile: string;
  readonly logFile: string;
  readonly uiBase: string;
  readonly write: (text: string) => void;
  /** Redraw a status panel in place (default: whether stdout is a terminal); otherwise plain lines. */
  readonly tty?: boolean;
  /** The terminal's size for the panel (default: stdout's, else 100×40). */
  readonly size?: () => { readonly columns: number; readonly rows: number };
  /** Plain mode: one progress line per this many ms (default 10 s; the first at once). */
  readonly lineEveryMs?: number;
}

/**
 * The dashboards of the compose stack (`docker-compose.yml`: Grafana on MDP_GRAFANA_PORT, Prometheus
 * on MDP_PROMETHEUS_PORT), listed only when they answer: the local stack of live.sh has neither.
 */
async function dashboards(env: NodeJS.ProcessEnv): Promise<string[]> {
  const candidates = [
    ['Grafana     ', `http://127.0.0.1:${env.MDP_GRAFANA_PORT ?? '3000'}`, '/api/health'],
    ['Prometheus  ', `http://127.0.0.1:${env.MDP_PROMETHEUS_PORT ?? '9090'}`, '/-/ready'],
  ] as const;
  const found = await Promise.all(
    candidates.map(async ([label, base, probe]) => {
      try {
        const res = await fetch(base + probe, { signal: AbortSignal.timeout(500) });
        return res.ok ? `  ${label}${base}` : undefined;
      } catch {
        return undefined; // not running here
      }
    }),
  );
  return found.filter((line): line is string => line !== undefined);
}

/** How often the panel reads and redraws. */
const PANEL_EVERY_MS = 1000;
const SIGNALS_SHOWN = 5;

/**
 * What needs a look while the pipeline runs: events dead-lettered or late since `up` started, a
 * shard whose lag is well past what its window and grace explain.
 */
function liveWarnings(first: PipelineProgress, now: PipelineProgress, config: StreamingConfig): string[] {
  const warnings: string[] = [];
  if (now.dlq > first.dlq) warnings.push(`${now.dlq - first.dlq} events dead-lettered since start (mdp stream tail --topic ${config.bus.redis.dlq_stream})`);
  if (now.late > first.late) warnings.push(`${now.late - first.late} late events since start (mdp stream tail --topic ${config.bus.redis.late_stream})`);
  const lagLimitMs = Math.max(30_000, 5 * (config.micro_batch.window_ms + config.micro_batch.allow_late_ms));
  for (const s of now.shards)
    if (s.lagMs > lagLimitMs)
      warnings.push(`shard ${s.shard} lags ${(s.lagMs / 1000).toFixed(1)}s (over ${lagLimitMs / 1000}s; mdp status shows its consumer)`);
  return warnings;
}

/**
 * The main job: migrate, start a worker process, start (or find) the live producer and one
 * micro-batch workflow per shard, create (or update) and unpause the recovery schedule, then show
 * progress until Ctrl-C: on a terminal a panel redrawn in place every second (what runs and where
 * to look, per-shard lag and rate, bars written, the last signals, warnings), otherwise one line
 * every 10 s. Ctrl-C pauses the recovery schedule (its sweeps have no consumer to serve without
 * the worker), stops the worker gracefully and prints a summary. The workflows stay in Temporal;
 * the next `up` resumes them without duplicates.
 */
export async function up(config: StreamingConfig, options: UpOptions): Promise<number> {
  const { write } = options;
  const db = createDb(config.store.url);
  await migrateToLatest(db);
  const store = new StoreClient(db);
  const provider = config.producers.synthetic.provider;

  mkdirSync(dirname(options.logFile), { recursive: true });
  const logFd = openSync(options.logFile, 'a');
  // Its own process group: a terminal's Ctrl-C reaches only us, and we forward exactly one SIGTERM
  // (a second signal would end the worker before its activities finish their current step).
  const worker = spawn(process.execPath, [WORKER_PATH, '--config', options.configFile], { stdio: ['ignore', logFd, logFd], env: process.env, detached: true });
  closeSync(logFd);
  let workerExit: number | null | undefined;
  const exited = new Promise<void>((done) =>
    worker.once('exit', (code) => {
      workerExit = code;
      done();
    }),
  );

  const temporal = await connectTemporal(config);
  const bus = openBus(config);
  // Set once the schedule is ours to pause on the way out (created or found, and unpaused).
  let recoveryToPause = false;
  const pauseRecovery = async () => {
    if (!recoveryToPause) return;
    recoveryToPause = false;
    try {
      if (await setRecoveryPaused(temporal.client, true, PAUSED_BY_UP)) write(`${RECOVERY_SCHEDULE_ID}: ${PAUSED_BY_UP}\n`);
    } catch (err) {
      write(`could not pause the recovery schedule: ${(err as Error).message}\n`);
    }
  };
  try {
    // Before any start: a workflow may carry only search attributes the namespace has.
    const attributes = await searchAttributesReady(temporal.client, (message) => write(`warning: ${message}\n`));
    const producer = await startProducer(temporal.client, config, { provider: 'synthetic' });
    // The IBKR live feed too when the config enables it (a config error stops `up` before it starts).
    const ibkr = config.producers.ibkr.enabled ? await startProducer(temporal.client, config, { provider: 'ibkr' }) : undefined;
    const consumers = await startMicroBatchers(temporal.client, config, undefined);
    const adapter = configuredAdapter(config);
    const inference = adapter ? await startInference(temporal.client, config, adapter) : [];
    // The pending-entry sweep (consumerRecoveryWorkflow) on a Temporal Schedule; the pipeline runs without it.
    // Unpaused while this process runs its worker: the last `up` (or `down`) paused it on the way out.
    const recovery = await ensureRecoverySchedule(temporal.client, config)
      .then(async (s) => {
        await setRecoveryPaused(temporal.client, false, UNPAUSED_BY_UP);
        recoveryToPause = true;
        return s;
      })
      .then(
        (s) =>
          `${s.scheduleId} (schedule ${s.created ? 'created' : 'updated'}: every ${config.recovery.interval}, ${
            config.bus.type === 'kafka'
              ? "reports each partition's pending records and lag"
              : "claims a dead consumer's pending entries, DLQ past max_deliveries"
          }; paused again when this stops)`,
        (err: unknown) => `not scheduled: ${(err as Error).message}`,
      );
    const ns = config.temporal.namespace;
    const tty = options.tty ?? process.stdout.isTTY === true;
    const header = [
      '',
      `mdp live pipeline: ${config.producers.synthetic.symbols.join(', ')} at ${config.producers.synthetic.tick_rate} ticks/s each, ${config.micro_batch.window_ms} ms windows, ${config.bus.shards} shards on ${config.bus.type === 'kafka' ? `Kafka (${config.bus.kafka.brokers.join(',')})` : 'Redis'}`,
      `  producer   ${producer.workflowId} (${producer.started ? 'started' : 'already running, resumed'})`,
      ...(ibkr
        ? [
            `  producer   ${ibkr.workflowId} (IBKR via TWS ${config.producers.ibkr.host}:${config.producers.ibkr.port}; ${ibkr.started ? 'started' : 'already running, resumed'})`,
            ...ibkr.warnings.map((w) => `  warning    ${w}`),
          ]
        : []),
      ...consumers.map((c) => `  consumer   ${c.workflowId} (${c.started ? 'started' : 'already running, resumed'})`),
      ...inference.map((c) => `  inference  ${c.workflowId} (${adapter}; ${c.started ? 'started' : 'already running, resumed'})`),
      `  recovery   ${recovery}`,
      `  Temporal UI  ${options.uiBase}/namespaces/${ns}/workflows  (e.g. ${workflowUrl(options.uiBase, ns, consumers[0].workflowId)})`,
      attributes.ready
        ? `  find them    ${options.uiBase}/namespaces/${ns}/workflows?query=${encodeURIComponent('MdpRole="microbatch"')}  or  temporal workflow list --query 'MdpRole="microbatch"'${
            attributes.added.length > 0 ? `  (search attributes ${attributes.added.join(', ')} added)` : ''
          }`
        : `  find them    by id only: ${attributes.problem ?? 'search attributes unavailable'}`,
      `  metrics      http://${config.telemetry.metrics_host}:${config.telemetry.metrics_port}/metrics`,
      ...(await dashboards(process.env)),
      `  worker log   ${resolve(options.logFile)}`,
      `  bars         psql "${redactSecrets(config.store.url, [config.store.url])}" -c "select * from bars_ohlcv where provider='${provider}' order by ts desc limit 10"`,
      'Ctrl-C stops the worker and pauses the recovery schedule; run the same command again to resume, or mdp down to drain the workflows.',
      '',
    ];
    // On a terminal the header is the top of the panel (it stays in view); otherwise printed once.
    if (!tty) write(header.join('\n') + '\n');
    // The panel names the workflows in one line (one per shard would push the shards off a 24-line terminal).
    const resumed = [producer, ...(ibkr ? [ibkr] : []), ...consumers, ...inference].filter((w) => !w.started).length;
    const workflows = `  workflows  ${[producer.workflowId, ...(ibkr ? [ibkr.workflowId] : [])].join(', ')}, ${consumers.length} micro-batch, ${
      inference.length
    } inference (${resumed === 0 ? 'started' : `${resumed} resumed`})`;
    const panelHeader = [
      header[1],
      workflows,
      ...header.filter((line) => /^ {2}(warning|recovery|Temporal UI|find them|metrics|Grafana|Prometheus|worker log)/.test(line)),
    ];

    let stopping = false;
    const stop = () => {
      stopping = true;
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const startedMs = Date.now();
    // The bars of the producers this `up` runs (the IBKR feed's too when enabled).
    const feeds = [provider, ...(ibkr ? [config.producers.ibkr.provider] : [])];
    const countLiveBars = async () => (await Promise.all(feeds.map((p) => store.countBars(p)))).reduce((a, b) => a + b, 0);
    const lineEveryMs = options.lineEveryMs ?? 10_000;
    const size = options.size ?? (() => ({ columns: process.stdout.columns || 100, rows: process.stdout.rows || 40 }));
    let first: PipelineProgress | undefined;
    let previous: PipelineProgress | undefined;
    let last: PipelineProgress | undefined;
    let height = 0;
    // A crash between frames must not leave the terminal without its cursor.
    const restoreCursor = () => process.stdout.write(SHOW_CURSOR);
    if (tty) {
      write(HIDE_CURSOR);
      process.once('exit', restoreCursor);
    }
    try {
      while (!stopping && workerExit === undefined) {
        const progress = await readProgress(bus, countLiveBars, config);
        first ??= progress;
        last = progress;
        if (tty) {
          const signals = await readRecentSignals(bus, config, SIGNALS_SHOWN);
          const lines = renderLivePanel(
            { header: panelHeader, progress, ...(previous ? { previous } : {}), startedMs, signals, warnings: liveWarnings(first, progress, config) },
            size(),
          );
          write(redrawPanel(lines, height));
          height = lines.length;
          previous = progress;
        } else if (previous === undefined || progress.atMs - previous.atMs >= lineEveryMs) {
          write(formatProgress(progress, previous) + '\n');
          previous = progress;
        }
        await new Promise((r) => setTimeout(r, PANEL_EVERY_MS));
      }
    } finally {
      if (tty) {
        write(SHOW_CURSOR);
        process.removeListener('exit', restoreCursor);
      }
    }
    if (first && last) write(`\n${formatRunSummary(first, last, startedMs)}\n`);
    if (workerExit !== undefined) {
      write(`\nthe worker exited with code ${String(workerExit)}; last lines of ${options.logFile}:\n`);
      write(readFileSync(options.logFile, 'utf8').split('\n').slice(-15).join('\n') + '\n');
      await pauseRecovery();
      return 1;
    }
    write('\nstopping the worker (in-flight windows stay pending in Redis and are picked up on the next run)...\n');
    // Before the worker goes: a sweep started now would wait for a worker, or find no consumer.
    await pauseRecovery();
    worker.kill('SIGTERM');
    const timeout = setTimeout(() => worker.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timeout);
    write(`worker stopped (exit ${String(workerExit)}). Services keep running; stop them with: bash scripts/stack-stop.sh\n`);
    return 0;
  } finally {
    await pauseRecovery();
    if (workerExit === undefined) worker.kill('SIGTERM');
    await bus.close();
    await temporal.close();
    await db.destroy();
  }
}
