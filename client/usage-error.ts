/**
 * The command line was used wrongly (a missing, conflicting or invalid option): `mdp` prints the
 * message and a pointer to the command's `--help`, and exits 2.
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}
