import assert from 'node:assert/strict';
import { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ensureNamespace } from '../../client/temporal.js';
import { SCRATCH_NAMESPACE_RETENTION, startTemporal, TEST_NAMESPACE, uniqueTag } from '../helpers/services.js';

describe('ensureNamespace (the namespaces of tests and the bench on a shared server)', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;

  before(async function () {
    env = await startTemporal();
  });

  after(async function () {
    await env?.teardown();
  });

  it("the file's dev server and its client are in mdp-test", async function () {
    assert.equal(env.namespace, TEST_NAMESPACE);
    assert.equal(env.client.options.namespace, TEST_NAMESPACE);
    assert.deepEqual(await ensureNamespace(env.connection, TEST_NAMESPACE, SCRATCH_NAMESPACE_RETENTION), { namespace: TEST_NAMESPACE, registered: false });
  });

  it('registers a missing namespace with its retention, returns once workflows can start in it, and leaves an existing one alone', async function () {
    const name = `mdp-ns-${uniqueTag()}`;
    const first = await ensureNamespace(env.connection, name, SCRATCH_NAMESPACE_RETENTION);
    assert.deepEqual(first, { namespace: name, registered: true });
    // Usable at once: a workflow starts (and is terminated: no worker polls its queue).
    const client = new Client({ connection: env.connection, namespace: name });
    const handle = await client.workflow.start('consumerRecoveryWorkflow', { taskQueue: `${name}-queue`, workflowId: `${name}-probe`, args: [{}] });
    await handle.terminate('probe');
    const described = await env.connection.workflowService.describeNamespace({ namespace: name });
    assert.equal(Number(described.config?.workflowExecutionRetentionTtl?.seconds), 86_400);
    assert.deepEqual(await ensureNamespace(env.connection, name, '7d'), { namespace: name, registered: false });
    const again = await env.connection.workflowService.describeNamespace({ namespace: name });
    assert.equal(Number(again.config?.workflowExecutionRetentionTtl?.seconds), 86_400, 'an existing namespace keeps its retention');
  });

  it('refuses a retention that is not a duration', async function () {
    await assert.rejects(ensureNamespace(env.connection, 'mdp-ns-bad', 'forever'), /retention must be a duration such as 1d \(got "forever"\)/);
  });
});
