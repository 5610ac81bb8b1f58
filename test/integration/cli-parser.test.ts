/**
 * The `mdp` parser and output, as a user meets them: the real `node dist/client/cli.js` as a child
 * process, against the real Redis (tail) and nothing at all (help, usage errors, unreachable
 * services). Help per command, --version, options scoped to their command, suggestions for typos,
 * exit codes, JSON that parses, `stream tail` filters and `--follow`, one line for a service that
 * does not answer.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Redis } from 'ioredis';
import { shardStream } from '../../pipeline/bus/index.js';
import type { StreamingConfig } from '../../pipeline/config/index.js';
import { connectRedis, REPO_ROOT, testConfig, uniqueTag } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';
import { configFreeEnv, runNodeScript, writeConfigFile } from '../helpers/worker-process.js';

const CLI = resolve(REPO_ROOT, 'dist/client/cli.js');
const mdp = (args: string[]) => runNodeScript(CLI, args);

/** Every command of the tree, as typed. */
const COMMANDS = [
  'up',
  'down',
  'status',
  'migrate',
  'stream produce',
  'stream micro-batch',
  'stream infer',
  'stream tail',
  'stream drain',
  'stream replay',
  'stream recover',
  'model reload',
  'dataset ls',
  'dataset generate',
  'dataset fetch',
  'deploy status',
  'deploy check',
  'deploy promote',
  'deploy ramp',
  'deploy rollback',
  'deploy unpin',
];

function tick(provider: string, symbol: string, seq: number, price = 100 + seq): string {
  const ts = new Date(Date.UTC(2025, 9, 1, 14, 0, seq)).toISOString();
  return JSON.stringify({ ver: 1, provider, symbol, kind: 'tick', src_ts: ts, ingest_ts: ts, seq, c: price, v: 100 });
}

function features(provider: string, symbol: string, second: number): string {
  const ts = new Date(Date.UTC(2025, 9, 1, 14, 0, second)).toISOString();
  return JSON.stringify({ ver: 1, provider, symbol, interval: '1s', ts, tsMs: Date.parse(ts), price: 100, values: { price: 100, rsi: 55 }, windows: {} });
}

