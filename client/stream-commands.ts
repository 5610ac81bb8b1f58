import { busNames } from '../pipeline/config/index.js';
import type { Client } from '@temporalio/client';
import { isGrpcDeadlineError, WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import type { ProducerInput } from '../activities/types.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { planIbkrFeed, refusedLinesMessage } from '../pipeline/producers/ibkr/index.js';
import type { LoopStatus, ProducerWorkflowInput, StreamConsumerInput } from '../workflows/index.js';
import { drainSignal, inferenceWorkflowId, microBatchWorkflowId, producerWorkflowId } from '../workflows/index.js';
import type { Legibility } from './workflow-summaries.js';
import { consumerLegibility, legibleStart, producerLegibility } from './workflow-summaries.js';
import { ProducerConfigError } from './producer-config-error.js';

export interface StartedWorkflow {
  readonly workflowId: string;
  /** False when a workflow with that id was already running (single owner: it was kept). */
  readonly started: boolean;
}

/** Starts the workflow, or finds the one already running under the same id (single owner). */
async function startOrFind(
  client: Client,
  config: StreamingConfig,
  type: string,
  workflowId: string,
  input: object,
  legible: Legibility,
): Promise<StartedWorkflow> {
  try {
    const { status } = await client.workflow.getHandle(workflowId).describe();
    if (status.name === 'RUNNING') return { workflowId, started: false };
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
  // A start racing another start still yields one owner: the server keeps the running execution.
  await client.workflow.start(type, {
    taskQueue: config.temporal.task_queue,
    workflowId,
    args: [input],
    workflowIdConflictPolicy: 'USE_EXISTING',
    ...(await legibleStart(client, legible, { input })),
  });
  return { workflowId, started: true };
}

export { ProducerConfigError };

/** The producer workflow id of a kind of producer (`synthetic`, `ibkr`): named after its configured provider. */
export function producerWorkflowIdOf(config: StreamingConfig, kind: 'synthetic' | 'ibkr'): string {
  return producerWorkflowId(kind === 'ibkr' ? config.producers.ibkr.provider : config.producers.synthetic.provider);
}

/**
 * Whether the config lets a producer start: throws {@link ProducerConfigError} naming the keys,
 * or returns warnings (IBKR: the contracts beyond the market data line budget).
 */
export function checkProducer(config: StreamingConfig, provider: string): string[] {
  if (provider === 'synthetic') return [];
  if (provider !== 'ibkr') throw new ProducerConfigError(`unknown provider "${provider}" (available: synthetic, ibkr)`);
  const plan = planIbkrFeed(config.producers.ibkr, config.micro_batch);
  if (plan.errors.length > 0) throw new ProducerConfigError(plan.errors.join('\n'));
  if (config.producers.ibkr.provider === config.producers.synthetic.provider) {
    throw new ProducerConfigError(
      `producers.ibkr.provider and producers.synthetic.provider are both "${config.producers.ibkr.provider}": their events and workflows would mix`,
    );
  }
  const refused = refusedLinesMessage(plan, config.producers.ibkr.market_data_lines);
  return refused ? [refused] : [];
}

/**
 * `mdp stream produce --provider synthetic [--rate N] [--count N] [--start-ts ISO]` or
 * `--provider ibkr`, after {@link checkProducer} (its warnings are returned).
 */
export async function startProducer(client: Client, config: StreamingConfig, input: ProducerInput): Promise<StartedWorkflow & { warnings: string[] }> {
  const provider = input.provider ?? 'synthetic';
  const warnings = checkProducer(config, provider);
  const workflowInput: ProducerWorkflowInput = { ...input, provider };
  const legible = producerLegibility(config, workflowInput);
  return { ...(await startOrFind(client, config, 'producerWorkflow', producerWorkflowIdOf(config, provider), workflowInput, legible)), warnings };
}

/**
 * Starts (or finds running) the owner of one shard: its id from the role, stream and shard, its
 * search attributes and summary from {@link consumerLegibility}.
 */
export function startConsumer(client: Client, config: StreamingConfig, input: StreamConsumerInput): Promise<StartedWorkflow> {
  const names = busNames(config);
  const workflowId =
    input.role === 'inference'
      ? inferenceWorkflowId(input.stream ?? names.features_stream, input.shard)
      : microBatchWorkflowId(input.stream ?? names.stream, input.shard);
  return startOrFind(client, config, 'streamConsumerWorkflow', workflowId, input, consumerLegibility(config, input));
}

/** `mdp stream micro-batch --window 2s`: one consumer workflow per shard. */
export async function startMicroBatchers(client: Client, config: StreamingConfig, windowMs: number | undefined): Promise<StartedWorkflow[]> {
  const started: StartedWorkflow[] = [];
  for (let shard = 0; shard < config.bus.shards; shard++) {
    started.push(await startConsumer(client, config, { role: 'microbatch', shard, ...(windowMs !== undefined ? { windowMs } : {}) }));
  }
  return started;
}

/**
 * `mdp stream infer --adapter rules|sklearn`: one inference consumer workflow per shard of the
 * features stream. One adapter per shard owner: starting another adapter while one runs keeps the
 * running one (drain first to switch).
 */
export async function startInference(client: Client, config: StreamingConfig, adapter: 'rules' | 'sklearn', modelPath?: string): Promise<StartedWorkflow[]> {
  const started: StartedWorkflow[] = [];
  for (let shard = 0; shard < config.bus.shards; shard++) {
    started.push(await startConsumer(client, config, { role: 'inference', shard, adapter, ...(modelPath ? { modelPath } : {}) }));
  }
  return started;
}

/** Workflow ids of the live pipeline (the producers, every shard's micro-batcher and inference consumer). */
export function pipelineWorkflowIds(config: StreamingConfig): string[] {
  const ids = [producerWorkflowIdOf(config, 'synthetic'), producerWorkflowIdOf(config, 'ibkr')];
  for (let shard = 0; shard < config.bus.shards; shard++) ids.push(microBatchWorkflowId(busNames(config).stream, shard));
  for (let shard = 0; shard < config.bus.shards; shard++) ids.push(inferenceWorkflowId(busNames(config).features_stream, shard));
  return ids;
}

/** What a drain did to one pipeline workflow. */
export interface DrainedWorkflow {
  readonly workflowId: string;
  /**
   * Its final status once drained; `not running` when it was not; `still running` when it had not
   * stopped by the deadline (no worker to run its drain, or a step that takes longer); `failed` when
   * it ended otherwise (failed, terminated, timed out: see `reason`).
   */
  readonly status: LoopStatus | 'not running' | 'still running' | 'failed';
  readonly reason?: string;
}

/**
 * `mdp stream drain` (and `mdp down`): signals every pipeline workflow to stop after its current
 * step and waits for them, the producers first so that nothing is published after the consumers'
 * last runs; with `timeoutMs`, waits no longer than that (in all) and reports the rest as
 * `still running`. Results are in {@link pipelineWorkflowIds} order.
 */
export async function drainPipeline(client: Client, config: StreamingConfig, options: { timeoutMs?: number } = {}): Promise<DrainedWorkflow[]> {
  const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
  const ids = pipelineWorkflowIds(config);
  const producers = new Set([producerWorkflowIdOf(config, 'synthetic'), producerWorkflowIdOf(config, 'ibkr')]);
  const drained = [
    ...(await Promise.all(ids.filter((id) => producers.has(id)).map((id) => drainWorkflow(client, id, deadline)))),
    ...(await Promise.all(ids.filter((id) => !producers.has(id)).map((id) => drainWorkflow(client, id, deadline)))),
  ];
  return ids.map((id) => drained.find((d) => d.workflowId === id)!);
}

async function drainWorkflow(client: Client, workflowId: string, deadline: number | undefined): Promise<DrainedWorkflow> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    const { status } = await handle.describe();
    if (status.name !== 'RUNNING') return { workflowId, status: 'not running' };
    await handle.signal(drainSignal);
    const result = () => handle.result() as Promise<LoopStatus>;
    return { workflowId, status: await (deadline === undefined ? result() : client.withDeadline(deadline, result)) };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { workflowId, status: 'not running' };
    if (isGrpcDeadlineError(err)) return { workflowId, status: 'still running' };
    if (err instanceof WorkflowFailedError) return { workflowId, status: 'failed', reason: failureText(err) };
    throw err;
  }
}

function failureText(err: WorkflowFailedError): string {
  const cause = err.cause?.message;
  return cause ? `${err.message}: ${cause}` : err.message;
}

/** One line of a drain's report, e.g. `mdp-producer-synthetic: drained after 3 runs {"published":120}`. */
export function formatDrained(d: DrainedWorkflow): string {
  if (d.status === 'not running' || d.status === 'still running') return `${d.workflowId}: ${d.status}`;
  if (d.status === 'failed') return `${d.workflowId}: ended without draining (${d.reason ?? 'failed'})`;
  return `${d.workflowId}: drained after ${d.status.runs} runs ${JSON.stringify(d.status.totals)}`;
}
