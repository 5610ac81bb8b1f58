import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Bar, IsolatedUpsert, ShardLease, ShardPosition } from '../../pipeline/contracts/index.js';
import { BarsRejectedError } from '../../pipeline/contracts/index.js';
import { createDb, DEFAULT_STORE_URL, migrateToLatest, ShardPositionStore, StoreClient, StoreError, upsertBarsIsolated } from '../../store/index.js';
import type { Database } from '../../store/index.js';
import { connectOrExplain } from '../helpers/store-db.js';

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

describe('upsertBarsIsolated (PostgreSQL integration)', function () {
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

  it("lands 997 of 1,000 bars and rejects exactly the 3 poison ones with the store's reason", async function () {
    const { bars, poison } = poisonedBatch(provider);

    assertIsolated(await upsertBarsIsolated(db, bars), poison, { inserted: BATCH - 3, updated: 0, unchanged: 0 });
    assert.deepEqual(await stored(), bars.filter((b) => !poison.has(b)).sort(byKey));
    // Again: the neighbours are unchanged, the poison rejected again, nothing else moves.
    assertIsolated(await upsertBarsIsolated(db, bars), poison, { inserted: 0, updated: 0, unchanged: BATCH - 3 });
  });

  it("does the same inside a caller's transaction, which stays usable and owns the outcome", async function () {
    const { bars, poison } = poisonedBatch(provider);
    const changed = bars.map((b) => (poison.has(b) ? b : { ...b, volume: b.volume + 1 }));
    await upsertBarsIsolated(db, bars.slice(0, 100)); // 1 poison among them, 99 rows already there

    // A caller that rolls back takes the bars back with it: they were written in its transaction.
    await assert.rejects(
      db.transaction().execute(async (trx) => {
        assertIsolated(await upsertBarsIsolated(trx, changed), poison, { inserted: BATCH - 100 - 2, updated: 99, unchanged: 0 });
        throw new Error('caller rolls back');
      }),
      /caller rolls back/,
    );
    assert.equal((await stored()).length, 99);

    const after = await db.transaction().execute(async (trx) => {
      const result = await upsertBarsIsolated(trx, changed);
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
    await upsertBarsIsolated(db, bars);
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
      await assert.rejects(upsertBarsIsolated(lockTimeoutDb, changed), isLockTimeout);
      await assert.rejects(
        lockTimeoutDb.transaction().execute((trx) => upsertBarsIsolated(trx, changed)),
        isLockTimeout,
      );
      await assert.rejects(new StoreClient(lockTimeoutDb).upsertBars(changed), isLockTimeout);
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
    const store = new StoreClient(db, { onWrite: (seconds) => writes.push(seconds) });
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
    const shards = new ShardPositionStore(db);
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
});
