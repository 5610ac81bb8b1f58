import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { shardStream } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import type { StreamEventV1 } from '../../pipeline/contracts/index.js';
import { makeEventId } from '../../pipeline/contracts/index.js';
import { SyntheticProducer } from '../../pipeline/producers/index.js';
import type { Database } from '../../store/index.js';
import { StoreClient } from '../../store/index.js';
import type { LoopStatus } from '../../workflows/index.js';
import { microBatchWorkflowId } from '../../workflows/index.js';
import { expectedBars } from '../helpers/expected-bars.js';
import { cleanupTestRun, connectRedis, createTestWorker, connectStore, groupState, startTemporal, testConfig, uniqueTag } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

/** Valid ticks: 2 symbols × 5 ticks/s → 8 one-second windows per symbol. */
const VALID_EVENTS = 80;

/** One entry that must end up in the DLQ: its stream fields and the reason it must carry. */
interface BadEntry {
  readonly name: string;
  /** Field/value pairs of the XADD; every real entry has one field `d`. */
  readonly fields: readonly [string, string][];
  /** What the DLQ entry's `original` must hold. */
  readonly original: string;
  readonly reason: RegExp;
  /** The dead letter's code (default `invalid_event`). */
  readonly code?: string;
}

/**
 * A v1 event derived from `base` with `overrides` applied and a matching event_id (unless the
 * override sets one). Its seq is far from the producer's, so if validation let it through it
 * would be a new event in `base`'s window and change that bar, instead of hiding as a duplicate.
 */
function variant(base: StreamEventV1, n: number, overrides: Record<string, unknown>): Record<string, unknown> {
  const event: Record<string, unknown> = { ...base, seq: 1_000_000 + n, ...overrides };
  if (!('event_id' in overrides)) {
    const srcTs = typeof overrides.src_ts === 'string' ? overrides.src_ts : base.src_ts;
    const symbol = typeof overrides.symbol === 'string' ? overrides.symbol : base.symbol;
    event.event_id = makeEventId(base.provider, symbol, srcTs, Number(event.seq));
  }
  return event;
}

