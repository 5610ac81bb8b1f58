/**
 * What integration tests see of the bus, the same way on Redis and on Kafka: where a group stands,
 * every entry of a stream, publishing with the ids the bus returned. It goes through the `Bus`
 * interface (`openBus(config)`), so a check written once holds for both buses; only what the
 * interface does not offer — rewinding a group, listing and removing a run's streams — speaks
 * each bus's own client.
 */
import { Admin } from '@platformatic/kafka';
import type { Redis } from 'ioredis';
import type { Bus, BusEntry } from '../../pipeline/bus/index.js';
import { KafkaBus, openBus, topicName } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import type { Fields, GroupProgress, StreamReader } from './accounting.js';
import { withTimeout } from './fault-run.js';
import { connectRedis } from './services.js';
import { pollUntil } from './wait.js';

const HINT = 'start the local stack first: bash scripts/stack-start.sh kafka (or run the tests with bash scripts/test.sh)';

import { entryFields } from './accounting.js';

export { entryFields };

export class BusProbe {
  readonly bus: Bus;
  readonly kind: 'redis' | 'kafka';
  readonly #redis: Redis | undefined;
  readonly #admin: Admin | undefined;
  #closed: Promise<void> | undefined;

  private constructor(bus: Bus, clients: { redis?: Redis; admin?: Admin }) {
    this.bus = bus;
    this.kind = bus.kind;
    this.#redis = clients.redis;
    this.#admin = clients.admin;
  }

  /** A probe on the configured bus; fails with a hint when the bus does not answer. */
  static async open(config: StreamingConfig): Promise<BusProbe> {
    if (config.bus.type === 'redis') return new BusProbe(openBus(config), { redis: await connectRedis(config) });
    const brokers = config.bus.kafka.brokers;
    const admin = new Admin({ clientId: `${config.bus.kafka.client_id}-test-probe`, bootstrapBrokers: [...brokers], retries: 1 });
    try {
      await withTimeout(admin.listTopics(), 10_000, `Kafka at ${brokers.join(',')}`);
    } catch (err) {
      await admin.close().catch(() => undefined);
      throw new Error(`Kafka is not reachable at ${brokers.join(',')}: ${(err as Error).message}; ${HINT}`);
    }
    return new BusProbe(openBus(config), { admin });
  }

  /** The group's pending and never-delivered entries on a stream (nothing for a missing stream). */
  async progress(stream: string, group: string): Promise<GroupProgress> {
    const lag = await this.bus.lag(stream, group, Date.now());
    return { pending: lag.pending, undelivered: lag.undelivered, lag: undefined };
  }

  /** Every entry a stream holds, oldest first. */
  async entries(stream: string): Promise<BusEntry[]> {
    const length = await this.bus.length(stream);
    // The margin covers entries appended between the two calls (tail takes the newest ones).
    return length === 0 ? [] : this.bus.tail(stream, length + 1000);
  }

  /** The payloads of a stream's entries, oldest first, parsed as JSON. */
  async payloads<T>(stream: string): Promise<T[]> {
    return (await this.entries(stream)).flatMap((e) => (e.payload === undefined ? [] : [JSON.parse(e.payload) as T]));
  }

  /** What the accounting oracle reads (see `accountFor`). */
  reader(): StreamReader {
    return {
      entries: async (stream) => (await this.entries(stream)).map((e): [string, Fields] => [e.id, entryFields(e)]),
      progress: (stream, group) => this.progress(stream, group),
    };
  }

  /** Waits until the group has nothing pending and nothing unread on every stream; false after `timeoutMs`. */
  async waitSettled(streams: readonly string[], group: string, timeoutMs: number): Promise<boolean> {
    const settled = await pollUntil(
      timeoutMs,
      async () => {
        for (const stream of streams) {
          const p = await this.progress(stream, group);
          if (p.pending > 0 || p.undelivered > 0) return undefined;
        }
        return true;
      },
      { everyMs: 100 },
    );
    return settled === true;
  }

  /**
   * Makes `group` deliver a stream's entries again from its first one, as if it had never read
   * them: Redis `XGROUP SETID … 0`; Kafka, the group's offset committed back to the log's start
   * (an offset tool's commit, without mdp's metadata). Redis applies it at once; a Kafka owner
   * reads its committed offset when its run starts, so restart the consumer after a rewind.
   */
  async rewind(stream: string, group: string): Promise<void> {
    if (this.#redis) {
      await this.#redis.call('XGROUP', 'SETID', stream, group, '0', 'ENTRIESREAD', '0');
      return;
    }
    const { topic, partition } = this.#kafka().locate(stream);
    await this.#admin!.alterConsumerGroupOffsets({ groupId: group, topics: [{ name: topic, partitionOffsets: [{ partition, offset: 0n }] }] });
  }

  /** Appends an entry with raw fields (Redis only: what no producer writes, such as a frame that cannot be split). */
  async appendRaw(stream: string, fields: Record<string, string | Buffer>): Promise<string> {
    if (!this.#redis) throw new Error('appendRaw needs the Redis bus');
    return (await this.#redis.xadd(stream, '*', ...Object.entries(fields).flat()))!;
  }

  /** Names of the streams (Redis keys) or topics (Kafka) that start with `prefix`. */
  async streams(prefix: string): Promise<string[]> {
    if (this.#redis) {
      const keys = await this.#redis.keys(`${prefix}*`);
      const out: string[] = [];
      for (const key of keys) if ((await this.#redis.type(key)) === 'stream') out.push(key);
      return out.sort();
    }
    const topicPrefix = topicName(prefix);
    return (await this.#admin!.listTopics()).filter((t) => t.startsWith(topicPrefix)).sort();
  }

  /** Removes everything of a run named after `tag`: its streams (topics), fences and groups. */
  async removeRun(tag: string): Promise<void> {
    if (this.#redis) {
      const keys = [...(await this.#redis.keys(`${tag}.*`)), ...(await this.#redis.keys(`mdp:fence:${tag}.*`))];
      if (keys.length > 0) await this.#redis.del(...keys);
      return;
    }
    const admin = this.#admin!;
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${tag}.`));
    if (topics.length > 0) await admin.deleteTopics({ topics });
    const groups = [...(await admin.listGroups()).keys()].filter((g) => g.startsWith(`${tag}-`));
    if (groups.length > 0) await admin.deleteGroups({ groups });
  }

  #kafka(): KafkaBus {
    if (!(this.bus instanceof KafkaBus)) throw new Error(`a ${this.kind} bus has no Kafka topics`);
    return this.bus;
  }

  /** Closes the bus and the clients; idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.bus.close();
      await this.#redis?.quit().catch(() => undefined);
      await this.#admin?.close().catch(() => undefined);
    })();
    return this.#closed;
  }
}
