/**
 * Fault matrix, row j: two worker processes on one task queue share the shards of one run (Temporal
 * hands each shard's consumer activity to either), on the Redis and on the Kafka bus; one is
 * SIGKILLed with a window open on every shard. Its shards move to the survivor (their next attempt,
 * after the heartbeat timeout) and the survivor's own shards are not disturbed. Every shard has one
 * owner at a time: the owner audit (every effective write to `shard_positions`, in order) never
 * shows an older epoch after a newer one, every epoch that wrote belongs to one attempt on one
 * worker, nothing of the killed worker's is written after the kill, and the bus holds the final
 * owner's epoch too. Every event is in exactly one bar, none late, none dead-lettered.
 *
 * The private Temporal runs with eager activity dispatch off, so each shard's activity is matched
 * to either worker's poll instead of staying on the worker that ran its workflow task. If every shard still lands on one worker (in trials the first worker took most
 * runs), the other shards' runs are restarted (`recheckPending`) until each worker has one.
 */
import assert from 'node:assert/strict';
import { Admin } from '@platformatic/kafka';
import { decodeCursorMeta } from '../../pipeline/bus/kafka-cursor.js';
import { topicName } from '../../pipeline/bus/index.js';
import { assertAccounted } from '../helpers/accounting.js';
import type { FaultRun, RunWorker, ShardAttempt } from '../helpers/fault-run.js';
import { useFaultStack } from '../helpers/fault-run.js';
import type { OwnerEvent } from '../helpers/owner-audit.js';
import { installOwnerAudit, ownerHistory, ownerViolations } from '../helpers/owner-audit.js';
import { waitFor } from '../helpers/wait.js';
import { HOLD_OPEN, RECOVERY_MS } from './matrix.js';

const SHARDS = 4;

type Owners = Map<number, { worker: RunWorker; attempt: ShardAttempt }>;

/** The shards' owners once every worker runs at least one shard (see the file's doc). */
async function spreadOver(run: FaultRun, workers: readonly RunWorker[]): Promise<Owners> {
  for (let round = 0; ; round++) {
    const owners = await run.shardOwners(workers, 60_000);
    const idle = workers.filter((w) => ![...owners.values()].some((o) => o.worker === w));
    if (idle.length === 0) return owners;
    if (round >= 5) throw new Error(`precondition: ${idle.map((w) => w.label).join(', ')} still runs no shard after ${round} rounds of restarted runs`);
    // All on one worker: every shard but one starts a new run, which either worker may take.
    const restarted = [...owners].slice(1);
    await Promise.all(
      restarted.map(async ([shard, owner]) => {
        await run.consumer(shard).signal('recheckPending');
        await waitFor(`shard ${shard}'s next run to start`, 60_000, async () => {
          const a = await run.attempt(shard);
          return a?.state === 'STARTED' && (a.lastStartedMs ?? 0) > (owner.attempt.lastStartedMs ?? 0) ? true : undefined;
        });
      }),
    );
  }
}

/** Per shard stream, the epochs each worker's log shows a micro-batch attempt starting with. */
function epochsStarted(run: FaultRun, workers: readonly RunWorker[]): Map<string, Map<number, RunWorker>> {
  const out = new Map<string, Map<number, RunWorker>>();
  for (const worker of workers) {
    for (const line of run.logLines(worker)) {
      if (line.msg !== 'micro-batch consumer started' || typeof line.stream !== 'string' || typeof line.epoch !== 'number') continue;
      const byEpoch = out.get(line.stream) ?? new Map<number, RunWorker>();
      byEpoch.set(line.epoch, worker);
      out.set(line.stream, byEpoch);
    }
  }
  return out;
}

/** The owner epoch the Kafka group's committed offset carries on each shard's partition. */
async function kafkaEpochs(run: FaultRun): Promise<Map<string, number | undefined>> {
  const admin = new Admin({ clientId: `${run.group}-check`, bootstrapBrokers: [...run.config.bus.kafka.brokers] });
  try {
    const topic = topicName(run.config.bus.kafka.stream);
    const [group] = await admin.listConsumerGroupOffsets({
      groups: [{ groupId: run.group, topics: [{ name: topic, partitionIndexes: run.streams.map((_, shard) => shard) }] }],
    });
    const partitions = group?.topics.find((t) => t.name === topic)?.partitions ?? [];
    return new Map(
      run.streams.map((stream, shard) => {
        const p = partitions.find((x) => x.partitionIndex === shard);
        return [stream, p && p.committedOffset >= 0n ? decodeCursorMeta(p.metadata, p.committedOffset).epoch : undefined];
      }),
    );
  } finally {
    await admin.close();
  }
}

/**
 * What contradicts "one owner per shard, and the killed worker's shards moved to the survivor" in
 * a shard's audited writes since its owner before the kill took it, given who that was.
 */
