import assert from 'node:assert/strict';
import { PRODUCE_MAX_BYTES, produceChunks } from '../../pipeline/bus/kafka-bus.js';

describe('Kafka produce requests under the broker limit', function () {
  it('cuts records into consecutive runs of at most the byte budget, counting UTF-8 bytes, in order', function () {
    const records = ['aaaa', 'bbbb', 'cc', 'é'.repeat(3), Buffer.from([1, 2, 3, 4, 5]), 'd'].map((value) => ({ value }));
    const chunks = produceChunks(records, 8);
    assert.deepEqual(
      chunks.map((c) => c.map((r) => (typeof r.value === 'string' ? r.value : `bytes:${r.value.byteLength}`))),
      [
        ['aaaa', 'bbbb'],
        ['cc', 'ééé'],
        ['bytes:5', 'd'],
      ],
    );
    assert.deepEqual(chunks.flat(), records, 'nothing dropped, nothing reordered');
  });

  it('sends a record larger than the budget alone rather than never', function () {
    const big = { value: 'x'.repeat(20) };
    assert.deepEqual(produceChunks([{ value: 'a' }, big, { value: 'b' }], 8), [[{ value: 'a' }], [big], [{ value: 'b' }]]);
  });

  it('keeps a window of 2,500 snapshots (~1.5 MB) under 1 MiB per request', function () {
    const snapshots = Array.from({ length: 2500 }, (_, i) => ({ value: `${i}:${'s'.repeat(600)}` }));
    const chunks = produceChunks(snapshots);
    assert.ok(chunks.length >= 3);
    for (const chunk of chunks) assert.ok(chunk.reduce((n, r) => n + Buffer.byteLength(r.value), 0) <= PRODUCE_MAX_BYTES);
  });
});
