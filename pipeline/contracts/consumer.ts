/** The roles of a shard consumer. Each (role, stream, shard) has exactly one owner. */
export const CONSUMER_ROLES = ['microbatch', 'inference'] as const;
export type ConsumerRole = (typeof CONSUMER_ROLES)[number];

/**
 * The owner of a role's shard: the id of its Temporal workflow, which is also its consumer name on
 * the bus. Deterministic, so a restarted or recovered owner is the same consumer.
 *
 * @example
 * shardOwnerId('microbatch', 'mdp.events', 3) // 'mdp-microbatch-mdp.events-3'
 */
export function shardOwnerId(role: ConsumerRole, baseStream: string, shard: number): string {
  return `mdp-${role}-${baseStream}-${shard}`;
}
