import { Option } from 'commander';
import type { Command } from 'commander';
import type { PublishSpeed } from '../../pipeline/producers/index.js';
import { UsageError } from '../usage-error.js';
import { configOf, out, withTemporal } from './command-context.js';
import { duration, positiveInt, positiveNumber, publishSpeed, replayBound, timestamp } from './option-parsers.js';
import { addOutputOptions, outputFormat, printJson } from './output-option.js';

const started = (s: { started: boolean }, what = 'its input') => (s.started ? 'started' : `already running (kept; drain it to change ${what})`);

/** Runs `fn` until it settles, with Ctrl-C aborting the signal it gets (a detach or a stop, not a kill). */
async function untilSigint<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  try {
    return await fn(controller.signal);
  } finally {
    process.removeListener('SIGINT', stop);
  }
}

/** `mdp stream …`: producers, consumers, replays, tail, drain and recovery. */
export function registerStreamCommands(program: Command): void {
  const stream = program.command('stream').summary('produce, consume, replay and inspect the event streams');

  stream
    .command('produce')
    .summary('start a producer, or publish your own events from a file')
    .description(
      'synthetic: start (or find running) producerWorkflow: live ticks at tick_rate, --rate events/s for load, or --count events from --start-ts. ' +
        'ibkr: start (or find running) the Interactive Brokers live feed of producers.ibkr. ' +
        'file: publish a JSONL or CSV file (or stdin for -) from this process; invalid lines go to the DLQ naming file and line; ' +
        '      run it again to continue a file after its last published line. Exit 130 after Ctrl-C.',
    )
    .addOption(new Option('--provider <name>', 'where the events come from').choices(['synthetic', 'ibkr', 'file']).makeOptionMandatory())
    .addOption(new Option('--rate <events-per-s>', 'synthetic: publish this many events per second').argParser(positiveNumber('--rate')))
    .addOption(new Option('--count <n>', 'synthetic: publish N events, then stop').argParser(positiveInt('--count')))
    .addOption(new Option('--start-ts <iso>', 'synthetic with --count: event time of the first event').argParser(timestamp('--start-ts')))
    .option('--path <file>', 'file: FILE.jsonl, FILE.csv, or - for stdin')
    .addOption(
      new Option('--speed <n|max>', 'file: 1 = the recorded pace, 10 = ten times faster, max = as fast as the consumers take it')
        .default('max')
        .argParser(publishSpeed('--speed')),
    )
    .addOption(new Option('--format <format>', 'file: the format (default: from the extension, else the first line)').choices(['jsonl', 'csv']))
    .option('--from-start', 'file: read from line 1 even if an earlier run published part of it', false)
    .addHelpText(
      'after',
      '\nExamples:\n  mdp stream produce --provider synthetic --rate 1000\n  mdp stream produce --provider file --path ticks.csv --speed 10\n  my-feed | mdp stream produce --provider file --path -\n  mdp stream produce --provider ibkr',
    )
    .action(async (o: ProduceOptions, command: Command) => {
      const { checkProducer, startProducer } = await import('../stream-commands.js');
      const speedGiven = command.getOptionValueSource('speed') !== 'default';
      if (o.provider !== 'file' && (o.path !== undefined || o.format !== undefined || o.fromStart || speedGiven))
        throw new UsageError('--path, --speed, --format and --from-start are for --provider file');
      if (o.provider === 'file') {
        if (o.rate !== undefined || o.count !== undefined || o.startTs !== undefined)
          throw new UsageError('--rate, --count and --start-ts are for --provider synthetic');
        if (!o.path) throw new UsageError('--provider file needs --path FILE.jsonl|FILE.csv (or --path - for stdin)');
        const { produceFile } = await import('../file-produce-command.js');
        const config = await configOf(command);
        process.exitCode = await produceFile(config, {
          path: o.path,
          speed: o.speed,
          ...(o.format ? { format: o.format } : {}),
          fromStart: o.fromStart,
          stdin: process.stdin,
          write: out,
        });
        return;
      }
      const provider = o.provider;
      if (provider === 'ibkr' && (o.rate !== undefined || o.count !== undefined || o.startTs !== undefined)) {
        throw new UsageError('--rate, --count and --start-ts are for --provider synthetic; the IBKR feed is what TWS sends');
      }
      const config = await configOf(command);
      // A config that cannot work is reported before anything connects (ProducerConfigError: exit 2).
      checkProducer(config, provider);
      const result = await withTemporal(config, (client) =>
        startProducer(client, config, provider === 'ibkr' ? { provider } : { provider, rate: o.rate, count: o.count, startTs: o.startTs }),
      );
      for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
      const ib = config.producers.ibkr;
      out(
        `${result.workflowId}: ${started(result)}${provider === 'ibkr' ? ` (TWS ${ib.host}:${ib.port}, client id ${ib.client_id}; mdp status shows its feed)` : ''}\n`,
      );
    });

  stream
    .command('micro-batch')
    .summary('start (or find running) one micro-batch consumer per shard')
    .addOption(
      new Option('--window <duration>', 'event-time window, 500ms to 5s (default: micro_batch.window_ms)').argParser(
        duration('--window', { min: 500, max: 5000, example: '2s' }),
      ),
    )
    .addHelpText('after', '\nExamples:\n  mdp stream micro-batch\n  mdp stream micro-batch --window 2s')
    .action(async (o: { window?: number }, command: Command) => {
      const { startMicroBatchers } = await import('../stream-commands.js');
      const config = await configOf(command);
      for (const s of await withTemporal(config, (client) => startMicroBatchers(client, config, o.window))) out(`${s.workflowId}: ${started(s)}\n`);
    });

  stream
    .command('infer')
    .summary('start (or find running) one inference consumer per shard of the features stream')
    .addOption(new Option('--adapter <adapter>', 'rules (configs/rules.yaml) or sklearn (an ONNX model)').choices(['rules', 'sklearn']).makeOptionMandatory())
    .option('--model <path>', 'sklearn: the ONNX model (as the workers see it)')
    .addHelpText('after', '\nExamples:\n  mdp stream infer --adapter rules\n  mdp stream infer --adapter sklearn --model models/momentum.onnx')
    .action(async (o: { adapter: 'rules' | 'sklearn'; model?: string }, command: Command) => {
      const { startInference } = await import('../stream-commands.js');
      const config = await configOf(command);
      for (const s of await withTemporal(config, (client) => startInference(client, config, o.adapter, o.model)))
        out(`${s.workflowId}: ${s.started ? `started (${o.adapter})` : 'already running (kept; drain it to change its adapter)'}\n`);
    });

  addOutputOptions(
    stream
      .command('tail')
      .summary('the newest entries of a topic, shards merged; --follow for new ones')
      .description(
        'The newest entries of a topic, oldest first, one line each in aligned columns; the shards of a sharded topic ' +
          '(the events, the features) merged in order. --symbol and --since look through the newest ' +
          '10000 entries of each shard. With --follow, then every new entry until Ctrl-C (exit 0).',
      )
      .requiredOption(
        '--topic <topic>',
        'the stream: mdp.events, mdp.features, mdp.signals, mdp.dlq, mdp.events.late (as configured), or one shard, e.g. mdp.events.2',
      )
      .addOption(new Option('-n, --limit <n>', 'how many entries').default(50).argParser(positiveInt('--limit')))
      .option('-f, --follow', 'keep printing new entries until Ctrl-C', false)
      .option('--symbol <symbol>', 'only entries of this symbol')
      .addOption(new Option('--since <duration>', 'only entries newer than this, e.g. 5m').argParser(duration('--since', { example: '5m' }))),
    ['text', 'json', 'jsonl'],
  )
    .addHelpText(
      'after',
      '\nExamples:\n  mdp stream tail --topic mdp.events --limit 20\n  mdp stream tail --topic mdp.signals --symbol SPY --since 5m\n  mdp stream tail --topic mdp.features -f -o jsonl | jq .payload.values.rsi',
    )
    .action(async (o: TailFlags, command: Command) => {
      const [{ tailTopic }, { withBus }] = await Promise.all([import('../tail-command.js'), import('../cli-bus.js')]);
      const format = outputFormat(o) as 'text' | 'json' | 'jsonl'; // tail's -o choices (commander checked them)
      if (o.follow && format === 'json')
        throw new UsageError('--follow prints entries as they come: use -o jsonl (one JSON object per line) instead of -o json');
      const config = await configOf(command);
      await untilSigint((signal) =>
        withBus(config, (bus) =>
          tailTopic(bus, config, {
            topic: o.topic,
            limit: o.limit,
            ...(o.symbol !== undefined ? { symbol: o.symbol } : {}),
            ...(o.since !== undefined ? { sinceMs: Date.now() - o.since } : {}),
            follow: o.follow,
            format,
            signal,
            write: out,
          }),
        ),
      );
    });

  stream
    .command('drain')
    .summary('signal the producers and every consumer to stop after their current step')
    .addHelpText('after', '\nExample:\n  mdp stream drain')
    .action(async (_o: object, command: Command) => {
      const { drainPipeline, formatDrained } = await import('../stream-commands.js');
      const config = await configOf(command);
      for (const d of await withTemporal(config, (client) => drainPipeline(client, config))) out(formatDrained(d) + '\n');
    });

  addOutputOptions(
    stream
      .command('replay')
      .summary('replay a dataset into bars, with a progress bar; --follow reattaches')
      .description(
        'Start replayWorkflow over [--from, --to) of a dataset (mdp dataset ls) and show a progress bar with rate and ETA ' +
          'until it is done; Ctrl-C detaches (the replay keeps running), --follow WORKFLOW_ID reattaches. Exit 1 if it failed. ' +
          'With -o json, the progress goes to stderr and stdout gets the final result.',
      )
      .option('--dataset <name>', 'the dataset (see mdp dataset ls)')
      .addOption(new Option('--from <date>', 'start of the range: a date (UTC midnight) or an ISO timestamp').argParser(replayBound('--from')))
      .addOption(new Option('--to <date>', 'end of the range (excluded)').argParser(replayBound('--to')))
      .addOption(new Option('--chunk-span <duration>', 'event time per chunk (default: replay.chunk_span)').argParser(validDurationText('--chunk-span', '15m')))
      .addOption(new Option('--speed <n>', 'pace relative to event time (default: as fast as possible)').argParser(positiveNumber('--speed')))
      .option('--window <duration>', 'bar window of the replay, 500ms to 5s (default: micro_batch.window_ms); its own bars and signals')
      .option('--publish-signals', "also publish the replay's signals into the live signals stream (marked source replay:<id>)", false)
      .option('--wait-for-worker <duration>', 'how long to wait for a worker polling the task queue before giving up (exit 1, nothing started)', '10s')
      .option('--follow <workflow-id>', 'reattach to a running (or finished) replay instead of starting one'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  mdp stream replay --dataset spy_1day_history --from 2025-10-01 --to 2025-10-02\n  mdp stream replay --follow mdp-replay-spy_1day_history-2025-10-01-2025-10-02\n  mdp stream replay --dataset spy_1day_history --from 2025-10-01 --to 2025-10-02 --json > result.json',
    )
    .action(async (o: ReplayFlags, command: Command) => {
      const [{ followReplay, replayInputFromFlags, startReplayWorkflow, waitForWorker }, { replayResult }] = await Promise.all([
        import('../replay-command.js'),
        import('../replay-result.js'),
      ]);
      const json = outputFormat(o) === 'json';
      if (o.follow === undefined && (!o.dataset || !o.from || !o.to))
        throw new UsageError('stream replay needs --dataset NAME --from DATE --to DATE (or --follow WORKFLOW_ID)');
      const config = await configOf(command);
      // Every option is checked before anything connects: a bad one starts nothing (exit 2).
      const replay =
        o.follow === undefined
          ? replayInputFromFlags(config, {
              dataset: o.dataset,
              from: o.from,
              to: o.to,
              ...(o.chunkSpan !== undefined ? { 'chunk-span': o.chunkSpan } : {}),
              ...(o.speed !== undefined ? { speed: String(o.speed) } : {}),
              ...(o.window !== undefined ? { window: o.window } : {}),
              'publish-signals': o.publishSignals === true,
              'wait-for-worker': o.waitForWorker,
            })
          : undefined;
      // With JSON asked for, stdout carries the result only.
      const progress = json ? (text: string) => void process.stderr.write(text) : out;
      process.exitCode = await untilSigint((signal) =>
        withTemporal(config, async (client) => {
          let workflowId = o.follow ?? '';
          if (replay !== undefined) {
            await waitForWorker(client, config, replay.waitForWorkerMs);
            const start = await startReplayWorkflow(client, config, replay);
            workflowId = start.workflowId;
            progress(`${workflowId}: ${start.started ? 'started' : 'already running (following it)'}\n`);
          }
          const outcome = await followReplay(client, workflowId, progress, { signal, tty: (json ? process.stderr : process.stdout).isTTY === true });
          if (outcome === 'detached') progress(`detached; the replay keeps running. Reattach: mdp stream replay --follow ${workflowId}\n`);
          if (json) printJson(await replayResult(client, workflowId, outcome));
          return outcome === 'failed' ? 1 : 0;
        }),
      );
    });

  addOutputOptions(
    stream
      .command('recover')
      .summary('sweep pending entries of dead consumers now, or (re)create the recovery schedule')
      .description(
        "Run consumerRecoveryWorkflow once and print what it did: claim a dead consumer's pending entries for the shard " +
          'owners (DLQ past max_deliveries). --schedule creates or updates the mdp-recovery Temporal Schedule instead (its paused state is kept).',
      )
      .addOption(
        new Option('--min-idle <duration>', 'claim entries idle at least this long, e.g. 30s or 0').argParser(duration('--min-idle', { example: '30s' })),
      )
      .option('--schedule', 'create or update the mdp-recovery schedule instead of sweeping now', false),
  )
    .addHelpText('after', '\nExamples:\n  mdp stream recover\n  mdp stream recover --min-idle 0 --json\n  mdp stream recover --schedule')
    .action(async (o: { minIdle?: number; schedule: boolean; output?: string; json?: boolean }, command: Command) => {
      const { ensureRecoverySchedule, formatRecoveryReport, runRecovery } = await import('../recover-command.js');
      const json = outputFormat(o) === 'json';
      if (o.schedule && o.minIdle !== undefined) throw new UsageError('--min-idle is for a sweep now; the schedule sweeps with recovery.min_idle');
      const config = await configOf(command);
      if (o.schedule) {
        const schedule = await withTemporal(config, (client) => ensureRecoverySchedule(client, config));
        if (json) printJson({ ...schedule, interval: config.recovery.interval });
        else
          out(
            `${schedule.scheduleId}: ${schedule.created ? 'created' : 'updated'}, every ${config.recovery.interval}${schedule.nextRunAt ? `, next run ${schedule.nextRunAt.toISOString()}` : ''}\n`,
          );
        return;
      }
      const { workflowId, result } = await withTemporal(config, (client) =>
        runRecovery(client, config, o.minIdle === undefined ? {} : { minIdleMs: o.minIdle }),
      );
      if (json) {
        printJson({ workflowId, ...result });
        return;
      }
      out(`${workflowId}:\n`);
      for (const line of formatRecoveryReport(result)) out(line + '\n');
    });
}

interface ProduceOptions {
  provider: 'synthetic' | 'ibkr' | 'file';
  rate?: number;
  count?: number;
  startTs?: string;
  path?: string;
  speed: PublishSpeed;
  format?: 'jsonl' | 'csv';
  fromStart: boolean;
}

interface TailFlags {
  topic: string;
  limit: number;
  follow: boolean;
  symbol?: string;
  since?: number;
  output?: string;
  json?: boolean;
}

interface ReplayFlags {
  dataset?: string;
  from?: string;
  to?: string;
  chunkSpan?: string;
  speed?: number;
  window?: string;
  publishSignals?: boolean;
  waitForWorker?: string;
  follow?: string;
  output?: string;
  json?: boolean;
}

/** A duration option passed on as written (the workflow parses it): checked here, kept as text. */
function validDurationText(name: string, example: string): (value: string) => string {
  const check = duration(name, { min: 1, example });
  return (value) => {
    check(value);
    return value;
  };
}
