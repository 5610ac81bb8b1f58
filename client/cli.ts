#!/usr/bin/env node
/**
 * The `mdp` command line.
 *
 *   mdp up                 [--config F]                 the live synthetic pipeline, with progress
 *   mdp down               [--config F] [--timeout 60s]  drain producers and consumers, pause the recovery schedule
 *   mdp stream produce     [--config F] --provider synthetic [--rate N] [--count N] [--start-ts ISO] | --provider ibkr
 *   mdp stream produce     [--config F] --provider file --path FILE|- [--speed 1|10|max] [--format jsonl|csv] [--from-start]
 *   mdp stream micro-batch [--config F] [--window 2s]
 *   mdp stream infer       [--config F] --adapter rules|sklearn [--model models/x.onnx]
 *   mdp stream tail        [--config F] --topic mdp.events [--limit 50]
 *   mdp stream drain       [--config F]                 stop producer and consumers cleanly
 *   mdp stream replay      [--config F] --dataset NAME --from D --to D [--window 2s] [--chunk-span 15m] [--speed N] [--publish-signals] [--wait-for-worker 10s] | --follow ID
 *   mdp model reload       [--config F] --path models/x.onnx [--reference F]   validate, then switch inference consumers
 *   mdp dataset ls         [--config F]
 *   mdp dataset generate   [--config F] NAME --date YYYY-MM-DD
 *   mdp dataset fetch ibkr [--config F] --symbol SPY --from D --to D --bar 1s|5s|1m [--what TRADES|MIDPOINT] [--dataset NAME] [--rth] [--chunk-seconds N] | --follow ID
 *   mdp stream recover     [--config F] [--min-idle 60s] | --schedule   sweep pending entries now, or (re)create the schedule
 *   mdp status             [--config F] [--watch]
 *   mdp deploy status      [--config F] [--json]         Worker Deployment versions, what runs on each
 *   mdp deploy promote     [--config F] [BUILD]          make a version current, hand the consumers over
 *   mdp deploy ramp        [--config F] PERCENT [BUILD]  send PERCENT % to a version (0 ends the ramp)
 *   mdp deploy rollback    [--config F] [--to BUILD]     back to the previous version
 *   mdp deploy check       [--config F] [--json]         can this build's code continue the running consumers?
 *   mdp deploy unpin       [--config F] BUILD            move workflows pinned to a version without workers
 *   mdp rules check        [--config F] [FILE] [-o json]  every problem of a rules file, FILE:LINE:COLUMN: message
 *   mdp dlq ls             [--config F] [--reason R] [--since 1h] [--limit 50] [-o json|jsonl]
 *   mdp dlq show           [--config F] ID [-o json]
 *   mdp dlq redrive        [--config F] ID... | --all [--reason R] [--since T] [--dry-run] [-o json|jsonl]
 *   mdp bars export        [--config F] --symbol SYM [--provider P] --from T --to T [--interval 1s] [-o csv|jsonl]
 *   mdp bars gaps          [--config F] --symbol SYM [--provider P] --from T --to T [--interval 1s] [--min-gap 5s] [-o json]
 *   mdp migrate            [--config F]
 *
 * Exit codes: 0 ok, 1 runtime failure, 2 invalid configuration or usage.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadStreamingConfig } from '../pipeline/config/index.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { parseDurationMs } from '../pipeline/contracts/index.js';
import { parsePublishSpeed } from '../pipeline/producers/index.js';
import { createDb, migrateToLatest } from '../store/index.js';
import {
  checkProducer,
  drainPipeline,
  formatDrained,
  ProducerConfigError,
  startInference,
  startMicroBatchers,
  startProducer,
  tailTopic,
} from './stream-commands.js';
import { connectTemporal } from './temporal.js';
import { OptionError } from './option-error.js';
import { rulesCheck } from './rules-command.js';
import { dlqList, dlqRedrive, dlqShow } from './dlq-command.js';
import { barsExport, barsGaps } from './bars-command.js';
import { up } from './up-command.js';
import { down } from './down-command.js';
import { followReplay, replayInputFromFlags, startReplayWorkflow, waitForWorker } from './replay-command.js';
import { ReplayInputError } from './replay-input-error.js';
import { generateDataset, listDatasets } from './dataset-command.js';
import { backfillInputFromFlags, followBackfill, startBackfill } from './fetch-command.js';
import { BackfillInputError } from '../pipeline/producers/ibkr/index.js';
import type { IbkrBackfillWorkflowInput as IbkrBackfillInput } from '../workflows/index.js';
import { ensureRecoverySchedule, formatRecoveryReport, runRecovery } from './recover-command.js';
import { statusCommand } from './status-command.js';
import type { FileProduceCommand } from './file-produce-command.js';
import { produceFile } from './file-produce-command.js';
import { modelReloadCommand } from './model-command.js';
import {
  checkReplay,
  deployStatus,
  DeployError,
  formatDeployStatus,
  formatReplayCheck,
  formatRollout,
  promote,
  ramp,
  rollback,
  unpin,
} from './deploy-command.js';

class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}

const USAGE = `usage: mdp <command> [options]
  up                    run the live synthetic pipeline on the local stack, with progress (Ctrl-C stops the
                        worker and pauses the recovery schedule; the workflows stay for the next up)
  down                  [--timeout 60s]   stop the pipeline: pause the recovery schedule, drain the producers and
                        consumers and wait for their workflows to complete (exit 1 naming any that did not)
  stream produce        --provider synthetic [--rate EVENTS_PER_S] [--count N] [--start-ts ISO]
                        | --provider ibkr   live trades / 5 s bars of producers.ibkr from TWS or IB Gateway
  stream produce        --provider file --path FILE.jsonl|FILE.csv|- [--speed 1|10|max] [--format jsonl|csv] [--from-start]
                        publish your own events (a file, or stdin for -) from this process; invalid lines go to the
                        DLQ naming file and line; run it again to continue a file after its last published line
  stream micro-batch    [--window 2s]
  stream infer          --adapter rules|sklearn [--model PATH.onnx]
  stream tail           --topic TOPIC [--limit 50]
  stream drain          stop the producers and micro-batch workflows cleanly
  stream replay         --dataset NAME --from 2025-10-01 --to 2025-10-02 [--window 2s] [--chunk-span 15m] [--speed N]
                        [--publish-signals] [--wait-for-worker 10s]   (progress until done; Ctrl-C detaches)
                        | --follow WORKFLOW_ID to reattach
  model reload          --path models/NAME.onnx [--reference F]   validate the model, then switch the
                        inference consumers to it (a rejected model changes nothing; exit 1 with the reason)
  dataset ls            the datasets of configs/datasets.yaml
  dataset generate      NAME --date YYYY-MM-DD   write a deterministic sample day
  dataset fetch ibkr    --symbol SPY --from 2025-10-01 --to 2025-10-03 --bar 1s|5s|1m [--what TRADES|MIDPOINT]
                        [--dataset NAME] [--rth] [--chunk-seconds N]   backfill IB history into a dataset replays read (paced,
                        resumable; progress until done, Ctrl-C detaches) | --follow WORKFLOW_ID to reattach
  stream recover        [--min-idle 60s]   claim a dead consumer's pending entries for the shard owners (DLQ past
                        max_deliveries) now and print the report | --schedule: create/update the mdp-recovery schedule
  status                [--watch]   consumers (owner, heartbeat, watermark, lag, pending, model), replays, progress
  deploy status         [--json]   the Worker Deployment's versions (current, ramping, draining), workers and
                        workflows on each, and when an old version is safe to stop
  deploy promote        [BUILD]   make BUILD (default: the newest version with workers that is not current) current;
                        consumers and producers hand over to it, replays finish where they started
  deploy ramp           PERCENT [BUILD]   send PERCENT % of the workflows that follow routing to BUILD (0 ends the ramp)
  deploy rollback       [--to BUILD]   back to the version that was current before (its workers must run)
  deploy check          replay every running consumer's and producer's history against this build's workflow
                        code (run it from the new build before promoting it); exit 1 if one would fail
  deploy unpin          BUILD   move the replays and backfills pinned to BUILD (whose workers are gone) to the
                        current version; its code must continue them
  rules check           [FILE] [-o json]   check a rules file (default inference.adapters.rules.file) as the worker
                        loads it; every problem as FILE:LINE:COLUMN: message; exit 2 if any
  dlq ls                [--reason R] [--since 1h] [--limit 50] [-o json|jsonl]   the newest dead letters: id, time,
                        code, source (file:line or stream@id), symbol, deliveries, when redriven, reason
  dlq show              ID [-o json]   one dead letter, every field and its payload
  dlq redrive           ID... | --all [--reason R] [--since T]  [--dry-run] [-o json|jsonl]   re-publish the
                        original events onto their shard streams after fixing the cause; an entry is marked, never
                        deleted, and a second redrive publishes nothing; events still invalid are reported (exit 1)
  bars export           --symbol SYM [--provider P] --from T --to T [--interval 1s] [-o csv|jsonl]   stored bars in
                        ts order to stdout (CSV with a header by default), streamed from the database
  bars gaps             --symbol SYM [--provider P] --from T --to T [--interval 1s] [--min-gap 5s] [-o json]
                        runs of windows without a bar (feed down, pipeline stopped), FROM → TO (duration, N missing)
  migrate               apply database migrations
every command takes --config FILE (default configs/streaming.yaml)`;

const out = (text: string) => process.stdout.write(text);

/** Like `out`, but waits while stdout's buffer is full, so a long export into a slow pipe stays small in memory. */
const outPaced = async (text: string): Promise<void> => {
  if (!process.stdout.write(text)) await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
};

