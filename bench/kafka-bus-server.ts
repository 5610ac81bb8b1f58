/**
 * The bench's Kafka admin requests: when a partition's first and last records were appended
 * (ListOffsets by timestamp returns the record's own timestamp), the memory and CPU of the broker
 * JVM (the local process listening on the broker's port) from `/proc`, and the deletion of the run's topics and consumer groups.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Admin } from '@platformatic/kafka';
import type { KafkaBus } from '../pipeline/bus/index.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import type { BusServer, ServerStats } from './bus-server.js';
import { readCpuSeconds, readMemory } from './proc-stats.js';
import type { RunPlan } from './run-plan.js';

/** ListOffsets timestamps: the first record at or after epoch 0 (the log's first), and the record with the largest timestamp. */
const FIRST_RECORD = 0n;
const MAX_TIMESTAMP = -3n;

/** Socket inodes listening on `port` (any local address), from `/proc/net/tcp{,6}`. */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT, st 0A is LISTEN, the inode is the tenth field.
      if (f.length > 9 && f[3] === '0A' && Number.parseInt(f[1].split(':')[1] ?? '', 16) === port) inodes.add(f[9]);
    }
  }
  return inodes;
}

/** The local process listening on the broker's port (the bench only targets loopback brokers), if any. */
function localBrokerPid(brokers: readonly string[]): number | undefined {
  const port = Number(brokers[0]?.split(':').pop());
  const inodes = Number.isInteger(port) ? listeningInodes(port) : new Set<string>();
  if (inodes.size === 0) return undefined;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        const target = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (target && inodes.has(target[1])) return Number(pid);
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return undefined;
}

export class KafkaBusServer implements BusServer {
  readonly kind = 'kafka' as const;
  readonly #admin: Admin;
  readonly #bus: KafkaBus;
  /** The broker's pid when it runs on this host (the bench only targets loopback brokers). */
  readonly #brokerPid: number | undefined;

  private constructor(admin: Admin, bus: KafkaBus, brokerPid: number | undefined) {
    this.#admin = admin;
    this.#bus = bus;
    this.#brokerPid = brokerPid;
  }

  /** `bus` is the run's own KafkaBus: its stream → (topic, partition) mapping is the one used here. */
  static async connect(config: StreamingConfig, bus: KafkaBus): Promise<KafkaBusServer> {
    const k = config.bus.kafka;
    const admin = new Admin({ clientId: `${k.client_id}-bench`, bootstrapBrokers: [...k.brokers], retries: 2, retryDelay: 250, timeout: 10_000 });
    try {
      await admin.listTopics();
    } catch (err) {
      await admin.close().catch(() => undefined);
      throw new Error(`Kafka is not reachable at ${k.brokers.join(',')}: ${(err as Error).message} (start it: bash scripts/stack-start.sh kafka)`);
    }
    return new KafkaBusServer(admin, bus, localBrokerPid(k.brokers));
  }

  /** Per stream, the timestamp of the record ListOffsets finds for `timestamp`; partitions without records are left out. */
  async #recordTimes(streams: readonly string[], timestamp: bigint): Promise<number[]> {
    const topics = await this.#admin.listTopics();
    const wanted = streams.map((s) => this.#bus.locate(s)).filter((loc) => topics.includes(loc.topic));
    if (wanted.length === 0) return [];
    const byTopic = new Map<string, number[]>();
    for (const loc of wanted) byTopic.set(loc.topic, [...(byTopic.get(loc.topic) ?? []), loc.partition]);
    const listed = await this.#admin.listOffsets({
      topics: [...byTopic].map(([name, partitions]) => ({ name, partitions: partitions.map((partitionIndex) => ({ partitionIndex, timestamp })) })),
    });
    return listed.flatMap((t) => t.partitions.filter((p) => p.offset >= 0n && p.timestamp >= 0n).map((p) => Number(p.timestamp)));
  }

  async firstEntryMs(streams: readonly string[]): Promise<number | undefined> {
    const times = await this.#recordTimes(streams, FIRST_RECORD);
    return times.length > 0 ? Math.min(...times) : undefined;
  }

  async lastEntryMs(streams: readonly string[]): Promise<number | undefined> {
    const times = await this.#recordTimes(streams, MAX_TIMESTAMP);
    return times.length > 0 ? Math.max(...times) : undefined;
  }

  stats(): Promise<ServerStats> {
    const pid = this.#brokerPid;
    return Promise.resolve(
      pid === undefined ? { rssBytes: undefined, cpuSeconds: undefined } : { rssBytes: readMemory(pid)?.rssBytes, cpuSeconds: readCpuSeconds(pid) },
    );
  }

  /** Every topic and consumer group named after the run's tag. */
  async deleteRunStreams(plan: RunPlan): Promise<string> {
    const topics = (await this.#admin.listTopics()).filter((t) => t.startsWith(`${plan.tag}.`));
    if (topics.length > 0) await this.#admin.deleteTopics({ topics });
    const groups = [...(await this.#admin.listGroups()).keys()].filter((g) => g.startsWith(`${plan.tag}-`));
    if (groups.length > 0) await this.#admin.deleteGroups({ groups });
    return `${topics.length} topics, ${groups.length} consumer groups`;
  }

  async close(): Promise<void> {
    await this.#admin.close();
  }
}
