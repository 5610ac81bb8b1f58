/**
 * Worker Deployment versioning: a workflow started on v1 is never executed by v2 code unless its
 * behaviour says it may. Two in-process workers of one deployment on a private dev server: v1 runs
 * this checkout's workflows, v2 a deliberately incompatible build whose `replayWorkflow` starts
 * with one more activity (test/helpers/builds/incompatible-v2-workflows.ts). A slow replay and the
 * micro-batch consumers start on v1; v2 is promoted (`mdp deploy promote`). The consumers
 * (AUTO_UPGRADE) hand over to v2; the running replay (PINNED) finishes on v1 — every workflow task
 * and activity of its history on the v1 worker, no task failure — while a replay started after the
 * promotion runs v2's changed sequence. `mdp deploy status` says v1 is safe to stop only once that
 * replay is done. `mdp deploy check` passes this checkout's code and names the consumers a build
 * that changed them without `patched()` could not continue. Mid-rollout, headless Chromium opens the deployment in the Temporal Web UI and
 * finds both versions, v2 current and v1 draining: artifacts/web-ui-deployment-rollout.png.
 */
import { deploymentNameOf } from '../../pipeline/config/index.js';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import yaml from 'js-yaml';
import { checkReplay, deployStatus, promote, unpin } from '../../client/deploy-command.js';
import { placementOf, setCurrentVersion, waitForVersion } from '../../client/deployments.js';
import { startReplay } from '../../client/replay-command.js';
import { startMicroBatchers } from '../../client/stream-commands.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import { generateSampleDay, writeJsonl } from '../../pipeline/datasets/index.js';
import type { Database } from '../../store/index.js';
import type { LoopStatus, ReplayProgress } from '../../workflows/index.js';
import type { HeadlessBrowser } from '../helpers/browser.js';
import { chromiumPath, launchBrowser } from '../helpers/browser.js';
import {
  cleanupTestRun,
  connectRedis,
  connectStore,
  createTestWorker,
  REPO_ROOT,
  startTemporal,
  TEST_NAMESPACE,
  testConfig,
  uniqueTag,
  workflowBundle,
} from '../helpers/services.js';
import { freePort, waitFor } from '../helpers/wait.js';

const DATE = '2025-10-01';
const V2_WORKFLOWS = resolve(import.meta.dirname, '../helpers/builds/incompatible-v2-workflows.js');
const INCOMPATIBLE_CONSUMER = resolve(import.meta.dirname, '../helpers/builds/incompatible-consumer-workflows.js');

interface HistoryEvent {
  eventType?: number | null;
  workflowTaskCompletedEventAttributes?: { identity?: string | null } | null;
  workflowTaskFailedEventAttributes?: { cause?: number | null; failure?: { message?: string | null } | null } | null;
  activityTaskScheduledEventAttributes?: {
    activityType?: { name?: string | null } | null;
    input?: { payloads?: { data?: Uint8Array | null }[] | null } | null;
  } | null;
  activityTaskStartedEventAttributes?: { identity?: string | null } | null;
}

/** What the history of a workflow says about the code that ran it. */
async function historyOf(env: TestWorkflowEnvironment, workflowId: string) {
  const { events } = await env.client.workflow.getHandle(workflowId).fetchHistory();
  const all = (events ?? []) as HistoryEvent[];
  const scheduled = all.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes] : []));
  return {
    workflowTaskWorkers: new Set(all.flatMap((e) => (e.workflowTaskCompletedEventAttributes ? [e.workflowTaskCompletedEventAttributes.identity ?? '?'] : []))),
    activityWorkers: new Set(all.flatMap((e) => (e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.identity ?? '?'] : []))),
    taskFailures: all.flatMap((e) =>
      e.workflowTaskFailedEventAttributes ? [e.workflowTaskFailedEventAttributes.failure?.message ?? `cause ${e.workflowTaskFailedEventAttributes.cause}`] : [],
    ),
    firstActivity: scheduled[0]?.activityType?.name ?? undefined,
    firstInput: JSON.parse(new TextDecoder().decode(scheduled[0]?.input?.payloads?.[0]?.data ?? new Uint8Array())) as Record<string, unknown>,
  };
}

