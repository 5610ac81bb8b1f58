import assert from 'node:assert/strict';
import { formatClock, parseDurationMs } from '../../pipeline/contracts/index.js';

describe('parseDurationMs', () => {
  it('parses every unit, and a bare number as milliseconds', () => {
    assert.equal(parseDurationMs('500ms'), 500);
    assert.equal(parseDurationMs('2s'), 2000);
    assert.equal(parseDurationMs('15m'), 900_000);
    assert.equal(parseDurationMs('1h'), 3_600_000);
    assert.equal(parseDurationMs('2d'), 172_800_000);
    assert.equal(parseDurationMs('250'), 250);
    assert.equal(parseDurationMs(' 1.5 s '), 1500);
    assert.equal(parseDurationMs(750), 750);
  });

  it('accepts zero, so callers that need a positive span check it themselves', () => {
    assert.equal(parseDurationMs('0s'), 0);
    assert.equal(parseDurationMs('0'), 0);
    assert.equal(parseDurationMs(0), 0);
  });

  it('rejects negative, malformed and unknown-unit durations', () => {
    for (const text of ['-1s', '', 's', '1 2s', '1w', '1sec', '1S', 'abc', '1e3', '.5s']) assert.equal(parseDurationMs(text), undefined, text);
    for (const value of [-1, Number.NaN, Number.POSITIVE_INFINITY]) assert.equal(parseDurationMs(value), undefined, String(value));
  });
});

describe('formatClock', () => {
  const at = Date.UTC(2025, 9, 24, 14, 2, 1, 234);

  it('formats a UTC clock time, to the second or to the millisecond', () => {
    assert.equal(formatClock(at), '14:02:01');
    assert.equal(formatClock(at, { millis: true }), '14:02:01.234');
    assert.equal(formatClock(at, { millis: false }), '14:02:01');
  });

  it('pads every field and wraps at midnight, whatever the date', () => {
    assert.equal(formatClock(Date.UTC(2025, 0, 1), { millis: true }), '00:00:00.000');
    assert.equal(formatClock(Date.UTC(2025, 0, 1, 9, 5, 7, 8), { millis: true }), '09:05:07.008');
    assert.equal(formatClock(Date.UTC(2024, 1, 29, 23, 59, 59, 999), { millis: true }), '23:59:59.999');
    assert.equal(formatClock(-1, { millis: true }), '23:59:59.999');
  });

  it('cuts sub-second time rather than rounding it up to the next second', () => {
    assert.equal(formatClock(Date.UTC(2025, 0, 1, 23, 59, 59, 999)), '23:59:59');
  });
});
