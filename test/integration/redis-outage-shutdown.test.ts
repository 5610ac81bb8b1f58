import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Kysely } from 'kysely';
import { RedisBus } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import { createLogger, OutageLog } from '../../pipeline/telemetry/index.js';
import type { Database } from '../../store/index.js';
import { microBatchWorkflowId, producerWorkflowId } from '../../workflows/index.js';
import { PrivateRedis } from '../helpers/private-services.js';
import { cleanupTestRun, connectStore, startTemporal, testConfig, uniqueTag } from '../helpers/services.js';
import { startWorkerProcess, writeConfigFile } from '../helpers/worker-process.js';
import type { WorkerProcess } from '../helpers/worker-process.js';
import { waitFor } from '../helpers/wait.js';

/** The worker's log lines (JSON objects; anything else as `{ msg: line }`). */
function logLines(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return { msg: line };
      }
    });
}

const isRedisError = (line: Record<string, unknown>): boolean => /redis/i.test(String(line.msg)) && line.level === 'error';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The outage the worker goes through before SIGTERM: longer than one summary interval. */
const OUTAGE_MS = 12_000;

describe('Redis outage, then SIGTERM: the worker exits promptly and does not flood its log', function () {
  this.timeout(180_000);
  let env: TestWorkflowEnvironment;
  let redis: PrivateRedis;
  let db: Kysely<Database>;
  let config: StreamingConfig;
  const workers: WorkerProcess[] = [];

  before(async function () {
    env = await startTemporal();
    redis = await PrivateRedis.start();
    config = testConfig(uniqueTag(), { bus: { shards: 2, redis: { uri: redis.uri } }, temporal: { address: env.address } });
    db = await connectStore(config);
  });

  after(async function () {
    for (const w of workers) w.child.kill('SIGKILL');
    await redis?.destroy();
    await cleanupTestRun(config, { db, env });
  });

  it('a RedisBus reports an outage through its logger once, its end once, and nothing after close()', async function () {
    const lines: Record<string, unknown>[] = [];
    const connectionErrors = new OutageLog(
      createLogger('INFO', (line) => lines.push(JSON.parse(line) as Record<string, unknown>)),
      'redis',
    );
    const bus = new RedisBus(redis.uri, { maxLen: 1000, connectionErrors });
    const stream = `${config.bus.redis.stream}.bus`;
    try {
      await bus.publish(stream, ['x']);
      await redis.stop();
      await assert.rejects(bus.readNew(stream, 'g', 'c', 10, 100), 'a read fails while the server is down instead of waiting for it');
      await sleep(2000); // several reconnect attempts of both connections
      assert.deepEqual(
        lines.map((l) => l.msg),
        ['redis connection error'],
      );
      await redis.start();
      await waitFor('the restored line', 10_000, () => Promise.resolve(lines.some((l) => l.msg === 'redis connection restored') ? true : undefined));
      assert.equal(await bus.length(stream), 0, 'a new server, without the old data');
      await redis.stop();
      await waitFor('the first error of the second outage', 10_000, () => Promise.resolve(lines.length === 3 ? true : undefined));
    } finally {
      await bus.close();
    }
    await sleep(2000);
    assert.deepEqual(
      lines.map((l) => l.msg),
      ['redis connection error', 'redis connection restored', 'redis connection error'],
      'nothing after close()',
    );
    await redis.start();
  });

  it('logs the first Redis error and bounded summaries, then exits within seconds of SIGTERM', async function () {
    const tag = config.bus.redis.stream;
    const worker = startWorkerProcess(writeConfigFile(config, `redis-outage-${tag}`), `redis-outage-${tag}`);
    workers.push(worker);
    const start = (workflowId: string, workflow: string, args: unknown[]) =>
      env.client.workflow.start(workflow, { taskQueue: config.temporal.task_queue, workflowId, args });
    await start(producerWorkflowId(config.producers.synthetic.provider), 'producerWorkflow', [{ provider: 'synthetic', rate: 50 }]);
    for (const shard of [0, 1]) await start(microBatchWorkflowId(config.bus.redis.stream, shard), 'streamConsumerWorkflow', [{ role: 'microbatch', shard }]);
    await waitFor(
      'both consumers and the producer running',
      60_000,
      () => {
        const lines = logLines(worker.logFile);
        const consumers = lines.filter((l) => l.msg === 'micro-batch consumer started').length;
        return Promise.resolve(consumers >= 2 && lines.some((l) => l.msg === 'producer started') ? true : undefined);
      },
      { guard: () => assert.equal(worker.child.exitCode, null, 'the worker exited early') },
    );

    const atOutage = logLines(worker.logFile).length;
    await redis.stop();
    await sleep(OUTAGE_MS); // while the worker runs: its consumers and producer fail and are retried
    const atSigterm = logLines(worker.logFile).length;
    const sentAt = Date.now();
    worker.child.kill('SIGTERM');
    const exited = await Promise.race([worker.exited.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 30_000))]);
    const exitMs = Date.now() - sentAt;
    const lines = logLines(worker.logFile);
    const redisErrors = lines.filter(isRedisError);
    const afterSigterm = lines.slice(atSigterm).filter((l) => l.level === 'error');
    console.log(
      `      exit ${exited ? `after ${exitMs} ms` : 'not within 30 s'}; Redis connection error lines: ${redisErrors.length}; ` +
        `error lines after SIGTERM: ${afterSigterm.length}`,
    );
    assert.ok(exited, 'the worker exits after SIGTERM although Redis is down');
    assert.ok(exitMs < 10_000, `the worker took ${exitMs} ms to exit`);
    // The first error, then at most one summary per 10 s.
    assert.ok(redisErrors.length >= 1 && redisErrors.length <= 1 + Math.ceil(OUTAGE_MS / 10_000), `Redis error lines: ${JSON.stringify(redisErrors)}`);
    assert.ok(afterSigterm.length <= 5, `error lines after SIGTERM: ${JSON.stringify(afterSigterm)}`);
    // The outage is the bus's line (naming Redis and its masked URL), not a line per attempt of
    // every activity from the activity and another from the SDK.
    assert.equal(redisErrors[0].msg, 'redis connection error');
    assert.match(String(redisErrors[0].uri), /^redis:\/\/127\.0\.0\.1:\d+/);
    const duringOutage = lines.slice(atOutage, atSigterm).filter((l) => l.level === 'warning' || l.level === 'error');
    assert.deepEqual(
      duringOutage.filter((l) => !isRedisError(l)).map((l) => l.msg),
      [],
      `lines beside the outage's own: ${JSON.stringify(duringOutage.filter((l) => !isRedisError(l)).slice(0, 3))}`,
    );
    assert.ok(
      lines.some((l) => l.msg === 'worker stopped'),
      'the worker shut down through its own path',
    );
  });
});
