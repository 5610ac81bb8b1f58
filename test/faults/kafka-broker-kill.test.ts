/**
 * Fault matrix, row k: the Kafka broker is SIGKILLed mid-run — the shard consumers reading with a
 * window open, a producer publishing through the KafkaBus call after call, one of its calls in
 * flight — and started again on the same data a few seconds later, while the producer keeps
 * publishing.
 *
 * Every publish call is recorded with what it acknowledged. Nothing acknowledged may be lost: the
 * partitions hold every acknowledged record at its offset after the restart (one broker acks from
 * its page cache, which a SIGKILL of the JVM does not lose). A call that failed may or may not have
 * been appended; those records are looked up in the partitions and count only if they are there.
 * The consumers and the producer recover by themselves (activity retries, the client's reconnects):
 * nothing is restarted by the test. Then the exact accounting: every record in exactly one bar,
 * bars equal to an independent aggregation, none late, none dead-lettered, nothing pending.
 *
 * After the restart the producer publishes from a plan 120 s of event time later, as a live
 * producer's clock would have moved on (see `FaultRun.plan`); the records of the first plan that
 * the broker took before it died are still read first.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { StreamEventV1 } from '../../pipeline/contracts/index.js';
import { assertAccounted } from '../helpers/accounting.js';
import { outage, useFaultStack } from '../helpers/fault-run.js';
import { installOwnerAudit, ownerHistory, ownerViolations } from '../helpers/owner-audit.js';
import { HOLD_OPEN, RECOVERY_MS } from './matrix.js';

/** How long the broker stays dead before it is started again (its start then takes a few seconds more). */
const BROKER_DOWN_MS = 3000;
/** Events per producer round (one publish call per shard), and the pause between rounds. */
const ROUND_EVENTS = 24;
const ROUND_PAUSE_MS = 100;
/**
 * The round whose calls are in flight when the broker is killed: a larger one, killed this long
 * after it was issued. In trials a kill within 3 ms of the call found nothing appended, one 5-8 ms
 * after it found the records appended and the call failed: the case a producer cannot tell.
 */
const KILL_ROUND = 3;
const KILL_ROUND_EVENTS = 240;
const KILL_AFTER_ISSUE_MS = 8;

interface PublishCall {
  readonly atMs: number;
  readonly events: number;
  readonly acknowledged: number;
  readonly errors: readonly string[];
}

/** Events cut into rounds of `size` events, with round KILL_ROUND of KILL_ROUND_EVENTS when `kill`. */
function rounds(events: readonly StreamEventV1[], options: { kill?: boolean } = {}): StreamEventV1[][] {
  const out: StreamEventV1[][] = [];
  for (let i = 0; i < events.length;) {
    const size = options.kill && out.length === KILL_ROUND ? KILL_ROUND_EVENTS : ROUND_EVENTS;
    out.push(events.slice(i, i + size));
    i += size;
  }
  return out;
}

describe('fault matrix k: the Kafka broker SIGKILLed mid-run, then started again', function () {
  this.timeout(300_000);
  const faults = useFaultStack('kafka-broker-kill', { kafka: true });

  it('nothing acknowledged to the producer is lost, consumers and producer recover by themselves; exact accounting', async function () {
    const kafka = faults.stack.kafka!;
    const run = await faults.run('broker-kill', { bus: 'kafka', shards: 2, overrides: HOLD_OPEN });
    await installOwnerAudit(run.db);
    const plan = run.plan(12, 240);
    const worker = await run.startWorker();
    await run.startConsumers();
    const before = await run.shardOwners([worker], 60_000);
    const rest = await run.commitThenOpen(plan, 3);

    // The producer: a round after another, through the kill and the restart, until the second plan
    // is out. The broker is killed as soon as round KILL_ROUND's calls are issued.
    const calls: PublishCall[] = [];
    const lateRounds = rounds(run.plan(4, 240, { after: plan }).flat());
    let restarted = false;
    let killRoundIssued: () => void = () => undefined;
    const killRoundInFlight = new Promise<void>((issued) => (killRoundIssued = issued));
    const producing = (async () => {
      const early = rounds([...rest, ...plan.slice(4).flat()], { kill: true });
      for (let i = 0; lateRounds.length > 0; i++) {
        const round = restarted ? lateRounds.shift() : early.shift();
        if (round === undefined) {
          await outage(ROUND_PAUSE_MS); // the first plan ran out before the restart: wait for it
          continue;
        }
        const call = run.tryPublish(round);
        if (i === KILL_ROUND) killRoundIssued();
        const { acknowledged, errors } = await call;
        calls.push({ atMs: Date.now(), events: round.length, acknowledged, errors });
        await outage(ROUND_PAUSE_MS);
      }
    })();
    await killRoundInFlight;
    await outage(KILL_AFTER_ISSUE_MS);

    const killedAtMs = Date.now();
    await kafka.kill();
    await outage(BROKER_DOWN_MS);
    await kafka.start();
    const restartedAtMs = Date.now();
    restarted = true;
    await producing;

    const settled = await run.settle(RECOVERY_MS);
    const held = await run.settleUnconfirmed();
    const accounting = await run.account();

    const history = await ownerHistory(run.db, run.streams, run.group);
    const after = await run.shardOwners([worker], 30_000);
    const firstCommitAfter = run.streams.map((stream) => history.find((e) => e.stream === stream && e.op === 'commit' && e.at.getTime() > restartedAtMs));
    const failedAfterRestart = calls.filter((c) => c.atMs > restartedAtMs && c.errors.length > 0);
    const firstAckAfter = calls.find((c) => c.atMs > restartedAtMs && c.acknowledged > 0);
    writeFileSync(
      resolve(run.logDir, 'recovery.json'),
      JSON.stringify(
        {
          brokerDownMs: restartedAtMs - killedAtMs,
          calls: calls.length,
          killRound: calls[KILL_ROUND],
          failedCalls: calls.filter((c) => c.errors.length > 0).length,
          unconfirmed: { appended: held.appended, absent: held.absent },
          firstAcknowledgedPublishAfterRestartMs: firstAckAfter ? firstAckAfter.atMs - restartedAtMs : null,
          firstCommitAfterRestartMs: firstCommitAfter.map((e) => (e ? e.at.getTime() - restartedAtMs : null)),
          attempts: run.streams.map((_, shard) => ({ before: before.get(shard)!.attempt.attempt, after: after.get(shard)!.attempt.attempt })),
          errors: [...new Set(calls.flatMap((c) => c.errors))].slice(0, 10),
        },
        null,
        2,
      ),
    );

    assertAccounted(accounting, {
      'acknowledged records the partitions do not hold at their offsets after the restart': held.lost,
      'records the partitions hold more than once': held.duplicated,
      'publish calls that failed after the broker was back': failedAfterRestart.map((c) => `${new Date(c.atMs).toISOString()}: ${c.errors.join('; ')}`),
      'shards with no commit after the restart': run.streams.filter((_, shard) => firstCommitAfter[shard] === undefined),
      'writes out of owner order (owner audit)': ownerViolations(history),
      settle: settled ? [] : [`the pipeline did not settle within ${RECOVERY_MS} ms`],
    });
  });
});
