import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Bar, IsolatedUpsert, ShardLease, ShardPosition } from '../../pipeline/contracts/index.js';
import { BarsRejectedError } from '../../pipeline/contracts/index.js';
import {
  createDb,
  DEFAULT_STORE_URL,
  migrateToLatest,
  pgClientOf,
  ShardPositionStore,
  StoreClient,
  StoreError,
  upsertBarsIsolated,
} from '../../store/index.js';
import type { Database, UpsertBarsOptions } from '../../store/index.js';
import { connectOrExplain } from '../helpers/store-db.js';
import { UPSERT_PATHS } from '../helpers/upsert-paths.js';

// Poison isolation on the real PostgreSQL (issue 9): one bar the store refuses for its own values
// must not hold back its neighbours, inside a caller's transaction too; transient errors stay errors.

const STORE_URL = process.env.STORE_URL ?? DEFAULT_STORE_URL;
const T0 = Date.UTC(2024, 0, 2, 14, 30, 0);
const BATCH = 1000;

function makeBar(provider: string, i: number, overrides: Partial<Bar> = {}): Bar {
  const open = 100 + (i % 50) * 0.25;
  return {
    provider,
    symbol: `S${i % 20}`,
    interval: '1s',
    tsMs: T0 + Math.floor(i / 20) * 1000,
    open,
    high: open + 1,
    low: open - 0.5,
    close: open + 0.25,
    volume: 1000 + i,
    trades: 1 + (i % 9),
    ...overrides,
  };
}

/**
 * 1,000 bars of which three are refused by PostgreSQL, each for a different reason: a NUL in the
 * symbol (text cannot hold it), a 4,000-character incompressible symbol (btree row size of the
 * primary key) and a trade count beyond int4.
 */
function poisonedBatch(provider: string): { bars: Bar[]; poison: Map<Bar, RegExp> } {
  const bars = Array.from({ length: BATCH }, (_, i) => makeBar(provider, i));
  const poison = new Map<Bar, RegExp>();
  const put = (index: number, overrides: Partial<Bar>, reason: RegExp) => {
    bars[index] = makeBar(provider, index, overrides);
    poison.set(bars[index], reason);
  };
  put(17, { symbol: 'NUL\u0000SYM' }, /^invalid byte sequence for encoding "UTF8": 0x00 \(SQLSTATE 22021\)$/);
  put(500, { symbol: randomBytes(3000).toString('base64').slice(0, 4000) }, /^index row size \d+ exceeds .*maximum 2704 for index .* \(SQLSTATE 54000\)$/);
  put(998, { trades: 2 ** 31 }, /^value "2147483648" is out of range for type integer \(SQLSTATE 22003\)$/);
  return { bars, poison };
}

const byKey = (a: Bar, b: Bar): number => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0) || a.tsMs - b.tsMs;

function assertIsolated(result: IsolatedUpsert, poison: Map<Bar, RegExp>, counts: IsolatedUpsert['counts']): void {
  assert.deepEqual(result.counts, counts);
  assert.equal(result.rejected.length, poison.size, `rejected: ${result.rejected.map((r) => r.reason).join(' | ')}`);
  for (const { bar, code, reason } of result.rejected) {
    const expected = poison.get(bar);
    assert.ok(expected, `a neighbour was rejected: ${bar.symbol.slice(0, 20)} ${reason}`);
    assert.match(reason, expected);
    assert.equal(code, /SQLSTATE (\w{5})\)$/.exec(reason)?.[1]);
  }
}

