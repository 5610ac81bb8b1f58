/** A call refused without running because the breaker is open (or half-open with its trial in flight). */
export class CircuitOpenError extends Error {
  /** The breaker's state when it refused the call. */
  readonly state: 'open' | 'half-open';

  constructor(message: string, state: 'open' | 'half-open') {
    super(message);
    this.name = this.constructor.name;
    this.state = state;
  }
}
