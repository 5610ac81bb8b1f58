/**
 * The Temporal Web UI shows a replay: a dev server of this file's own with its UI on a free
 * loopback port, a replay run to completion through an in-process worker, then headless Chromium
 * (playwright-core) finds the workflow in the list, opens it and reads its memo and result; and
 * the fleet filtered by mdp's search attributes, each workflow with its summary and details.
 * Leaves screenshots in artifacts/web-ui-replay.png, web-ui-search-attribute.png and web-ui-summary.png.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import type { Page } from 'playwright-core';
import yaml from 'js-yaml';
import { startReplay } from '../../client/replay-command.js';
import { startMicroBatchers } from '../../client/stream-commands.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import { generateSampleDay, writeJsonl } from '../../pipeline/datasets/index.js';
import type { Database } from '../../store/index.js';
import type { ReplayProgress } from '../../workflows/index.js';
import { MDP_SEARCH_ATTRIBUTES } from '../../workflows/index.js';
import type { HeadlessBrowser } from '../helpers/browser.js';
import { chromiumPath, launchBrowser } from '../helpers/browser.js';
import {
  cleanupTestRun,
  connectRedis,
  connectStore,
  createTestWorker,
  REPO_ROOT,
  quietTemporalCliPath,
  TEST_NAMESPACE,
  testConfig,
  uniqueTag,
} from '../helpers/services.js';
import { freePort, waitFor } from '../helpers/wait.js';

const DATE = '2025-10-01';
const SCREENSHOT = resolve(REPO_ROOT, 'artifacts/web-ui-replay.png');
const RESULT_SCREENSHOT = resolve(REPO_ROOT, 'artifacts/web-ui-replay-result.png');
const FILTER_SCREENSHOT = resolve(REPO_ROOT, 'artifacts/web-ui-search-attribute.png');
const SUMMARY_SCREENSHOT = resolve(REPO_ROOT, 'artifacts/web-ui-summary.png');
const REPLAY_METADATA_SCREENSHOT = resolve(REPO_ROOT, 'artifacts/web-ui-replay-metadata.png');

/** The JSON of the first read-only code block (CodeMirror) after the visible element reading exactly `heading`. */
async function codeBlockAfter(page: Page, heading: string): Promise<unknown> {
  const title = page.getByText(heading, { exact: true }).filter({ visible: true }).first();
  const block = title.locator('xpath=following::div[contains(@class,"cm-content") and @contenteditable="false"][1]');
  await block.waitFor({ state: 'visible' });
  await block.scrollIntoViewIfNeeded();
  const text = await block.innerText();
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`the ${heading} block is not JSON (${(err as Error).message}): ${text}`);
  }
}