// `mdp bars export … | head`: the reader went away, which is not a failure.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

function intOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a positive number (got "${value}")`);
  return n;
}

async function withTemporal<T>(config: StreamingConfig, fn: (client: Awaited<ReturnType<typeof connectTemporal>>['client']) => Promise<T>): Promise<T> {
  const temporal = await connectTemporal(config);
  try {
    return await fn(temporal.client);
  } finally {
    await temporal.close();
  }
}

/** The options of `stream produce --provider file`, checked. */
function fileProduceCommand(values: { path?: string; speed?: string; format?: string; 'from-start'?: boolean }): FileProduceCommand {
  if (!values.path) throw new UsageError('--provider file needs --path FILE.jsonl|FILE.csv (or --path - for stdin)');
  const speed = parsePublishSpeed(values.speed ?? 'max');
  if (speed === undefined) throw new UsageError(`--speed must be a positive number (1 = the recorded pace) or "max" (got "${values.speed}")`);
  const format = values.format;
  if (format !== undefined && format !== 'jsonl' && format !== 'csv') throw new UsageError(`--format must be "jsonl" or "csv" (got "${format}")`);
  return { path: values.path, speed, ...(format ? { format } : {}), fromStart: values['from-start'] === true, stdin: process.stdin, write: out };
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', default: process.env.MDP_CONFIG ?? 'configs/streaming.yaml' },
      provider: { type: 'string' },
      rate: { type: 'string' },
      count: { type: 'string' },
      'start-ts': { type: 'string' },
      window: { type: 'string' },
      adapter: { type: 'string' },
      model: { type: 'string' },
      topic: { type: 'string' },
      limit: { type: 'string' },
      watch: { type: 'boolean', default: false },
      dataset: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      'chunk-span': { type: 'string' },
      'publish-signals': { type: 'boolean', default: false },
      'wait-for-worker': { type: 'string' },
      speed: { type: 'string' },
      follow: { type: 'string' },
      date: { type: 'string' },
      schedule: { type: 'boolean', default: false },
      'min-idle': { type: 'string' },
      path: { type: 'string' },
      reference: { type: 'string' },
      format: { type: 'string' },
      'from-start': { type: 'boolean', default: false },
      symbol: { type: 'string' },
      bar: { type: 'string' },
      what: { type: 'string' },
      rth: { type: 'boolean', default: false },
      'chunk-seconds': { type: 'string' },
      json: { type: 'boolean', default: false },
      output: { type: 'string', short: 'o' },
      reason: { type: 'string' },
      since: { type: 'string' },
      all: { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      interval: { type: 'string' },
      'min-gap': { type: 'string' },
      session: { type: 'string' },
      timeout: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  // `dataset generate NAME` / `dataset fetch PROVIDER`: a positional after the verb.
  // `deploy promote BUILD`, `deploy ramp PERCENT BUILD`: arguments after the verb.
  const command =
    (positionals[0] === 'dataset' && (positionals[1] === 'generate' || positionals[1] === 'fetch')) ||
    ['deploy', 'rules', 'dlq', 'bars'].includes(positionals[0] ?? '')
      ? positionals.slice(0, 2).join(' ')
      : positionals.join(' ');
  const commandArgs = positionals.slice(2);
  if (values.help || command === '') {
    out(USAGE + '\n');
    return values.help ? 0 : 2;
  }
  const config = loadStreamingConfig({ file: values.config, env: process.env });

  switch (command) {
    case 'up':
      return up(config, {
        configFile: values.config,
        logFile: process.env.MDP_WORKER_LOG ?? '.data/logs/worker.log',
        uiBase: process.env.MDP_TEMPORAL_UI ?? `http://127.0.0.1:${process.env.MDP_TEMPORAL_UI_PORT ?? '8233'}`,
        write: out,
      });
    case 'down': {
      const timeoutMs = parseDurationMs(values.timeout ?? '60s');
      if (timeoutMs === undefined || timeoutMs <= 0) throw new UsageError(`--timeout must be a duration such as 60s (got "${values.timeout}")`);
      const result = await withTemporal(config, (client) => down(client, config, { timeoutMs, write: out }));
      if (result.notStopped.length === 0) return 0;
      console.error(`mdp: did not stop within ${values.timeout ?? '60s'}: ${result.notStopped.join(', ')}`);
      return 1;
    }
    case 'stream produce': {
      if (values.provider === 'file') return produceFile(config, fileProduceCommand(values));
      const provider = values.provider;
      if (provider !== 'synthetic' && provider !== 'ibkr')
        throw new UsageError(`--provider must be "synthetic", "ibkr" or "file" (got ${JSON.stringify(provider)})`);
      if (provider === 'ibkr' && (values.rate !== undefined || values.count !== undefined || values['start-ts'] !== undefined)) {
        throw new UsageError('--rate, --count and --start-ts are for --provider synthetic; the IBKR feed is what TWS sends');
      }
      // A config that cannot work is reported before anything connects.
      try {
        checkProducer(config, provider);
      } catch (e) {
        if (e instanceof ProducerConfigError) throw new UsageError(`invalid configuration: ${e.message}`);
        throw e;
      }
      const started = await withTemporal(config, (client) =>
        startProducer(
          client,
          config,
          provider === 'ibkr'
            ? { provider }
            : { provider, rate: intOption('rate', values.rate), count: intOption('count', values.count), startTs: values['start-ts'] },
        ),
      );
      for (const warning of started.warnings) process.stderr.write(`warning: ${warning}\n`);
      out(
        `${started.workflowId}: ${started.started ? 'started' : 'already running (kept; drain it to change its input)'}${
          provider === 'ibkr'
            ? ` (TWS ${config.producers.ibkr.host}:${config.producers.ibkr.port}, client id ${config.producers.ibkr.client_id}; mdp status shows its feed)`
            : ''
        }\n`,
      );
      return 0;
    }
    case 'stream micro-batch': {
      let windowMs: number | undefined;
      if (values.window !== undefined) {
        windowMs = parseDurationMs(values.window);
        if (windowMs === undefined || windowMs < 500 || windowMs > 5000) {
          throw new UsageError(`--window must be a duration between 500ms and 5s, e.g. 2s (got "${values.window}")`);
        }
      }
      const started = await withTemporal(config, (client) => startMicroBatchers(client, config, windowMs));
      for (const s of started) out(`${s.workflowId}: ${s.started ? 'started' : 'already running (kept; drain it to change its input)'}\n`);
      return 0;
    }
    case 'stream infer': {
      const adapter = values.adapter;
      if (adapter !== 'rules' && adapter !== 'sklearn') throw new UsageError(`--adapter must be "rules" or "sklearn" (got ${JSON.stringify(adapter)})`);
      const started = await withTemporal(config, (client) => startInference(client, config, adapter, values.model));
      for (const s of started) out(`${s.workflowId}: ${s.started ? `started (${adapter})` : 'already running (kept; drain it to change its adapter)'}\n`);
      return 0;
    }
    case 'stream tail': {
      if (!values.topic) throw new UsageError('--topic is required, e.g. --topic mdp.events');
      await tailTopic(config, values.topic, intOption('limit', values.limit ?? '50') ?? 50, (line) => out(line + '\n'));
      return 0;
    }
    case 'stream drain': {
      const drained = await withTemporal(config, (client) => drainPipeline(client, config));
      for (const d of drained) out(formatDrained(d) + '\n');
      return 0;
    }
    case 'stream replay': {
      // Every option is checked before anything connects: a bad one starts nothing (exit 2).
      const replay = values.follow === undefined ? replayInputFromFlags(config, values) : undefined;
      const controller = new AbortController();
      const detach = () => controller.abort();
      process.once('SIGINT', detach);
      try {
        return await withTemporal(config, async (client) => {
          let workflowId = values.follow ?? '';
          if (replay !== undefined) {
            await waitForWorker(client, config, replay.waitForWorkerMs);
            const started = await startReplayWorkflow(client, config, replay);
            workflowId = started.workflowId;
            out(`${workflowId}: ${started.started ? 'started' : 'already running (following it)'}\n`);
          }
          const outcome = await followReplay(client, workflowId, out, { signal: controller.signal, tty: process.stdout.isTTY === true });
          if (outcome === 'detached') out(`detached; the replay keeps running. Reattach: mdp stream replay --follow ${workflowId}\n`);
          return outcome === 'failed' ? 1 : 0;
        });
      } finally {
        process.removeListener('SIGINT', detach);
      }
    }
    case 'model reload': {
      if (!values.path) throw new UsageError('model reload needs --path models/NAME.onnx');
      const modelPath = values.path;
      return withTemporal(config, (client) =>
        modelReloadCommand(client, config, {
          modelPath,
          ...(values.reference ? { referencePath: values.reference } : {}),
          output: values.json ? 'json' : 'text',
          write: out,
          writeError: (text) => process.stderr.write(text),
        }),
      );
    }
    case 'dataset ls':
      await listDatasets(config, (line) => out(line + '\n'));
      return 0;
    case 'dataset generate': {
      const name = positionals[2];
      if (!name || !values.date) throw new UsageError('dataset generate needs a dataset name and --date YYYY-MM-DD');
      const written = await generateDataset(config, name, values.date);
      out(`${written.file}: ${written.events} events\n`);
      return 0;
    }
    case 'dataset fetch': {
      const source = positionals[2];
      if (source !== 'ibkr' || positionals.length > 3)
        throw new UsageError(`dataset fetch takes one source, ibkr (got ${JSON.stringify(positionals.slice(2).join(' ') || undefined)})`);
      let input: IbkrBackfillInput | undefined;
      if (values.follow === undefined) {
        try {
          input = backfillInputFromFlags({ ...values });
        } catch (err) {
          if (err instanceof BackfillInputError) throw new UsageError(err.message);
          throw err;
        }
      }
      const controller = new AbortController();
      const detach = () => controller.abort();
      process.once('SIGINT', detach);
      try {
        return await withTemporal(config, async (client) => {
          let workflowId = values.follow;
          if (input !== undefined) {
            const started = await startBackfill(client, config, input);
            workflowId = started.workflowId;
            out(`${workflowId}: ${started.started ? 'started' : 'already running (following it)'}\n`);
          }
          const outcome = await followBackfill(client, workflowId!, out, { signal: controller.signal, tty: process.stdout.isTTY === true });
          if (outcome === 'detached') out(`detached; the backfill keeps running. Reattach: mdp dataset fetch ibkr --follow ${workflowId}\n`);
          return outcome === 'failed' ? 1 : 0;
        });
      } finally {
        process.removeListener('SIGINT', detach);
      }
    }
    case 'status':
      return statusCommand(config, { watch: values.watch, write: out, tty: process.stdout.isTTY === true, output: values.json ? 'json' : 'text' });
    case 'stream recover': {
      if (values.schedule) {
        const schedule = await withTemporal(config, (client) => ensureRecoverySchedule(client, config));
        out(
          `${schedule.scheduleId}: ${schedule.created ? 'created' : 'updated'}, every ${config.recovery.interval}${schedule.nextRunAt ? `, next run ${schedule.nextRunAt.toISOString()}` : ''}\n`,
        );
        return 0;
      }
      let minIdleMs: number | undefined;
      if (values['min-idle'] !== undefined) {
        minIdleMs = parseDurationMs(values['min-idle']);
        if (minIdleMs === undefined) throw new UsageError(`--min-idle must be a duration such as 30s or 0 (got "${values['min-idle']}")`);
      }
      const { workflowId, result } = await withTemporal(config, (client) => runRecovery(client, config, minIdleMs === undefined ? {} : { minIdleMs }));
      out(`${workflowId}:\n`);
      for (const line of formatRecoveryReport(result)) out(line + '\n');
      return 0;
    }
    case 'deploy status': {
      const status = await withTemporal(config, (client) => deployStatus(client, config));
      out(values.json ? JSON.stringify(status) + '\n' : formatDeployStatus(status).join('\n') + '\n');
      return 0;
    }
    case 'deploy check': {
      const checks = await withTemporal(config, (client) => checkReplay(client, config));
      out(values.json ? JSON.stringify(checks) + '\n' : formatReplayCheck(checks).join('\n') + '\n');
      return checks.some((c) => c.error !== undefined) ? 1 : 0;
    }
    case 'deploy unpin': {
      const buildId = commandArgs[0];
      if (buildId === undefined) throw new UsageError('deploy unpin needs the BUILD whose pinned workflows to move (see mdp deploy status)');
      const moved = await withTemporal(config, (client) => unpin(client, config, buildId));
      if (values.json) out(JSON.stringify(moved) + '\n');
      else {
        for (const m of moved) out(`  ${m.workflowId} (${m.type}): runs on the current version from its next task\n`);
        out(`${moved.length} workflow${moved.length === 1 ? '' : 's'} moved off ${buildId}\n`);
      }
      return 0;
    }
    case 'deploy promote':
    case 'deploy ramp':
    case 'deploy rollback': {
      const verb = positionals[1];
      const result = await withTemporal(config, async (client) => {
        if (verb === 'promote') return promote(client, config, commandArgs[0]);
        if (verb === 'rollback') return rollback(client, config, values.to);
        const percentage = Number(commandArgs[0]);
        if (commandArgs[0] === undefined || !Number.isInteger(percentage) || percentage < 0 || percentage > 100)
          throw new UsageError(`deploy ramp needs a whole PERCENT from 0 to 100 (got ${commandArgs[0] === undefined ? 'nothing' : `"${commandArgs[0]}"`})`);
        return ramp(client, config, percentage, commandArgs[1]);
      });
      out(values.json ? JSON.stringify(result) + '\n' : formatRollout(result).join('\n') + '\n');
      return verb !== 'ramp' && result.handOvers.some((h) => !h.moved) ? 1 : 0;
    }
    case 'migrate': {
      const db = createDb(config.store.url);
      try {
        const applied = await migrateToLatest(db);
        out(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
      } finally {
        await db.destroy();
      }
      return 0;
    }
    case 'bars export':
    case 'bars gaps': {
      if (commandArgs.length > 0) throw new UsageError(`${command} takes no arguments (got "${commandArgs.join(' ')}")`);
      const options = {
        symbol: values.symbol,
        provider: values.provider,
        from: values.from,
        to: values.to,
        interval: values.interval,
        output: values.output,
        minGap: values['min-gap'],
      };
      if (command === 'bars export' && options.minGap !== undefined) throw new UsageError('--min-gap is an option of bars gaps');
      return command === 'bars export' ? barsExport(config, options, outPaced) : barsGaps(config, options, outPaced);
    }
    case 'dlq ls':
    case 'dlq show':
    case 'dlq redrive': {
      const options = {
        ids: commandArgs,
        all: values.all,
        reason: values.reason,
        since: values.since,
        limit: values.limit,
        dryRun: values['dry-run'],
        output: values.output,
      };
      const verb = positionals[1];
      if (verb === 'ls' && commandArgs.length > 0) throw new UsageError(`dlq ls takes no arguments (got "${commandArgs.join(' ')}"); see dlq show ID`);
      if (verb !== 'redrive' && (values.all || values['dry-run'])) throw new UsageError('--all and --dry-run are options of dlq redrive');
      if (verb === 'ls') return dlqList(config, options, out);
      if (verb === 'show') return dlqShow(config, options, out);
      return dlqRedrive(config, options, out);
    }
    case 'rules check':
      if (commandArgs.length > 1) throw new UsageError(`rules check takes one FILE (got ${commandArgs.length})`);
      return rulesCheck(config, { file: commandArgs[0], output: values.output }, out);
    default:
      throw new UsageError(`unknown command "${command}"\n${USAGE}`);
  }
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) {
      console.error(`mdp: invalid configuration: ${err.message}`);
      process.exit(2);
    }
    if (err instanceof DeployError) {
      console.error(`mdp deploy: ${err.message}`);
      process.exit(1);
    }
    if (
      err instanceof UsageError ||
      err instanceof OptionError ||
      err instanceof ReplayInputError ||
      (err as { code?: string } | undefined)?.code?.startsWith('ERR_PARSE_ARGS')
    ) {
      console.error(`mdp: ${(err as Error).message}`);
      process.exit(2);
    }
    console.error(`mdp: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