function ownershipFindings(input: {
  stream: string;
  history: readonly OwnerEvent[];
  started: ReadonlyMap<number, RunWorker>;
  ownerBefore: RunWorker;
  victim: RunWorker;
  survivor: RunWorker;
  placedAtMs: number;
  killedAtMs: number;
}): string[] {
  const { stream, started, ownerBefore, victim, survivor, killedAtMs } = input;
  const out: string[] = [];
  // A run restarted to spread the shards (see spreadOver) took the shard from an earlier one.
  let placed = 0;
  input.history.forEach((e, i) => {
    if (e.op === 'acquire' && e.at.getTime() <= input.placedAtMs) placed = i;
  });
  const history = input.history.slice(placed);
  const epochs = [...new Set(history.map((e) => e.epoch))];
  const ran = (epoch: number) => started.get(epoch)?.label ?? '(no worker logged it)';
  for (const e of history) {
    const worker = started.get(e.epoch);
    if (worker === undefined) out.push(`${stream}: ${e.op} by epoch ${e.epoch}, which no worker logged starting`);
    else if (worker === victim && e.at.getTime() > killedAtMs)
      out.push(`${stream}: ${e.op} by the killed worker's epoch ${e.epoch} at ${e.at.toISOString()}, after the kill`);
  }
  const commits = history.filter((e) => e.op === 'commit');
  if (commits.length === 0) out.push(`${stream}: no commit at all`);
  const last = history.at(-1);
  if (last && started.get(last.epoch) !== survivor) out.push(`${stream}: its last write is by epoch ${last.epoch} on ${ran(last.epoch)}, not on the survivor`);
  if (ownerBefore === survivor && epochs.length !== 1)
    out.push(`${stream}: the survivor's shard changed owners: epochs ${epochs.map((e) => `${e} (${ran(e)})`).join(', ')}`);
  if (ownerBefore === victim && !(epochs.length === 2 && started.get(epochs[0]) === victim && started.get(epochs[1]) === survivor))
    out.push(`${stream}: expected the killed worker's epoch, then one of the survivor's; got ${epochs.map((e) => `${e} (${ran(e)})`).join(', ')}`);
  return out;
}

describe('fault matrix j: two workers share the shards of a run, one is SIGKILLed', function () {
  this.timeout(300_000);
  const faults = useFaultStack('shared-workers', { kafka: true, temporalDynamicConfig: { 'system.enableActivityEagerExecution': false } });

  for (const bus of ['redis', 'kafka'] as const) {
    it(`on ${bus} (${SHARDS} shards): one owner per shard at any time, the killed worker's shards move to the survivor; exact accounting`, async function () {
      const run = await faults.run(`shared-${bus}`, { bus, shards: SHARDS, overrides: HOLD_OPEN });
      await installOwnerAudit(run.db);
      const plan = run.plan(8, 240);
      const workers = [await run.startWorker('worker-a'), await run.startWorker('worker-b')];
      await run.startConsumers();
      const before = await spreadOver(run, workers);
      const placedAtMs = Date.now();
      const [victim, survivor] = workers;

      const rest = await run.commitThenOpen(plan, 3);
      const killedAtMs = Date.now();
      await run.killWorker(victim);
      await run.assertOpen(plan[3], 'window 3 was open at the kill');

      // The survivor keeps consuming its shards while the victim's wait for the heartbeat timeout.
      await run.publish([...rest, ...plan.slice(4).flat()]);
      const moved = [...before].filter(([, o]) => o.worker === victim).map(([shard]) => shard);
      for (const shard of moved) await run.waitForAttemptOn(shard, survivor, RECOVERY_MS, 2);
      await run.settle(RECOVERY_MS);
      const accounting = await run.account();

      const after = await run.shardOwners([survivor], 30_000);
      const history = await ownerHistory(run.db, run.streams, run.group);
      const started = epochsStarted(run, workers);
      const storeEpochs = new Map<string, number>();
      for (const e of history) storeEpochs.set(e.stream, e.epoch);
      const busEpochs = bus === 'kafka' ? await kafkaEpochs(run) : undefined;
      assertAccounted(accounting, {
        'writes out of owner order (owner audit)': ownerViolations(history),
        'ownership of each shard': run.streams.flatMap((stream, shard) =>
          ownershipFindings({
            stream,
            history: history.filter((e) => e.stream === stream),
            started: started.get(stream) ?? new Map(),
            ownerBefore: before.get(shard)!.worker,
            victim,
            survivor,
            placedAtMs,
            killedAtMs,
          }),
        ),
        'Temporal attempts after the kill': moved.flatMap((shard) => {
          const a = after.get(shard)!.attempt;
          return a.attempt >= 2 ? [] : [`shard ${shard}: attempt ${a.attempt} on the survivor, expected a retry (≥ 2)`];
        }),
        "the bus' owner epoch (Kafka commit metadata) against the store's": busEpochs
          ? run.streams.flatMap((stream) =>
              busEpochs.get(stream) === storeEpochs.get(stream)
                ? []
                : [`${stream}: bus epoch ${busEpochs.get(stream)}, store epoch ${storeEpochs.get(stream)}`],
            )
          : [],
      });
      assert.ok(moved.length > 0 && moved.length < SHARDS);
    });
  }
});
