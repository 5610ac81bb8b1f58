export type { Bus, BusEntry, DeadLetter, GroupLag, PendingEntry } from './bus.js';
export type { RedisBusOptions } from './redis-bus.js';
export { RedisBus } from './redis-bus.js';
export { compareStreamIds, shardOf, shardStream, streamIdMs } from './sharding.js';
