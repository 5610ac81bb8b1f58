/**
 * The worker's log is one logger's: its own lines, the Temporal SDK's and the SDK core's (Rust)
 * lines all come out as `{ts, level, component, msg, …}` JSON lines at the configured level.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { REPO_ROOT, startTemporal, testConfig, uniqueTag } from '../helpers/services.js';
import { startLabelledWorker, waitUntilPolling, writeConfigFile } from '../helpers/worker-process.js';

/** Runs the worker at `level` until it polls, stops it, and returns its log lines (each must be JSON). */
async function workerLog(env: TestWorkflowEnvironment, level: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<Record<string, unknown>[]> {
  const tag = uniqueTag();
  const config = testConfig(tag, { temporal: { address: env.address }, telemetry: { log_level: level, log_format: 'json' } });
  const file = writeConfigFile(config, `worker-logs-${tag}`);
  const worker = startLabelledWorker(file, `worker-logs-${tag}`, 'worker', extraEnv);
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

  it('at INFO: a start and a stop are one line each (no SDK state changes, no bundler report); Node warnings are log lines', async function () {
    // Emits a process warning once the worker listens for them (as a leak or a deprecation would).
    const probe = resolve(REPO_ROOT, '.data/test', `warning-probe-${process.pid}.mjs`);
    writeFileSync(
      probe,
      "process.on('newListener', (event) => { if (event === 'warning') setImmediate(() => process.emitWarning('probe warning', 'ProbeWarning')); });\n",
    );
    const lines = await workerLog(env, 'INFO', { NODE_OPTIONS: `--import=${probe}` }).finally(() => rmSync(probe, { force: true }));
    const warnings = lines.filter((l) => l.component === 'node');
    assert.ok(warnings.length >= 1, 'the probe warning is a log line');
    assert.deepEqual([warnings[0].level, warnings[0].msg, warnings[0].warning], ['warning', 'probe warning', 'ProbeWarning']);
    assert.ok(lines.every((l) => l.level !== 'debug'));
    assert.ok(!lines.some((l) => String(l.msg).includes('\n')), 'no multi-line message');
    assert.deepEqual(
      lines.filter((l) => /running|stopp|shut|state changed|Initializing/i.test(String(l.msg))).map((l) => l.msg),
      ['worker running', 'worker stopped'],
    );
  });
});