describe('mdp parser and output (the real CLI)', function () {
  this.timeout(60_000);

  describe('help, version, usage errors', function () {
    it('every command has its own help: usage, options with descriptions and defaults, an example (exit 0)', async function () {
      for (const command of COMMANDS) {
        const help = await mdp([...command.split(' '), '--help']);
        assert.equal(help.code, 0, `${command}: ${help.stderr}`);
        assert.match(help.stdout, new RegExp(`^Usage: mdp ${command} `, 'm'), command);
        assert.match(help.stdout, /^Options:$/m, command);
        assert.match(help.stdout, /--config <file>\s+the configuration file \(default:\s+"configs\/streaming\.yaml",\s+env: MDP_CONFIG\)/, command);
        assert.match(help.stdout, /^Examples?:\n {2}mdp /m, `${command} shows an example`);
      }
      const replay = await mdp(['stream', 'replay', '--help']);
      assert.match(replay.stdout, /--dataset <name>\s+the dataset/);
      assert.match(replay.stdout, /--from <date>\s+start of the range/);
      const tail = await mdp(['stream', 'tail', '--help']);
      assert.match(tail.stdout, /-n, --limit <n>\s+how many entries \(default: 50\)/);
      assert.match(tail.stdout, /-o, --output <format>\s+output format \(choices: "text", "json", "jsonl",\s+default: "text"\)/);
      const viaHelp = await mdp(['help', 'stream', 'replay']);
      assert.equal(viaHelp.code, 0);
      assert.equal(viaHelp.stdout, replay.stdout, 'mdp help stream replay is mdp stream replay --help');
      const top = await mdp(['help']);
      assert.equal(top.code, 0);
      for (const group of ['up', 'down', 'status', 'migrate', 'stream', 'model', 'dataset', 'deploy'])
        assert.match(top.stdout, new RegExp(`^ {2}${group}\\b`, 'm'));
    });

    it('--version prints the package version', async function () {
      const { version } = JSON.parse(readFileSync(resolve(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
      const result = await mdp(['--version']);
      assert.equal(result.code, 0);
      assert.equal(result.stdout, `${version}\n`);
    });

    it("options are scoped to their command: another command's option exits 2 naming it, before any config is read", async function () {
      const result = await mdp(['status', '--topic', 'foo', '--window', '10ms', '--speed', '5', '--config', 'configs/nope.yaml']);
      assert.equal(result.code, 2);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /^mdp: unknown option '--topic'$/m);
      assert.match(result.stderr, /^Run 'mdp status --help' for usage\.$/m);
    });

    it('typos get a suggestion and exit 2: commands, subcommands, options', async function () {
      const command = await mdp(['stauts']);
      assert.equal(command.code, 2);
      assert.match(command.stderr, /unknown command 'stauts'\n\(Did you mean status\?\)/);
      const sub = await mdp(['stream', 'tial']);
      assert.equal(sub.code, 2);
      assert.match(sub.stderr, /\(Did you mean tail\?\)/);
      const option = await mdp(['stream', 'tail', '--topic', 'mdp.events', '--limt', '5']);
      assert.equal(option.code, 2);
      assert.match(option.stderr, /unknown option '--limt'\n\(Did you mean --limit\?\)/);
      assert.equal((await mdp([])).code, 2, 'no command is a usage error');
      assert.equal((await mdp(['stream'])).code, 2, 'a group without its command is a usage error');
    });

    it('values are checked at parse time: exit 2 naming the option and the value', async function () {
      const cases: [string[], RegExp][] = [
        [
          ['dataset', 'generate', 'spy_1day_history', '--date', '2025-13-01'],
          /^mdp: --date must be a calendar date YYYY-MM-DD, e\.g\. 2025-10-01 \(got "2025-13-01"\)$/m,
        ],
        [['dataset', 'generate', 'spy_1day_history', '--date', '2025-10-04'], /^mdp: --date: 2025-10-04 is a Saturday: no regular session$/m],
        [['dataset', 'generate', 'spy_1day_history'], /required option '--date <YYYY-MM-DD>' not specified/],
        [['stream', 'tail', '--topic', 'mdp.events', '--limit', '2.5'], /^mdp: --limit must be a whole number >= 1 \(got "2\.5"\)$/m],
        [['stream', 'tail', '--topic', 'mdp.events', '--since', 'yesterday'], /^mdp: --since must be a duration such as 5m .*\(got "yesterday"\)$/m],
        [['stream', 'tail', '--topic', 'mdp.events', '-o', 'yaml'], /^mdp: --output must be one of text, json, jsonl \(got "yaml"\)$/m],
        [['stream', 'tail', '--topic', 'mdp.events', '--follow', '-o', 'json'], /use -o jsonl/],
        [['stream', 'micro-batch', '--window', '10ms'], /^mdp: --window must be a duration between 500ms and 5000ms such as 2s .*\(got "10ms"\)$/m],
        [['stream', 'replay', '--dataset', 'd', '--from', '2025-10-32', '--to', '2025-11-01'], /^mdp: --from must be a date or an ISO timestamp/m],
        [['stream', 'produce', '--provider', 'synthetic', '--count', '-3'], /--count must be a whole number >= 1/],
        [['down', '--timeout', 'soon'], /^mdp: --timeout must be a duration/m],
        [['deploy', 'ramp', '120'], /^mdp: PERCENT must be a whole percentage from 0 to 100 \(got "120"\)$/m],
        [['deploy', 'unpin'], /missing required argument 'build'/],
      ];
      for (const [args, expected] of cases) {
        const result = await mdp(args);
        assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
        assert.match(result.stderr, expected, args.join(' '));
        assert.match(result.stderr, /Run 'mdp [a-z -]+ --help' for usage\./, args.join(' '));
      }
    });
  });

  describe('services that do not answer: one line naming them, exit 1', function () {
    it('Redis: its URL with the password masked', async function () {
      const config = testConfig(uniqueTag(), { bus: { redis: { uri: 'redis://:secret@127.0.0.1:1/0' } } });
      const file = writeConfigFile(config, `unreachable-redis-${uniqueTag()}`);
      try {
        const events = `${file}.events.jsonl`;
        writeFileSync(events, '{"v":1}\n');
        for (const args of [
          ['stream', 'tail', '--topic', config.bus.redis.stream],
          ['status'],
          ['dlq', 'ls'],
          ['stream', 'produce', '--provider', 'file', '--path', events],
        ]) {
          const result = await mdp([...args, '--config', file]);
          assert.equal(result.code, 1, args.join(' '));
          assert.equal(result.stderr, 'mdp: cannot reach Redis at redis://:***@127.0.0.1:1/0: connect ECONNREFUSED 127.0.0.1:1\n', args.join(' '));
          assert.equal(result.stdout, '', args.join(' '));
        }
      } finally {
        rmSync(file, { force: true });
        rmSync(`${file}.events.jsonl`, { force: true });
      }
    });

    it('PostgreSQL and Temporal', async function () {
      const file = writeConfigFile(
        testConfig(uniqueTag(), { store: { url: 'postgres://mdp:secret@127.0.0.1:1/mdp' }, temporal: { address: '127.0.0.1:1' } }),
        `unreachable-${uniqueTag()}`,
      );
      try {
        const pg = await mdp(['migrate', '--config', file]);
        assert.equal(pg.code, 1);
        assert.match(pg.stderr, /^mdp: cannot connect to PostgreSQL at postgres:\/\/mdp:\*\*\*@127\.0\.0\.1:1\/mdp: .*ECONNREFUSED.*\n$/);
        const temporal = await mdp(['deploy', 'status', '--json', '--config', file]);
        assert.equal(temporal.code, 1);
        assert.match(temporal.stderr, /^mdp: cannot reach the Temporal server at 127\.0\.0\.1:1 .*\n$/);
        assert.equal(temporal.stdout, '', 'nothing on stdout when JSON was asked for and there is none');
      } finally {
        rmSync(file, { force: true });
      }
    });
  });

  describe('JSON output', function () {
    it('dataset ls -o json / --json: one JSON array of the datasets', async function () {
      const json = await mdp(['dataset', 'ls', '--json']);
      assert.equal(json.code, 0, json.stderr);
      const listings = JSON.parse(json.stdout) as { name: string; format: string; holds: string }[];
      assert.ok(listings.some((d) => d.name === 'spy_1day_history'));
      const text = await mdp(['dataset', 'ls']);
      for (const d of listings) assert.match(text.stdout, new RegExp(`^${d.name}\\s+${d.format}\\b`, 'm'));
      assert.deepEqual(JSON.parse((await mdp(['dataset', 'ls', '-o', 'json'])).stdout), listings);
    });
  });

  describe('stream tail', function () {
    let redis: Redis;
    let config: StreamingConfig;
    let file: string;
    let provider: string;

    before(async function () {
      const tag = uniqueTag();
      config = testConfig(tag, { bus: { shards: 2 } });
      provider = config.producers.synthetic.provider;
      redis = await connectRedis(config);
      file = writeConfigFile(config, `tail-${tag}`);
      const events = config.bus.redis.stream;
      // One old entry per shard (10 minutes ago), then SPY and AAPL alternating over both shards.
      const oldMs = Date.now() - 600_000;
      await redis.xadd(shardStream(events, 0), `${oldMs}-0`, 'd', tick(provider, 'OLD', 0));
      await redis.xadd(shardStream(events, 1), `${oldMs}-1`, 'd', tick(provider, 'OLD', 1));
      for (let seq = 2; seq < 12; seq++) await redis.xadd(shardStream(events, seq % 2), '*', 'd', tick(provider, seq % 4 < 2 ? 'SPY' : 'AAPL', seq));
      for (let second = 0; second < 6; second++)
        await redis.xadd(shardStream(config.bus.redis.features_stream, second % 2), '*', 'd', features(provider, 'SPY', second));
    });

    after(async function () {
      const keys = await redis.keys(`${config.bus.redis.stream.split('.')[0]}.*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
      rmSync(file, { force: true });
    });

    it('an unknown topic exits 2 listing the known ones', async function () {
      const result = await mdp(['stream', 'tail', '--config', file, '--topic', 'mdp.nope']);
      assert.equal(result.code, 2);
      const n = config.bus.redis;
      assert.match(
        result.stderr,
        new RegExp(`unknown topic "mdp\\.nope" \\(known: ${[n.stream, n.features_stream, n.signals_stream, n.dlq_stream, n.late_stream].join(', ')}`),
      );
    });

    it('-o jsonl / --json: every entry parses, shards merged in order; --symbol and --since filter', async function () {
      const jsonl = await mdp(['stream', 'tail', '--config', file, '--topic', config.bus.redis.stream, '-o', 'jsonl', '--limit', '5']);
      assert.equal(jsonl.code, 0, jsonl.stderr);
      const rows = jsonl.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { stream: string; id: string; payload: { seq: number; symbol: string } });
      assert.deepEqual(
        rows.map((r) => r.payload.seq),
        [7, 8, 9, 10, 11],
      );
      assert.deepEqual(new Set(rows.map((r) => r.stream)), new Set([shardStream(config.bus.redis.stream, 0), shardStream(config.bus.redis.stream, 1)]));

      const json = await mdp(['stream', 'tail', '--config', file, '--topic', config.bus.redis.stream, '--json', '--symbol', 'SPY', '--limit', '50']);
      const spy = JSON.parse(json.stdout) as { payload: { symbol: string; seq: number } }[];
      assert.deepEqual(
        spy.map((r) => r.payload.seq),
        [4, 5, 8, 9],
      );

      const recent = await mdp(['stream', 'tail', '--config', file, '--topic', config.bus.redis.stream, '--json', '--since', '5m']);
      assert.deepEqual(
        (JSON.parse(recent.stdout) as { payload: { seq: number } }[]).map((r) => r.payload.seq),
        [2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        'the entries appended 10 minutes ago are left out',
      );
    });

    it('the sharded features topic is merged like the events, in aligned columns', async function () {
      const text = await mdp(['stream', 'tail', '--config', file, '--topic', config.bus.redis.features_stream]);
      assert.equal(text.code, 0, text.stderr);
      const lines = text.stdout.trim().split('\n');
      assert.equal(lines.length, 6);
      assert.deepEqual(
        lines.map((l) => l.slice(0, 19)),
        [0, 1, 2, 3, 4, 5].map((s) => `2025-10-01T14:00:0${s}`),
      );
      const columns = lines.map((l) => l.indexOf(`${provider}:SPY`));
      assert.ok(
        columns.every((c) => c === columns[0] && c > 0),
        `aligned:\n${text.stdout}`,
      );
      assert.match(lines[0], /features 1s\s+price=100 rsi=55/);
    });

    it('--follow prints entries published after it started, until Ctrl-C (exit 0)', async function () {
      await redis.xadd(shardStream(config.bus.redis.stream, 0), '*', 'd', tick(provider, 'MSFT', 98));
      await redis.xadd(shardStream(config.bus.redis.stream, 1), '*', 'd', tick(provider, 'MSFT', 99));
      const child = spawn(
        process.execPath,
        [CLI, 'stream', 'tail', '--config', file, '--topic', config.bus.redis.stream, '-f', '-o', 'jsonl', '--limit', '1', '--symbol', 'MSFT'],
        {
          cwd: REPO_ROOT,
          env: configFreeEnv(),
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
      child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
      const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
      try {
        // The newest MSFT entry first: once it is printed, the tail has read the streams and follows them.
        const running = { guard: () => assert.equal(child.exitCode, null, `the tail exited: ${stderr}`) };
        await waitFor('the newest MSFT entry', 30_000, () => Promise.resolve(stdout.includes('\n') ? true : undefined), running);
        await redis.xadd(shardStream(config.bus.redis.stream, 1), '*', 'd', tick(provider, 'MSFT', 100));
        await redis.xadd(shardStream(config.bus.redis.stream, 0), '*', 'd', tick(provider, 'AAPL', 101));
        await redis.xadd(shardStream(config.bus.redis.stream, 0), '*', 'd', tick(provider, 'MSFT', 102));
        await waitFor('two followed entries', 10_000, () => Promise.resolve(stdout.split('\n').length > 3 ? true : undefined), running);
        child.kill('SIGINT');
        assert.equal(await exited, 0, stderr);
        assert.deepEqual(
          stdout
            .trim()
            .split('\n')
            .map((l) => (JSON.parse(l) as { payload: { seq: number } }).payload.seq),
          [99, 100, 102],
        );
      } finally {
        child.kill('SIGKILL');
      }
    });
  });
});
