import { CircuitOpenError } from './circuit-open-error.js';

export type CircuitState = 'closed' | 'open' | 'half-open';

/** The four transitions a breaker can make, as `from->to`. */
export type CircuitTransition = 'closed->open' | 'open->half-open' | 'half-open->closed' | 'half-open->open';

/** Told about every state change, in order, with a human-readable reason. */
export type TransitionListener = (from: CircuitState, to: CircuitState, reason: string) => void;

export interface CircuitBreakerOptions {
  /** Consecutive failures (timeouts included) that open a closed breaker; default 3. */
  readonly failureThreshold?: number;
  /** How long an open breaker refuses calls before it lets one trial through; default 5000 ms. */
  readonly cooldownMs?: number;
  /** Clock in epoch milliseconds; tests inject their own. Default `Date.now`. */
  readonly now?: () => number;
  readonly onTransition?: TransitionListener;
}

/**
 * A generic circuit breaker. Closed: calls run; `failureThreshold` consecutive failures open it.
 * Open: calls are refused with {@link CircuitOpenError} until `cooldownMs` has passed, then the
 * next call moves it to half-open and runs as the single trial (others are refused meanwhile);
 * the trial's success closes the breaker, its failure opens it for another cooldown.
 *
 * There are no timers: the open → half-open move happens when the first call after the cooldown
 * arrives, so an idle breaker stays `open` in {@link CircuitBreaker.state}.
 *
 * @example
 * ```ts
 * const breaker = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 5000, onTransition: (from, to, why) => log.warn('breaker', { from, to, why }) });
 * try { return await breaker.execute(() => model.predict(rows)); }
 * catch { return fallback.evaluate(snapshot); }
 * ```
 */
export class CircuitBreaker {
  readonly failureThreshold: number;
  readonly cooldownMs: number;
  readonly #now: () => number;
  readonly #onTransition: TransitionListener | undefined;
  readonly #counts: Record<CircuitTransition, number> = {
    'closed->open': 0,
    'open->half-open': 0,
    'half-open->closed': 0,
    'half-open->open': 0,
  };
  #state: CircuitState = 'closed';
  #failures = 0;
  #openedAtMs = 0;
  /** Identifies the half-open trial in flight, so late results of older calls are ignored. */
  #trial: symbol | undefined;

  constructor(options: CircuitBreakerOptions = {}) {
    const threshold = options.failureThreshold ?? 3;
    const cooldownMs = options.cooldownMs ?? 5000;
    if (!Number.isInteger(threshold) || threshold < 1) throw new RangeError(`failureThreshold must be a positive integer (got ${threshold})`);
    if (!Number.isFinite(cooldownMs) || cooldownMs < 0) throw new RangeError(`cooldownMs must be a non-negative number (got ${cooldownMs})`);
    this.failureThreshold = threshold;
    this.cooldownMs = cooldownMs;
    this.#now = options.now ?? Date.now;
    this.#onTransition = options.onTransition;
  }

  /** The current state (an open breaker past its cooldown still reads `open` until a call arrives). */
  get state(): CircuitState {
    return this.#state;
  }

  /** Failures in a row since the last success (reset when the breaker closes). */
  get consecutiveFailures(): number {
    return this.#failures;
  }

  /** How many times each transition has happened. */
  get transitionCounts(): Readonly<Record<CircuitTransition, number>> {
    return { ...this.#counts };
  }

  /**
   * Runs `call` unless the breaker refuses it. Resolves or rejects as `call` does; rejects with
   * {@link CircuitOpenError} without calling when open (or half-open with a trial in flight).
   */
  async execute<T>(call: () => Promise<T>): Promise<T> {
    let trial: symbol | undefined;
    if (this.#state === 'half-open') throw new CircuitOpenError('circuit half-open: trial call in flight', 'half-open');
    if (this.#state === 'open') {
      const waitedMs = this.#now() - this.#openedAtMs;
      if (waitedMs < this.cooldownMs) {
        throw new CircuitOpenError(`circuit open: ${this.cooldownMs - waitedMs} ms of cooldown left`, 'open');
      }
      trial = Symbol('trial');
      this.#trial = trial;
      this.#transition('half-open', `cooldown of ${this.cooldownMs} ms elapsed; trial call`);
    }

    let result: T;
    try {
      result = await call();
    } catch (err) {
      this.#onFailure(err, trial);
      throw err;
    }
    this.#onSuccess(trial);
    return result;
  }

  #onSuccess(trial: symbol | undefined): void {
    if (trial !== undefined) {
      if (trial !== this.#trial) return;
      this.#trial = undefined;
      this.#failures = 0;
      this.#transition('closed', 'trial call succeeded');
    } else if (this.#state === 'closed') {
      this.#failures = 0;
    }
    // A call started while closed that succeeds after the breaker opened changes nothing.
  }

  #onFailure(err: unknown, trial: symbol | undefined): void {
    if (trial !== undefined) {
      if (trial !== this.#trial) return;
      this.#trial = undefined;
      this.#openedAtMs = this.#now();
      this.#transition('open', `trial call failed: ${describe(err)}`);
      return;
    }
    if (this.#state !== 'closed') return;
    this.#failures += 1;
    if (this.#failures >= this.failureThreshold) {
      this.#openedAtMs = this.#now();
      this.#transition('open', `${this.#failures} consecutive failures; last: ${describe(err)}`);
    }
  }

  #transition(to: CircuitState, reason: string): void {
    const from = this.#state;
    this.#state = to;
    this.#counts[`${from}->${to}` as CircuitTransition] += 1;
    this.#onTransition?.(from, to, reason);
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
