/**
 * Loaded by mocha before any test (`.mocharc.json` `require`): a green run prints test names and a
 * summary, nothing else. While the tests run, whatever they write to the console or stderr (test
 * workers' logs, diagnostics, Node warnings) and the Temporal SDK's own logs (through the project's
 * logger, as in the worker) go to a file under `.data/test/logs/`; the lines written during a test
 * that fails are printed after it. `MDP_TEST_VERBOSE=1` lets everything through to the terminal.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { format } from 'node:util';
import type { Context } from 'mocha';
import { Runtime } from '@temporalio/worker';
import { createLogger } from '../../pipeline/telemetry/index.js';
import { sdkRuntimeOptions } from '../../workers/sdk-logger.js';

const LOG_DIR = resolve(import.meta.dirname, '../../../.data/test/logs');
/** This mocha process's log file. */
export const TEST_LOG_FILE = resolve(LOG_DIR, `test-${process.pid}.log`);
mkdirSync(LOG_DIR, { recursive: true });

const VERBOSE = process.env.MDP_TEST_VERBOSE === '1';
/** Lines kept per test to print if it fails (the file has them all). */
const KEPT_LINES = 2000;
/** The lines logged since the current test started. */
let sinceTestStart: string[] = [];
let failures = 0;

const originalStderrWrite = process.stderr.write.bind(process.stderr);
const originalConsole = { log: console.log, info: console.info, warn: console.warn, error: console.error, debug: console.debug };

/** Writes `text` (one or more lines) to the test log, and keeps it to show if the test fails. */
export function testLog(text: string): void {
  const lines = text.replace(/\n$/, '');
  appendFileSync(TEST_LOG_FILE, `${lines}\n`);
  if (sinceTestStart.length < KEPT_LINES) sinceTestStart.push(...lines.split('\n'));
}

// The SDK's lines, as the worker writes them (same logger, same shape).
Runtime.install(sdkRuntimeOptions(createLogger('INFO', testLog), 'INFO'));

/** Sends the console and stderr to the test log (mocha's reporter keeps its own console.log). */
function capture(): void {
  if (VERBOSE) return;
  const toLog = (...args: unknown[]) => testLog(format(...args));
  console.log = console.info = console.warn = console.error = console.debug = toLog;
  const write = (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    testLog(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const done = rest.find((r): r is () => void => typeof r === 'function');
    done?.();
    return true;
  };
  process.stderr.write = write;
}

function release(): void {
  Object.assign(console, originalConsole);
  process.stderr.write = originalStderrWrite;
}

export const mochaHooks = {
  beforeAll(): void {
    capture();
  },
  beforeEach(): void {
    sinceTestStart = [];
  },
  afterEach(this: Context): void {
    if (this.currentTest?.state !== 'failed') return;
    failures++;
    if (sinceTestStart.length > 0)
      originalStderrWrite(
        `\n--- log during "${this.currentTest.fullTitle()}" (all of it: ${TEST_LOG_FILE}) ---\n${sinceTestStart.slice(-200).join('\n')}\n---\n`,
      );
  },
  afterAll(): void {
    release();
    if (failures > 0 || VERBOSE) originalStderrWrite(`test log: ${TEST_LOG_FILE}\n`);
  },
};
