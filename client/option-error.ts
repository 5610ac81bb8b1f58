/**
 * A command was invoked with options that cannot work (a bad value, a missing or conflicting flag):
 * the user's input, so the CLI exits 2 with the message, which names the flag and the value.
 */
export class OptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}
