import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Redis } from 'ioredis';
import { shardStream } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import { SyntheticProducer } from '../../pipeline/producers/index.js';
import { connectRedis, REPO_ROOT, testConfig, uniqueTag } from '../helpers/services.js';
import { runNodeScript, writeConfigFile } from '../helpers/worker-process.js';

const CLI = resolve(REPO_ROOT, 'dist/client/cli.js');
const WORKER = resolve(REPO_ROOT, 'dist/workers/worker.js');

/** Runs a real entrypoint; resolves with its exit code and output instead of throwing. */
const exec = (script: string, args: string[]) => runNodeScript(script, args);

function badConfig(name: string, text: string): string {
  const dir = resolve(REPO_ROOT, '.data/test');
  mkdirSync(dir, { recursive: true });
  const file = resolve(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('mdp command line', function () {
  this.timeout(60_000);

  for (const script of [CLI, WORKER]) {
    const who = script === CLI ? 'mdp status' : 'the worker';
    it(`${who} exits 2 naming the file, key and value of an invalid config`, async function () {
      const file = badConfig('bad-window.yaml', 'version: 1\nmicro_batch:\n  window_ms: 10\n');
      const args = script === CLI ? ['status', '--config', file] : ['--config', file];
      const result = await exec(script, args);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /bad-window\.yaml: micro_batch\.window_ms: .*\(got 10\)/);
    });
  }

  it('exits 2 for an unknown key and for a missing config file', async function () {
    const unknown = await exec(CLI, ['status', '--config', badConfig('unknown-key.yaml', 'version: 1\nbus:\n  colour: red\n')]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown-key\.yaml: bus\.colour/);
    const missing = await exec(CLI, ['status', '--config', 'configs/nope.yaml']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.yaml/);
  });

  it('exits 2 on usage errors: unknown command, unknown provider, bad window', async function () {
    assert.equal((await exec(CLI, ['frobnicate'])).code, 2);
    const provider = await exec(CLI, ['stream', 'produce', '--provider', 'acme']);
    assert.equal(provider.code, 2);
    assert.match(provider.stderr, /--provider/);
    const window = await exec(CLI, ['stream', 'micro-batch', '--window', '9s']);
    assert.equal(window.code, 2);
    assert.match(window.stderr, /--window/);
  });

  it('stream produce --provider ibkr: synthetic-only flags and a config that cannot work exit 2 before anything connects', async function () {
    const flags = await exec(CLI, ['stream', 'produce', '--provider', 'ibkr', '--rate', '100']);
    assert.equal(flags.code, 2);
    assert.match(flags.stderr, /--rate, --count and --start-ts are for --provider synthetic/);
    // Nothing listens on Temporal's address: exit 2 (not 1, not a hang) shows the check came first.
    const tag = uniqueTag();
    const bars = writeConfigFile(testConfig(tag, { producers: { ibkr: { data: 'bars' } }, temporal: { address: '127.0.0.1:1' } }), `ibkr-bars-${tag}`);
    const late = await exec(CLI, ['stream', 'produce', '--provider', 'ibkr', '--config', bars]);
    assert.equal(late.code, 2, late.stderr);
    assert.match(
      late.stderr,
      /mdp: invalid configuration: producers\.ibkr\.data "bars" .* micro_batch\.allow_late_ms \+ micro_batch\.window_ms must be at least 6000 ms .*\(got 300 \+ 1000\)/,
    );
    const none = writeConfigFile(testConfig(tag, { producers: { ibkr: { contracts: [] } }, temporal: { address: '127.0.0.1:1' } }), `ibkr-none-${tag}`);
    const empty = await exec(CLI, ['stream', 'produce', '--provider', 'ibkr', '--config', none]);
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /producers\.ibkr\.contracts is empty/);
  });

  describe('stream tail', function () {
    let redis: Redis;
    let config: StreamingConfig;

    before(async function () {
      config = testConfig(uniqueTag(), { bus: { shards: 2 } });
      redis = await connectRedis(config);
    });

    after(async function () {
      const keys = await redis.keys(`${config.bus.redis.stream.split('.')[0]}.*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    });

    it('prints the newest events of every shard, oldest first, one readable line each', async function () {
      const producer = new SyntheticProducer({
        provider: config.producers.synthetic.provider,
        symbols: ['SPY', 'AAPL', 'MSFT', 'QQQ'],
        seed: 1,
        tickRate: 10,
        priceVolatility: 0.2,
      });
      const events = producer.generateFinite({ count: 40, startUs: Date.UTC(2025, 9, 1, 14) * 1000, ingestTsUs: Date.UTC(2025, 9, 1, 14) * 1000 });
      for (const [i, e] of events.entries()) {
        await redis.xadd(shardStream(config.bus.redis.stream, i % 2), '*', 'd', JSON.stringify(e));
      }
      await redis.xadd(config.bus.redis.dlq_stream, '*', 'd', 'not json');
      const file = writeConfigFile(config, `tail-${config.producers.synthetic.provider}`);

      const tail = await exec(CLI, ['stream', 'tail', '--config', file, '--topic', config.bus.redis.stream, '--limit', '5']);
      assert.equal(tail.code, 0, tail.stderr);
      const lines = tail.stdout.trim().split('\n');
      assert.equal(lines.length, 5);
      const last = events[events.length - 1];
      assert.ok(lines[4].startsWith(last.src_ts), lines[4]);
      assert.match(lines[4], new RegExp(`${config.producers.synthetic.provider}:${last.symbol}\\s+tick\\s+${last.c}\\s+x\\s+${last.v}\\s+seq=${last.seq}`));

      const raw = await exec(CLI, ['stream', 'tail', '--config', file, '--topic', config.bus.redis.dlq_stream, '--limit', '5']);
      assert.match(raw.stdout, /not json/);
    });
  });
});
