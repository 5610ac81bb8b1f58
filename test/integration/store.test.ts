import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Bar } from '../../pipeline/contracts/index.js';
import { ABANDONED_ERROR, createDb, DEFAULT_STORE_URL, JobRunTracker, migrateToLatest, MIGRATIONS, StoreClient, StoreError } from '../../store/index.js';
import type { Database } from '../../store/index.js';
import { connectOrExplain, withDatabase } from '../helpers/store-db.js';
import { UPSERT_PATHS } from '../helpers/upsert-paths.js';

const STORE_URL = process.env.STORE_URL ?? DEFAULT_STORE_URL;
const ALL_MIGRATIONS = Object.keys(MIGRATIONS).sort();
const T0 = Date.UTC(2024, 0, 2, 14, 30, 0);
const INTERVAL = '2s';

function makeBar(provider: string, symbol: string, index: number, overrides: Partial<Bar> = {}): Bar {
  const open = 100 + index * 0.25;
  return {
    provider,
    symbol,
    interval: INTERVAL,
    tsMs: T0 + index * 2000,
    open,
    high: open + 1.5,
    low: open - 0.75,
    close: open + 0.5,
    volume: 1000 + index,
    trades: 3 + (index % 7),
    ...overrides,
  };
}

function makeBars(provider: string, count: number, symbols = ['AAPL', 'MSFT']): Bar[] {
  const bars: Bar[] = [];
  for (let i = 0; i < count; i++) bars.push(makeBar(provider, symbols[i % symbols.length], Math.floor(i / symbols.length)));
  return bars;
}

const bySymbolThenTs = (a: Bar, b: Bar): number => a.symbol.localeCompare(b.symbol) || a.tsMs - b.tsMs;

