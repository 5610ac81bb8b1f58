/** No worker polled the task queue within the wait: a workflow started now would wait for one indefinitely. */
export class NoWorkerError extends Error {
  constructor(
    readonly taskQueue: string,
    readonly waitedMs: number,
    message: string,
  ) {
    super(message);
    this.name = this.constructor.name;
  }
}
