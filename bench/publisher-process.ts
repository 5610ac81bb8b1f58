#!/usr/bin/env node
/**
 * The bench's load publisher in a process of its own (`--publisher process`, the default for
 * `--rate max` and `--backlog`): its CPU is then measured apart from the bench's sampling and
 * report, and it competes for the two cores like any external feed would. The bench forks it with
 * an IPC channel (see {@link PublisherProcess}), sends one `run` message, may send `stop`, and gets
 * `progress` messages once a second and one `done` (or `error`) message at the end.
 */
import { openBus } from '../pipeline/bus/index.js';
import { loadStreamingConfig } from '../pipeline/config/index.js';
import { LoadPublisher } from './load-publisher.js';
import type { LoadPublisherOptions, LoadPublisherResult } from './load-publisher.js';

/** What the bench sends: the run's config file and the publisher's options (everything but the bus). */
export interface PublisherRunMessage {
  readonly type: 'run';
  readonly configPath: string;
  readonly options: Omit<LoadPublisherOptions, 'bus' | 'undelivered'>;
  /** Closed loop: the streams and group whose undelivered entries throttle publishing. */
  readonly streams: readonly string[];
  readonly group: string;
  readonly untilMs: number;
}

export type PublisherReply =
  | { readonly type: 'progress'; readonly published: number }
  | { readonly type: 'done'; readonly result: LoadPublisherResult; readonly usage: PublisherUsage }
  | { readonly type: 'error'; readonly message: string };

/** What the publisher process used over its whole life, measured by itself (it exits right after). */
export interface PublisherUsage {
  readonly cpuSeconds: number;
  readonly peakRssBytes: number;
}

const PROGRESS_EVERY_MS = 1000;

function send(reply: PublisherReply): Promise<void> {
  return new Promise((done) => process.send!(reply, () => done()));
}

async function run(message: PublisherRunMessage): Promise<void> {
  const config = loadStreamingConfig({ file: message.configPath, env: process.env });
  const bus = openBus(config);
  // A second connection for the closed loop's probes, so they never wait behind a publishing batch.
  const probe = message.options.maxBacklog === undefined ? undefined : openBus(config);
  const publisher = new LoadPublisher({
    ...message.options,
    bus,
    undelivered: async () => {
      let sum = 0;
      for (const stream of message.streams) sum += (await probe!.lag(stream, message.group, Date.now())).undelivered;
      return sum;
    },
  });
  process.on('message', (m: { type?: string }) => {
    if (m.type === 'stop') publisher.stop();
  });
  const ticker = setInterval(() => void send({ type: 'progress', published: publisher.published }), PROGRESS_EVERY_MS);
  try {
    const result = await publisher.run(message.untilMs);
    const cpu = process.cpuUsage();
    await send({ type: 'done', result, usage: { cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssBytes: process.resourceUsage().maxRSS * 1024 } });
  } finally {
    clearInterval(ticker);
    await bus.close();
    await probe?.close();
  }
}

if (!process.send) {
  process.stderr.write('publisher-process: run by the bench (node dist/bench/throughput.js), not by hand\n');
  process.exit(2);
}
process.once('message', (message: PublisherRunMessage) => {
  run(message)
    .catch((err: unknown) => send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }))
    // A normal exit, so --cpu-prof writes its profile.
    .finally(() => process.exit(0));
});