describe('worker versioning: a workflow started on v1 runs v2 code only if its behaviour says it may', function () {
  this.timeout(300_000);
  let env: TestWorkflowEnvironment;
  let db: Kysely<Database>;
  let redis: Redis;
  let config: StreamingConfig;
  let tag: string;
  let dir: string;
  let catalog: string;
  let uiPort: number;
  let browser: HeadlessBrowser | undefined;
  const workers: { worker: Worker; running: Promise<void> }[] = [];

  const versioned = async (buildId: string, bundlePath?: string, on: StreamingConfig = config) => {
    const worker = await createTestWorker(env, on, db, {
      deployment: { useWorkerVersioning: true, version: { deploymentName: deploymentNameOf(on), buildId }, defaultVersioningBehavior: 'PINNED' },
      identity: `worker-${buildId}`,
      ...(bundlePath ? { bundle: await workflowBundle(bundlePath) } : {}),
    });
    const entry = { worker, running: worker.run() };
    workers.push(entry);
    await waitForVersion(env.client, on.temporal.namespace, deploymentNameOf(on), buildId, on.temporal.task_queue, 60_000);
    return entry;
  };

  /** 30 minutes of event time at 150× the wall clock (6 chunks, about 12 s): still running when a version changes. */
  const startSlowReplay = (on: StreamingConfig, workflowId: string) =>
    startReplay(env.client, on, { dataset: 'day', from: `${DATE}T13:30:00Z`, to: `${DATE}T14:00:00Z`, chunkSpan: '5m', speed: 150, workflowId });

  before(async function () {
    chromiumPath(); // fail first, naming scripts/install.sh, when Chromium is missing
    uiPort = await freePort();
    env = await startTemporal(TEST_NAMESPACE, { uiPort });
    tag = uniqueTag();
    dir = resolve(REPO_ROOT, '.data/test', `${tag}-versioning`);
    catalog = resolve(dir, 'datasets.yaml');
    config = testConfig(tag, { temporal: { address: env.address }, replay: { datasets_file: catalog, stream: `${tag}.replay` } });
    mkdirSync(dir, { recursive: true });
    writeFileSync(catalog, yaml.dump({ datasets: { day: { format: 'jsonl', path: resolve(dir, 'day'), provider: config.producers.synthetic.provider } } }));
    await writeJsonl(
      resolve(dir, 'day', `${DATE}.jsonl`),
      generateSampleDay({ date: DATE, provider: config.producers.synthetic.provider, symbols: ['SPY', 'AAPL'], seed: 7, ticksPerDay: 20_000 }),
    );
    redis = await connectRedis(config);
    db = await connectStore(config);
    await versioned('v1');
    await setCurrentVersion(env.client, config.temporal.namespace, deploymentNameOf(config), 'v1', 'test');
  });

  after(async function () {
    await browser?.close();
    for (const { worker } of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
    await Promise.all(workers.map((w) => w.running.catch(() => undefined)));
    await db?.deleteFrom('job_runs').where('job_name', 'like', `mdp-replay-${tag}%`).execute();
    await cleanupTestRun(config, { redis, db, env });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a running replay (PINNED) finishes on v1 while the consumers (AUTO_UPGRADE) hand over to v2 and new replays run v2', async function () {
    const client = env.client;
    const slow = await startSlowReplay(config, `mdp-replay-${tag}-slow`);
    const consumers = await startMicroBatchers(client, config, undefined);
    for (const c of consumers)
      await waitFor(`${c.workflowId}'s run on v1`, 60_000, async () => ((await placementOf(client, c.workflowId)).activityBuildId === 'v1' ? true : undefined));
    await waitFor('the slow replay to have done a chunk', 60_000, async () => {
      const p = await client.workflow.getHandle(slow.workflowId).query<ReplayProgress>('progress');
      return p.chunksDone >= 1 ? true : undefined;
    });

    await versioned('v2', V2_WORKFLOWS);
    const promoted = await promote(client, config, 'v2');
    assert.equal(promoted.previous, 'v1');
    assert.deepEqual(
      promoted.handOvers.map((h) => [h.workflowId, h.moved, h.placement.workflowBuildId]).sort(),
      consumers.map((c) => [c.workflowId, true, 'v2']).sort(),
      `every consumer handed over to v2: ${JSON.stringify(promoted.handOvers)}`,
    );
    for (const c of consumers)
      await waitFor(`${c.workflowId}'s run on v2`, 30_000, async () => ((await placementOf(client, c.workflowId)).activityBuildId === 'v2' ? true : undefined));
    for (const c of consumers) {
      const status = await client.workflow.getHandle(c.workflowId).query<LoopStatus>('status');
      assert.equal(status.buildId, 'v2', `${c.workflowId} reports the version it runs on`);
      assert.equal(status.handOvers, 1);
      assert.equal(status.lastStoppedBy, 'handed-over');
      assert.equal((await placementOf(client, c.workflowId)).behavior, 'AUTO_UPGRADE');
    }

    // v1 still runs the slow replay: not safe to stop.
    const during = await deployStatus(client, config);
    const v1During = during.versions.find((v) => v.buildId === 'v1')!;
    assert.equal(during.current, 'v2');
    assert.equal(v1During.running.replayWorkflow, 1, `v1 runs the slow replay: ${JSON.stringify(v1During)}`);
    assert.equal(v1During.safeToStop, false);

    // The deployment in the Web UI, mid-rollout: v2 current, v1 still draining its replay.
    const page = `http://127.0.0.1:${uiPort}/namespaces/${config.temporal.namespace}/worker-deployments/${deploymentNameOf(config)}`;
    browser = await launchBrowser();
    browser.page.setDefaultTimeout(60_000);
    await waitFor(`the Web UI at ${page}`, 60_000, async () => ((await fetch(page)).ok ? true : undefined), { everyMs: 500 });
    await browser.page.goto(page, { waitUntil: 'domcontentloaded' });
    const row = (buildId: string) => browser!.page.locator('tr', { has: browser!.page.getByText(buildId, { exact: true }) });
    await row('v2').getByText('Current').waitFor({ state: 'visible' });
    await row('v1')
      .getByText(/Draining/)
      .waitFor({ state: 'visible' });
    mkdirSync(resolve(REPO_ROOT, 'artifacts'), { recursive: true });
    await browser.page.screenshot({ path: resolve(REPO_ROOT, 'artifacts/web-ui-deployment-rollout.png'), fullPage: true });

    // A replay started now runs v2's code.
    const fresh = await startReplay(client, config, {
      dataset: 'day',
      from: `${DATE}T14:00:00Z`,
      to: `${DATE}T14:10:00Z`,
      chunkSpan: '5m',
      workflowId: `mdp-replay-${tag}-fresh`,
    });
    const freshResult = (await client.workflow.getHandle(fresh.workflowId).result()) as ReplayProgress;
    assert.equal(freshResult.phase, 'finished');
    const freshHistory = await historyOf(env, fresh.workflowId);
    assert.equal(freshHistory.firstActivity, 'planReplay');
    assert.equal(freshHistory.firstInput.chunkSpan, '1m', "the new replay ran v2's changed activity sequence");
    assert.deepEqual([...freshHistory.workflowTaskWorkers], ['worker-v2']);
    assert.deepEqual([...freshHistory.activityWorkers], ['worker-v2']);

    // The slow replay ran v1's code only, to the end, without a single failed workflow task.
    const slowResult = (await client.workflow.getHandle(slow.workflowId).result()) as ReplayProgress;
    assert.equal(slowResult.phase, 'finished');
    assert.equal(slowResult.chunksDone, 6);
    const slowHistory = await historyOf(env, slow.workflowId);
    assert.deepEqual(slowHistory.taskFailures, [], 'no workflow task failed (no nondeterminism)');
    assert.deepEqual([...slowHistory.workflowTaskWorkers], ['worker-v1'], 'every workflow task of the slow replay ran on v1');
    assert.deepEqual([...slowHistory.activityWorkers], ['worker-v1'], 'every activity of the slow replay ran on v1');
    assert.notEqual(slowHistory.firstInput.chunkSpan, '1m');
    const slowPlacement = await placementOf(client, slow.workflowId);
    assert.equal(slowPlacement.behavior, 'PINNED');
    assert.equal(slowPlacement.workflowBuildId, 'v1');

    // mdp deploy check: this checkout's code continues every running consumer; a build that
    // changed the consumer without patched() cannot, and says which and why.
    const compatible = await checkReplay(client, config);
    assert.deepEqual(compatible.map((c) => [c.workflowId, c.error]).sort(), consumers.map((c) => [c.workflowId, undefined]).sort());
    const incompatible = await checkReplay(client, config, INCOMPATIBLE_CONSUMER);
    assert.equal(incompatible.length, consumers.length);
    for (const c of incompatible) assert.match(c.error ?? '', /[Nn]ondetermin/, `${c.workflowId}: ${c.error}`);

    // Nothing runs on v1 any more: its workers may stop.
    const after = await waitFor('v1 to be safe to stop', 30_000, async () => {
      const s = await deployStatus(client, config);
      const v1 = s.versions.find((v) => v.buildId === 'v1')!;
      return v1.safeToStop ? v1 : undefined;
    });
    assert.deepEqual(after.running, {});
  });
  it('a replay pinned to a version whose workers are gone moves to the current version with mdp deploy unpin, and finishes there', async function () {
    const client = env.client;
    // A pipeline of its own (another task queue, so another deployment), on this checkout's code.
    const other = testConfig(`${tag}u`, { temporal: { address: env.address }, replay: { datasets_file: catalog, stream: `${tag}u.replay` } });
    const a = await versioned('a', undefined, other);
    await setCurrentVersion(client, other.temporal.namespace, deploymentNameOf(other), 'a', 'test');
    const replay = await startSlowReplay(other, `mdp-replay-${tag}-stranded`);
    await waitFor('the replay to have done a chunk', 60_000, async () =>
      (await client.workflow.getHandle(replay.workflowId).query<ReplayProgress>('progress')).chunksDone >= 1 ? true : undefined,
    );
    await versioned('b', undefined, other);
    await promote(client, other, 'b');
    // a's workers go away for good: the pinned replay would wait for them forever.
    a.worker.shutdown();
    await a.running;
    const moved = await unpin(client, other, 'a');
    assert.deepEqual(moved, [{ workflowId: replay.workflowId, type: 'replayWorkflow' }]);
    const result = (await client.workflow.getHandle(replay.workflowId).result()) as ReplayProgress;
    assert.equal(result.phase, 'finished');
    assert.equal(result.chunksDone, 6);
    const history = await historyOf(env, replay.workflowId);
    assert.deepEqual(history.taskFailures, []);
    assert.deepEqual([...history.workflowTaskWorkers].sort(), ['worker-a', 'worker-b'], 'started on a, finished on b');
    assert.equal((await placementOf(client, replay.workflowId)).workflowBuildId, 'b');
  });
});
