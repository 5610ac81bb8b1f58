export type { Bus, BusEntry, DeadLetter, GroupLag, PendingEntry, StreamBacklog, UnreadLoss } from './bus.js';
export { deadLetterFields, fieldsAsText, fieldsFromText, hasPayload } from './bus.js';
export type { BusEncoding, BusPayload, Decoded, EventFormat, EventFrame } from './event-codec.js';
export {
  BUS_ENCODINGS,
  decodePacked,
  DEFAULT_EVENT_FORMAT,
  encodeEvent,
  isFrame,
  joinJsonFrame,
  packedAsJson,
  packFrame,
  splitJsonFrame,
  splitPackedFrame,
} from './event-codec.js';
export type { RedisBusOptions } from './redis-bus.js';
export { RedisBus } from './redis-bus.js';
export { compareStreamIds, entryIdOf, frameEventId, shardOf, shardStream, streamIdMs } from './sharding.js';
export { lossMemoKey } from './redis-retention.js';
export { BacklogGate } from './backlog-gate.js';
export { encodeShardBatch, ShardPublisher } from './shard-publisher.js';
export type { ShardPublisherOptions } from './shard-publisher.js';
export type { BacklogGateOptions, WaitOptions } from './backlog-gate.js';
export { BACKLOG_CLEAR_RATIO, BACKLOG_WAIT_RATIO, BacklogWatch } from './backlog-watch.js';
export { RetentionKeeper } from './retention-keeper.js';
export type { RetentionKeeperOptions } from './retention-keeper.js';
export { KafkaBus, topicName } from './kafka-bus.js';
export type { KafkaBusOptions } from './kafka-bus.js';
export { openBus } from './open-bus.js';
export { matchesDeadLetter } from './dead-letter-store.js';
export type { DeadLetterFilter, DeadLetterStore, RedriveMark, StoredDeadLetter } from './dead-letter-store.js';
export { RedisDeadLetterStore, redriveMarksKey } from './redis-dead-letter-store.js';
export { DEAD_LETTER_STORE_ERROR_CODES, DeadLetterStoreError } from './dead-letter-store-error.js';
export type { DeadLetterStoreErrorCode } from './dead-letter-store-error.js';
export { isRedisConnectionError } from './redis-connection-error.js';
