import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { abortableSleep } from '../../pipeline/contracts/index.js';

describe('abortableSleep', () => {
  it('leaves no abort listener behind when the timer fires (a paced replay or a follow loop sleeps on one signal)', async () => {
    const controller = new AbortController();
    for (let i = 0; i < 20; i++) await abortableSleep(1, controller.signal);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
  });

  it('returns early when the signal aborts, and at once when it already has', async () => {
    const controller = new AbortController();
    const began = performance.now();
    const sleeping = abortableSleep(10_000, controller.signal);
    controller.abort();
    await sleeping;
    await abortableSleep(10_000, controller.signal);
    assert.ok(performance.now() - began < 1000);
  });
});
