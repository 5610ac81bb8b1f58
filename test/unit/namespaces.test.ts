import assert from 'node:assert/strict';
import { parseOptions } from '../../bench/bench-options.js';
import { BENCH_NAMESPACE, planRun } from '../../bench/run-plan.js';
import { deepMerge, TEST_NAMESPACE, testConfig } from '../helpers/services.js';

/** Runs `fn` with `TEMPORAL_NAMESPACE=default` in the environment, as a shell that exported it for the live pipeline would. */
async function withDefaultNamespaceInEnv<T>(fn: () => T | Promise<T>): Promise<T> {
  const previous = process.env.TEMPORAL_NAMESPACE;
  process.env.TEMPORAL_NAMESPACE = 'default';
  try {
    return await fn();
  } finally {
    if (previous === undefined) delete process.env.TEMPORAL_NAMESPACE;
    else process.env.TEMPORAL_NAMESPACE = previous;
  }
}

describe("tests and the bench never use the user's default Temporal namespace", function () {
  it('test configs are in mdp-test, also with TEMPORAL_NAMESPACE=default exported and with overrides of other temporal keys', async function () {
    assert.equal(TEST_NAMESPACE, 'mdp-test');
    await withDefaultNamespaceInEnv(() => {
      assert.equal(testConfig('tns').temporal.namespace, 'mdp-test');
      assert.equal(testConfig('tns', { temporal: { address: '127.0.0.1:1', task_queue: 'q' } }).temporal.namespace, 'mdp-test');
      // FaultRun and BusRun build theirs this way.
      assert.equal(testConfig('tns', deepMerge({ temporal: { address: '127.0.0.1:1' } }, {})).temporal.namespace, 'mdp-test');
    });
  });

  it("the bench's run config is in mdp-bench, whatever the base config or the environment says", async function () {
    assert.equal(BENCH_NAMESPACE, 'mdp-bench');
    const plan = await withDefaultNamespaceInEnv(() => planRun(parseOptions(['--inference', 'off'])!));
    assert.equal(plan.config.temporal.namespace, 'mdp-bench');
    assert.notEqual(plan.config.temporal.namespace, 'default');
  });
});
