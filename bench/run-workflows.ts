/**
 * The run's Temporal workflows, on the run's task queue: one micro-batch consumer per shard, one
 * inference consumer per shard with `--inference`, drained at the end and terminated if an error
 * or Ctrl-C left them running.
 */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { startInference, startMicroBatchers } from '../client/stream-commands.js';
import type { LoopStatus } from '../workflows/index.js';
import { producerWorkflowId } from '../workflows/index.js';
import { waitFor } from '../test/helpers/wait.js';
import type { BenchWorker } from './bench-worker.js';
import type { Cleanup } from './run-cleanup.js';
import { progress } from './bench-progress.js';
import { fmtMs } from './bench-report.js';
import { select } from './prometheus-text.js';
import type { PromSample } from './prometheus-text.js';
import type { RunPlan } from './run-plan.js';

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${fmtMs(ms)} waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Whether a consumer loop of every stream of `topics` has heartbeated. */
function heartbeating(metrics: readonly PromSample[] | undefined, topics: readonly string[]): true | undefined {
  return metrics && topics.every((topic) => select(metrics, 'stream_consumer_last_heartbeat_seconds', { topic }).length > 0) ? true : undefined;
}

/** Workflows left running by an interrupted run would hold nothing (their queue has no worker) but clutter the UI. */
export function terminateLeftoverWorkflowsAtEnd(plan: RunPlan, client: Client, cleanup: Cleanup): void {
  const workflowIds = [...plan.consumerIds, ...plan.inferenceIds, producerWorkflowId(plan.tag)];
  cleanup.add('terminate leftover workflows', async () => {
    for (const id of workflowIds) {
      try {
        const handle = client.workflow.getHandle(id);
        if ((await handle.describe()).status.name === 'RUNNING') await handle.terminate('mdp bench cleanup');
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    }
  });
}

/** One micro-batch workflow per shard (as `mdp stream micro-batch`); resolves once every shard's consumer loop heartbeats. */
export async function startMicroBatchConsumers(plan: RunPlan, client: Client, worker: BenchWorker, guard: () => void): Promise<void> {
  await startMicroBatchers(client, plan.config, undefined);
  await waitFor("every shard's consumer to run", 90_000, async () => heartbeating(await worker.scrape(), plan.streams), { guard });
}

/**
 * One inference workflow per shard of the features streams (as `mdp stream infer`), before any
 * snapshot exists; resolves once every one heartbeats. An adapter that does not load fails its
 * workflow at once (non-retryable): that stops the wait with the failure's reason.
 */
export async function startInferenceConsumers(
  adapter: 'rules' | 'sklearn',
  plan: RunPlan,
  client: Client,
  worker: BenchWorker,
  guard: () => void,
): Promise<void> {
  await startInference(client, plan.config, adapter);
  let nextStatusAt = 0;
  let failed: string | undefined;
  const inferenceGuard = () => {
    guard();
    if (failed !== undefined) throw new Error(failed);
  };
  await waitFor(
    `every shard's ${adapter} inference consumer to run`,
    90_000,
    async () => {
      if (Date.now() >= nextStatusAt) {
        nextStatusAt = Date.now() + 2000;
        for (const id of plan.inferenceIds) {
          const handle = client.workflow.getHandle(id);
          const { status } = await handle.describe();
          if (status.name !== 'RUNNING') {
            // The failure's cause chain names the reason (e.g. the adapter that did not load).
            const reasons: string[] = [];
            await handle.result().catch((err: unknown) => {
              for (let e: unknown = err; e instanceof Error && reasons.length < 5; e = e.cause) reasons.push(e.message);
            });
            failed = `${id} is ${status.name}: ${reasons.join(': ') || 'no reason given'} (worker log ${worker.logPath})`;
          }
        }
      }
      const metrics = await worker.scrape();
      return failed === undefined ? heartbeating(metrics, plan.featureStreams) : undefined;
    },
    { guard: inferenceGuard },
  );
}

export interface Drained {
  readonly id: string;
  /** From the drain signal to the workflow's result. */
  readonly ms: number;
  /** The workflow's result (its totals); undefined when the drain failed. */
  readonly status: LoopStatus | undefined;
}

/** Signals `drain` to every workflow of `ids` at once (each may wait for a throttled heartbeat) and collects their results. */
export function drainWorkflows(client: Client, ids: readonly string[]): Promise<Drained[]> {
  return Promise.all(
    ids.map(async (id) => {
      const handle = client.workflow.getHandle(id);
      const at = Date.now();
      try {
        await handle.signal('drain');
        const status = await withTimeout(handle.result() as Promise<LoopStatus>, 60_000, `${id} to drain`);
        return { id, ms: Date.now() - at, status };
      } catch (err) {
        progress(`drain of ${id} failed: ${(err as Error).message}`);
        return { id, ms: Date.now() - at, status: undefined };
      }
    }),
  );
}
