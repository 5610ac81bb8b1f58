/**
 * The bench's plain Redis commands: stream bounds (XRANGE / XREVRANGE ids carry the append time),
 * redis-server's INFO memory and CPU, and the deletion of the run's keys.
 */
import { Redis } from 'ioredis';
import { lossMemoKey, streamIdMs } from '../pipeline/bus/index.js';
import { redactSecrets } from '../pipeline/config/index.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import type { BusServer, ServerStats } from './bus-server.js';
import type { RunPlan } from './run-plan.js';

/** Hash where RedisBus keeps consumer checkpoints (its default; workers/wiring.ts does not change it). */
const CHECKPOINT_KEY = 'mdp:checkpoints';

function infoNumber(info: string, field: string): number | undefined {
  const m = new RegExp(`^${field}:([\\d.]+)`, 'm').exec(info);
  return m ? Number(m[1]) : undefined;
}

export class RedisBusServer implements BusServer {
  readonly kind = 'redis' as const;
  readonly #redis: Redis;

  private constructor(redis: Redis) {
    this.#redis = redis;
  }

  static async connect(config: StreamingConfig): Promise<RedisBusServer> {
    const r = config.bus.redis;
    const redis = new Redis(r.uri, { lazyConnect: true, maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined); // surfaced by the commands that fail
    try {
      await redis.connect();
    } catch (err) {
      throw new Error(`Redis is not reachable at ${redactSecrets(r.uri, [r.uri])}: ${(err as Error).message} (start the stack: bash scripts/stack-start.sh)`);
    }
    return new RedisBusServer(redis);
  }

  async firstEntryMs(streams: readonly string[]): Promise<number | undefined> {
    const ids = (await Promise.all(streams.map((s) => this.#redis.xrange(s, '-', '+', 'COUNT', 1)))).flat().map(([id]) => streamIdMs(id));
    return ids.length > 0 ? Math.min(...ids) : undefined;
  }

  /** From XINFO STREAM `last-generated-id`, which trimming leaves alone. */
  async lastEntryMs(streams: readonly string[]): Promise<number | undefined> {
    const ids = await Promise.all(
      streams.map(async (s) => {
        if ((await this.#redis.exists(s)) === 0) return undefined;
        const info = (await this.#redis.xinfo('STREAM', s)) as unknown[];
        const id = String(info[info.indexOf('last-generated-id') + 1]);
        return id === '0-0' ? undefined : streamIdMs(id);
      }),
    );
    const known = ids.filter((ms): ms is number => ms !== undefined);
    return known.length > 0 ? Math.max(...known) : undefined;
  }

  async stats(): Promise<ServerStats> {
    const info = `${await this.#redis.info('memory')}\n${await this.#redis.info('cpu')}`;
    const user = infoNumber(info, 'used_cpu_user');
    const sys = infoNumber(info, 'used_cpu_sys');
    return { rssBytes: infoNumber(info, 'used_memory_rss'), cpuSeconds: user !== undefined && sys !== undefined ? user + sys : undefined };
  }

  async deleteRunStreams(plan: RunPlan): Promise<string> {
    const { streams, featureStreams } = plan;
    const r = plan.config.bus.redis;
    const keys = await this.#redis.del(...streams, ...featureStreams, r.late_stream, r.dlq_stream, r.signals_stream, plan.baselineStream);
    await this.#redis.del(...[...streams, ...featureStreams].map(lossMemoKey)); // the consumers' unread-loss memos
    await this.#redis.hdel(CHECKPOINT_KEY, ...streams.map((s) => `${s}|${r.consumer_group}`));
    return `${keys} streams`;
  }

  async close(): Promise<void> {
    await this.#redis.quit();
  }
}
