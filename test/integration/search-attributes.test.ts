/**
 * `ensureSearchAttributes` against a dev server started WITHOUT mdp's search attributes (what
 * `mdp up` meets on a cluster nobody prepared): it adds them, a second call adds nothing, a type
 * conflict is named, and a client whose namespace cannot have them starts workflows without them.
 */
import assert from 'node:assert/strict';
import { Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SearchAttributeError } from '../../client/search-attribute-error.js';
import { ensureSearchAttributes, searchAttributesReady } from '../../client/search-attributes.js';
import { legibleStart } from '../../client/workflow-summaries.js';
import { MDP_SEARCH_ATTRIBUTES, MdpRole, mdpSearchAttributes } from '../../workflows/index.js';
import { quietTemporalCliPath, uniqueTag } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

/** Keyword in the operator API's enum (temporal.api.enums.v1.IndexedValueType). */
const KEYWORD = 2;
const OTHER = 'mdp-sa-other';

describe('ensureSearchAttributes (a dev server without them)', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;

  before(async function () {
    env = await TestWorkflowEnvironment.createLocal({
      server: { executable: { type: 'existing-path', path: quietTemporalCliPath() }, ip: '127.0.0.1', ui: false, extraArgs: ['--namespace', OTHER] },
    });
    // Namespace OTHER has an MdpShard of its own, of the wrong type.
    await env.client.connection.operatorService.addSearchAttributes({ namespace: OTHER, searchAttributes: { MdpShard: KEYWORD } });
  });

  after(async function () {
    await env?.teardown();
  });

  it('adds the missing ones (usable at once), then adds nothing', async function () {
    const names = MDP_SEARCH_ATTRIBUTES.map((key) => key.name);
    const first = await ensureSearchAttributes(env.client, 'default');
    assert.deepEqual([...first.added].sort(), [...names].sort());
    assert.deepEqual(first.present, []);
    const listed = await env.client.connection.operatorService.listSearchAttributes({ namespace: 'default' });
    for (const name of names) assert.ok(name in listed.customAttributes, `${name} registered`);

    const second = await ensureSearchAttributes(env.client, 'default');
    assert.deepEqual(second.added, []);
    assert.deepEqual([...second.present].sort(), [...names].sort());

    // A workflow started with them right away is accepted and found by them (no worker needed to start).
    const workflowId = `sa-${uniqueTag()}`;
    const handle = await env.client.workflow.start('noSuchWorkflow', {
      taskQueue: `sa-${uniqueTag()}`,
      workflowId,
      typedSearchAttributes: mdpSearchAttributes({ role: 'replay', dataset: 'sa_check' }),
    });
    await waitFor('the workflow found by MdpDataset', 20_000, async () => {
      for await (const info of env.client.workflow.list({ query: 'MdpDataset = "sa_check" AND MdpRole = "replay"' }))
        if (info.workflowId === workflowId) return true;
      return undefined;
    });
    await handle.terminate('test done');
  });

  it('names an attribute that exists with another type, and adds nothing then', async function () {
    await assert.rejects(ensureSearchAttributes(env.client, OTHER), (err: unknown) => {
      assert.ok(err instanceof SearchAttributeError);
      assert.equal(err.code, 'type_conflict');
      assert.deepEqual(err.conflicts, [{ name: 'MdpShard', existing: 'Keyword', wanted: 'Int' }]);
      assert.match(err.message, /namespace mdp-sa-other .*MdpShard is Keyword, mdp needs Int/);
      return true;
    });
    const listed = await env.client.connection.operatorService.listSearchAttributes({ namespace: OTHER });
    assert.ok(!('MdpRole' in listed.customAttributes), 'nothing added beside the conflict');
  });

  it('a client of a namespace that cannot have them starts workflows without them, and says so once', async function () {
    const client = new Client({ connection: env.client.connection, namespace: OTHER });
    const warnings: string[] = [];
    const warn = (message: string) => warnings.push(message);
    const first = await searchAttributesReady(client, warn);
    const again = await searchAttributesReady(client, warn);
    assert.equal(first.ready, false);
    assert.equal(again, first);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /MdpShard is Keyword, mdp needs Int.*workflows start without search attributes/);

    const options = await legibleStart(client, { labels: { role: 'replay', dataset: 'x' }, summary: 'replay x' });
    assert.equal(options.typedSearchAttributes, undefined);
    const handle = await client.workflow.start('noSuchWorkflow', { taskQueue: `sa-${uniqueTag()}`, workflowId: `sa-${uniqueTag()}`, ...options });
    const described = await handle.describe();
    assert.equal(await described.staticSummary(), 'replay x', 'still summarised');
    assert.equal(described.typedSearchAttributes.get(MdpRole), undefined);
    await handle.terminate('test done');
  });
});
