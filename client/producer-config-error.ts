/** A producer's config does not let it start: the message names the keys (exit 2). */
export class ProducerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}