describe('Temporal Web UI shows a replay (headless Chromium)', function () {
  this.timeout(240_000);
  let env: TestWorkflowEnvironment;
  let uiPort: number;
  let db: Kysely<Database>;
  let redis: Redis;
  let config: StreamingConfig;
  let tag: string;
  let dataset: string;
  let dir: string;
  let worker: Worker;
  let running: Promise<void>;
  let browser: HeadlessBrowser | undefined;
  /** The replay the first test runs, which the second filters for. */
  let replayId: string | undefined;

  before(async function () {
    chromiumPath(); // fail first, naming scripts/install.sh, when Chromium is missing
    uiPort = await freePort();
    env = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: 'existing-path', path: quietTemporalCliPath() },
        ip: '127.0.0.1',
        ui: true,
        uiPort,
        namespace: TEST_NAMESPACE,
        searchAttributes: [...MDP_SEARCH_ATTRIBUTES],
      },
    });
    tag = uniqueTag();
    dataset = `${tag}_day`;
    dir = resolve(REPO_ROOT, '.data/test', `${tag}-ui-datasets`);
    const catalog = resolve(dir, 'datasets.yaml');
    config = testConfig(tag, { temporal: { address: env.address }, replay: { datasets_file: catalog, stream: `${tag}.replay` } });
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      catalog,
      yaml.dump({ datasets: { [dataset]: { format: 'jsonl', path: resolve(dir, 'day'), provider: config.producers.synthetic.provider } } }),
    );
    await writeJsonl(
      resolve(dir, 'day', `${DATE}.jsonl`),
      generateSampleDay({
        date: DATE,
        provider: config.producers.synthetic.provider,
        symbols: ['SPY'],
        seed: 20251001,
        ticksPerDay: 60_000,
      }),
    );
    redis = await connectRedis(config);
    db = await connectStore(config);
    worker = await createTestWorker(env, config, db);
    running = worker.run();
  });

  after(async function () {
    await browser?.close();
    worker?.shutdown();
    await running?.catch(() => undefined);
    await db?.deleteFrom('job_runs').where('job_name', 'like', `mdp-replay-${tag}%`).execute();
    await cleanupTestRun(config, { redis, db, env });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lists the finished replay and shows its memo (dataset, range) and result', async function () {
    const from = '2025-10-01T13:30:00Z',
      to = '2025-10-01T14:00:00Z';
    // Started exactly as `mdp stream replay` starts it (same id and memo).
    const { workflowId } = await startReplay(env.client, config, { dataset, from, to, chunkSpan: '5m' });
    replayId = workflowId;
    const result = (await env.client.workflow.getHandle(workflowId).result()) as ReplayProgress;
    assert.equal(result.phase, 'finished');
    assert.equal(result.chunksDone, 6);

    const base = `http://127.0.0.1:${uiPort}`;
    await waitFor(`the Web UI at ${base}`, 60_000, async () => ((await fetch(base)).ok ? true : undefined), { everyMs: 500 });
    browser = await launchBrowser();
    const { page } = browser;
    page.setDefaultTimeout(60_000);
    await page.goto(`${base}/namespaces/${TEST_NAMESPACE}/workflows`, { waitUntil: 'domcontentloaded' });
    const link = page.locator(`a[href*="/workflows/${encodeURIComponent(workflowId)}/"]`).first();
    await link.waitFor({ state: 'visible' });
    assert.equal((await link.innerText()).trim(), workflowId);
    await link.click();
    await page.waitForURL(new RegExp(`/namespaces/${TEST_NAMESPACE}/workflows/${encodeURIComponent(workflowId)}/[0-9a-f-]+`));
    await page.getByText('Completed', { exact: true }).first().waitFor({ state: 'visible' });

    // The workflow's own page: its input and result (the final progress) as JSON.
    const input = (await codeBlockAfter(page, 'Input')) as Record<string, unknown>;
    assert.deepEqual(input, { dataset, from, to, chunkSpan: '5m' });
    const shown = (await codeBlockAfter(page, 'Result')) as ReplayProgress;
    assert.equal(shown.phase, 'finished');
    assert.equal(shown.dataset, dataset);
    assert.equal(`${shown.chunksDone}/${shown.chunksTotal}`, '6/6');
    assert.deepEqual(shown.counts, result.counts);
    mkdirSync(resolve(REPO_ROOT, 'artifacts'), { recursive: true });
    await page.screenshot({ path: RESULT_SCREENSHOT, fullPage: true });

    // Its memo: which dataset and range, and how far the replay got.
    await page.getByRole('tab', { name: 'Memo' }).click();
    await page.waitForURL(/\/memo$/);
    const memo = ((await codeBlockAfter(page, 'Memo')) as { fields: Record<string, unknown> }).fields;
    console.log(`      memo: ${JSON.stringify(memo)}`);
    assert.equal(memo.dataset, dataset);
    assert.equal(memo.from, from);
    assert.equal(memo.to, to);
    assert.equal(memo.range, '2025-10-01T13:30:00.000Z .. 2025-10-01T14:00:00.000Z');
    assert.equal(memo.status, 'finished');
    assert.equal(memo.chunksDone, 6);
    assert.equal(memo.chunksTotal, 6);
    assert.equal(memo.events, result.counts.events);
    assert.equal(memo.bars, result.counts.bars);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.ok(statSync(SCREENSHOT).size > 10_000, 'a screenshot with content');
    console.log(`      screenshots: ${SCREENSHOT}, ${RESULT_SCREENSHOT}`);
  });

  it('filters the fleet by a search attribute (the URL query) and shows each workflow its summary and current details', async function () {
    assert.ok(replayId, 'the replay of the test above');
    const replay = replayId;
    const consumers = (await startMicroBatchers(env.client, config, undefined)).map((s) => s.workflowId);
    assert.equal(consumers.length, 2);
    const base = `http://127.0.0.1:${uiPort}`;
    browser ??= await launchBrowser();
    const { page } = browser;
    page.setDefaultTimeout(60_000);

    /** The workflow ids the list shows: links to a run, `/workflows/<id>/<run id>`. */
    const listed = async (): Promise<string[]> => {
      const hrefs = await Promise.all((await page.locator('a[href*="/workflows/"]').all()).map((link) => link.getAttribute('href')));
      const ids = hrefs.map((href) => /\/workflows\/([^/?]+)\/[0-9a-f-]{36}/.exec(href ?? '')?.[1]).filter((id): id is string => id !== undefined);
      return [...new Set(ids.map(decodeURIComponent))].sort();
    };
    const filterBy = async (query: string, expected: readonly string[]) => {
      // Visibility is eventually consistent: reload until the list is exactly the expected workflows.
      return waitFor(`the list filtered by ${query}`, 60_000, async () => {
        await page.goto(`${base}/namespaces/${TEST_NAMESPACE}/workflows?query=${encodeURIComponent(query)}`, { waitUntil: 'domcontentloaded' });
        await page
          .locator(`a[href*="/workflows/${encodeURIComponent(expected[0])}/"]`)
          .first()
          .waitFor({ state: 'visible', timeout: 10_000 })
          .catch(() => undefined);
        const ids = await listed();
        return JSON.stringify(ids) === JSON.stringify([...expected].sort()) ? ids : undefined;
      });
    };

    await filterBy('MdpRole="microbatch"', consumers);
    await filterBy('MdpRole="replay"', [replay]);
    mkdirSync(resolve(REPO_ROOT, 'artifacts'), { recursive: true });
    await page.screenshot({ path: FILTER_SCREENSHOT, fullPage: true });

    /** Waits until `text` is visible in the page or one of its frames (the UI renders summaries and details as Markdown in frames). */
    const shown = (text: string | RegExp) =>
      waitFor(`${String(text)} shown`, 30_000, async () => {
        for (const frame of page.frames()) {
          const match = typeof text === 'string' ? frame.getByText(text, { exact: true }) : frame.getByText(text);
          if (
            await match
              .first()
              .isVisible()
              .catch(() => false)
          )
            return true;
        }
        return undefined;
      });
    const userMetadataTab = async () => {
      await page.getByRole('tab', { name: 'User Metadata' }).click();
      await page.waitForURL(/\/user-metadata$/);
    };

    // The replay's page: its summary in the history (Workflow Execution Started); on its User Metadata
    // tab the summary, the current details and each chunk activity's summary (its New York time range).
    const replaySummary = await (await env.client.workflow.getHandle(replay).describe()).staticSummary();
    assert.equal(replaySummary, `replay ${dataset} 2025-10-01T13:30:00Z → 14:00:00Z`);
    await page
      .locator(`a[href*="/workflows/${encodeURIComponent(replay)}/"]`)
      .first()
      .click();
    await shown(replaySummary);
    await userMetadataTab();
    await shown(replaySummary);
    await shown(/^finished: 6 of 6 chunks in \d+:\d\d/);
    await shown('09:30–09:35 ET');
    await shown('09:55–10:00 ET');
    await page.screenshot({ path: REPLAY_METADATA_SCREENSHOT, fullPage: true });

    // A running consumer's User Metadata: its summary, static details and current details.
    const consumerSummary = await (await env.client.workflow.getHandle(consumers[1]).describe()).staticSummary();
    assert.match(consumerSummary ?? '', /^micro-batch · shard 1 · .* · 1 s windows$/);
    await filterBy('MdpRole="microbatch" AND MdpShard=1', [consumers[1]]);
    await page
      .locator(`a[href*="/workflows/${encodeURIComponent(consumers[1])}/"]`)
      .first()
      .click();
    await shown(consumerSummary!);
    await userMetadataTab();
    await shown(consumerSummary!);
    await shown(/^Owns t\w+\.events\.1 \(group/);
    await shown(/^run 1 since \d{2}:\d{2}:\d{2} UTC/);
    await page.screenshot({ path: SUMMARY_SCREENSHOT, fullPage: true });
    assert.ok(statSync(SUMMARY_SCREENSHOT).size > 10_000, 'a screenshot with content');
    console.log(`      screenshots: ${FILTER_SCREENSHOT}, ${SUMMARY_SCREENSHOT}, ${REPLAY_METADATA_SCREENSHOT}`);
  });
});
