import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { RedisBus, shardOf, shardStream, ShardPublisher } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import { deadLetterReason } from '../../pipeline/contracts/index.js';
import type { StreamEventV1 } from '../../pipeline/contracts/index.js';
import { createMetrics } from '../../pipeline/telemetry/index.js';
import type { Database } from '../../store/index.js';
import { StoreClient } from '../../store/index.js';
import { microBatchWorkflowId } from '../../workflows/index.js';
import { planWindows } from '../helpers/event-plan.js';
import { expectedBars } from '../helpers/expected-bars.js';
import {
  cleanupTestRun,
  connectRedis,
  connectStore,
  createTestWorker,
  groupState,
  REPO_ROOT,
  startTemporal,
  testConfig,
  uniqueTag,
} from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';
import { runNodeScript, writeConfigFile } from '../helpers/worker-process.js';

const CLI = resolve(REPO_ROOT, 'dist/client/cli.js');
const START_MS = Date.parse('2025-10-01T14:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
/** Windows 4..7 get no events: the hole `bars gaps` must find. */
const HOLE = { from: 4, to: 8 };

/**
 * The operator commands against a real pipeline run: a valid event that was dead-lettered for a
 * transient reason is redriven (exactly once, however often the user asks), the bars of the run
 * are exported and compared with the table, and a hole left in the event times is found as a gap.
 */
describe('mdp dlq and mdp bars, end to end (Redis, PostgreSQL, micro-batch under Temporal)', function () {
  this.timeout(240_000);
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let db: Kysely<Database>;
  let redis: Redis;
  let bus: RedisBus;
  let config: StreamingConfig;
  let configFile: string;
  let provider: string;
  let events: StreamEventV1[];
  let poison: StreamEventV1;
  let poisonDlqId: string;
  let invalidDlqId: string;
  let shard: string;
  const mdp = (...args: string[]) => runNodeScript(CLI, [...args, '--config', configFile]);

  before(async function () {
    const tag = uniqueTag('dlq');
    config = testConfig(tag);
    configFile = writeConfigFile(config, tag);
    provider = config.producers.synthetic.provider;
    redis = await connectRedis(config);
    db = await connectStore(config);
    bus = new RedisBus(config.bus.redis.uri, { maxLen: config.bus.redis.maxlen });
    env = await startTemporal();
    worker = await createTestWorker(env, config, db);

    const plan = planWindows({ provider, symbols: ['SPY'], windowMs: config.micro_batch.window_ms, startMs: START_MS, windows: 12, perWindow: 10 });
    events = plan.filter((_, i) => i < HOLE.from || i >= HOLE.to).flat();
    // The poison event is a valid one in the middle of window 2: it was dead-lettered for a transient
    // reason (delivered too often while, say, the store was down), not for its contents.
    poison = plan[2][5]!;
    shard = shardStream(config.bus.redis.stream, shardOf(provider, 'SPY', config.bus.shards));
    await bus.deadLetter(
      config.bus.redis.dlq_stream,
      config.bus.redis.consumer_group,
      [
        {
          sourceStream: shard,
          sourceId: '1759327200000-0',
          payload: JSON.stringify(poison),
          code: 'max_deliveries',
          reason: deadLetterReason({ code: 'max_deliveries', deliveries: 6, maxDeliveries: 5 }),
          deliveries: 6,
        },
        {
          sourceStream: 'file:/data/trades.jsonl',
          sourceId: '7',
          payload: '{"ver":1,"provider":"acme"',
          code: 'invalid_event',
          reason: deadLetterReason({ code: 'invalid_event', detail: 'trades.jsonl line 7: malformed JSON' }),
        },
      ],
      { ack: false },
    );
    const ids = (await redis.xrange(config.bus.redis.dlq_stream, '-', '+')).map(([id]) => id);
    [poisonDlqId, invalidDlqId] = ids as [string, string];
  });

  after(async function () {
    await bus?.close();
    await cleanupTestRun(config, { redis, db, env });
  });

  it('dlq ls lists both dead letters in aligned columns; --reason filters; show prints one with its payload', async function () {
    const ls = await mdp('dlq', 'ls');
    assert.equal(ls.code, 0, ls.stderr);
    const [header, ...rows] = ls.stdout.trimEnd().split('\n');
    assert.match(header ?? '', /^ID +TIME +CODE +SOURCE +SYMBOL +DELIVERIES +REDRIVEN +REASON$/);
    assert.equal(rows.length, 2);
    assert.match(rows[0] ?? '', new RegExp(`^${poisonDlqId} +\\S+ +max_deliveries +${shard}@1759327200000-0 +SPY +6 +- +delivered 6 times`));
    assert.match(rows[1] ?? '', new RegExp(`^${invalidDlqId} +\\S+ +invalid_event +/data/trades\\.jsonl:7 +- +1 +- +trades\\.jsonl line 7`));
    // Aligned: every row's CODE column starts where the header's does.
    const codeAt = (header ?? '').indexOf('CODE');
    for (const row of rows) assert.match(row.slice(codeAt), /^(max_deliveries|invalid_event) /);

    const filtered = await mdp('dlq', 'ls', '--reason', 'invalid_event', '-o', 'jsonl');
    assert.equal(filtered.code, 0, filtered.stderr);
    const lines = filtered.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 1);
    assert.equal((JSON.parse(lines[0]) as { source: string }).source, '/data/trades.jsonl:7');
    const none = await mdp('dlq', 'ls', '--since', '2099-01-01', '-o', 'json');
    assert.deepEqual(JSON.parse(none.stdout), []);

    const show = await mdp('dlq', 'show', poisonDlqId);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^reason: +delivered 6 times \(max_deliveries 5\)$/m);
    assert.match(show.stdout, new RegExp(`^  "event_id": "${poison.event_id.replace(/[|.]/g, '\\$&')}"$`, 'm'));
    const missing = await mdp('dlq', 'show', '1-0');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no entry 1-0 in .*\.dlq/);
    const usage = await mdp('dlq', 'redrive');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /needs entry IDs .* or --all/);
  });

  it('an unreachable Redis is one line naming Redis and its masked URL, exit 1', async function () {
    const unreachable = writeConfigFile(testConfig(uniqueTag('dlq'), { bus: { redis: { uri: 'redis://:hunter2@127.0.0.1:1/0' } } }), uniqueTag('dlq-down'));
    for (const args of [
      ['dlq', 'ls'],
      ['dlq', 'redrive', '--all'],
    ]) {
      const result = await runNodeScript(CLI, [...args, '--config', unreachable]);
      assert.equal(result.code, 1, result.stderr);
      assert.equal(result.stderr, 'mdp: cannot reach Redis at redis://:***@127.0.0.1:1/0: connect ECONNREFUSED 127.0.0.1:1\n');
    }
  });

  it('redrive publishes the original event once onto its shard: the bars equal an independent aggregation with it', async function () {
    const publisher = new ShardPublisher({ bus, metrics: createMetrics(), stream: config.bus.redis.stream, shards: config.bus.shards });
    const cut = events.indexOf(poison);
    // The pipeline was stopped while the cause was fixed: events up to the poison one are on the
    // stream, it is redriven, then the feed continues.
    await publisher.publish(events.slice(0, cut));
    const dry = await mdp('dlq', 'redrive', poisonDlqId, '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would redrive/);
    assert.equal(await bus.added(shard), cut, '--dry-run publishes nothing');
    const first = await mdp('dlq', 'redrive', poisonDlqId);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.match(first.stdout, new RegExp(`^${poisonDlqId}: redriven → ${shard} `, 'm'));
    assert.match(first.stdout, /^1 redriven, 0 already redriven, 0 still failing$/m);
    await publisher.publish(events.slice(cut + 1));
    assert.equal(await bus.added(shard), events.length);

    const expected = expectedBars(events, config.micro_batch.window_ms);
    const withoutPoison = expectedBars(
      events.filter((e) => e !== poison),
      config.micro_batch.window_ms,
    );
    assert.notDeepEqual(expected, withoutPoison, 'the poison event changes its bar, so the check below can tell');
    const store = new StoreClient(db);
    await worker.runUntil(async () => {
      const handles: WorkflowHandle[] = [];
      for (let n = 0; n < config.bus.shards; n++) {
        handles.push(
          await env.client.workflow.start('streamConsumerWorkflow', {
            taskQueue: config.temporal.task_queue,
            workflowId: microBatchWorkflowId(config.bus.redis.stream, n),
            args: [{ role: 'microbatch', shard: n }],
          }),
        );
      }
      await waitFor('every bar persisted and acknowledged', 90_000, async () => {
        const group = await groupState(redis, shard, config.bus.redis.consumer_group);
        return (await store.countBars(provider)) === expected.length && group?.pending === 0 && group.lag === 0 ? true : undefined;
      });
      for (const h of handles) await h.signal('drain');
      await Promise.all(handles.map((h) => h.result()));
    });
    assert.deepEqual(await store.listBars({ provider }), expected);
  });

  it('a second redrive (by id, and --all) publishes nothing, leaves the bars unchanged and keeps every dead letter', async function () {
    const rowsBefore = await db.selectFrom('bars_ohlcv').selectAll().where('provider', '=', provider).orderBy('ts').execute();
    const again = await mdp('dlq', 'redrive', poisonDlqId);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`^${poisonDlqId}: already redriven at \\S+ → ${shard}; not published again$`, 'm'));
    assert.match(again.stdout, /^0 redriven, 1 already redriven, 0 still failing$/m);

    const all = await mdp('dlq', 'redrive', '--all', '-o', 'json');
    assert.equal(all.code, 1, 'an entry that still fails validation makes the redrive exit 1');
    const outcomes = JSON.parse(all.stdout) as { id: string; outcome: string; reason?: string }[];
    assert.deepEqual(
      outcomes.map((o) => [o.id, o.outcome]),
      [
        [poisonDlqId, 'already-redriven'],
        [invalidDlqId, 'invalid'],
      ],
    );
    assert.match(outcomes[1].reason ?? '', /still invalid: malformed JSON/);

    assert.equal(await bus.added(shard), events.length, 'nothing was published again');
    assert.equal(await redis.xlen(config.bus.redis.dlq_stream), 2, 'redrive marks, never deletes');
    const ls = await mdp('dlq', 'ls', '-o', 'json');
    const listed = JSON.parse(ls.stdout) as { id: string; redriven: { stream: string } | null }[];
    assert.equal(listed.find((l) => l.id === poisonDlqId)?.redriven?.stream, shard);
    assert.equal(listed.find((l) => l.id === invalidDlqId)?.redriven, null);
    const rowsAfter = await db.selectFrom('bars_ohlcv').selectAll().where('provider', '=', provider).orderBy('ts').execute();
    assert.deepEqual(rowsAfter, rowsBefore);
  });

  it('bars export: CSV with a header and JSON lines, both equal to the table rows in ts order', async function () {
    const rows = await db.selectFrom('bars_ohlcv').selectAll().where('provider', '=', provider).orderBy('ts').execute();
    assert.ok(rows.length > 0);
    const range = ['--symbol', 'SPY', '--provider', provider, '--from', iso(START_MS), '--to', iso(START_MS + 60_000)];
    const asRow = (r: (typeof rows)[number]) => ({ ...r, ts: r.ts.toISOString(), updated_at: r.updated_at.toISOString() });

    const csv = await mdp('bars', 'export', ...range);
    assert.equal(csv.code, 0, csv.stderr);
    const [header, ...lines] = csv.stdout.trimEnd().split('\n');
    assert.equal(header, 'provider,symbol,interval,ts,open,high,low,close,volume,trades,updated_at');
    const numeric = new Set(['open', 'high', 'low', 'close', 'volume', 'trades']);
    const columns = (header ?? '').split(',');
    const fromCsv = lines.map((line) => Object.fromEntries(line.split(',').map((cell, i) => [columns[i], numeric.has(columns[i]) ? Number(cell) : cell])));
    assert.deepEqual(fromCsv, rows.map(asRow));

    const jsonl = await mdp('bars', 'export', ...range, '-o', 'jsonl');
    assert.equal(jsonl.code, 0, jsonl.stderr);
    assert.deepEqual(
      jsonl.stdout
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown),
      rows.map(asRow),
    );
    const inverted = await mdp('bars', 'export', '--symbol', 'SPY', '--from', iso(START_MS + 1000), '--to', iso(START_MS));
    assert.equal(inverted.code, 2);
    assert.match(inverted.stderr, /--to must be after --from/);
  });

  it('bars gaps finds the hole left in the event times, and the empty tail of the range', async function () {
    const range = ['--symbol', 'SPY', '--provider', provider, '--from', iso(START_MS)];
    const holeFrom = iso(START_MS + HOLE.from * 1000);
    const holeTo = iso(START_MS + HOLE.to * 1000);
    const text = await mdp('bars', 'gaps', ...range, '--to', iso(START_MS + 12_000));
    assert.equal(text.code, 0, text.stderr);
    assert.deepEqual(text.stdout.trimEnd().split('\n'), [
      `${holeFrom} → ${holeTo} (4s, 4 missing windows)`,
      `1 gap: 4 of 12 windows without a bar (33.3 %) for ${provider} SPY 1s in [${iso(START_MS)}, ${iso(START_MS + 12_000)})`,
    ]);
    const json = await mdp('bars', 'gaps', ...range, '--to', iso(START_MS + 20_000), '-o', 'json');
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual((JSON.parse(json.stdout) as { gaps: unknown[] }).gaps, [
      { from: holeFrom, to: holeTo, durationMs: 4000, missing: 4 },
      { from: iso(START_MS + 12_000), to: iso(START_MS + 20_000), durationMs: 8000, missing: 8 },
    ]);
    const long = await mdp('bars', 'gaps', ...range, '--to', iso(START_MS + 12_000), '--min-gap', '5s', '-o', 'json');
    assert.deepEqual((JSON.parse(long.stdout) as { gaps: unknown[] }).gaps, []);
  });
});
