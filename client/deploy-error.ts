/** A deploy command that cannot do what was asked (exit 1, the message says why and what to do). */
export class DeployError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}
