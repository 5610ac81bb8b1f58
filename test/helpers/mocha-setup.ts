/**
 * Loaded by mocha before any test (`.mocharc.json` `require`): the Temporal SDK's own logs (worker
 * state changes, activity failures the tests provoke on purpose) go to a file under
 * `.data/test/logs/` instead of the terminal, so a green run prints test names and a summary. The
 * lines logged during a test that fails are printed after it.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Context } from 'mocha';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { LogEntry } from '@temporalio/worker';

const LOG_DIR = resolve(import.meta.dirname, '../../../.data/test/logs');
const LOG_FILE = resolve(LOG_DIR, `temporal-sdk-${process.pid}.log`);
mkdirSync(LOG_DIR, { recursive: true });

/** The lines logged since the current test started (kept to print if it fails). */
let sinceTestStart: string[] = [];

function format(entry: LogEntry): string {
  const ts = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  const meta =
    entry.meta && Object.keys(entry.meta).length > 0
      ? ` ${JSON.stringify(entry.meta, (_, v: unknown) => (v instanceof Error ? `${v.name}: ${v.message}` : v))}`
      : '';
  return `${ts} [${entry.level}] ${entry.message}${meta}`;
}

Runtime.install({
  logger: new DefaultLogger('INFO', (entry) => {
    const line = format(entry);
    appendFileSync(LOG_FILE, `${line}\n`);
    if (sinceTestStart.length < 500) sinceTestStart.push(line);
  }),
  // The SDK core's own warnings (a failing workflow task, a worker shutting down) to the same file.
  telemetryOptions: { logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} } },
});

export const mochaHooks = {
  beforeEach(): void {
    sinceTestStart = [];
  },
  afterEach(this: Context): void {
    if (this.currentTest?.state === 'failed' && sinceTestStart.length > 0) {
      process.stderr.write(
        `\n--- Temporal SDK log during "${this.currentTest.fullTitle()}" (all of it: ${LOG_FILE}) ---\n${sinceTestStart.slice(-80).join('\n')}\n---\n`,
      );
    }
  },
};
