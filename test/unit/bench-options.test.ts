import assert from 'node:assert/strict';
import { parseOptions, UsageError } from '../../bench/bench-options.js';
import { shardMapText, symbolsPerShard } from '../../bench/bench-report.js';

describe('bench options: publisher, backlog, symbols', function () {
  it('publishes from a process of its own at max rate and for --backlog, from the producer workflow at --rate N', function () {
    assert.equal(parseOptions(['--rate', 'max'])?.publisher, 'process');
    assert.equal(parseOptions([])?.publisher, 'workflow');
    assert.equal(parseOptions(['--rate', '5000', '--publisher', 'process'])?.publisher, 'process');
    const backlog = parseOptions(['--backlog', '5000000'])!;
    assert.equal(backlog.backlog, 5_000_000);
    assert.equal(backlog.rate, 'max');
    assert.equal(backlog.publisher, 'process');
  });

  it('refuses combinations that cannot run, naming the options', function () {
    assert.throws(() => parseOptions(['--backlog', '1000', '--rate', '500']), /--backlog publishes as fast as it can/);
    assert.throws(() => parseOptions(['--backlog', '1000', '--max-backlog', '10']), /--max-backlog and --backlog/);
    assert.throws(() => parseOptions(['--rate', '500', '--publisher', 'inline']), /--publisher inline only applies to --rate max/);
    assert.throws(() => parseOptions(['--rate', 'max', '--publisher', 'workflow']), /--publisher workflow needs --rate N/);
    assert.throws(() => parseOptions(['--publisher', 'kafka']), UsageError);
    assert.throws(() => parseOptions(['--symbols', 'A,B', '--symbols-count', '5']), /not both/);
    assert.throws(() => parseOptions(['--backlog', '0']), /--backlog must be an integer/);
  });

  it('--symbols-count N simulates N distinct symbols', function () {
    const symbols = parseOptions(['--symbols-count', '2000'])!.symbols!;
    assert.equal(symbols.length, 2000);
    assert.equal(new Set(symbols).size, 2000);
    assert.equal(symbols[0], 'S00001');
  });

  it('summarises a large symbol → shard map instead of listing it', function () {
    const few = { SPY: 3, AAPL: 1, MSFT: 0 };
    assert.equal(shardMapText(few, symbolsPerShard(few, 4)), 'SPY→3 AAPL→1 MSFT→0  (3 of 4 shards carry load)');
    const many = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`S${i}`, i % 4]));
    const text = shardMapText(many, symbolsPerShard(many, 4));
    assert.equal(text, '10,000 symbols: 2,500 / 2,500 / 2,500 / 2,500 per shard (min 2,500, max 2,500)');
  });
});