describe('store (PostgreSQL integration)', () => {
  let db: Kysely<Database>;

  before(async () => {
    db = await connectOrExplain(STORE_URL);
    await migrateToLatest(db);
  });

  after(async () => {
    await db?.destroy();
  });

  describe('createDb', () => {
    it('reports a failed connection with the URL redacted', async () => {
      const secret = `wrong-${randomUUID()}`;
      const url = new URL(STORE_URL);
      url.password = secret;
      const badDb = createDb(url.toString());
      try {
        await assert.rejects(sql`SELECT 1`.execute(badDb), (err: unknown) => {
          assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
          assert.equal(err.code, 'CONNECTION_FAILED');
          assert.match(err.message, /:\*\*\*@/);
          assert.ok(!err.message.includes(secret), `password leaked into: ${err.message}`);
          return true;
        });
      } finally {
        await badDb.destroy();
      }
    });

    it('redacts a password with unencoded reserved characters, which no URL parser accepts', async () => {
      const id = randomUUID();
      const secret = `wr/o@ng#${id}`;
      const { protocol, username, host, pathname } = new URL(STORE_URL);
      const badDb = createDb(`${protocol}//${username}:${secret}@${host}${pathname}`);
      try {
        await assert.rejects(sql`SELECT 1`.execute(badDb), (err: unknown) => {
          assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
          assert.ok(err.message.includes(`${protocol}//${username}:***@${host}${pathname}`), err.message);
          for (const part of ['wr/o', 'ng#', id]) assert.ok(!err.message.includes(part), `password leaked into: ${err.message}`);
          return true;
        });
      } finally {
        await badDb.destroy();
      }
    });
  });

  describe('migrations', () => {
    it('are idempotent: a second run applies nothing', async () => {
      assert.deepEqual(await migrateToLatest(db), []);
      assert.deepEqual(await migrateToLatest(db), []);
      const tables = await db.introspection.getTables();
      const names = tables.map((t) => t.name);
      assert.ok(names.includes('bars_ohlcv') && names.includes('job_runs'), `tables: ${names.join(', ')}`);
    });

    it('apply exactly once when several processes migrate a fresh database at once', async () => {
      // A throwaway database, so the shared one never has to be dropped; each pool stands in
      // for a separate process (its own connections, so only the advisory lock serialises them).
      const dbName = `mdp_test_${randomBytes(6).toString('hex')}`;
      await sql`CREATE DATABASE ${sql.id(dbName)}`.execute(db);
      // pg-pool's end() resolves before its sockets close, so DROP … WITH (FORCE) can still reach
      // a closing connection; that error is expected here and not worth a log line.
      const racers = Array.from({ length: 4 }, () => createDb(withDatabase(STORE_URL, dbName), { max: 2, onPoolError: () => undefined }));
      try {
        const applied = await Promise.all(racers.map((racer) => migrateToLatest(racer)));
        assert.deepEqual(applied.flat().sort(), ALL_MIGRATIONS);
        assert.equal(applied.filter((names) => names.length > 0).length, 1, JSON.stringify(applied));
        assert.deepEqual(await migrateToLatest(racers[0]), []);

        const bars = new StoreClient(racers[1]);
        const counts = await bars.upsertBars([makeBar('migrated', 'AAPL', 0)]);
        assert.deepEqual(counts, { inserted: 1, updated: 0, unchanged: 0 });
      } finally {
        await Promise.all(racers.map((racer) => racer.destroy()));
        await sql`DROP DATABASE IF EXISTS ${sql.id(dbName)} WITH (FORCE)`.execute(db);
      }
    });
  });

  for (const path of UPSERT_PATHS) {
    describe(`StoreClient (${path.name})`, () => {
      let provider: string;
      let writes: Array<{ seconds: number; table: string }>;
      let store: StoreClient;

      beforeEach(() => {
        provider = `test-${randomUUID()}`;
        writes = [];
        store = new StoreClient(db, { copyMinRows: path.copyMinRows, onWrite: (seconds, table) => writes.push({ seconds, table }) });
      });

      afterEach(async () => {
        await db.deleteFrom('bars_ohlcv').where('provider', '=', provider).execute();
      });

      it('inserts new bars, then reports an identical re-upsert as unchanged', async () => {
        const bars = makeBars(provider, 40);
        assert.deepEqual(await store.upsertBars(bars), { inserted: 40, updated: 0, unchanged: 0 });
        assert.deepEqual(await store.upsertBars(bars), { inserted: 0, updated: 0, unchanged: 40 });
        assert.equal(await store.countBars(provider), 40);
        assert.deepEqual(await store.listBars({ provider }), [...bars].sort(bySymbolThenTs));
      });

      it('updates only the rows whose values changed, and only their updated_at', async () => {
        const bars = makeBars(provider, 10);
        await store.upsertBars(bars);
        const before = await db.selectFrom('bars_ohlcv').select(['symbol', 'ts', 'updated_at']).where('provider', '=', provider).execute();

        const changed = bars.map((bar, i) => (i === 3 ? { ...bar, close: bar.close + 0.01 } : bar));
        assert.deepEqual(await store.upsertBars(changed), { inserted: 0, updated: 1, unchanged: 9 });
        assert.deepEqual(await store.upsertBars(changed), { inserted: 0, updated: 0, unchanged: 10 });

        const stored = await store.listBars({ provider, symbol: changed[3].symbol, fromMs: changed[3].tsMs, toMs: changed[3].tsMs + 1 });
        assert.deepEqual(stored, [changed[3]]);
        const after = await db.selectFrom('bars_ohlcv').select(['symbol', 'ts', 'updated_at']).where('provider', '=', provider).execute();
        const touched = after.filter((row) => {
          const old = before.find((b) => b.symbol === row.symbol && b.ts.getTime() === row.ts.getTime());
          return old?.updated_at.getTime() !== row.updated_at.getTime();
        });
        assert.equal(touched.length, 1);
        assert.equal(touched[0].ts.getTime(), changed[3].tsMs);
      });

      it('counts a mix of new, changed and identical bars in one call', async () => {
        const bars = makeBars(provider, 6, ['AAPL']);
        await store.upsertBars(bars.slice(0, 4));
        const mixed = [bars[0], { ...bars[1], trades: bars[1].trades + 1 }, bars[2], bars[3], bars[4], bars[5]];
        assert.deepEqual(await store.upsertBars(mixed), { inserted: 2, updated: 1, unchanged: 3 });
      });

      it('keeps the last of several bars with the same key in one call', async () => {
        const first = makeBar(provider, 'AAPL', 0);
        const last = { ...first, close: first.close + 2, high: first.high + 2, volume: first.volume + 10 };
        const other = makeBar(provider, 'AAPL', 1);
        assert.deepEqual(await store.upsertBars([first, other, last]), { inserted: 2, updated: 0, unchanged: 1 });
        assert.deepEqual(await store.listBars({ provider }), [last, other]);

        // Against an existing row too: the last duplicate is the value that lands.
        const again = { ...last, low: last.low - 1 };
        assert.deepEqual(await store.upsertBars([again, last, again]), { inserted: 0, updated: 1, unchanged: 2 });
        assert.deepEqual((await store.listBars({ provider, toMs: T0 + 1 }))[0], again);
      });

      it('round-trips double precision values exactly', async () => {
        const awkward = [425.15, 0.1 + 0.2, 1 / 3, 123456789.123456789, 5e-324, 1.7976931348623157e308, 1e-7];
        const bars = awkward.map((value, i) => makeBar(provider, 'SPY', i, { open: value, high: value, low: value, close: value, volume: value * 3 }));
        await store.upsertBars(bars);
        const stored = await store.listBars({ provider, symbol: 'SPY' });
        assert.deepEqual(stored, bars);
        assert.equal(stored[1].close, 0.30000000000000004);
        assert.deepEqual(await store.upsertBars(bars), { inserted: 0, updated: 0, unchanged: bars.length });
      });

      it('stores window starts at millisecond precision in UTC', async () => {
        const bar = makeBar(provider, 'AAPL', 0, { tsMs: Date.UTC(2024, 2, 31, 1, 59, 58, 123) });
        await store.upsertBars([bar]);
        const [row] = await db
          .selectFrom('bars_ohlcv')
          .select(sql<string>`to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS')`.as('utc'))
          .where('provider', '=', provider)
          .execute();
        assert.equal(row.utc, '2024-03-31 01:59:58.123');
        assert.deepEqual(await store.listBars({ provider }), [bar]);
      });

      it('returns zeros without querying for an empty batch', async () => {
        assert.deepEqual(await store.upsertBars([]), { inserted: 0, updated: 0, unchanged: 0 });
        assert.equal(writes.length, 0);
      });

      it('writes a batch beyond the bind-parameter limit in one statement', async () => {
        // 10 columns x 7000 rows would be 70000 bind parameters with multi-row VALUES.
        const bars = makeBars(provider, 7000, ['AAPL', 'MSFT', 'NVDA', 'SPY']);
        assert.deepEqual(await store.upsertBars(bars), { inserted: 7000, updated: 0, unchanged: 0 });
        assert.equal(writes.length, 1);
        assert.equal(await store.countBars(provider), 7000);
      });

      it('reports each write to onWrite with its table and duration', async () => {
        await store.upsertBars(makeBars(provider, 3));
        await store.upsertBars(makeBars(provider, 3));
        assert.equal(writes.length, 2);
        for (const write of writes) {
          assert.equal(write.table, 'bars_ohlcv');
          assert.ok(write.seconds >= 0 && write.seconds < 60, `duration ${write.seconds}`);
        }
      });

      it('lists bars filtered by symbol, interval and a [fromMs, toMs) range, ordered by symbol and ts', async () => {
        const bars = makeBars(provider, 20, ['MSFT', 'AAPL']);
        const otherInterval = makeBar(provider, 'AAPL', 0, { interval: '1m' });
        await store.upsertBars([...bars, otherInterval]);

        const aapl2s = await store.listBars({ provider, symbol: 'AAPL', interval: INTERVAL });
        assert.deepEqual(aapl2s, bars.filter((b) => b.symbol === 'AAPL').sort(bySymbolThenTs));

        const ranged = await store.listBars({ provider, interval: INTERVAL, fromMs: T0 + 2000, toMs: T0 + 6000 });
        assert.deepEqual(
          ranged.map((b) => `${b.symbol}@${b.tsMs - T0}`),
          ['AAPL@2000', 'AAPL@4000', 'MSFT@2000', 'MSFT@4000'],
        );
        assert.deepEqual(await store.listBars({ provider, interval: '1m' }), [otherInterval]);
        assert.deepEqual(await store.listBars({ provider: `${provider}-none` }), []);
        assert.equal(await store.countBars(provider), 21);
      });

      it('keeps providers apart', async () => {
        const otherProvider = `test-${randomUUID()}`;
        try {
          await store.upsertBars(makeBars(provider, 4));
          assert.deepEqual(await store.upsertBars(makeBars(otherProvider, 4)), { inserted: 4, updated: 0, unchanged: 0 });
          assert.equal(await store.countBars(provider), 4);
        } finally {
          await db.deleteFrom('bars_ohlcv').where('provider', '=', otherProvider).execute();
        }
      });
    });
  }

  describe('JobRunTracker', () => {
    let jobName: string;
    let tracker: JobRunTracker;

    beforeEach(() => {
      jobName = `test-${randomUUID()}`;
      tracker = new JobRunTracker(db);
    });

    afterEach(async () => {
      await db.deleteFrom('job_runs').where('job_name', '=', jobName).execute();
    });

    it('records a run from start through heartbeats to success', async () => {
      const id = await tracker.start({ jobName, kind: 'replay', meta: { dataset: 'ibkr-2024-01', speed: 10 } });
      let run = await tracker.get(id);
      assert.ok(run);
      assert.equal(run.status, 'running');
      assert.equal(run.kind, 'replay');
      assert.deepEqual(run.meta, { dataset: 'ibkr-2024-01', speed: 10 });
      assert.deepEqual(run.counts, {});
      assert.equal(run.heartbeatAt, null);
      assert.equal(run.finishedAt, null);

      await tracker.heartbeat(id, { bars: 120, events: 4000 });
      run = await tracker.get(id);
      assert.deepEqual(run?.counts, { bars: 120, events: 4000 });
      assert.ok(run?.heartbeatAt instanceof Date);

      await tracker.finish(id, 'success', { bars: 500, events: 16000 });
      run = await tracker.get(id);
      assert.equal(run?.status, 'success');
      assert.deepEqual(run?.counts, { bars: 500, events: 16000 });
      assert.ok(run?.finishedAt instanceof Date);
      assert.equal(run?.error, null);
    });

    it('records a failure with its error, and lets the first terminal status win', async () => {
      const id = await tracker.start({ jobName, kind: 'reload' });
      await tracker.finish(id, 'failure', { validated: 0 }, 'model input shape mismatch');
      await tracker.finish(id, 'success', { validated: 1 });
      await tracker.heartbeat(id, { validated: 2 });
      const run = await tracker.get(id);
      assert.equal(run?.status, 'failure');
      assert.equal(run?.error, 'model input shape mismatch');
      assert.deepEqual(run?.counts, { validated: 0 });
      assert.deepEqual(run?.meta, {});
    });

    it('marks the still-running attempts of a job abandoned', async () => {
      const crashed = await tracker.start({ jobName, kind: 'consumer' });
      const alsoCrashed = await tracker.start({ jobName, kind: 'consumer' });
      const done = await tracker.start({ jobName, kind: 'consumer' });
      await tracker.finish(done, 'success', {});
      const otherJob = await tracker.start({ jobName: `${jobName}-other`, kind: 'consumer' });
      try {
        assert.equal(await tracker.markAbandoned(jobName), 2);
        for (const id of [crashed, alsoCrashed]) {
          const run = await tracker.get(id);
          assert.equal(run?.status, 'abandoned');
          assert.ok(run?.finishedAt instanceof Date);
          assert.equal(run?.error, ABANDONED_ERROR);
        }
        assert.equal((await tracker.get(done))?.status, 'success');
        assert.equal((await tracker.get(otherJob))?.status, 'running');
        assert.equal(await tracker.markAbandoned(jobName), 0);

        // A zombie of an abandoned attempt cannot revive it.
        await tracker.finish(crashed, 'success', { bars: 1 });
        assert.equal((await tracker.get(crashed))?.status, 'abandoned');

        // The superseding attempt can close its predecessors after it started.
        const stale = await tracker.start({ jobName, kind: 'consumer' });
        const current = await tracker.start({ jobName, kind: 'consumer' });
        assert.equal(await tracker.markAbandoned(jobName, { exceptId: current }), 1);
        assert.equal((await tracker.get(stale))?.status, 'abandoned');
        assert.equal((await tracker.get(current))?.status, 'running');
      } finally {
        await db.deleteFrom('job_runs').where('job_name', '=', `${jobName}-other`).execute();
      }
    });

    it('lists recent runs newest first, per job and limited', async () => {
      const ids: number[] = [];
      for (let i = 0; i < 4; i++) ids.push(await tracker.start({ jobName, kind: 'replay', meta: { chunk: i } }));
      const recent = await tracker.listRecent(jobName, 3);
      assert.deepEqual(
        recent.map((r) => r.id),
        [ids[3], ids[2], ids[1]],
      );
      assert.ok(recent.every((r) => r.jobName === jobName));
      assert.equal((await tracker.listRecent(undefined, 2)).length, 2);
    });

    it('rejects heartbeats and finishes for an unknown id', async () => {
      const unknownId = 2 ** 52;
      assert.equal(await tracker.get(unknownId), undefined);
      await assert.rejects(tracker.heartbeat(unknownId, {}), { name: 'StoreError', code: 'JOB_RUN_NOT_FOUND' });
      await assert.rejects(tracker.finish(unknownId, 'success', {}), { name: 'StoreError', code: 'JOB_RUN_NOT_FOUND' });
    });
  });
});
