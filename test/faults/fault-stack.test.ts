/**
 * The fault matrix's own instruments, checked before anything is concluded from them: the AOF cut
 * loses exactly the writes after its mark, and the accounting oracle reports each kind of error it
 * exists to catch (and nothing on an exact run).
 */
import assert from 'node:assert/strict';
import { intervalLabel } from '../../pipeline/contracts/index.js';
import { StoreClient } from '../../store/index.js';
import { expectedBars } from '../helpers/expected-bars.js';
import { parseAofUnits } from '../helpers/redis-aof.js';
import { useFaultStack } from '../helpers/fault-run.js';

describe('fault matrix instruments', function () {
  this.timeout(120_000);

  describe('parseAofUnits', function () {
    const cmd = (...args: string[]) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;

    it('keeps MULTI…EXEC whole and ignores a trailing partial command or transaction', function () {
      const complete =
        cmd('XADD', 's', '1-1', 'd', 'x\r\ny') + '#TS:1700000000\r\n' + cmd('MULTI') + cmd('XACK', 's', 'g', '1-1') + cmd('HSET', 'h', 'f', '1') + cmd('EXEC');
      const partialTx = cmd('MULTI') + cmd('XACK', 's', 'g', '1-2');
      const partialCmd = cmd('XADD', 's', '1-3', 'd', 'zzzz').slice(0, -3);
      const units = parseAofUnits(Buffer.from(complete + partialTx + partialCmd));
      assert.deepEqual(
        units.map((u) => u.commands),
        [['XADD'], [], ['MULTI', 'XACK', 'HSET', 'EXEC']],
      );
      assert.equal(units[units.length - 1].end, Buffer.byteLength(complete));
    });
  });

  describe('on a private stack', function () {
    const faults = useFaultStack('instruments');

    it('cutting the AOF at a mark loses exactly the writes acknowledged after it', async function () {
      const run = await faults.run('aof-cut');
      const { redis } = run;
      const stack = faults.stack;
      const before = [];
      for (let i = 0; i < 100; i++) before.push(await redis.xadd('aof.s', '*', 'd', `b${i}`));
      await redis.multi().hset('aof.h', 'f', 'before').xadd('aof.s', '*', 'd', 'tx-before').exec();
      const mark = await stack.redis.markAof(redis);
      for (let i = 0; i < 50; i++) await redis.xadd('aof.s', '*', 'd', `a${i}`);
      await redis.multi().hset('aof.h', 'f', 'after').xadd('aof.s', '*', 'd', 'tx-after').exec();
      await stack.redis.kill();
      const cut = stack.redis.loseWritesAfter(mark);
      await stack.redis.start();
      assert.deepEqual(cut.droppedCommands, { XADD: 51, MULTI: 1, HSET: 1, EXEC: 1 });
      const ids = ((await redis.xrange('aof.s', '-', '+')) as [string, string[]][]).map(([id]) => id);
      assert.equal(ids.length, 101);
      assert.deepEqual(ids.slice(0, 100), before);
      assert.equal(await redis.hget('aof.h', 'f'), 'before');
    });

    it('the oracle passes an exact run and names each kind of error in a wrong one', async function () {
      const run = await faults.run('oracle');
      const [w0, w1, w2] = run.plan(3, 30);
      const stream = run.streams[0];
      const late = run.config.bus.redis.late_stream;
      await run.redis.xgroup('CREATE', stream, run.group, '0', 'MKSTREAM');
      await run.publish([...w0, ...w1, ...w2]);
      // Consume and acknowledge everything: bars for w0 and w1, w2's first event late.
      const read = (await run.redis.xreadgroup('GROUP', run.group, 'c', 'COUNT', 1000, 'STREAMS', stream, '>')) as [string, [string, string[]][]][];
      await run.redis.xack(stream, run.group, ...read[0][1].map(([id]) => id));
      await run.redis.xadd(late, '*', 'd', JSON.stringify(w2[0]));
      const store = new StoreClient(run.db);
      await store.upsertBars(expectedBars([...w0, ...w1, ...w2.slice(1)], run.windowMs));
      const exact = await run.account({ allowLate: true });
      assert.deepEqual(exact.problems, [], exact.report);

      // Now break it: w1's bar rewritten without its last event; w0's first event also in the
      // late stream (counted twice); an entry left pending; a valid event in the DLQ.
      const partial = expectedBars(w1.slice(0, -1), run.windowMs).find((b) => b.symbol === w1[w1.length - 1].symbol)!;
      await store.upsertBars([partial]);
      await run.redis.xadd(late, '*', 'd', JSON.stringify(w0[0]));
      const [extra] = await run.publish(run.plan(4, 30)[3].slice(0, 1));
      await run.redis.xreadgroup('GROUP', run.group, 'c', 'COUNT', 10, 'STREAMS', stream, '>');
      await run.redis.xadd(
        run.config.bus.redis.dlq_stream,
        '*',
        'reason',
        'test',
        'code',
        'invalid_event',
        'stream',
        stream,
        'id',
        extra.id!,
        'original',
        extra.payload,
      );
      const wrong = await run.account({ allowLate: true });
      const report = wrong.report;
      assert.match(
        report,
        new RegExp(`${partial.symbol}\\|${intervalLabel(run.windowMs)}\\|.*trades ${partial.trades} ≠ ${partial.trades + 1} \\(-1\\)`),
        report,
      );
      assert.match(report, /committed bars rewritten or deleted \(bar audit\) \(1\)/, report);
      assert.match(report, new RegExp(`${w0[0].symbol}\\|.*trades`), 'the event in a bar and in the late stream shows in its bar');
      assert.match(report, /valid events sent to the DLQ \(1\)/, report);
      assert.match(report, /entries left in the consumer group \(1\):\n.*1 pending/, report);
    });
  });
});
