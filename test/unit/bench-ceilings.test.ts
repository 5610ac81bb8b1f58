import assert from 'node:assert/strict';
import { parseProducerPerformance } from '../../bench/kafka-baseline.js';
import { parseOptions, UsageError } from '../../bench/bench-options.js';

describe('bench: the Kafka ceiling and --bus', function () {
  it("reads ProducerPerformance's final summary line, not its 5-second progress lines", function () {
    const output = [
      'Reading payloads from: /tmp/x.payload',
      'Number of messages read: 1',
      '300000 records sent, 60000.0 records/sec (15.00 MB/sec), 900.00 ms avg latency, 1500.00 ms max latency.',
      '500000 records sent, 74386.3 records/sec (19.30 MB/sec), 920.95 ms avg latency, 1505.00 ms max latency, 909 ms 50th, 1428 ms 95th, 1488 ms 99th, 1498 ms 99.9th.',
      '',
    ].join('\n');
    assert.deepEqual(parseProducerPerformance(output), {
      records: 500_000,
      recordsPerSecond: 74386.3,
      latencyMs: { avg: 920.95, max: 1505, p50: 909, p95: 1428, p99: 1488 },
    });
    assert.equal(
      parseProducerPerformance('300000 records sent, 60000.0 records/sec (15.00 MB/sec), 900.00 ms avg latency, 1500.00 ms max latency.'),
      undefined,
    );
  });

  it('takes --bus redis|kafka, and the config’s bus.type without it', function () {
    assert.equal(parseOptions(['--bus', 'kafka'])?.bus, 'kafka');
    assert.equal(parseOptions(['--bus', 'redis'])?.bus, 'redis');
    assert.equal(parseOptions([])?.bus, undefined);
    assert.throws(() => parseOptions(['--bus', 'nats']), UsageError);
  });
});
