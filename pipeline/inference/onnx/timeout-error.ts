/** A model call that did not answer within its budget; the worker that ran it has been recycled. */
export class TimeoutError extends Error {
  /** The budget that was exceeded, in milliseconds. */
  readonly timeoutMs: number;

  constructor(message: string, timeoutMs: number) {
    super(message);
    this.name = this.constructor.name;
    this.timeoutMs = timeoutMs;
  }
}
