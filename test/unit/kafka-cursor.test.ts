import assert from 'node:assert/strict';
import { decodeCursorMeta, encodeCursorMeta, PartitionCursor } from '../../pipeline/bus/kafka-cursor.js';

describe('Kafka partition cursor (the group pending list kept in the offset commit)', () => {
  it('moves the committed offset past acknowledgements in a row and keeps out-of-order ones as runs', () => {
    const cursor = new PartitionCursor(10n, decodeCursorMeta(null, 10n));
    cursor.delivered(19n);
    assert.equal(cursor.pending, 10);
    cursor.ack([12n, 13n, 14n, 17n]);
    assert.equal(cursor.committed, 10n);
    assert.deepEqual(cursor.meta().acked, [
      [2, 3],
      [7, 1],
    ]);
    cursor.ack([10n, 11n]);
    assert.equal(cursor.committed, 15n);
    assert.deepEqual(cursor.meta().acked, [[2, 1]]);
    assert.equal(cursor.pending, 4);
    assert.ok(cursor.isAcked(17n) && cursor.isAcked(3n) && !cursor.isAcked(16n));
  });

  it('ignores acknowledgements of records never delivered or already committed', () => {
    const cursor = new PartitionCursor(5n, decodeCursorMeta(null, 5n));
    cursor.delivered(6n);
    assert.equal(cursor.ack([1n, 9n]), false);
    assert.equal(cursor.ack([5n, 6n]), true);
    assert.equal(cursor.committed, 7n);
    assert.equal(cursor.pending, 0);
  });

  it('round-trips through the commit metadata, and restarts the delivery count once all is acknowledged', () => {
    const cursor = new PartitionCursor(100n, decodeCursorMeta(null, 100n));
    cursor.delivered(104n);
    cursor.deliveries = 3;
    cursor.epoch = 1234;
    cursor.ack([102n]);
    const text = encodeCursorMeta(cursor.meta(), { consumer: 'mdp-microbatch-mdp.events-0', atMs: 5 });
    const back = new PartitionCursor(100n, decodeCursorMeta(text, 100n));
    assert.equal(back.high, 105n);
    assert.equal(back.deliveries, 3);
    assert.equal(back.epoch, 1234);
    assert.equal(back.consumer, 'mdp-microbatch-mdp.events-0');
    assert.ok(back.isAcked(102n) && !back.isAcked(101n));
    back.ack([100n, 101n, 103n, 104n]);
    assert.equal(back.deliveries, 0);
  });

  it('treats empty, foreign or corrupt metadata as nothing pending', () => {
    for (const text of [null, '', 'written by another tool', '{"v":2}']) {
      const meta = decodeCursorMeta(text, 42n);
      assert.deepEqual([meta.high, meta.deliveries, meta.acked], [42n, 0, []]);
    }
  });

  it('stays under Kafka’s metadata limit by leaving out the last runs (they are re-delivered, never lost)', () => {
    const cursor = new PartitionCursor(0n, decodeCursorMeta(null, 0n));
    cursor.delivered(20_000n);
    cursor.ack(Array.from({ length: 5000 }, (_, i) => BigInt(2 * i + 1)));
    const text = encodeCursorMeta(cursor.meta());
    assert.ok(text.length <= 3000, `${text.length} characters`);
    const back = new PartitionCursor(0n, decodeCursorMeta(text, 0n));
    assert.ok(back.isAcked(1n));
    assert.ok(!back.isAcked(9999n)); // left out: re-delivered after a restart
    assert.equal(back.high, 20_001n);
  });
});
