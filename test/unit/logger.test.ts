import assert from 'node:assert/strict';
import { createLogger, createProcessLogger, resolveLogOutput } from '../../pipeline/telemetry/index.js';

describe('structured logger', function () {
  const capture = (level: 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR') => {
    const lines: string[] = [];
    return { lines, log: createLogger(level, (line) => lines.push(line), { proc: 'test' }) };
  };

  it('writes one JSON object per line with level, message and fields', function () {
    const { lines, log } = capture('INFO');
    log.child({ shard: 3 }).info('flushed', { bars: 2 });
    const entry = JSON.parse(lines[0]) as Record<string, unknown>;
    assert.equal(entry.level, 'info');
    assert.equal(entry.msg, 'flushed');
    assert.equal(entry.proc, 'test');
    assert.equal(entry.shard, 3);
    assert.equal(entry.bars, 2);
    assert.ok(!Number.isNaN(Date.parse(entry.ts as string)));
  });

  it('drops lines below the configured level', function () {
    const { lines, log } = capture('WARNING');
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e', { err: new Error('boom') });
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as { msg: string }).msg),
      ['w', 'e'],
    );
    assert.match(lines[1], /"message":"boom"/);
  });

  it('never writes a password, in URLs, query parameters or error messages', function () {
    const { lines, log } = capture('DEBUG');
    log.info('connecting', { url: 'postgres://mdp:p@ssword@db:5432/mdp', redis: 'redis://:s3cret@127.0.0.1:6379/0' });
    log.error('failed', { err: new Error('cannot reach postgres://db:5432/mdp?sslmode=disable&password=leak1') });
    const text = lines.join('\n');
    for (const secret of ['p@ssword', '@ssword', 's3cret', 'leak1']) assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    assert.match(text, /postgres:\/\/mdp:\*\*\*@db:5432\/mdp/);
    assert.match(text, /password=\*\*\*/);
  });

  it('puts ts, level, component and msg first, then the fields', function () {
    const lines: string[] = [];
    const log = createLogger('INFO', (line) => lines.push(line), { component: 'worker', pid: 1 });
    log.child({ component: 'bus.redis' }).warn('redis connection error', { uri: 'redis://127.0.0.1:6379/0' });
    log.info('worker running');
    const [bus, worker] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(Object.keys(bus), ['ts', 'level', 'component', 'msg', 'pid', 'uri']);
    assert.equal(bus.component, 'bus.redis');
    assert.equal(bus.level, 'warning');
    assert.equal(worker.component, 'worker');
  });

  describe('format: pretty and coloured only on a terminal', function () {
    const run = (format: 'auto' | 'json' | 'pretty', isTTY: boolean, env: Record<string, string> = {}) => {
      const chunks: string[] = [];
      const log = createProcessLogger({ level: 'INFO', format, stream: { isTTY, write: (c: string) => chunks.push(c) }, env, component: 'cli' });
      log.warn('model rejected', { modelPath: 'models/x.onnx', reason: 'bad bytes' });
      assert.equal(chunks.length, 1);
      assert.ok(chunks[0].endsWith('\n'));
      return chunks[0].slice(0, -1);
    };

    it('auto: JSON lines when not a terminal', function () {
      const line = run('auto', false);
      assert.deepEqual(Object.keys(JSON.parse(line) as object).slice(0, 4), ['ts', 'level', 'component', 'msg']);
    });

    it('auto: a readable, coloured line on a terminal', function () {
      const line = run('auto', true);
      assert.throws(() => JSON.parse(line) as unknown);
      assert.ok(line.includes('\u001b['), 'coloured');
      const plain = line.replace(/\u001b\[[0-9;]*m/g, '');
      assert.match(plain, /^\d\d:\d\d:\d\d\.\d{3} WARN {2}cli +model rejected {2}modelPath=models\/x\.onnx reason="bad bytes"$/);
    });

    it('NO_COLOR (and TERM=dumb) keep the terminal line plain', function () {
      for (const env of [{ NO_COLOR: '1' }, { TERM: 'dumb' }] as Record<string, string>[]) {
        const line = run('auto', true, env);
        assert.ok(!line.includes('\u001b['), JSON.stringify(env));
        assert.match(line, / WARN {2}cli +model rejected/);
      }
    });

    it('json on a terminal and pretty in a pipe when the config says so (never colours in a pipe)', function () {
      assert.doesNotThrow(() => JSON.parse(run('json', true)) as unknown);
      const piped = run('pretty', false);
      assert.match(piped, / WARN {2}cli +model rejected/);
      assert.ok(!piped.includes('\u001b['));
      assert.deepEqual(resolveLogOutput('auto', { isTTY: undefined, env: {} }), { format: 'json', color: false });
    });

    it('masks passwords in the pretty format too', function () {
      const chunks: string[] = [];
      const log = createProcessLogger({ level: 'INFO', format: 'pretty', stream: { write: (c: string) => chunks.push(c) }, env: {}, component: 'store' });
      log.error('postgres connection error', { url: 'postgres://mdp:s3cret@db:5432/mdp' });
      assert.ok(!chunks.join('').includes('s3cret'));
    });
  });
});
