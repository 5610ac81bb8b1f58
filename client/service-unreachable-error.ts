/** The services a command may fail to reach, as named in its one-line error. */
export const SERVICES = ['Redis', 'Kafka', 'PostgreSQL', 'Temporal'] as const;
export type Service = (typeof SERVICES)[number];

/**
 * A service a command needs did not answer: one line naming the service and where it was looked
 * for (its URL with the password masked), instead of the driver's retry chatter. `mdp` exits 1.
 */
export class ServiceUnreachableError extends Error {
  constructor(
    readonly service: Service,
    /** Where it was looked for, already redacted. */
    readonly where: string,
    options: { readonly cause?: unknown } = {},
  ) {
    const why = options.cause instanceof Error ? `: ${options.cause.message}` : '';
    super(`cannot reach ${service} at ${where}${why}`, options);
    this.name = this.constructor.name;
  }
}
