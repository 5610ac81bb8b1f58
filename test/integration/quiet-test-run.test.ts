/**
 * A green run prints test names and a summary: workers' logs, the Temporal SDK's and dev server's
 * lines, diagnostics and Node warnings go to `.data/test/logs/` (see test/helpers/mocha-setup.ts).
 * Runs mocha on a few real test files that start workers and log, and holds its output to a budget.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { REPO_ROOT } from '../helpers/services.js';

/** Files that start worker processes and in-process workers, provoke warnings and print diagnostics. */
const NOISY_FILES = [
  'dist/test/integration/worker-logs.test.js',
  'dist/test/integration/redis-outage-shutdown.test.js',
  'dist/test/unit/producer-activity.test.js',
];
/** Lines beside the test and describe lines: blank lines around the suites and the summary. */
const SLACK = 6;

function runMocha(files: readonly string[]): Promise<{ code: number | null; output: string }> {
  const env = { ...process.env };
  delete env.MDP_TEST_VERBOSE;
  const child = spawn(process.execPath, [resolve(REPO_ROOT, 'node_modules/mocha/bin/mocha.js'), '--no-colors', ...files], { cwd: REPO_ROOT, env });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  return new Promise((done) => child.on('close', (code) => done({ code, output })));
}

describe('a green test run is quiet', function () {
  this.timeout(300_000);

  it('prints test names, describe lines and a summary only', async function () {
    const { code, output } = await runMocha(NOISY_FILES);
    assert.equal(code, 0, output);
    const lines = output.split('\n').filter((l) => l.trim() !== '');
    const tests = lines.filter((l) => /^\s*✔ /.test(l)).length;
    const summary = lines.filter((l) => /^\s*\d+ (passing|pending)/.test(l)).length;
    const others = lines.filter((l) => !/^\s*✔ /.test(l) && !/^\s*\d+ (passing|pending)/.test(l));
    assert.ok(tests >= 5, `ran the tests:\n${output}`);
    for (const l of lines) {
      assert.ok(!l.trim().startsWith('{'), `a JSON log line: ${l}`);
      assert.ok(!/Worker state changed|level=|Warning:|\[mdp\]/.test(l), `a log or warning line: ${l}`);
    }
    // Beside the tests and the summary, a describe line or two per file: anything else is a log line.
    assert.ok(others.length <= NOISY_FILES.length * 2, `${others.length} lines that are neither tests nor the summary:\n${others.join('\n')}`);
    assert.ok(lines.length <= tests + summary + NOISY_FILES.length * 2 + SLACK, output);
  });
});
