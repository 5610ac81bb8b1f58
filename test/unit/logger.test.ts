import assert from 'node:assert/strict';
import { createLogger } from '../../pipeline/telemetry/index.js';

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
});
