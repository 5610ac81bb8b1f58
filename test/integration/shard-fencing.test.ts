import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { compareStreamIds, RedisBus } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import type { Bar, ShardLease, ShardPosition } from '../../pipeline/contracts/index.js';
import { OwnerFencedError } from '../../pipeline/contracts/index.js';
import type { Database } from '../../store/index.js';
import { ShardPositionStore, StoreClient } from '../../store/index.js';
import { connectRedis, connectStore, testConfig, uniqueTag } from '../helpers/services.js';
import { UPSERT_PATHS } from '../helpers/upsert-paths.js';

// The two halves of a shard owner's fence, on the real services: the position stored with the
// bars in PostgreSQL (taken and committed by epoch), and the read fence on the Redis stream.

const bar = (provider: string, tsMs: number, close: number): Bar => ({
  provider,
  symbol: 'FNC',
  interval: '1s',
  tsMs,
  open: close,
  high: close,
  low: close,
  close,
  volume: 1,
  trades: 1,
});
const position = (frontierMs: number, readId: string): ShardPosition => ({
  frontierMs,
  readId,
  oldestOpenId: undefined,
  marks: [],
  lastCommitFromMs: frontierMs - 1000,
});

describe('shard fencing (PostgreSQL positions, Redis read fence)', function () {
  let config: StreamingConfig;
  let db: Kysely<Database>;
  let redis: Redis;
  let tag: string;

  before(async function () {
    tag = uniqueTag('fence');
    config = testConfig(tag);
    db = await connectStore(config);
    redis = await connectRedis(config);
  });

  after(async function () {
    const keys = await redis.keys(`*${tag}*`);
    if (keys.length > 0) await redis.del(...keys);
    await db.deleteFrom('bars_ohlcv').where('provider', 'like', `${tag}%`).execute();
    await db.deleteFrom('shard_positions').where('stream', 'like', `${tag}%`).execute();
    redis.disconnect();
    await db.destroy();
  });

  for (const path of UPSERT_PATHS) {
    it(`stores bars and position in one transaction, and refuses both to an older epoch (${path.name})`, async function () {
      const shards = new ShardPositionStore(db, { copyMinRows: path.copyMinRows });
      const provider = `${tag}.${path.copyMinRows}`;
      const bars = new StoreClient(db);
      const stream = `${tag}.events.0.${path.copyMinRows}`;
      const lease = (epoch: number): ShardLease => ({ stream, group: 'g', owner: 'owner-0', epoch });
      assert.equal(await shards.acquire(lease(100)), undefined, 'a shard never committed has no position');
      await shards.commit(lease(100), [bar(provider, 0, 10)], position(1000, '5-0'));
      assert.deepEqual(await shards.acquire(lease(200)), position(1000, '5-0'), 'the successor resumes where the commit left off');

      // The superseded owner wakes up: its commit writes neither the bar nor the position.
      await assert.rejects(shards.commit(lease(100), [bar(provider, 1000, 99)], position(2000, '9-0')), OwnerFencedError);
      await assert.rejects(shards.acquire(lease(150)), (err: OwnerFencedError) => err.heldBy.epoch === 200 && /epoch 150 is fenced off/.test(err.message));
      assert.deepEqual(
        (await bars.listBars({ provider })).map((b) => b.close),
        [10],
      );
      assert.equal((await shards.read(stream, 'g'))?.frontierMs, 1000);

      // A commit that fails in the middle stores neither half.
      await assert.rejects(shards.commit(lease(200), [bar(provider, 1000, 11), { ...bar(provider, 2000, 12), trades: 1.5 }], position(3000, '12-0')));
      assert.deepEqual(
        (await bars.listBars({ provider })).map((b) => b.close),
        [10],
      );
      assert.equal((await shards.read(stream, 'g'))?.readId, '5-0');
    });
  }

  it('lets only the newest epoch read a stream, pending entries included', async function () {
    const bus = new RedisBus(config.bus.redis.uri, { maxLen: 1000 });
    try {
      const stream = `${tag}.events.1`;
      await bus.ensureGroup(stream, 'g');
      await bus.publish(stream, ['a', 'b', 'c']);
      assert.deepEqual(
        (await bus.readNew(stream, 'g', 'owner', 1, 10, 100)).map((e) => e.payload),
        ['a'],
      );
      // The successor reads first: from then on the older attempt is refused, and takes nothing.
      assert.deepEqual(
        (await bus.readPending(stream, 'g', 'owner', '0', 10, 200)).map((e) => e.payload),
        ['a'],
      );
      await assert.rejects(bus.readNew(stream, 'g', 'owner', 10, 10, 100), OwnerFencedError);
      await assert.rejects(bus.readPending(stream, 'g', 'owner', '0', 10, 100), /fenced off/);
      assert.deepEqual(
        (await bus.readNew(stream, 'g', 'owner', 10, 10, 200)).map((e) => e.payload),
        ['b', 'c'],
      );
      // A fenced read waits like a blocking one when the stream is empty, then returns nothing.
      const started = Date.now();
      assert.deepEqual(await bus.readNew(stream, 'g', 'owner', 10, 150, 200), []);
      assert.ok(Date.now() - started >= 140);
    } finally {
      await bus.close();
    }
  });

  it('re-appends entries for the group and acknowledges the originals in one transaction', async function () {
    const bus = new RedisBus(config.bus.redis.uri, { maxLen: 1000 });
    try {
      const stream = `${tag}.events.2`;
      await bus.ensureGroup(stream, 'g');
      const [first] = await bus.publish(stream, ['x']);
      await redis.xadd(stream, '*', 'other', '1');
      const taken = await bus.readNew(stream, 'g', 'ghost', 10, 10);
      const ids = await bus.requeue(stream, 'g', taken);
      assert.equal(ids.length, 2);
      assert.ok(ids.every((id) => compareStreamIds(id, first) > 0));
      assert.deepEqual(await bus.pendingEntries(stream, 'g', 10), []);
      assert.deepEqual(
        (await bus.readNew(stream, 'g', 'owner', 10, 10)).map((e) => e.payload ?? e.foreign),
        ['x', JSON.stringify({ other: '1' })],
      );
      assert.ok(bus.compareIds('10-2', '9-9') > 0 && bus.compareIds('10-2', '10-10') < 0 && bus.compareIds('7-0', '7-0') === 0);
    } finally {
      await bus.close();
    }
  });
});
