import assert from 'node:assert/strict';
import { parseDurationMs } from '../../pipeline/contracts/index.js';

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
