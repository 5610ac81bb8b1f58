/**
 * The worker's log is one logger's: its own lines, the Temporal SDK's and the SDK core's (Rust)
 * lines all come out as `{ts, level, component, msg, …}` JSON lines at the configured level.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startTemporal, testConfig, uniqueTag } from '../helpers/services.js';
import { startLabelledWorker, waitUntilPolling, writeConfigFile } from '../helpers/worker-process.js';

/** Runs the worker at `level` until it polls, stops it, and returns its log lines (each must be JSON). */
async function workerLog(env: TestWorkflowEnvironment, level: string): Promise<Record<string, unknown>[]> {
  const tag = uniqueTag();
  const config = testConfig(tag, { temporal: { address: env.address }, telemetry: { log_level: level, log_format: 'json' } });
  const file = writeConfigFile(config, `worker-logs-${tag}`);
  const worker = startLabelledWorker(file, `worker-logs-${tag}`, 'worker');
  try {
    await waitUntilPolling(env.client, config.temporal.task_queue, worker);
  } finally {
    worker.child.kill('SIGTERM');
    await worker.exited;
    rmSync(file, { force: true });
  }
  return readFileSync(worker.logFile, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        assert.fail(`not a JSON line: ${l}`);
      }
    });
}

describe('worker logs: one logger for the worker, the Temporal SDK and its core', function () {
  this.timeout(180_000);
  let env: TestWorkflowEnvironment;

  before(async function () {
    env = await startTemporal();
  });
  after(async function () {
    await env?.teardown();
  });

  it('at DEBUG: the SDK and core lines are forwarded, every line is {ts, level, component, msg, …}', async function () {
    const lines = await workerLog(env, 'DEBUG');
    for (const l of lines) assert.deepEqual(Object.keys(l).slice(0, 4), ['ts', 'level', 'component', 'msg'], JSON.stringify(l));
    const components = new Set(lines.map((l) => l.component));
    for (const c of ['worker', 'temporal.sdk', 'temporal.core']) assert.ok(components.has(c), `a ${c} line among ${[...components].join(', ')}`);
    assert.ok(
      lines.some((l) => l.component === 'temporal.sdk' && l.level === 'debug'),
      'SDK debug lines are forwarded when the config asks for them',
    );
    assert.ok(lines.some((l) => l.component === 'temporal.core' && l.msg === 'Initializing worker'));
  });

  it('at INFO: a start and a stop are one line each (no SDK state changes, no bundler report)', async function () {
    const lines = await workerLog(env, 'INFO');
    assert.ok(lines.every((l) => l.level !== 'debug'));
    assert.ok(!lines.some((l) => String(l.msg).includes('\n')), 'no multi-line message');
    assert.deepEqual(
      lines.filter((l) => /running|stopp|shut|state changed|Initializing/i.test(String(l.msg))).map((l) => l.msg),
      ['worker running', 'worker stopped'],
    );
  });
});
