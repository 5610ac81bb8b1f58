/**
 * Fault matrix, row m: a new version rolled onto the running pipeline, then rolled back. Worker
 * process v1 runs the producer (synthetic, steady rate), the micro-batch and the inference
 * consumers; v2 (another build id, `rollout: manual`) starts beside it and is promoted with
 * `mdp deploy promote`; v1 is stopped (SIGTERM) once `mdp deploy status` says it is drained; a v1
 * worker comes back and `mdp deploy rollback` returns the pipeline to it; v2 is stopped.
 *
 * Nothing is lost, duplicated or rewritten across the two hand-overs: the producer's sequence has
 * no gap and no repeat per symbol (it carried its state across versions), every event the streams
 * hold is in exactly one bar and none is late or dead-lettered, every bar equals the independent
 * aggregation and was never rewritten, each shard's owner epochs only grow, and the signals equal
 * one uninterrupted pass of the same rules over the stored bars. Every consumer reports the
 * version it runs on after each step.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import yaml from 'js-yaml';
import type { DeployStatus, RolloutResult } from '../../client/deploy-command.js';
import { deployStatus, promote, rollback } from '../../client/deploy-command.js';
import { describeDeployment, waitForVersion } from '../../client/deployments.js';
import { startInference, startProducer } from '../../client/stream-commands.js';
import { busNames, deploymentNameOf } from '../../pipeline/config/index.js';
import type { SignalEventV1, StreamEventV1 } from '../../pipeline/contracts/index.js';
import { shardStream } from '../../pipeline/bus/index.js';
import { FeatureEngine } from '../../pipeline/features/index.js';
import { loadRulesFile, RulesAdapter } from '../../pipeline/inference/rules/index.js';
import { knownFeatures } from '../../workers/adapters.js';
import type { LoopStatus } from '../../workflows/index.js';
import type { ProducedEntry } from '../helpers/accounting.js';
import { assertAccounted, waitSettled } from '../helpers/accounting.js';
import type { FaultRun, RunWorker } from '../helpers/fault-run.js';
import { useFaultStack, withTimeout } from '../helpers/fault-run.js';
import { installOwnerAudit, ownerHistory, ownerViolations } from '../helpers/owner-audit.js';
import { pollUntil, waitFor } from '../helpers/wait.js';
import { HOLD_OPEN, RECOVERY_MS } from './matrix.js';

const SHARDS = 2;
/** Events per second across the symbols. */
const RATE = 120;
/** Production time on each version between the steps. */
const PHASE_MS = 5000;

const RULES = [
  { name: 'every_bar', condition: 'price > 0.0', signal: 1.0, score: 0.5, mode: 'level' },
  { name: 'rsi_high', condition: 'rsi > 55.0', signal: -1.0, score: 0.7, mode: 'edge', cooldown: '3s' },
];

/** Waits until the routing's current version is `buildId`. */
async function waitForCurrent(run: FaultRun, buildId: string): Promise<void> {
  await waitFor(`version ${buildId} to be current`, 120_000, async () => {
    const state = await describeDeployment(run.client, run.config.temporal.namespace, deploymentNameOf(run.config));
    return state?.current === buildId ? true : undefined;
  });
}

