/**
 * Settings shared by the fault-matrix rows (scaled down from the figures so the whole
 * matrix fits in CI; each row says what it scales).
 */

/**
 * 1 s windows, 300 ms lateness, and an idle flush after 5 s: long enough that a window the test
 * has half-published stays open while the test observes it and injects the fault, short enough
 * that the last window of a row flushes soon after its last event.
 */
export const HOLD_OPEN = { micro_batch: { window_ms: 1000, allow_late_ms: 300, flush_timeout_ms: 5000 } } as const;

/**
 * How long a row waits for the pipeline to settle after its last fault: the heartbeat timeout
 * (10 s today), Temporal's retry backoff (up to 30 s after repeated failures), a worker start and
 * the idle flush, with room for a loaded CI machine. A row that does not settle is still
 * accounted: the report says what is missing.
 */
export const RECOVERY_MS = 90_000;

/**
 * Outages (PostgreSQL stopped, table locked) last at least this long, and longer than the heartbeat
 * timeout. `MDP_FAULT_OUTAGE_MS` runs them full size by hand (the 30 s outage, 60 s lock).
 */
export const OUTAGE_MIN_MS = Number(process.env.MDP_FAULT_OUTAGE_MS ?? 12_000);
