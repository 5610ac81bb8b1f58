/**
 * Waiting on services that tests and the bench start themselves: a free loopback port to start one
 * on, and polling until it answers. One copy for test/helpers and bench/, so the two never drift.
 */
import { createServer } from 'node:net';

/** A TCP port that was free on 127.0.0.1 a moment ago (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => done());
  });
  const address = server.address();
  await new Promise<void>((done) => server.close(() => done()));
  if (address === null || typeof address === 'string') throw new Error('no TCP port from the probe server');
  return address.port;
}

export interface WaitOptions {
  /** Pause between two checks (default 200 ms). */
  readonly everyMs?: number;
  /**
   * Called before every check; throws to stop waiting at once, e.g. when the process being waited
   * on has exited or the run was interrupted. Unlike an error of `check`, its error is not retried.
   */
  readonly guard?: () => void;
}

/**
 * The one polling loop: an error of `check` counts as "not yet" (connection refused, stream
 * missing). Undefined `value` means time ran out; `lastError` is what the last check threw, if it did.
 */
async function poll<T>(timeoutMs: number, check: () => Promise<T | undefined>, options: WaitOptions): Promise<{ value: T | undefined; lastError: unknown }> {
  const { everyMs = 200, guard } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    guard?.();
    try {
      const value = await check();
      if (value !== undefined) return { value, lastError: undefined };
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) return { value: undefined, lastError };
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Polls `check` until it returns a value other than undefined; undefined after `timeoutMs`, for
 * callers to whom running out of time is an outcome rather than a failure.
 */
export async function pollUntil<T>(timeoutMs: number, check: () => Promise<T | undefined>, options: WaitOptions = {}): Promise<T | undefined> {
  return (await poll(timeoutMs, check, options)).value;
}

/**
 * Polls `check` until it returns a value other than undefined, or fails after `timeoutMs` naming
 * `what` and the last error of `check`, if its last call threw.
 *
 * @example
 * await waitFor('the worker\'s /healthz', 60_000, async () => (await fetch(url)).ok || undefined, { guard: throwIfExited });
 */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, options: WaitOptions = {}): Promise<T> {
  const { value, lastError } = await poll(timeoutMs, check, options);
  if (value !== undefined) return value;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
}