function badCases(valid: readonly StreamEventV1[]): BadEntry[] {
  // Spread the bases over the run so bad entries sit in different windows of both symbols.
  const base = (i: number) => valid[(i * 7 + 3) % valid.length];
  const json = (name: string, payload: string, reason: RegExp, code?: string): BadEntry => ({
    name,
    fields: [['d', payload]],
    original: payload,
    reason,
    ...(code ? { code } : {}),
  });
  const event = (name: string, i: number, overrides: Record<string, unknown>, reason: RegExp, drop?: string, code?: string): BadEntry => {
    const payload = variant(base(i), i, overrides);
    if (drop) delete payload[drop];
    return json(name, JSON.stringify(payload), reason, code);
  };
  // Valid by every other rule: had it reached the windows, the shard's watermark would be a day
  // ahead and every later event of this run would have gone to the late stream.
  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().replace('Z', '000Z');
  const b = base(99);
  const truncated = JSON.stringify(b).slice(0, 40);
  return [
    json('malformed JSON', truncated, /^malformed JSON: /),
    json('bare NaN (invalid JSON)', JSON.stringify(b).replace(/"o":[^,]+/, '"o":NaN'), /^malformed JSON: /),
    json('a JSON array', JSON.stringify([b]), /payload is not a JSON object/),
    json('a JSON string', '"tick"', /payload is not a JSON object/),
    event('missing symbol', 1, {}, /field "symbol" must be a non-empty string/, 'symbol'),
    event('missing src_ts', 2, {}, /field "src_ts" must be a non-empty string/, 'src_ts'),
    event('missing v', 3, {}, /field "v" must be a finite number/, 'v'),
    event('"o": "NaN"', 4, { o: 'NaN' }, /field "o" must be a finite number \(got "NaN"\)/),
    event('"h": null (NaN after JSON.stringify)', 5, { h: null }, /field "h" must be a finite number \(got null\)/),
    event('negative volume', 6, { v: -100 }, /field "v" must be >= 0 \(got -100\)/),
    event('negative prices', 7, { o: -5, h: -5, l: -5, c: -5 }, /prices must be > 0 \(l=-5\)/),
    event('h < l', 8, { o: 99, h: 98, l: 101, c: 99 }, /field "h" must be >= "l" \(h=98, l=101\)/),
    event('c outside [l, h]', 9, { o: 100, h: 101, l: 99, c: 5000 }, /fields "o" and "c" must lie within \[l, h\]/),
    event('unknown kind "quote"', 10, { kind: 'quote' }, /field "kind" must be one of tick, bar \(got "quote"\)/),
    event('ver 2', 11, { ver: 2 }, /field "ver" must be 1 \(got 2\)/),
    event('impossible date', 12, { src_ts: '2025-02-30T14:00:00.000000Z' }, /field "src_ts" is not an ISO-8601 timestamp/),
    event('fractional seq', 13, { seq: 1.5 }, /field "seq" must be a non-negative integer/),
    event('"|" inside symbol', 14, { symbol: 'BRK|B' }, /must not contain "\|"/),
    event('event_id that does not match', 15, { event_id: 'not-the-key', v: 1_000_000 }, /field "event_id" must equal provider\|symbol\|src_ts\|seq/),
    event(
      'src_ts a day ahead of the wall clock',
      16,
      { src_ts: tomorrow },
      /^src_ts \S+ is 8\d{7}(\.\d+)? ms ahead of the wall clock \(max_future_ms 5000\)$/,
      undefined,
      'future_event',
    ),
    // Once rejected by PostgreSQL for the whole flush (btree row size): now by the contract's limit.
    event(
      'a 4,001-character symbol',
      17,
      { symbol: randomBytes(3001).toString('base64').slice(0, 4001) },
      /^field "symbol" must be at most 64 characters \(got 4001\)$/,
    ),
    event('NUL inside symbol', 18, { symbol: 'AA\u0000A' }, /^field "symbol" must not contain U\+0000 \(NUL\) at index 2$/),
    {
      name: 'entry without a "d" field',
      fields: [
        ['data', JSON.stringify(b)],
        ['note', 'foreign'],
      ],
      original: JSON.stringify({ data: JSON.stringify(b), note: 'foreign' }),
      reason: /no payload field "d"/,
      code: 'no_payload',
    },
  ];
}

/** A stream entry's field list as a map. */
function fieldMap(fields: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i], fields[i + 1]);
  return map;
}