for (const path of UPSERT_PATHS) {
  const options: UpsertBarsOptions = { copyMinRows: path.copyMinRows };

  describe(`upsertBarsIsolated (PostgreSQL integration, ${path.name})`, function () {
    let db: Kysely<Database>;
    let provider: string;

    before(async function () {
      db = await connectOrExplain(STORE_URL);
      await migrateToLatest(db);
    });

    beforeEach(function () {
      provider = `iso-${randomUUID()}`;
    });

    afterEach(async function () {
      await db.deleteFrom('bars_ohlcv').where('provider', '=', provider).execute();
      await db.deleteFrom('shard_positions').where('stream', '=', provider).execute();
    });

    after(async function () {
      await db?.destroy();
    });

    async function stored(): Promise<Bar[]> {
      return (await new StoreClient(db).listBars({ provider })).sort(byKey);
    }

    /**
     * Upserts through a one-connection pool of its own; `staged`: the COPY path wrote (its staging
     * table stayed in the session, where a fallback to the INSERT path would have rolled its creation back).
     */
    async function upsertInFreshSession(bars: readonly Bar[]): Promise<{ result: IsolatedUpsert; staged: boolean }> {
      const fresh = createDb(STORE_URL, { max: 1 });
      try {
        const result = await upsertBarsIsolated(fresh, bars, options);
        const { rows } = await sql<{ t: string | null }>`SELECT to_regclass('pg_temp.mdp_bars_staging')::text AS t`.execute(fresh);
        return { result, staged: rows[0].t !== null };
      } finally {
        await fresh.destroy();
      }
    }

    it("lands 997 of 1,000 bars and rejects exactly the 3 poison ones with the store's reason", async function () {
      const { bars, poison } = poisonedBatch(provider);

      assertIsolated(await upsertBarsIsolated(db, bars, options), poison, { inserted: BATCH - 3, updated: 0, unchanged: 0 });
      assert.deepEqual(await stored(), bars.filter((b) => !poison.has(b)).sort(byKey));
      // Again: the neighbours are unchanged, the poison rejected again, nothing else moves.
      assertIsolated(await upsertBarsIsolated(db, bars, options), poison, { inserted: 0, updated: 0, unchanged: BATCH - 3 });
    });

    it("does the same inside a caller's transaction, which stays usable and owns the outcome", async function () {
      const { bars, poison } = poisonedBatch(provider);
      const changed = bars.map((b) => (poison.has(b) ? b : { ...b, volume: b.volume + 1 }));
      await upsertBarsIsolated(db, bars.slice(0, 100), options); // 1 poison among them, 99 rows already there

      // A caller that rolls back takes the bars back with it: they were written in its transaction.
      await assert.rejects(
        db.transaction().execute(async (trx) => {
          assertIsolated(await upsertBarsIsolated(trx, changed, options), poison, { inserted: BATCH - 100 - 2, updated: 99, unchanged: 0 });
          throw new Error('caller rolls back');
        }),
        /caller rolls back/,
      );
      assert.equal((await stored()).length, 99);

      const after = await db.transaction().execute(async (trx) => {
        const result = await upsertBarsIsolated(trx, changed, options);
        // The transaction was never aborted by the rejected bars: it goes on and commits.
        const {
          rows: [row],
        } = await sql<{ n: number }>`SELECT count(*)::int4 AS n FROM bars_ohlcv WHERE provider = ${provider}`.execute(trx);
        assert.equal(row.n, BATCH - 3);
        return result;
      });
      assertIsolated(after, poison, { inserted: BATCH - 100 - 2, updated: 99, unchanged: 0 });
      assert.deepEqual(await stored(), changed.filter((b) => !poison.has(b)).sort(byKey));
    });

    it('rethrows a transient error untouched, on a Kysely and inside a transaction, and rejects nothing', async function () {
      const bars = Array.from({ length: 50 }, (_, i) => makeBar(provider, i));
      await upsertBarsIsolated(db, bars, options);
      // Another session holds one of the rows: the upsert's update of it waits, then times out (55P03).
      const lockTimeoutDb = createDb(`${STORE_URL}${STORE_URL.includes('?') ? '&' : '?'}options=${encodeURIComponent('-c lock_timeout=200')}`, { max: 1 });
      let release!: () => void;
      const released = new Promise<void>((done) => (release = done));
      let locked!: () => void;
      const isLocked = new Promise<void>((done) => (locked = done));
      const holder = db.transaction().execute(async (trx) => {
        await sql`SELECT 1 FROM bars_ohlcv WHERE provider = ${provider} AND symbol = 'S3' FOR UPDATE`.execute(trx);
        locked();
        await released;
      });
      try {
        await isLocked;
        const changed = bars.map((b) => ({ ...b, volume: b.volume + 1 }));
        const isLockTimeout = (err: unknown) => {
          assert.ok(!(err instanceof StoreError), `not wrapped: ${String(err)}`);
          assert.equal((err as { code?: string }).code, '55P03', String(err));
          return true;
        };
        await assert.rejects(upsertBarsIsolated(lockTimeoutDb, changed, options), isLockTimeout);
        await assert.rejects(
          lockTimeoutDb.transaction().execute((trx) => upsertBarsIsolated(trx, changed, options)),
          isLockTimeout,
        );
        await assert.rejects(new StoreClient(lockTimeoutDb, options).upsertBars(changed), isLockTimeout);
      } finally {
        release();
        await holder;
        await lockTimeoutDb.destroy();
      }
      assert.deepEqual(await stored(), [...bars].sort(byKey), 'nothing of the failed upserts was written');
    });

    it('StoreClient.upsertBars writes the neighbours and throws REJECTED_ROWS naming the rejected bars', async function () {
      const { bars, poison } = poisonedBatch(provider);
      const writes: number[] = [];
      const store = new StoreClient(db, { ...options, onWrite: (seconds) => writes.push(seconds) });
      await assert.rejects(store.upsertBars(bars), (err: unknown) => {
        assert.ok(err instanceof StoreError);
        assert.equal(err.code, 'REJECTED_ROWS');
        assert.match(err.message, /^the store rejected 3 of 1000 bars \(the others were written\): /);
        assert.match(err.message, /invalid byte sequence.*SQLSTATE 22021/);
        assert.match(err.message, /…\(4000 chars\) 1s .*SQLSTATE 54000/);
        return true;
      });
      assert.equal(writes.length, 1, 'one write observation per call');
      assert.equal((await stored()).length, BATCH - poison.size);
      const { counts, rejected } = await store.upsertBarsIsolated(bars);
      assert.deepEqual([counts, rejected.length], [{ inserted: 0, updated: 0, unchanged: BATCH - 3 }, 3]);
    });

    it('ShardPositionStore.commit writes nothing when a bar is refused and names it; without it, bars and position commit', async function () {
      const shards = new ShardPositionStore(db, options);
      const lease: ShardLease = { stream: provider, group: 'g', owner: 'owner-0', epoch: 1 };
      const position: ShardPosition = { frontierMs: T0 + 3000, readId: '9-0', oldestOpenId: undefined, marks: [], lastCommitFromMs: T0 };
      await shards.acquire(lease);
      const bars = Array.from({ length: 60 }, (_, i) => makeBar(provider, i));
      bars[33] = makeBar(provider, 33, { symbol: 'NUL\u0000' });

      await assert.rejects(shards.commit(lease, bars, position), (err: unknown) => {
        assert.ok(err instanceof BarsRejectedError, String(err));
        assert.deepEqual(
          err.rejected.map((r) => [r.bar, r.code]),
          [[bars[33], '22021']],
        );
        return true;
      });
      assert.deepEqual(await stored(), [], 'no bar of the refused commit');
      assert.equal((await shards.read(provider, 'g'))?.readId, undefined, 'nor its position');

      const rest = bars.filter((_, i) => i !== 33);
      assert.deepEqual(await shards.commit(lease, rest, position), { inserted: 59, updated: 0, unchanged: 0 });
      assert.equal((await stored()).length, 59);
      assert.equal((await shards.read(provider, 'g'))?.readId, '9-0');
    });

    it('round-trips exotic text (tabs, backslashes, newlines, quotes, non-ASCII) and awkward numbers exactly; again, nothing is rewritten', async function () {
      const symbols = [
        'TAB\tSYM',
        'BACK\\SLASH',
        'NEW\nLINE',
        'CR\rLF',
        `"QUOTE'S"`,
        '\\N',
        '\\.',
        'a,b;c|d',
        'Ünïcødé €',
        '日本株',
        '🚀MOON',
        ' spaced ',
        '\\t literal',
        '',
      ];
      const values = [425.15, 0.1 + 0.2, 1 / 3, 123456789.123456789, 5e-324, 1.7976931348623157e308, 1e-7, 1e21];
      const bars = symbols.map((symbol, i) => {
        const value = values[i % values.length];
        return makeBar(provider, i, {
          symbol,
          interval: i % 2 ? '1s' : 'odd\t\\interval\n',
          open: value,
          high: value * 2,
          low: value / 2,
          close: -value,
          volume: value,
          trades: 2 ** 31 - 1 - i,
        });
      });
      const { result, staged } = await upsertInFreshSession(bars);
      assert.equal(staged, path.copyMinRows > 0, 'written by the path under test (no fallback)');
      assert.deepEqual(result.counts, { inserted: bars.length, updated: 0, unchanged: 0 });
      assert.deepEqual(await stored(), [...bars].sort(byKey));
      const writtenAt = () =>
        db
          .selectFrom('bars_ohlcv')
          .select(['symbol', 'interval', 'updated_at'])
          .where('provider', '=', provider)
          .orderBy('symbol')
          .orderBy('interval')
          .execute();
      const before = await writtenAt();
      assert.deepEqual(await upsertBarsIsolated(db, bars, options), { counts: { inserted: 0, updated: 0, unchanged: bars.length }, rejected: [] });
      assert.deepEqual(await writtenAt(), before, 'updated_at of every row unchanged');
    });

    it('keeps several upserts in one transaction apart: each writes its own bars, counted as its own', async function () {
      const bars = Array.from({ length: 40 }, (_, i) => makeBar(provider, i));
      const changed = bars.map((b) => ({ ...b, close: b.close + 0.5 }));
      const more = Array.from({ length: 5 }, (_, i) => makeBar(provider, 40 + i));
      const counts = await db
        .transaction()
        .execute(async (trx) => [
          (await upsertBarsIsolated(trx, bars, options)).counts,
          (await upsertBarsIsolated(trx, changed, options)).counts,
          (await upsertBarsIsolated(trx, more, options)).counts,
        ]);
      assert.deepEqual(counts, [
        { inserted: 40, updated: 0, unchanged: 0 },
        { inserted: 0, updated: 40, unchanged: 0 },
        { inserted: 5, updated: 0, unchanged: 0 },
      ]);
      assert.deepEqual(await stored(), [...changed, ...more].sort(byKey));
    });
  });
}

