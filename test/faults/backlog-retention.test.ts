/**
 * Fault matrix, row h: a backlog larger than retention. With `bus.redis.maxlen` 2,000 and the
 * consumers stopped (drained), the pipeline's own producer (`producerWorkflow`, finite mode)
 * publishes 6,000 events; then the consumers start again. No event the producer published may be
 * lost unread: retention may only trim what the group has acknowledged, or the producer must be
 * slowed (if it stalls, the consumers are started while it waits). Every event must be in exactly
 * one bar, none late, none dead-lettered, nothing pending.
 *
 * Scaled down from the 1.25 M backlog on a 1 M retention to 3× a 2,000-entry retention.
 */
import type { Redis } from 'ioredis';
import type { ProducedEntry } from '../helpers/accounting.js';
import { assertAccounted } from '../helpers/accounting.js';
import { useFaultStack, withTimeout } from '../helpers/fault-run.js';
import { pollUntil } from '../helpers/wait.js';
import { formatMicros } from '../../pipeline/contracts/index.js';
import { SyntheticProducer } from '../../pipeline/producers/index.js';
import { producerWorkflowId } from '../../workflows/index.js';
import { RECOVERY_MS } from './matrix.js';

const MAXLEN = 2000;
const BACKLOG = 3 * MAXLEN;
const PER_WINDOW = 300;
/** The producer activity publishes finite runs in rounds of this many (activities/producer-activity.ts). */
const PRODUCER_ROUND = 5000;

describe('fault matrix h: a backlog larger than retention', function () {
  this.timeout(300_000);
  const faults = useFaultStack('backlog-retention');

  it(`no unread event is trimmed (${BACKLOG} published on a ${MAXLEN}-entry retention); exact accounting`, async function () {
    const run = await faults.run('backlog', { overrides: { bus: { redis: { maxlen: MAXLEN } } } });
    const stream = run.streams[0];
    // Consumers run first (the group exists and has read everything), then drain.
    const warmUp = run.plan(2, PER_WINDOW);
    await run.startWorker();
    await run.startConsumers();
    await run.publish(warmUp.flat());
    await run.settle(60_000);
    await run.drain();

    const startUs = (Math.floor(Date.parse(warmUp[1][0].src_ts) / run.windowMs) + 1) * run.windowMs * 1000;
    const options = {
      provider: run.provider,
      symbols: [...run.symbols],
      seed: 11,
      priceVolatility: 0.3,
      tickRate: PER_WINDOW / run.symbols.length / (run.windowMs / 1000),
    };
    const producer = await run.client.workflow.start('producerWorkflow', {
      taskQueue: run.config.temporal.task_queue,
      workflowId: producerWorkflowId(run.provider),
      args: [
        {
          count: BACKLOG,
          startTs: formatMicros(startUs),
          symbols: options.symbols,
          seed: options.seed,
          tickRate: options.tickRate,
          priceVolatility: options.priceVolatility,
        },
      ],
    });
    const finished = producer.result().then(() => true);
    // Until the producer is done, or stalls for 5 s (backpressure while nothing consumes).
    let lastAdded = -1,
      since = Date.now();
    await Promise.race([
      finished,
      pollUntil(
        120_000,
        async () => {
          const added = await entriesAdded(run.redis, stream);
          if (added !== lastAdded) [lastAdded, since] = [added, Date.now()];
          return Date.now() - since > 5000 ? true : undefined;
        },
        { everyMs: 250 },
      ),
    ]);

    await run.startConsumers();
    await withTimeout(finished, 120_000, 'the producer to publish the whole backlog');
    // The same events again, as the producer generated them (rounds of PRODUCER_ROUND).
    const replica = new SyntheticProducer(options);
    const events = replica.generateFinite({ count: Math.min(PRODUCER_ROUND, BACKLOG), startUs });
    while (events.length < BACKLOG) events.push(...replica.generateFinite({ count: Math.min(PRODUCER_ROUND, BACKLOG - events.length) }));
    run.produced.push(...events.map((event): ProducedEntry => ({ stream, payload: JSON.stringify(event), event, expect: 'valid' })));

    await run.settle(RECOVERY_MS);
    const accounting = await run.account();
    assertAccounted(accounting);
  });
});

async function entriesAdded(redis: Redis, stream: string): Promise<number> {
  const info = (await redis.xinfo('STREAM', stream)) as (string | number)[];
  return Number(info[info.indexOf('entries-added') + 1]);
}
