import assert from 'node:assert/strict';
import { shardOf, shardStream, streamIdMs } from '../../pipeline/bus/index.js';

describe('sharding', function () {
  it('is stable: the same instrument always maps to the same shard', function () {
    // Pinned values: changing the hash would move every symbol to another owner after an upgrade.
    assert.deepEqual(
      ['SPY', 'AAPL', 'MSFT', 'QQQ'].map((s) => shardOf('synthetic', s, 4)),
      [2, 2, 0, 3],
    );
    for (let i = 0; i < 100; i++) assert.equal(shardOf('ibkr', `S${i}`, 7), shardOf('ibkr', `S${i}`, 7));
  });

  for (const shards of [2, 4, 16, 5]) {
    it(`spreads instruments evenly over ${shards} shards`, function () {
      const counts = new Array<number>(shards).fill(0);
      const n = 4000;
      for (let i = 0; i < n; i++) counts[shardOf('synthetic', `SYM${i}`, shards)]++;
      const mean = n / shards;
      for (const c of counts) assert.ok(Math.abs(c - mean) < 0.15 * mean, `shard counts ${counts.join(',')}`);
    });
  }

  it('separates providers of the same symbol', function () {
    const shards = new Set(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((p) => shardOf(p, 'SPY', 4)));
    assert.ok(shards.size > 1);
  });

  it('names shard streams and reads stream-id milliseconds', function () {
    assert.equal(shardStream('mdp.events', 3), 'mdp.events.3');
    assert.equal(streamIdMs('1700000000123-7'), 1700000000123);
  });
});
