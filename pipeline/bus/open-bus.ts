import type { Bus } from './bus.js';
import type { StreamingConfig } from '../config/index.js';
import { parseDurationMs } from '../contracts/index.js';
import type { Logger, OutageLog } from '../telemetry/index.js';
import { KafkaBus } from './kafka-bus.js';
import { RedisBus } from './redis-bus.js';

/**
 * The configured bus (`bus.type`): Redis Streams, or Kafka with one partition per shard of the
 * event and feature topics. Every process opens its buses here, so the bus is swapped in one place.
 */
export function openBus(config: StreamingConfig, options: { readonly connectionErrors?: OutageLog; readonly log?: Logger } = {}): Bus {
  const eventFormat = { encoding: config.bus.encoding, frameEvents: config.bus.redis.frame_events };
  if (config.bus.type === 'kafka') {
    const k = config.bus.kafka;
    return new KafkaBus({
      brokers: k.brokers,
      clientId: k.client_id,
      partitions: config.bus.shards,
      sharded: [k.stream, k.features_stream],
      replicationFactor: k.replication_factor,
      retentionMs: parseDurationMs(k.retention) ?? 7 * 86_400_000,
      maxBacklog: k.max_backlog,
      eventFormat,
    });
  }
  const r = config.bus.redis;
  return new RedisBus(r.uri, {
    maxLen: r.maxlen,
    eventFormat,
    ...(options.connectionErrors ? { connectionErrors: options.connectionErrors } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
}
