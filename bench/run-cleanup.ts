import { progress } from './bench-progress.js';

/** Steps run in reverse order of registration at the end of the run, whatever happened. */
export class Cleanup {
  readonly #steps: { what: string; fn: () => Promise<unknown> }[] = [];

  add(what: string, fn: () => Promise<unknown>): void {
    this.#steps.push({ what, fn });
  }

  async run(): Promise<void> {
    for (const step of this.#steps.reverse()) {
      try {
        await step.fn();
      } catch (err) {
        progress(`cleanup: ${step.what} failed: ${(err as Error).message}`);
      }
    }
  }
}