describe('bad input on the event stream (micro-batch under Temporal → DLQ + PostgreSQL)', function () {
  this.timeout(180_000);
  let env: TestWorkflowEnvironment;
  let db: Kysely<Database>;
  let redis: Redis;
  let config: StreamingConfig;

  before(async function () {
    config = testConfig(uniqueTag(), { bus: { shards: 1 } });
    redis = await connectRedis(config);
    db = await connectStore(config);
    env = await startTemporal();
  });

  after(async function () {
    await cleanupTestRun(config, { redis, db, env });
  });

  it('dead-letters every bad entry once, with reason and original, and lands the valid events around them', async function () {
    // The bad entries are expected: their DLQ warnings stay quiet unless MDP_TEST_LOG=debug.
    const worker = await createTestWorker(env, config, db, { logLevel: process.env.MDP_TEST_LOG === 'debug' ? 'DEBUG' : 'ERROR' });
    const provider = config.producers.synthetic.provider;
    const stream = shardStream(config.bus.redis.stream, 0);
    const group = config.bus.redis.consumer_group;
    const dlq = config.bus.redis.dlq_stream;
    const store = new StoreClient(db);

    // 1. Valid ticks with bad entries interleaved, all on shard 0's stream, in one known order.
    const producer = new SyntheticProducer({
      provider,
      symbols: ['AAA', 'BBB'],
      seed: 7,
      tickRate: 5,
      priceVolatility: 3,
      startPrices: { AAA: 100, BBB: 50 },
    });
    const valid = producer.generateFinite({ count: VALID_EVENTS, startUs: Date.UTC(2025, 9, 1, 14) * 1000 });
    const bad = badCases(valid);
    const expected = expectedBars(valid, config.micro_batch.window_ms);
    assert.equal(expected.length, 16, '2 symbols × 8 windows');
    assert.ok(
      expected.some((bar) => bar.high > bar.low),
      'prices move within a window, so o/h/l/c are distinguishable',
    );

    const badIds = new Map<string, BadEntry>();
    let nextBad = 0;
    for (let i = 0; i < valid.length; i++) {
      await redis.xadd(stream, '*', 'd', JSON.stringify(valid[i]));
      // One bad entry after every 3rd valid one: before, between and after good events of each window.
      if (i % 3 === 1 && nextBad < bad.length) {
        const entry = bad[nextBad++];
        const id = await redis.xadd(stream, '*', ...entry.fields.flat());
        assert.ok(id);
        badIds.set(id, entry);
      }
    }
    assert.equal(nextBad, bad.length, 'every bad case was published');
    assert.equal(await redis.xlen(stream), valid.length + bad.length);

    await worker.runUntil(async () => {
      // 2. The shard's single owner consumes until everything is acknowledged and dead-lettered.
      const handle = await env.client.workflow.start('streamConsumerWorkflow', {
        taskQueue: config.temporal.task_queue,
        workflowId: microBatchWorkflowId(config.bus.redis.stream, 0),
        args: [{ role: 'microbatch', shard: 0 }],
      });
      // The DLQ is not part of the condition: dead letters are written before their entries are
      // acked, so once nothing is pending or undelivered every DLQ write has happened (or never will).
      await waitFor('every entry acknowledged and every valid window persisted', 60_000, async () => {
        const state = await groupState(redis, stream, group);
        const bars = await store.countBars(provider);
        if (state && state.pending === 0 && state.lag === 0 && bars === expected.length) return true;
        throw new Error(`group ${JSON.stringify(state)}, ${bars}/${expected.length} bars, ${await redis.xlen(dlq)}/${bad.length} dead letters`);
      });
      await handle.signal('drain');
      const result = (await handle.result()) as LoopStatus;

      // 3. Each bad entry is in the DLQ exactly once, pointing back at its source entry verbatim.
      const letters = await redis.xrange(dlq, '-', '+');
      assert.equal(letters.length, bad.length, 'one DLQ entry per bad entry, none for valid events');
      const seen = new Set<string>();
      for (const [, fields] of letters) {
        const letter = fieldMap(fields);
        const sourceId = letter.get('id') ?? '';
        const entry = badIds.get(sourceId);
        assert.ok(entry, `DLQ entry for ${sourceId} points at a bad entry (reason: ${letter.get('reason')})`);
        assert.ok(!seen.has(sourceId), `${entry.name}: dead-lettered once`);
        seen.add(sourceId);
        assert.match(letter.get('reason') ?? '', entry.reason, entry.name);
        assert.equal(letter.get('code'), entry.code ?? 'invalid_event', `${entry.name}: code`);
        assert.equal(letter.get('original'), entry.original, `${entry.name}: original payload kept verbatim`);
        assert.equal(letter.get('stream'), stream, `${entry.name}: source stream`);
        assert.equal(letter.get('group'), group, `${entry.name}: group`);
        assert.equal(letter.get('deliveries'), '1', `${entry.name}: deliveries`);
      }
      assert.equal(seen.size, bad.length, 'every bad entry was dead-lettered');

      // 4. Nothing left pending (bad entries were acked after their DLQ write), nothing went late.
      const pending = (await redis.xpending(stream, group)) as [number, ...unknown[]];
      assert.equal(pending[0], 0, 'no pending entries');
      assert.equal(await redis.xlen(config.bus.redis.late_stream), 0, 'no event was routed to the late stream');

      // 5. The valid events' bars equal the independent computation over the valid events alone.
      assert.deepEqual(await store.listBars({ provider }), expected);

      // 6. The drained workflow's totals account for every entry.
      assert.equal(result.draining, true);
      assert.equal(result.totals.invalid, bad.length, 'invalid = bad entries');
      assert.equal(result.totals.accepted, valid.length, 'accepted = valid events');
      assert.equal(result.totals.events, valid.length + bad.length, 'every entry was read once');
      assert.equal(result.totals.duplicates ?? 0, 0);
      assert.equal(result.totals.late ?? 0, 0);
      assert.equal(result.totals.bars, expected.length);
    });
  });
});
