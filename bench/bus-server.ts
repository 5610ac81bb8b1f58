/**
 * What the bench reads from the bus's server beside the pipeline's own {@link Bus}: when the run's
 * first and last events were appended, the server's memory and CPU, and the deletion of the run's
 * streams or topics at the end. Redis and Kafka each implement it next to this file.
 */
import type { Bus } from '../pipeline/bus/index.js';
import { KafkaBus } from '../pipeline/bus/index.js';
import type { BusType } from '../pipeline/config/index.js';
import { KafkaBusServer } from './kafka-bus-server.js';
import { RedisBusServer } from './redis-bus-server.js';
import type { RunPlan } from './run-plan.js';

/** The server process's resident memory and CPU so far (undefined where it cannot be read). */
export interface ServerStats {
  readonly rssBytes: number | undefined;
  readonly cpuSeconds: number | undefined;
}

export interface BusServer {
  readonly kind: BusType;
  /**
   * When the oldest entry `streams` still hold was appended (undefined while they hold none). Redis
   * trims what every group acknowledged, so this is the run's first event only until its window is
   * acknowledged: the sampler watches for it from the start of production.
   */
  firstEntryMs(streams: readonly string[]): Promise<number | undefined>;
  /** When the last entry ever appended to `streams` was appended, trimmed or not (undefined: none yet). */
  lastEntryMs(streams: readonly string[]): Promise<number | undefined>;
  stats(): Promise<ServerStats>;
  /** Deletes the run's streams (topics) and whatever the bus keeps per consumer group; says what it deleted. */
  deleteRunStreams(plan: RunPlan): Promise<string>;
  close(): Promise<void>;
}

/** The server of the run's `bus` (from `openBus`), connected; fails with a hint when it is not reachable. */
export async function connectBusServer(plan: RunPlan, bus: Bus): Promise<BusServer> {
  return bus instanceof KafkaBus ? KafkaBusServer.connect(plan.config, bus) : RedisBusServer.connect(plan.config);
}
