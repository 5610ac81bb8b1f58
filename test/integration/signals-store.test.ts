import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { Migrator, sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { SignalEventV1, SignalMeta } from '../../pipeline/contracts/index.js';
import { createDb, DEFAULT_STORE_URL, migrateToLatest, migrationProvider, SignalsStoreClient } from '../../store/index.js';
import type { Database } from '../../store/index.js';
import { connectOrExplain, withDatabase } from '../helpers/store-db.js';

const STORE_URL = process.env.STORE_URL ?? DEFAULT_STORE_URL;
const T0 = Date.UTC(2025, 9, 24, 14, 2, 0);
const NAMES = ['vwap_cross_up', 'rsi_oversold'];

/** `2025-10-24T14:02:02Z`: the contract's form, no fraction on whole seconds. */
function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

function makeSignal(
  provider: string,
  symbol: string,
  name: string,
  index: number,
  overrides: Partial<Omit<SignalEventV1, 'meta'>> & { meta?: Partial<SignalMeta> } = {},
): SignalEventV1 {
  const price = 425 + index * 0.05;
  const { meta, ...rest } = overrides;
  return {
    ver: 1,
    provider,
    symbol,
    ts: isoSeconds(T0 + index * 2000),
    name,
    value: 1,
    score: 0.5 + (index % 10) / 20,
    meta: {
      window: '1m',
      price,
      inputs: { vwap: price - 0.1, rsi: 30 + index, volatility: null },
      adapter: 'rules',
      model_version: 'rules-v1',
      interval_ms: 2000,
      source: 'live',
      ...meta,
    },
    ...rest,
  };
}

/** `count` signals over `symbols` x {@link NAMES}, two seconds apart per (symbol, name). */
function makeSignals(provider: string, count: number, symbols: readonly string[]): SignalEventV1[] {
  const signals: SignalEventV1[] = [];
  const series = symbols.flatMap((symbol) => NAMES.map((name) => ({ symbol, name })));
  for (let i = 0; i < count; i++) {
    const { symbol, name } = series[i % series.length];
    signals.push(makeSignal(provider, symbol, name, Math.floor(i / series.length)));
  }
  return signals;
}

const byTsNameProvider = (a: SignalEventV1, b: SignalEventV1): number =>
  Date.parse(a.ts) - Date.parse(b.ts) || a.name.localeCompare(b.name) || a.provider.localeCompare(b.provider);

describe('signals store (PostgreSQL integration)', () => {
  let db: Kysely<Database>;

  before(async () => {
    db = await connectOrExplain(STORE_URL);
    await migrateToLatest(db);
  });

  after(async () => {
    await db?.destroy();
  });

  describe('migrations 0003_signals and 0005_signals_interval', () => {
    it('is applied, with the key, columns and per-symbol index the client relies on', async () => {
      const applied = await sql<{ name: string }>`SELECT name FROM kysely_migration ORDER BY name`.execute(db);
      assert.ok(
        applied.rows.some((row) => row.name === '0003_signals'),
        JSON.stringify(applied.rows),
      );

      const columns = await sql<{ column_name: string; data_type: string; is_nullable: string }>`
        SELECT column_name, data_type, is_nullable FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'signals' ORDER BY ordinal_position`.execute(db);
      assert.deepEqual(
        columns.rows.map((c) => `${c.column_name} ${c.data_type} ${c.is_nullable === 'YES' ? 'null' : 'not null'}`),
        [
          'provider text not null',
          'symbol text not null',
          'name text not null',
          'ts timestamp with time zone not null',
          'value double precision not null',
          'score double precision not null',
          'meta jsonb not null',
          'adapter text not null',
          'model_version text null',
          'updated_at timestamp with time zone not null',
          'interval_ms integer not null',
          'source text not null',
        ],
      );

      const key = await sql<{ def: string }>`
        SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint
        WHERE conrelid = 'signals'::regclass AND contype = 'p'`.execute(db);
      assert.deepEqual(
        key.rows.map((r) => r.def),
        ['PRIMARY KEY (provider, symbol, name, interval_ms, ts)'],
      );

      const indexes = await sql<{ indexdef: string }>`
        SELECT indexdef FROM pg_indexes WHERE tablename = 'signals'`.execute(db);
      assert.ok(
        indexes.rows.some((r) => r.indexdef.includes('(symbol, name, ts DESC)')),
        indexes.rows.map((r) => r.indexdef).join('\n'),
      );
    });

    it('applies on a fresh database and rolls back cleanly', async () => {
      const dbName = `mdp_test_${randomBytes(6).toString('hex')}`;
      await sql`CREATE DATABASE ${sql.id(dbName)}`.execute(db);
      const fresh = createDb(withDatabase(STORE_URL, dbName), { max: 1, onPoolError: () => undefined });
      try {
        assert.ok((await migrateToLatest(fresh)).includes('0003_signals'));
        const signals = new SignalsStoreClient(fresh);
        assert.deepEqual(await signals.upsertSignals([makeSignal('fresh', 'SPY', 'vwap_cross_up', 0)]), {
          inserted: 1,
          updated: 0,
          unchanged: 0,
        });

        const down = await new Migrator({ db: fresh, provider: migrationProvider }).migrateTo('0002_job_runs');
        assert.equal(down.error, undefined);
        const tables = (await fresh.introspection.getTables()).map((t) => t.name);
        assert.ok(!tables.includes('signals') && tables.includes('bars_ohlcv'), tables.join(', '));
        assert.deepEqual(await migrateToLatest(fresh), ['0003_signals', '0004_shard_positions', '0005_signals_interval']);
      } finally {
        await fresh.destroy();
        await sql`DROP DATABASE IF EXISTS ${sql.id(dbName)} WITH (FORCE)`.execute(db);
      }
    });

    it('0005 keeps every existing signal, takes its interval from the bars it fired on, and rolls back', async () => {
      const dbName = `mdp_test_${randomBytes(6).toString('hex')}`;
      await sql`CREATE DATABASE ${sql.id(dbName)}`.execute(db);
      const fresh = createDb(withDatabase(STORE_URL, dbName), { max: 1, onPoolError: () => undefined });
      try {
        const migrator = new Migrator({ db: fresh, provider: migrationProvider });
        assert.equal((await migrator.migrateTo('0004_shard_positions')).error, undefined);
        // The old schema, with rows: bars of 1 s only at :01, of 1 s and 2 s at :02, of 1 s and 5 s
        // at :05, none at :07; one signal per bar start.
        const bar = (interval: string, second: number) => ({
          provider: 'p',
          symbol: 'SPY',
          interval,
          ts: new Date(T0 + second * 1000),
          open: 1,
          high: 1,
          low: 1,
          close: 1,
          volume: 1,
          trades: 1,
        });
        await fresh
          .insertInto('bars_ohlcv')
          .values([bar('1s', 1), bar('1s', 2), bar('2s', 2), bar('1s', 5), bar('5s', 5)])
          .execute();
        for (const second of [1, 2, 5, 7]) {
          await sql`
            INSERT INTO signals (provider, symbol, name, ts, value, score, meta, adapter, model_version)
            VALUES ('p', 'SPY', 'vwap_cross_up', ${new Date(T0 + second * 1000)}, 1, ${second}, '{"window":"1m","adapter":"rules"}', 'rules', 'r1')`.execute(
            fresh,
          );
        }

        assert.deepEqual(await migrateToLatest(fresh), ['0005_signals_interval']);
        const rows = await fresh.selectFrom('signals').select(['ts', 'score', 'interval_ms', 'source', 'meta', 'adapter']).orderBy('ts').execute();
        assert.deepEqual(
          rows.map((row) => ({ second: (row.ts.getTime() - T0) / 1000, score: row.score, interval_ms: row.interval_ms, source: row.source })),
          [
            { second: 1, score: 1, interval_ms: 1000, source: 'unknown' }, // the only bar there
            { second: 2, score: 2, interval_ms: 2000, source: 'unknown' }, // the live default among 1 s and 2 s
            { second: 5, score: 5, interval_ms: 1000, source: 'unknown' }, // the shortest among 1 s and 5 s
            { second: 7, score: 7, interval_ms: 2000, source: 'unknown' }, // no bar: the default window
          ],
        );
        assert.deepEqual(rows[0].meta, { window: '1m', adapter: 'rules' });

        // The old rows read back through the client with their key's interval and source.
        const store = new SignalsStoreClient(fresh);
        const [first] = await store.listSignals({ symbol: 'SPY', limit: 1 });
        assert.equal(first.meta.interval_ms, 1000);
        assert.equal(first.meta.source, 'unknown');

        // Down: one row per old key again, the columns gone.
        assert.equal((await migrator.migrateTo('0004_shard_positions')).error, undefined);
        const columns = await sql<{ column_name: string }>`
          SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'signals'`.execute(fresh);
        assert.ok(!columns.rows.some((c) => c.column_name === 'interval_ms' || c.column_name === 'source'));
        assert.equal((await fresh.selectFrom('signals').select('ts').execute()).length, 4);
      } finally {
        await fresh.destroy();
        await sql`DROP DATABASE IF EXISTS ${sql.id(dbName)} WITH (FORCE)`.execute(db);
      }
    });
  });

  describe('SignalsStoreClient', () => {
    let provider: string;
    let otherProvider: string;
    /** Unique per test too, so queries that span providers see only this test's rows. */
    let symbol: string;
    let otherSymbol: string;
    let writes: Array<{ seconds: number; table: string }>;
    let store: SignalsStoreClient;

    beforeEach(() => {
      provider = `test-${randomUUID()}`;
      otherProvider = `${provider}-other`;
      const tag = randomBytes(4).toString('hex').toUpperCase();
      symbol = `SPY${tag}`;
      otherSymbol = `QQQ${tag}`;
      writes = [];
      store = new SignalsStoreClient(db, { onWrite: (seconds, table) => writes.push({ seconds, table }) });
    });

    afterEach(async () => {
      await db.deleteFrom('signals').where('provider', 'in', [provider, otherProvider]).execute();
    });

    it('inserts new signals, then reports an identical re-upsert as unchanged', async () => {
      const signals = makeSignals(provider, 40, [symbol, otherSymbol]);
      assert.deepEqual(await store.upsertSignals(signals), { inserted: 40, updated: 0, unchanged: 0 });
      assert.deepEqual(await store.upsertSignals(signals), { inserted: 0, updated: 0, unchanged: 40 });
      assert.equal(await store.countSignals(provider), 40);
      assert.deepEqual(await store.listSignals({ provider, symbol }), signals.filter((s) => s.symbol === symbol).sort(byTsNameProvider));
    });

    it('updates only the signal whose score changed, and only its updated_at', async () => {
      const signals = makeSignals(provider, 10, [symbol]);
      await store.upsertSignals(signals);
      const before = await db.selectFrom('signals').select(['name', 'ts', 'updated_at']).where('provider', '=', provider).execute();

      const changed = signals.map((s, i) => (i === 3 ? { ...s, score: s.score + 0.01 } : s));
      assert.deepEqual(await store.upsertSignals(changed), { inserted: 0, updated: 1, unchanged: 9 });
      assert.deepEqual(await store.upsertSignals(changed), { inserted: 0, updated: 0, unchanged: 10 });

      const after = await db.selectFrom('signals').select(['name', 'ts', 'updated_at']).where('provider', '=', provider).execute();
      const touched = after.filter((row) => {
        const old = before.find((b) => b.name === row.name && b.ts.getTime() === row.ts.getTime());
        return old?.updated_at.getTime() !== row.updated_at.getTime();
      });
      assert.deepEqual(
        touched.map((row) => [row.name, row.ts.toISOString()]),
        [[changed[3].name, new Date(changed[3].ts).toISOString()]],
      );
      const [stored] = await store.listSignals({ provider, symbol, name: changed[3].name, fromMs: Date.parse(changed[3].ts), limit: 1 });
      assert.deepEqual(stored, changed[3]);
    });

    it('treats a changed value, meta or model version as an update, and reordered meta keys as unchanged', async () => {
      const base = makeSignal(provider, symbol, 'vwap_cross_up', 0);
      await store.upsertSignals([base]);
      const variants: SignalEventV1[] = [
        { ...base, value: -1 },
        { ...base, meta: { ...base.meta, price: base.meta.price + 0.01 } },
        { ...base, meta: { ...base.meta, inputs: { ...base.meta.inputs, rsi: 12 } } },
        { ...base, meta: { ...base.meta, model_version: 'rules-v2' } },
        { ...base, meta: { ...base.meta, adapter: 'sklearn' } },
      ];
      for (const variant of variants) {
        assert.deepEqual(await store.upsertSignals([variant]), { inserted: 0, updated: 1, unchanged: 0 }, JSON.stringify(variant));
      }
      const last = variants[variants.length - 1];
      const reordered: SignalEventV1 = {
        ...last,
        meta: Object.fromEntries(Object.entries(last.meta).reverse()) as SignalMeta,
      };
      assert.deepEqual(await store.upsertSignals([reordered]), { inserted: 0, updated: 0, unchanged: 1 });
      assert.deepEqual(await store.listSignals({ provider, symbol }), [last]);
    });

    it('counts a mix of new, changed and identical signals in one call', async () => {
      const signals = makeSignals(provider, 6, [symbol]);
      await store.upsertSignals(signals.slice(0, 4));
      const mixed = [signals[0], { ...signals[1], value: 0 }, signals[2], signals[3], signals[4], signals[5]];
      assert.deepEqual(await store.upsertSignals(mixed), { inserted: 2, updated: 1, unchanged: 3 });
    });

    it('keeps the last of several signals with the same key in one call, equal instants included', async () => {
      const first = makeSignal(provider, symbol, 'vwap_cross_up', 0);
      // Same instant written with a zero fraction: the same row.
      const last = { ...first, ts: first.ts.replace('Z', '.000Z'), score: 0.99, meta: { ...first.meta, price: 1 } };
      const other = makeSignal(provider, symbol, 'vwap_cross_up', 1);
      assert.deepEqual(await store.upsertSignals([first, other, last]), { inserted: 2, updated: 0, unchanged: 1 });
      assert.deepEqual(await store.listSignals({ provider, symbol }), [{ ...last, ts: first.ts }, other]);

      // Against an existing row too: the last duplicate is the value that lands.
      const again = { ...first, score: 0.01 };
      assert.deepEqual(await store.upsertSignals([again, first, again]), { inserted: 0, updated: 1, unchanged: 2 });
      assert.deepEqual((await store.listSignals({ provider, symbol, limit: 1 }))[0], again);
    });

    it('round-trips meta through jsonb: nested objects, arrays, numbers, awkward strings', async () => {
      const meta: SignalMeta = {
        window: '1m',
        price: 425.15,
        inputs: { vwap: 0.1 + 0.2, rsi: 1 / 3, tiny: 5e-324, huge: 1.7976931348623157e308, negative: -1e-7, warm: null },
        adapter: 'sklearn',
        model_version: 'gbm-2025-10-01',
        thresholds: { buy: { score: 0.8, confirm: [1, 2, 3.5] }, sell: { score: -0.8, confirm: [] } },
        features: ['vwap_1m', 'rsi'],
        note: 'quotes " and \' and backslash \\ and {braces}, commas, NULL, unicode ✓ — 株',
        flags: { dry_run: false, shadow: true, parent: null },
        big_int: 9007199254740991,
      };
      const signal = makeSignal(provider, symbol, 'model_buy', 0, { meta });
      await store.upsertSignals([signal]);
      const [stored] = await store.listSignals({ provider, symbol });
      assert.deepEqual(stored, signal);
      assert.equal(stored.meta.inputs.vwap, 0.30000000000000004);
      assert.deepEqual(await store.upsertSignals([signal]), { inserted: 0, updated: 0, unchanged: 1 });
    });

    it('copies adapter and model_version (or rule_version) out of meta', async () => {
      const modelVersioned = makeSignal(provider, symbol, 'a', 0, { meta: { adapter: 'sklearn', model_version: 'm-7' } });
      const ruleVersioned = makeSignal(provider, symbol, 'b', 0, { meta: { adapter: 'rules', model_version: undefined, rule_version: 'r-3' } });
      const unversioned = makeSignal(provider, symbol, 'c', 0, { meta: { adapter: 'rules', model_version: undefined } });
      await store.upsertSignals([modelVersioned, ruleVersioned, unversioned]);
      const rows = await db.selectFrom('signals').select(['name', 'adapter', 'model_version']).where('provider', '=', provider).orderBy('name').execute();
      assert.deepEqual(rows, [
        { name: 'a', adapter: 'sklearn', model_version: 'm-7' },
        { name: 'b', adapter: 'rules', model_version: 'r-3' },
        { name: 'c', adapter: 'rules', model_version: null },
      ]);
    });

    it('returns ts in the contract form: no fraction on whole seconds, else ms or µs, always UTC', async () => {
      const cases: Array<[input: string, stored: string]> = [
        ['2025-10-24T14:02:02Z', '2025-10-24T14:02:02Z'],
        ['2025-10-24T14:02:04.250Z', '2025-10-24T14:02:04.250Z'],
        ['2025-10-24T14:02:06.250125Z', '2025-10-24T14:02:06.250125Z'],
        ['2025-10-24T16:02:08.000+02:00', '2025-10-24T14:02:08Z'],
        ['2025-10-24T14:02:10.100000Z', '2025-10-24T14:02:10.100Z'],
      ];
      const signals = cases.map(([ts], i) => makeSignal(provider, symbol, 'vwap_cross_up', i, { ts }));
      await store.upsertSignals(signals);
      const stored = await store.listSignals({ provider, symbol });
      assert.deepEqual(
        stored.map((s) => s.ts),
        cases.map(([, out]) => out),
      );
      // What comes back is the same key: writing it again changes nothing.
      assert.deepEqual(await store.upsertSignals(stored), { inserted: 0, updated: 0, unchanged: cases.length });

      const [row] = await db
        .selectFrom('signals')
        .select(sql<string>`to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')`.as('utc'))
        .where('provider', '=', provider)
        .where('ts', '>', new Date('2025-10-24T14:02:06Z'))
        .where('ts', '<', new Date('2025-10-24T14:02:07Z'))
        .execute();
      assert.equal(row.utc, '2025-10-24 14:02:06.250125');
    });

    it('rejects a batch with an unparseable ts before writing anything', async () => {
      const good = makeSignal(provider, symbol, 'vwap_cross_up', 0);
      const bad = { ...good, name: 'broken', ts: '2025-02-30T00:00:00Z' };
      await assert.rejects(store.upsertSignals([good, bad]), (err: unknown) => {
        assert.ok(err instanceof RangeError, String(err));
        assert.match(err.message, /signal 1 .*broken.*2025-02-30/);
        return true;
      });
      assert.equal(await store.countSignals(provider), 0);
      assert.equal(writes.length, 0);
    });

    it('keys signals by bar interval: the same signal on 1 s and 2 s bars are two rows, read per interval', async () => {
      const oneSecond = makeSignal(provider, symbol, 'vwap_cross_up', 0, { meta: { interval_ms: 1000 } });
      const twoSecond = makeSignal(provider, symbol, 'vwap_cross_up', 0, { score: 0.9, meta: { interval_ms: 2000 } });
      assert.deepEqual(await store.upsertSignals([oneSecond]), { inserted: 1, updated: 0, unchanged: 0 });
      assert.deepEqual(await store.upsertSignals([twoSecond]), { inserted: 1, updated: 0, unchanged: 0 });
      assert.equal(await store.countSignals(provider), 2);
      assert.deepEqual(await store.listSignals({ provider, symbol }), [oneSecond, twoSecond]);
      assert.deepEqual(await store.listSignals({ provider, symbol, intervalMs: 2000 }), [twoSecond]);
      assert.deepEqual(await store.latestPerName({ provider, symbol, intervalMs: 1000 }), [oneSecond]);
    });

    it('stores the source and filters by it; a replay rewriting a live signal marks it as the replay', async () => {
      const live = makeSignal(provider, symbol, 'vwap_cross_up', 0);
      const replayed = makeSignal(provider, symbol, 'vwap_cross_up', 1, { meta: { source: 'replay:mdp-replay-x' } });
      await store.upsertSignals([live, replayed]);
      const rows = await db.selectFrom('signals').select(['source']).where('provider', '=', provider).orderBy('ts').execute();
      assert.deepEqual(
        rows.map((r) => r.source),
        ['live', 'replay:mdp-replay-x'],
      );
      assert.deepEqual(await store.listSignals({ symbol, source: 'replay:mdp-replay-x' }), [replayed]);
      const rewritten = { ...live, meta: { ...live.meta, source: 'replay:mdp-replay-y' } };
      assert.deepEqual(await store.upsertSignals([rewritten]), { inserted: 0, updated: 1, unchanged: 0 });
    });

    it('rejects a signal without meta.interval_ms before writing anything', async () => {
      const good = makeSignal(provider, symbol, 'vwap_cross_up', 0);
      const { interval_ms: _dropped, ...meta } = good.meta;
      const bad = { ...good, name: 'no_interval', meta };
      await assert.rejects(store.upsertSignals([good, bad]), /signal 1 .*no_interval.*meta\.interval_ms/);
      assert.equal(await store.countSignals(provider), 0);
    });

    it('returns zeros without querying for an empty batch', async () => {
      assert.deepEqual(await store.upsertSignals([]), { inserted: 0, updated: 0, unchanged: 0 });
      assert.equal(writes.length, 0);
    });

    it('writes a batch beyond the bind-parameter limit in one statement, reporting it to onWrite', async () => {
      // 11 columns x 8000 rows would be 88000 bind parameters with multi-row VALUES.
      const signals = makeSignals(provider, 8000, [symbol, otherSymbol]);
      assert.deepEqual(await store.upsertSignals(signals), { inserted: 8000, updated: 0, unchanged: 0 });
      assert.equal(await store.countSignals(provider), 8000);
      assert.equal(writes.length, 1);
      assert.equal(writes[0].table, 'signals');
      assert.ok(writes[0].seconds >= 0 && writes[0].seconds < 60, `duration ${writes[0].seconds}`);
    });

    it('lists by symbol, provider, name and a [fromMs, toMs) range, ordered by ts, with a limit', async () => {
      const mine = makeSignals(provider, 20, [symbol, otherSymbol]);
      const theirs = makeSignals(otherProvider, 8, [symbol]);
      await store.upsertSignals([...mine, ...theirs]);
      const label = (s: SignalEventV1): string => `${s.provider === provider ? 'mine' : 'theirs'}:${s.name}@${Date.parse(s.ts) - T0}`;

      assert.deepEqual(await store.listSignals({ symbol }), [...mine, ...theirs].filter((s) => s.symbol === symbol).sort(byTsNameProvider));
      assert.deepEqual((await store.listSignals({ provider, symbol, name: 'rsi_oversold' })).map(label), [
        'mine:rsi_oversold@0',
        'mine:rsi_oversold@2000',
        'mine:rsi_oversold@4000',
        'mine:rsi_oversold@6000',
        'mine:rsi_oversold@8000',
      ]);
      assert.deepEqual((await store.listSignals({ symbol, fromMs: T0 + 2000, toMs: T0 + 4000 })).map(label), [
        'mine:rsi_oversold@2000',
        'theirs:rsi_oversold@2000',
        'mine:vwap_cross_up@2000',
        'theirs:vwap_cross_up@2000',
      ]);
      assert.deepEqual((await store.listSignals({ provider: otherProvider, symbol, limit: 3 })).map(label), [
        'theirs:rsi_oversold@0',
        'theirs:vwap_cross_up@0',
        'theirs:rsi_oversold@2000',
      ]);
      assert.deepEqual(await store.listSignals({ provider: otherProvider, symbol: otherSymbol }), []);
      assert.equal(await store.countSignals(provider), 20);
      assert.equal(await store.countSignals(otherProvider), 8);
    });

    it('returns the newest signal of each name for a symbol, per provider or across providers', async () => {
      const mine = makeSignals(provider, 12, [symbol, otherSymbol]); // indexes 0..2 per (symbol, name)
      const theirsNewer = makeSignal(otherProvider, symbol, 'vwap_cross_up', 7);
      const theirsOnly = makeSignal(otherProvider, symbol, 'momentum_break', 1);
      await store.upsertSignals([...mine, theirsNewer, theirsOnly]);
      const newest = (name: string): SignalEventV1 | undefined =>
        mine
          .filter((s) => s.symbol === symbol && s.name === name)
          .sort(byTsNameProvider)
          .at(-1);

      assert.deepEqual(await store.latestPerName({ provider, symbol }), [newest('rsi_oversold'), newest('vwap_cross_up')]);
      assert.deepEqual(await store.latestPerName({ symbol }), [theirsOnly, newest('rsi_oversold'), theirsNewer]);
      assert.deepEqual(await store.latestPerName({ provider: otherProvider, symbol: otherSymbol }), []);
    });
  });
});