/** Waits until `mdp deploy status` says nothing runs on `buildId` any more; fails with the last status. */
async function waitSafeToStop(run: FaultRun, buildId: string): Promise<void> {
  let last: DeployStatus | undefined;
  try {
    await waitFor(`${buildId} to be safe to stop`, 60_000, async () => {
      last = await deployStatus(run.client, run.config);
      return last.versions.find((v) => v.buildId === buildId)?.safeToStop ? true : undefined;
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}; last status: ${JSON.stringify(last)}`);
  }
}

/** SIGTERM, and the exit code once the worker has finished its in-flight tasks. */
async function stopGracefully(worker: RunWorker): Promise<number | null> {
  worker.child.kill('SIGTERM');
  return withTimeout(worker.exited, 60_000, `${worker.label} to stop after SIGTERM`);
}

/** Gap and repeat findings of the producer's per-symbol `seq` in what the streams hold. */
function sequenceFindings(events: readonly StreamEventV1[]): string[] {
  const bySymbol = new Map<string, number[]>();
  for (const e of events) bySymbol.set(e.symbol, [...(bySymbol.get(e.symbol) ?? []), e.seq]);
  const out: string[] = [];
  for (const [symbol, seqs] of bySymbol) {
    seqs.sort((a, b) => a - b);
    for (let i = 0; i < seqs.length; i++) {
      if (seqs[i] !== i) {
        out.push(`${symbol}: seq ${i} expected, found ${seqs[i]} (${seqs.length} events; a gap or repeat at the hand-over)`);
        break;
      }
    }
  }
  return out;
}

describe('fault matrix m: a version rolled out under load, then rolled back', function () {
  this.timeout(420_000);
  const faults = useFaultStack('rollout', { kafka: true });

  for (const bus of ['redis', 'kafka'] as const) {
    it(`on ${bus}: promote v2, stop v1 once drained, roll back to v1: no event lost or late, no bar rewritten, signals of an uninterrupted run`, async function () {
      const rulesFile = resolve(faults.stack.dir, `rules-${bus}.yaml`);
      writeFileSync(rulesFile, yaml.dump(RULES));
      const run = await faults.run(`rollout-${bus}`, {
        bus,
        shards: SHARDS,
        overrides: { ...HOLD_OPEN, inference: { adapters: { rules: { enabled: true, file: rulesFile }, sklearn: { enabled: false } } } },
      });
      await installOwnerAudit(run.db);
      const { client, config } = run;
      const namespace = config.temporal.namespace;
      const deployment = deploymentNameOf(config);
      /** Every long-running workflow moved to `buildId`, and reports it. */
      const assertAllOn = async (result: RolloutResult, buildId: string) => {
        assert.deepEqual(
          result.handOvers.filter((h) => !h.moved),
          [],
          `every long-running workflow moved to ${buildId}`,
        );
        const reported = await Promise.all(loops.map(async (id) => [id, (await client.workflow.getHandle(id).query<LoopStatus>('status')).buildId] as const));
        assert.deepEqual(
          reported.filter(([, b]) => b !== buildId),
          [],
          `every consumer and the producer report ${buildId}`,
        );
      };

      // On Redis, a group of the test's own that never reads: the streams keep every entry (retention
      // trims only what every group acknowledged), so what the producer published can be read back.
      // Kafka keeps every record for its retention anyway.
      if (bus === 'redis') for (const stream of run.streams) await run.redis.xgroup('CREATE', stream, 'rollout-audit', '0', 'MKSTREAM');

      // v1 runs everything.
      const v1 = await run.startWorker('v1', { MDP_BUILD_ID: 'v1' });
      await waitForCurrent(run, 'v1');
      await run.startConsumers();
      const inference = await startInference(client, config, 'rules');
      const producer = await startProducer(client, config, { provider: 'synthetic', symbols: [...run.symbols], rate: RATE });
      const loops = [producer.workflowId, ...run.streams.map((_, s) => run.consumerId(s)), ...inference.map((c) => c.workflowId)];
      await pollUntil(60_000, async () => ((await run.bars()).length >= 4 ? true : undefined), { everyMs: 250 });
      await new Promise((r) => setTimeout(r, PHASE_MS));

      // v2 beside it, promoted: every long-running workflow hands over.
      const v2 = await run.startWorker('v2', { MDP_BUILD_ID: 'v2', MDP_ROLLOUT: 'manual' });
      await waitForVersion(client, namespace, deployment, 'v2', config.temporal.task_queue, 60_000);
      assert.equal((await describeDeployment(client, namespace, deployment))?.current, 'v1', 'a manual-rollout worker does not promote itself');
      await assertAllOn(await promote(client, config, 'v2'), 'v2');
      await new Promise((r) => setTimeout(r, PHASE_MS));

      // v1 stops once nothing runs on it.
      await waitSafeToStop(run, 'v1');
      assert.equal(await stopGracefully(v1), 0, 'v1 stopped cleanly');
      await new Promise((r) => setTimeout(r, PHASE_MS));

      // Rollback: a v1 worker again, and back to it.
      await run.startWorker('v1-again', { MDP_BUILD_ID: 'v1', MDP_ROLLOUT: 'manual' });
      const rolledBack = await rollback(client, config, undefined);
      assert.equal(rolledBack.buildId, 'v1');
      assert.equal(rolledBack.previous, 'v2');
      await assertAllOn(rolledBack, 'v1');
      await new Promise((r) => setTimeout(r, PHASE_MS));
      await waitSafeToStop(run, 'v2');
      assert.equal(await stopGracefully(v2), 0, 'v2 stopped cleanly');

      // Stop producing, let the consumers finish, account.
      const producerHandle = client.workflow.getHandle(producer.workflowId);
      await producerHandle.signal('drain');
      const produced = await withTimeout(producerHandle.result() as Promise<LoopStatus>, 60_000, 'the producer to drain');
      assert.equal(produced.handOvers, 2);
      await run.settle(RECOVERY_MS);
      const names = busNames(config);
      const featureStreams = run.streams.map((_, s) => shardStream(names.features_stream, s));
      await waitSettled(run.reader, featureStreams, names.inference_group, RECOVERY_MS);
      const statuses = await run.drain();
      // The inference consumers too (the fault stack's Temporal serves the next row).
      await Promise.all(
        inference.map(async (c) => {
          const handle = client.workflow.getHandle(c.workflowId);
          await handle.signal('drain');
          statuses.push(await withTimeout(handle.result() as Promise<LoopStatus>, 60_000, `${c.workflowId} to drain`));
        }),
      );
      for (const s of statuses) assert.equal(s.handOvers, 2, `a consumer handed over twice: ${JSON.stringify(s)}`);

      // What the producer published is what the streams hold (kept for the audit group).
      const events: StreamEventV1[] = [];
      for (const stream of run.streams) {
        for (const [, fields] of await run.reader.entries(stream)) {
          const payload = fields.get('d')!;
          const event = JSON.parse(payload) as StreamEventV1;
          events.push(event);
          run.produced.push({ stream, payload, event, expect: 'valid' } satisfies ProducedEntry);
        }
      }
      assert.equal(events.length, produced.totals.published, 'the streams hold every event the producer counted');
      const accounting = await run.account();

      // Signals: one uninterrupted pass of the same rules over the stored bars.
      const bars = [...accounting.bars].sort((a, b) => a.tsMs - b.tsMs || (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
      const engine = new FeatureEngine({ windows: config.features.windows });
      const adapter = new RulesAdapter(loadRulesFile(rulesFile, { knownFeatures: knownFeatures(config) }));
      const expected: SignalEventV1[] = [];
      for (const bar of bars) expected.push(...adapter.evaluateSync(engine.update(bar)));
      const key = (s: { symbol: string; name: string; ts: string | Date }) => `${s.name} ${s.symbol}@${new Date(s.ts).toISOString()}`;
      const stored = await run.db.selectFrom('signals').select(['symbol', 'name', 'ts']).where('provider', '=', run.provider).execute();
      const storedKeys = stored.map(key).sort();
      const expectedKeys = expected.map(key).sort();
      const missing = expectedKeys.filter((k) => !storedKeys.includes(k));
      const extra = storedKeys.filter((k) => !expectedKeys.includes(k));
      console.log(
        `      ${events.length} events → ${accounting.summary.barsStored} bars → ${stored.length} signals (${expected.filter((s) => s.name === 'rsi_high').length} edge) across 2 hand-overs`,
      );

      assertAccounted(accounting, {
        "the producer's sequence per symbol": sequenceFindings(events),
        'writes out of owner order (owner audit)': ownerViolations(await ownerHistory(run.db, run.streams, run.group)),
        'signals missing against an uninterrupted pass': missing.slice(0, 20),
        'signals an uninterrupted pass would not emit': extra.slice(0, 20),
      });
      assert.ok(
        expected.some((s) => s.name === 'rsi_high'),
        'the edge rule fired at least once',
      );
    });
  }
});
