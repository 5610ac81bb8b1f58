export type { Bus, BusEntry, DeadLetter, GroupLag, PendingEntry, StreamBacklog, UnreadLoss } from './bus.js';
export type { RedisBusOptions } from './redis-bus.js';
export { RedisBus } from './redis-bus.js';
export { lossMemoKey } from './redis-retention.js';
export { shardOf, shardStream, streamIdMs } from './sharding.js';
export { BACKLOG_CLEAR_RATIO, BACKLOG_WAIT_RATIO, BacklogWatch } from './backlog-watch.js';
export { RetentionKeeper } from './retention-keeper.js';
export type { RetentionKeeperOptions } from './retention-keeper.js';
