/**
 * One integration suite, run against both buses (kysely's `for (const dialect of DIALECTS)`): the
 * same scenarios, checked the same way, on Redis Streams and on Kafka. Every check reads the bus
 * through the `Bus` interface (test/helpers/bus-probe.ts) and accounts for every event exactly
 * (test/helpers/accounting.ts): each valid event in exactly one bar, none late, none dead-lettered
 * unless it is poison, every bar equal to an independent aggregation, no committed bar rewritten.
 *
 * One Temporal dev server and one database connection serve the whole file; every scenario has
 * its own names (streams or topics, groups, provider, task queue) and its own worker.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import yaml from 'js-yaml';
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { drainPipeline, pipelineWorkflowIds, producerWorkflowIdOf, startInference, startMicroBatchers, startProducer } from '../../client/stream-commands.js';
import type { FeatureSnapshot, SignalEventV1, StreamEventV1 } from '../../pipeline/contracts/index.js';
import { parseIsoToMicros } from '../../pipeline/contracts/index.js';
import { generateSampleDay } from '../../pipeline/datasets/index.js';
import type { Database } from '../../store/index.js';
import { JobRunTracker, SignalsStoreClient, StoreClient } from '../../store/index.js';
import type { LoopStatus, ReplayProgress, ReplayWorkflowInput } from '../../workflows/index.js';
import { HOLD_OPEN, RECOVERY_MS } from '../faults/matrix.js';
import type { ProducedEntry } from '../helpers/accounting.js';
import { assertAccounted, barKey, barRewrites, installBarAudit, removeBarAudit } from '../helpers/accounting.js';
import { encodeEvent, entryIdOf } from '../../pipeline/bus/index.js';
import { entryFields } from '../helpers/bus-probe.js';
import { BUS_RUN_PROVIDER_PREFIX, RUN_DIR, useBusRuns } from '../helpers/bus-run.js';
import { expectedBars } from '../helpers/expected-bars.js';
import { connectStore, startTemporal, testConfig, uniqueTag } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Each bus, and each encoding variant of it (`bus.encoding`, `bus.redis.frame_events`) or of the
 * store's write path (`store.copy_min_rows`). The
 * variants run the four correctness scenarios (round trip, re-delivery, SIGKILL, bad input); the
 * features, replay and drain scenarios run on the plain buses only, to keep CI time down.
 */
const VARIANTS: readonly { readonly name: string; readonly bus: 'redis' | 'kafka'; readonly config: Record<string, unknown>; readonly full?: boolean }[] = [
  { name: 'redis', bus: 'redis', config: {}, full: true },
  { name: 'kafka', bus: 'kafka', config: {}, full: true },
  { name: 'redis, msgpack', bus: 'redis', config: { bus: { encoding: 'msgpack' } } },
  { name: 'redis, JSON frames', bus: 'redis', config: { bus: { redis: { frame_events: 8 } } } },
  { name: 'redis, msgpack frames', bus: 'redis', config: { bus: { encoding: 'msgpack', redis: { frame_events: 8 } } } },
  { name: 'kafka, msgpack', bus: 'kafka', config: { bus: { encoding: 'msgpack' } } },
  // Every flush through COPY into a staging table and one upsert from it.
  { name: 'redis, COPY path', bus: 'redis', config: { store: { copy_min_rows: 1 } } },
];

/** A level rule that holds on every bar: the signals it emits are known exactly from the bars. */
const EVERY_BAR_RULES = `
- name: "every_bar"
  condition: "price > 0.0 && volume >= 0.0"
  signal: 0.0
  score: 0.1
  mode: level
`;

const sum = (statuses: readonly LoopStatus[], key: string) => statuses.reduce((n, s) => n + (s.totals[key] ?? 0), 0);