describe('upsertBarsIsolated: which path writes (PostgreSQL integration)', function () {
  let provider: string;

  beforeEach(function () {
    provider = `iso-${randomUUID()}`;
  });

  afterEach(async function () {
    const db = await connectOrExplain(STORE_URL);
    try {
      await db.deleteFrom('bars_ohlcv').where('provider', '=', provider).execute();
    } finally {
      await db.destroy();
    }
  });

  it('takes the COPY path from copyMinRows distinct bars on (its staging table appears in the session), never at 0', async function () {
    // One connection: the session whose temporary tables are looked at is the one that wrote.
    const db = createDb(STORE_URL, { max: 1 });
    const staging = async () => (await sql<{ t: string | null }>`SELECT to_regclass('pg_temp.mdp_bars_staging')::text AS t`.execute(db)).rows[0].t;
    try {
      const bars = Array.from({ length: 4 }, (_, i) => makeBar(provider, i));
      await upsertBarsIsolated(db, bars, { copyMinRows: 0 });
      await upsertBarsIsolated(db, [...bars.slice(0, 3), bars[0]], { copyMinRows: 4 }); // 3 distinct keys
      assert.equal(await staging(), null, 'the INSERT path wrote so far');
      assert.deepEqual((await upsertBarsIsolated(db, bars, { copyMinRows: 4 })).counts, { inserted: 0, updated: 0, unchanged: 4 });
      assert.equal(await staging(), 'mdp_bars_staging', 'the COPY path wrote');
      const { rows } = await sql<{ n: number }>`SELECT count(*)::int4 AS n FROM pg_temp.mdp_bars_staging`.execute(db);
      assert.equal(rows[0].n, 0, 'the staging table is empty after the write');
    } finally {
      await db.destroy();
    }
  });

  it('takes the INSERT path on a kysely whose pool createDb did not make (no pg client to COPY through)', async function () {
    const pool = new pg.Pool({ connectionString: STORE_URL, max: 1 });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    try {
      const bars = Array.from({ length: 4 }, (_, i) => makeBar(provider, i));
      assert.deepEqual((await upsertBarsIsolated(db, bars, { copyMinRows: 1 })).counts, { inserted: 4, updated: 0, unchanged: 0 });
      const { rows } = await sql<{ t: string | null }>`SELECT to_regclass('pg_temp.mdp_bars_staging')::text AS t`.execute(db);
      assert.equal(rows[0].t, null);
      await assert.rejects(pgClientOf(db), /pgClientOf needs a transaction/);
      assert.equal(await db.transaction().execute((trx) => pgClientOf(trx)), undefined);
    } finally {
      await db.destroy();
    }
  });
});
