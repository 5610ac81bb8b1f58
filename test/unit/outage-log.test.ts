import assert from 'node:assert/strict';
import { createLogger, OUTAGE_LOG_INTERVAL_MS, OutageLog } from '../../pipeline/telemetry/index.js';

describe('OutageLog', function () {
  const setup = () => {
    const lines: Record<string, unknown>[] = [];
    let now = 1_000_000;
    const log = createLogger('INFO', (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
    const outage = new OutageLog(log, 'redis', { now: () => now });
    return {
      lines,
      outage,
      advance: (ms: number) => {
        now += ms;
      },
    };
  };
  const refused = new Error('connect ECONNREFUSED 127.0.0.1:6379');

  it('logs the first error of an outage, then one line per interval with the count since the last', function () {
    const { lines, outage, advance } = setup();
    outage.error(refused, { uri: 'redis://127.0.0.1:6379/0' });
    // Two connections retrying every 100 ms for 25 s: 500 errors.
    for (let i = 1; i < 500; i += 1) {
      advance(50);
      outage.error(refused, { uri: 'redis://127.0.0.1:6379/0' });
    }
    assert.deepEqual(
      lines.map(({ level, msg, errors, downMs }) => ({ level, msg, errors, downMs })),
      [
        { level: 'error', msg: 'redis connection error', errors: undefined, downMs: undefined },
        { level: 'error', msg: 'redis connection errors continue', errors: 200, downMs: OUTAGE_LOG_INTERVAL_MS },
        { level: 'error', msg: 'redis connection errors continue', errors: 200, downMs: 2 * OUTAGE_LOG_INTERVAL_MS },
      ],
    );
    assert.equal(lines[0]?.err, refused.message);
    assert.equal(lines[0]?.uri, 'redis://127.0.0.1:6379/0');
    assert.ok(outage.down);
  });

  it('ends the outage with one line, and logs the first error of the next outage again', function () {
    const { lines, outage, advance } = setup();
    outage.recovered(); // nothing was down: no line
    outage.error(refused);
    advance(3000);
    outage.error(refused);
    outage.recovered();
    outage.recovered();
    assert.equal(outage.down, false);
    advance(60_000);
    outage.error(refused);
    assert.deepEqual(
      lines.map(({ level, msg, errors, downMs }) => ({ level, msg, errors, downMs })),
      [
        { level: 'error', msg: 'redis connection error', errors: undefined, downMs: undefined },
        { level: 'info', msg: 'redis connection restored', errors: 2, downMs: 3000 },
        { level: 'error', msg: 'redis connection error', errors: undefined, downMs: undefined },
      ],
    );
  });
});
