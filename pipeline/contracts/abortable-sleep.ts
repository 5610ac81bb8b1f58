/**
 * Waits `ms`, or less when `signal` aborts first; never rejects. The abort listener is removed when
 * the timer fires, so a loop sleeping on one long-lived signal (an activity's cancellation signal,
 * the CLI's Ctrl-C) does not pile up listeners (`MaxListenersExceededWarning` after eleven).
 */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise<void>((done) => {
    const onAbort = () => {
      clearTimeout(timer);
      done();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      done();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