/** Bars of a provider with their `updated_at`: a rewrite (even one restoring the values) changes it. */
function barRows(db: Kysely<Database>, provider: string) {
  return db
    .selectFrom('bars_ohlcv')
    .select(['symbol', 'interval', 'ts', 'open', 'high', 'low', 'close', 'volume', 'trades', 'updated_at'])
    .where('provider', '=', provider)
    .orderBy('symbol')
    .orderBy('ts')
    .execute();
}

describe('the pipeline on both buses (one suite, Redis and Kafka)', function () {
  this.timeout(180_000);
  let env: TestWorkflowEnvironment;
  let db: Kysely<Database>;
  let rulesFile: string;

  before(async function () {
    db = await connectStore(testConfig(uniqueTag()));
    // Bars of this file's runs only: the database is the local stack's, shared with other tests.
    await installBarAudit(db, { providerPrefix: BUS_RUN_PROVIDER_PREFIX });
    mkdirSync(RUN_DIR, { recursive: true });
    rulesFile = resolve(RUN_DIR, `every-bar-rules-${process.pid}.yaml`);
    writeFileSync(rulesFile, EVERY_BAR_RULES);
    env = await startTemporal();
  });

  after(async function () {
    if (db) await removeBarAudit(db, BUS_RUN_PROVIDER_PREFIX).catch(() => undefined);
    await db?.destroy();
    await env?.teardown();
  });

  for (const variant of VARIANTS) {
    const busType = variant.bus;
    // The features, replay and drain scenarios exist only on the plain buses (not listed as skipped elsewhere).
    const full = (title: string, test: Mocha.AsyncFunc) => (variant.full ? it(title, test) : undefined);
    describe(`pipeline on ${variant.name}`, function () {
      const runs = useBusRuns(busType, () => ({ env, db }), variant.config);

      it('stream → store: every bar equals an independent aggregation of the events', async function () {
        const run = await runs.run('round-trip');
        const plan = run.plan(6, 120);
        await run.publish(plan.flat());
        await run.startWorker();
        await run.startConsumers();
        assert.ok(await run.settle(), 'every event read and acknowledged');
        const statuses = await run.drain();

        const accounting = await run.account();
        assertAccounted(accounting);
        assert.equal(accounting.summary.barsStored, expectedBars(plan.flat(), run.windowMs).length);
        assert.ok(new Set(accounting.bars.map((b) => b.symbol)).size >= run.shards, 'bars of several symbols, on every shard');
        assert.equal(sum(statuses, 'accepted'), plan.flat().length);
        assert.equal(sum(statuses, 'late') + sum(statuses, 'invalid') + sum(statuses, 'duplicates'), 0);
        assert.equal(sum(statuses, 'inserted'), accounting.summary.barsStored);
      });

      it('re-delivery of every acknowledged entry changes no row and counts nothing late', async function () {
        const run = await runs.run('redelivery');
        const plan = run.plan(4, 80);
        await run.keep(run.streams); // Redis would trim what the group acknowledged: the rewind needs it back
        await run.publish(plan.flat());
        await run.startWorker();
        await run.startConsumers();
        assert.ok(await run.settle(), 'first delivery settled');
        await run.drain();
        const before = await barRows(db, run.provider);
        assert.equal(before.length, expectedBars(plan.flat(), run.windowMs).length);

        // The group forgets it read anything: every entry is delivered again to the restarted owner.
        for (const stream of run.streams) await run.probe.rewind(stream, run.names.consumer_group);
        const rewound = await Promise.all(run.streams.map((s) => run.probe.progress(s, run.names.consumer_group)));
        assert.equal(
          rewound.reduce((n, p) => n + p.undelivered, 0),
          new Set(run.produced.map((p) => `${p.stream}|${entryIdOf(p.id!)}`)).size,
          'after the rewind every entry (a frame counts once) is undelivered again',
        );
        await run.startConsumers();
        assert.ok(await run.settle(), 'second delivery settled');
        const statuses = await run.drain();

        assert.equal(sum(statuses, 'redelivered'), plan.flat().length, 'every entry recognised as already persisted');
        assert.equal(sum(statuses, 'accepted') + sum(statuses, 'late') + sum(statuses, 'inserted') + sum(statuses, 'updated'), 0);
        assert.deepEqual(await barRows(db, run.provider), before, 'no bar row changed, updated_at included');
        assert.deepEqual(await barRewrites(db, [run.provider]), [], 'the bar audit saw no rewrite');
        assertAccounted(await run.account());
      });

      it('SIGKILL of a worker process mid-window: the next worker takes over, nothing lost, doubled or late', async function () {
        this.timeout(240_000);
        const run = await runs.run('worker-kill', { overrides: HOLD_OPEN });
        const plan = run.plan(6, 120);
        const first = await run.startWorkerProcess();
        await run.startConsumers();
        const rest = await run.commitThenOpen(plan, 2);
        await run.killWorker(first);
        await run.assertOpen(plan[2], 'window 2 was open at the kill');

        await run.publish([...rest, ...plan.slice(3).flat()]);
        await run.startWorkerProcess();
        await run.settle(RECOVERY_MS);
        const accounting = await run.account();
        assertAccounted(accounting);
        assert.equal(accounting.summary.late + accounting.summary.dlq + accounting.summary.rewrites, 0);
      });

      it('bad input goes to the DLQ with its code and reason; the good events around it land exactly', async function () {
        const run = await runs.run('bad-input', { shards: 1 });
        const valid = run.plan(4, 40).flat();
        const stream = run.streams[0];
        const base = valid[5];
        const tomorrow = new Date(Date.now() + 86_400_000).toISOString().replace('Z', '000Z');
        const msgpack = run.eventFormat.encoding === 'msgpack';
        const bad: { label: string; payload: string; bytes?: Uint8Array; code: string; reason: RegExp; event?: StreamEventV1 }[] = [
          msgpack
            ? { label: 'not msgpack', payload: 'base64:kw==', bytes: Buffer.from([0x93]), code: 'invalid_event', reason: /^malformed msgpack: / }
            : { label: 'not JSON', payload: JSON.stringify(base).slice(0, 40), code: 'invalid_event', reason: /^malformed JSON: / },
          {
            label: 'negative volume',
            payload: JSON.stringify({ ...base, seq: 1_000_001, event_id: `${base.provider}|${base.symbol}|${base.src_ts}|1000001`, v: -100 }),
            code: 'invalid_event',
            reason: /field "v" must be >= 0 \(got -100\)/,
          },
          {
            label: 'h < l',
            payload: JSON.stringify({
              ...base,
              seq: 1_000_002,
              event_id: `${base.provider}|${base.symbol}|${base.src_ts}|1000002`,
              o: 99,
              h: 98,
              l: 101,
              c: 99,
            }),
            code: 'invalid_event',
            reason: /field "h" must be >= "l" \(h=98, l=101\)/,
          },
        ];
        const future: StreamEventV1 = { ...base, src_ts: tomorrow, seq: 1_000_003, event_id: `${base.provider}|${base.symbol}|${tomorrow}|1000003` };
        bad.push({
          label: 'src_ts a day ahead',
          payload: JSON.stringify(future),
          event: future,
          code: 'future_event',
          reason: /^src_ts \S+ is 8\d{7}(\.\d+)? ms ahead of the wall clock \(max_future_ms 5000\)$/,
        });
        // Schema-invalid events travel as the run encodes events (msgpack bytes under msgpack).
        for (const b of bad) {
          if (!msgpack || b.bytes) continue;
          const object = JSON.parse(b.payload) as unknown;
          b.bytes = encodeEvent(object, 'msgpack') as Uint8Array;
        }

        // Valid events with a bad entry after every 7th: before, between and after good events of each window.
        const entries: Omit<ProducedEntry, 'id'>[] = [];
        let next = 0;
        valid.forEach((event, i) => {
          entries.push({ stream, payload: JSON.stringify(event), event, expect: 'valid' });
          if (i % 7 === 3 && next < bad.length) {
            const b = bad[next++];
            entries.push({
              stream,
              payload: b.payload,
              expect: 'poison',
              label: b.label,
              ...(b.event ? { event: b.event } : {}),
              ...(b.bytes ? { bytes: b.bytes } : {}),
            });
          }
        });
        assert.equal(next, bad.length, 'every bad entry is published');
        // With frames the bad events sit inside frames among good ones; and one frame cannot be split at all.
        const framed = run.probe.kind === 'redis' && run.eventFormat.frameEvents > 1;
        const brokenFrame = Buffer.from([0x92, 0xc4, 0x05, 0x01]);
        const produced = await run.publishEntries(entries.slice(0, entries.length >> 1));
        if (framed) produced.push(await run.appendRaw(stream, { F: brokenFrame }, 'a frame that cannot be split', `base64:${brokenFrame.toString('base64')}`));
        produced.push(...(await run.publishEntries(entries.slice(entries.length >> 1))));
        if (framed) {
          // A msgpack frame packs its events together, so bytes that are no msgpack value travel as an entry of their own.
          for (const b of bad) {
            const inFrame = produced.find((p) => p.label === b.label)?.id?.includes('/');
            if (msgpack && b.label === 'not msgpack') assert.equal(inFrame, false, `${b.label}: an entry of its own`);
            else assert.ok(inFrame, `${b.label}: published inside a frame`);
          }
        }
        await run.startWorker();
        await run.startConsumers();
        assert.ok(await run.settle(), 'every entry read and acknowledged');
        const [status] = await run.drain();

        assertAccounted(await run.account());
        assert.equal(status.totals.invalid, bad.length + (framed ? 1 : 0));
        assert.equal(status.totals.accepted, valid.length);
        // Each dead letter read back through the bus: where it came from, what it was, why.
        const letters = (await run.probe.entries(run.names.dlq_stream)).map(entryFields);
        assert.equal(letters.length, bad.length + (framed ? 1 : 0), 'one dead letter per bad entry');
        /** What a dead letter kept: the text, or the bytes (base64 when they are not UTF-8). */
        const original = (l: ReadonlyMap<string, string>) => l.get('original') ?? `bytes:${l.get('original.base64') ?? ''}`;
        if (framed) {
          const source = produced.find((p) => p.label === 'a frame that cannot be split')!;
          const letter = letters.find((l) => l.get('id') === source.id);
          assert.ok(letter, `the broken frame is dead-lettered whole (source id ${source.id})`);
          assert.match(letter.get('reason') ?? '', /^malformed msgpack frame: /);
          assert.equal(original(letter), `bytes:${brokenFrame.toString('base64')}`, 'the broken frame kept verbatim');
        }
        for (const b of bad) {
          const source = produced.find((p) => p.label === b.label)!;
          const letter = letters.find((l) => l.get('id') === source.id);
          assert.ok(letter, `${b.label}: dead-lettered (source id ${source.id})`);
          assert.equal(letter.get('code'), b.code, `${b.label}: code`);
          assert.match(letter.get('reason') ?? '', b.reason, `${b.label}: reason`);
          if (b.bytes) {
            assert.equal(letter.get('encoding'), 'msgpack', `${b.label}: the letter says its encoding`);
            const kept =
              letter.get('original.base64') !== undefined ? Buffer.from(letter.get('original.base64')!, 'base64') : Buffer.from(letter.get('original') ?? '');
            assert.deepEqual(kept, Buffer.from(b.bytes), `${b.label}: original bytes kept verbatim`);
          } else assert.equal(letter.get('original'), b.payload, `${b.label}: original kept verbatim`);
          assert.equal(letter.get('stream'), stream, `${b.label}: source stream`);
          assert.equal(letter.get('group'), run.names.consumer_group, `${b.label}: group`);
        }
      });

      full('features → signals: every bar yields one snapshot and the signal its rule defines, on the stream and in the table', async function () {
        const run = await runs.run('signals', { overrides: { inference: { adapters: { rules: { enabled: true, file: rulesFile } } } } });
        const plan = run.plan(6, 90);
        // A group that never reads keeps every snapshot for the check below (see BusRun.keep).
        await run.keep(run.featureStreams);
        await run.publish(plan.flat());
        await run.startWorker();
        await run.startConsumers('microbatch');
        await run.startConsumers('inference');
        const bars = new StoreClient(db);
        const signals = new SignalsStoreClient(db);
        const barsWanted = expectedBars(plan.flat(), run.windowMs).length;
        await waitFor('bars, snapshots and signals all committed', 60_000, async () => {
          if (!(await run.settle(0))) return undefined;
          if (!(await run.settle(0, run.featureStreams, run.names.inference_group))) return undefined;
          return (await bars.countBars(run.provider)) === barsWanted && (await signals.countSignals(run.provider)) === barsWanted ? true : undefined;
        });
        await run.drain('microbatch');
        await run.drain('inference');
        assertAccounted(await run.account());

        const stored = await bars.listBars({ provider: run.provider });
        const snapshots: FeatureSnapshot[] = [];
        for (const stream of run.featureStreams) snapshots.push(...(await run.probe.payloads<FeatureSnapshot>(stream)));
        assert.deepEqual(snapshots.map(barKey).sort(), stored.map(barKey).sort(), 'one snapshot per bar, for that bar');

        const table = (await Promise.all(run.symbols.map((symbol) => signals.listSignals({ provider: run.provider, symbol, name: 'every_bar' })))).flat();
        const key = (s: SignalEventV1) => `${s.symbol}|${Date.parse(s.ts)}`;
        assert.deepEqual(table.map(key).sort(), stored.map((b) => `${b.symbol}|${b.tsMs}`).sort(), 'one every_bar signal per bar, at its start');
        const closeOf = new Map(stored.map((b) => [`${b.symbol}|${b.tsMs}`, b.close]));
        for (const s of table) assert.equal(s.meta.price, closeOf.get(key(s)), `signal ${key(s)} carries its bar's close`);
        const streamed = await run.probe.payloads<SignalEventV1>(run.names.signals_stream);
        assert.deepEqual(streamed.map(key).sort(), table.map(key).sort(), 'the signals stream carries the same signals');
      });

      full('replay: a dataset range lands exact bars through its own streams, which are gone afterwards; twice changes nothing', async function () {
        const run = await runs.run('replay');
        const date = '2025-10-01';
        const dayEvents = generateSampleDay({ date, provider: run.provider, symbols: ['SPY', 'AAPL'], seed: 20251001, ticksPerDay: 20_000 });
        const dir = resolve(RUN_DIR, `${run.tag}-day`);
        mkdirSync(dir, { recursive: true });
        writeFileSync(resolve(dir, `${date}.jsonl`), dayEvents.map((e) => JSON.stringify(e)).join('\n') + '\n');
        writeFileSync(run.datasetsFile, yaml.dump({ datasets: { day: { format: 'jsonl', path: dir, provider: run.provider } } }));
        const from = '2025-10-01T14:00:00Z',
          to = '2025-10-01T14:30:00Z';
        const inRange = dayEvents.filter((e) => {
          const us = parseIsoToMicros(e.src_ts)!;
          return us >= Date.parse(from) * 1000 && us < Date.parse(to) * 1000;
        });
        const expected = expectedBars(inRange, run.windowMs);
        await run.startWorker();
        const replay = (id: string) => {
          const workflowId = `mdp-replay-${run.tag}.${id}`;
          run.started(workflowId);
          return run.client.workflow.execute('replayWorkflow', {
            taskQueue: run.config.temporal.task_queue,
            workflowId,
            args: [{ dataset: 'day', from, to, chunkSpan: '15m' } satisfies ReplayWorkflowInput],
          }) as Promise<ReplayProgress>;
        };

        const first = await replay('first');
        assert.equal(first.phase, 'finished');
        assert.equal(first.chunksDone, 2);
        assert.equal(first.counts.accepted, inRange.length);
        assert.equal(first.counts.late + first.counts.invalid + first.counts.duplicates, 0);
        assert.equal(first.counts.inserted, expected.length);
        assert.deepEqual(await new StoreClient(db).listBars({ provider: run.provider }), expected);
        assert.deepEqual(await run.probe.streams(`${run.tag}.replay`), [], "the replay's chunk streams are dropped");
        assert.equal(await run.probe.bus.length(run.names.late_stream), 0);

        const before = await barRows(db, run.provider);
        const second = await replay('second');
        assert.equal(second.counts.inserted + second.counts.updated, 0, 'a second replay writes nothing');
        assert.equal(second.counts.unchanged, expected.length);
        assert.deepEqual(await barRows(db, run.provider), before, 'no row rewritten');
        const [audit] = await new JobRunTracker(db).listRecent(`mdp-replay-${run.tag}.first`, 1);
        assert.equal(audit?.status, 'success');
      });

      full('drain: every pipeline workflow stops cleanly, and the next owners carry on exactly', async function () {
        const run = await runs.run('drain');
        await run.keep(run.streams); // what the producer published stays readable for the accounting
        await run.startWorker();
        for (const id of pipelineWorkflowIds(run.config)) run.started(id);
        await startMicroBatchers(run.client, run.config, undefined);
        await startInference(run.client, run.config, 'rules');
        await startProducer(run.client, run.config, { provider: 'synthetic', tickRate: 20 });
        // Live ticks (event time = now): a few windows committed, one open, when the drain comes.
        await waitFor('a few windows committed', 60_000, async () => ((await run.bars()).length >= 3 * run.symbols.length ? true : undefined));
        const drained = await drainPipeline(run.client, run.config);

        assert.deepEqual(
          drained.map((d) => d.workflowId),
          pipelineWorkflowIds(run.config),
        );
        // The IBKR producer is part of the pipeline but was not started here: drain reports it as such.
        const ibkr = producerWorkflowIdOf(run.config, 'ibkr');
        assert.equal(drained.find((d) => d.workflowId === ibkr)?.status, 'not running');
        for (const d of drained.filter((x) => x.workflowId !== ibkr)) {
          assert.notEqual(d.status, 'not running', `${d.workflowId} was running`);
          assert.equal((d.status as LoopStatus).draining, true, `${d.workflowId} drained`);
          assert.equal((await run.client.workflow.getHandle(d.workflowId).describe()).status.name, 'COMPLETED', `${d.workflowId} completed`);
        }
        const jobs = new JobRunTracker(db);
        for (let shard = 0; shard < run.shards; shard++) {
          const [job] = await jobs.listRecent(run.consumerId(shard), 1);
          assert.equal(job?.status, 'success', `${run.consumerId(shard)}'s run ended as a success (its job_runs row)`);
        }
        const published = (drained[0].status as LoopStatus).totals.published;
        assert.ok(published > 0);

        // Every event the producer published is accounted for once the shards' next owners ran.
        const events = (await Promise.all(run.streams.map(async (stream) => ({ stream, entries: await run.probe.entries(stream) })))).flatMap(
          ({ stream, entries }) =>
            entries.map((e): ProducedEntry => ({ stream, id: e.id, payload: e.payload!, event: JSON.parse(e.payload!) as StreamEventV1, expect: 'valid' })),
        );
        assert.equal(events.length, published, 'the streams hold every published event');
        await startMicroBatchers(run.client, run.config, undefined);
        assert.ok(await run.settle(), 'the next owners settled');
        await run.drain();
        assertAccounted(await run.account({ produced: events }));
        assert.equal(
          (await sql<{ n: number }>`SELECT count(*)::int AS n FROM job_runs WHERE job_name LIKE ${`%-${run.tag}.%`} AND status = 'failure'`.execute(db)).rows[0]
            .n,
          0,
        );
      });
    });
  }
});
