/**
 * Exact accounting for fault tests: every entry a test produced (and the bus acknowledged) must end
 * in exactly one place — aggregated into a bar, in the late stream, or in the DLQ — and every bar
 * must equal an independent aggregation ({@link expectedBars}) of the events that are neither late
 * nor dead-lettered. Nothing may stay pending or unread in the group, and no committed bar may ever
 * have been rewritten (see {@link installBarAudit}).
 *
 * Events cannot be seen one by one in a bar, only through its aggregate: an event counted twice,
 * missing, or in a bar and also late shows up as a bar whose trades/volume/prices differ from the
 * aggregate of the events that should be in it. The report names each such bar with the difference.
 */
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Bus, BusEntry } from '../../pipeline/bus/index.js';
import { packedAsJson } from '../../pipeline/bus/index.js';
import type { Bar, StreamEventV1 } from '../../pipeline/contracts/index.js';
import type { Database } from '../../store/index.js';
import { StoreClient } from '../../store/index.js';
import { expectedBars } from './expected-bars.js';
import { pollUntil } from './wait.js';

/** One entry a test put on a shard stream (or that the pipeline's producer put there for it). */
export interface ProducedEntry {
  readonly stream: string;
  /** The id XADD returned; unknown when the pipeline's own producer published it (then matched by event id). */
  readonly id?: string;
  /** The payload as published, as JSON text (a msgpack event's JSON; `base64:<bytes>` for bytes that are no event). */
  readonly payload: string;
  /** The bytes published when they are not what encoding `event` gives (malformed msgpack, a broken frame). */
  readonly bytes?: Uint8Array;
  /** The event, for entries that parse as one (valid ones, and schema-valid poison such as a future `src_ts`). */
  readonly event?: StreamEventV1;
  /** `valid`: must end in a bar, the late stream or the DLQ (see the options); `poison`: must end in the DLQ. */
  readonly expect: 'valid' | 'poison';
  /** What the entry is, for the report (e.g. `src_ts 24 h ahead`). */
  readonly label?: string;
}

/**
 * How the oracle reads the bus: every entry of a stream as its fields (an event's payload under `d`,
 * a dead letter's `code`, `reason`, `original`…), and where a group stands. {@link redisReader}
 * reads Redis directly; a bus-neutral one goes through the `Bus` interface (see bus-probe.ts).
 */
export interface StreamReader {
  /** Every entry of `stream`, oldest first (none for a missing stream). */
  entries(stream: string): Promise<[id: string, fields: Fields][]>;
  progress(stream: string, group: string): Promise<GroupProgress>;
}

export interface AccountingOptions {
  /** Where the streams are read: `reader`, or this Redis directly. */
  readonly redis?: Redis;
  readonly reader?: StreamReader;
  readonly db: Kysely<Database>;
  /** The shard streams the entries were published to. */
  readonly streams: readonly string[];
  readonly group: string;
  readonly lateStream: string;
  readonly dlqStream: string;
  readonly windowMs: number;
  /** Every entry the bus acknowledged and did not lose. */
  readonly produced: readonly ProducedEntry[];
  /** Entries Redis acknowledged and then lost (see {@link survivorsOfRedisLoss}): exempt, but they must be nowhere. */
  readonly lost?: readonly ProducedEntry[];
  /**
   * Entries of other scenarios sharing these late and DLQ streams (e.g. other shards accounted
   * separately): what of theirs is found there is skipped, not reported as unknown.
   */
  readonly others?: readonly ProducedEntry[];
  /** A valid event may end in the late stream (default: no — a crash must not make events late). */
  readonly allowLate?: boolean;
  /** A valid event may end in the DLQ (default: no). */
  readonly allowValidInDlq?: boolean;
  /**
   * Redis restarted during the run. Redis 7.0 does not restore a group's read counter when it
   * reloads its AOF, so its `lag` then counts entries the group did read: the trimmed-unread check
   * on it is skipped (the exact accounting of every event is the proof that nothing went unread).
   */
  readonly redisRestarted?: boolean;
}

export interface AccountingSummary {
  readonly produced: number;
  readonly valid: number;
  readonly poison: number;
  readonly lost: number;
  readonly barsStored: number;
  readonly barsExpected: number;
  readonly tradesStored: number;
  readonly late: number;
  readonly dlq: number;
  readonly pending: number;
  readonly undelivered: number;
  readonly rewrites: number;
}

export interface Accounting {
  readonly summary: AccountingSummary;
  /** Empty when the accounting is exact. */
  readonly problems: readonly string[];
  /** Summary and problems, for an assertion message. */
  readonly report: string;
  readonly bars: readonly Bar[];
}

/** Where a group stands on a stream. */
export interface GroupProgress {
  /** Delivered and not acknowledged. */
  readonly pending: number;
  /** Entries the stream holds after the group's last-delivered id: still to be read. */
  readonly undelivered: number;
  /**
   * Redis' own `lag` (entries added minus entries the group read), when it knows it. More than
   * `undelivered` means entries were removed (trimmed) before the group read them.
   */
  readonly lag: number | undefined;
}

/** An entry's fields by name. */
export type Fields = Map<string, string>;

function toFields(flat: readonly string[]): Fields {
  const fields: Fields = new Map();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i], flat[i + 1]);
  return fields;
}

async function readAll(redis: Redis, stream: string): Promise<[string, Fields][]> {
  const out: [string, Fields][] = [];
  for (let start = '-'; ;) {
    const rows = (await redis.xrange(stream, start, '+', 'COUNT', 5000)) as [string, string[]][];
    for (const [id, flat] of rows) out.push([id, toFields(flat)]);
    if (rows.length < 5000) return out;
    start = `(${rows[rows.length - 1][0]}`;
  }
}

async function countAfter(redis: Redis, stream: string, afterId: string): Promise<number> {
  let n = 0;
  for (let start = `(${afterId}`; ;) {
    const rows = (await redis.xrange(stream, start, '+', 'COUNT', 5000)) as [string, unknown][];
    n += rows.length;
    if (rows.length < 5000) return n;
    start = `(${rows[rows.length - 1][0]}`;
  }
}

/** The group's progress on a stream (nothing pending or unread for a missing stream). */
export async function groupProgress(redis: Redis, stream: string, group: string): Promise<GroupProgress> {
  if ((await redis.exists(stream)) === 0) return { pending: 0, undelivered: 0, lag: undefined };
  const groups = (await redis.xinfo('GROUPS', stream)) as (string | number | null)[][];
  for (const row of groups) {
    const info = toFields(row.map(String));
    if (info.get('name') !== group) continue;
    const lag = info.get('lag');
    return {
      pending: Number(info.get('pending')),
      undelivered: await countAfter(redis, stream, info.get('last-delivered-id') ?? '0-0'),
      lag: lag === undefined || lag === 'null' ? undefined : Number(lag),
    };
  }
  return { pending: 0, undelivered: await redis.xlen(stream), lag: undefined };
}

/**
 * Ids of the entries of `stream` that `group` has not acknowledged yet (pending or never
 * delivered): the ones acknowledged-only trimming can never remove, so a restart must bring back.
 */
export async function unacknowledgedIds(redis: Redis, stream: string, group: string): Promise<Set<string>> {
  const ids = new Set<string>();
  if ((await redis.exists(stream)) === 0) return ids;
  const groups = (await redis.xinfo('GROUPS', stream)) as (string | number | null)[][];
  const info = groups.map((row) => toFields(row.map(String))).find((g) => g.get('name') === group);
  const lastDelivered = info?.get('last-delivered-id') ?? '0-0';
  for (const [id] of (await redis.xrange(stream, `(${lastDelivered}`, '+')) as [string, unknown][]) ids.add(id);
  if (info) for (const [id] of (await redis.xpending(stream, group, '-', '+', 1_000_000)) as [string, ...unknown[]][]) ids.add(id);
  return ids;
}

/** Waits until the group has exactly `pending` entries delivered and unacknowledged on `stream`, and none unread. */
export async function waitForPending(reader: StreamReader, stream: string, group: string, pending: number, what: string, timeoutMs = 60_000): Promise<void> {
  let last = '';
  const done = await pollUntil(
    timeoutMs,
    async () => {
      const p = await reader.progress(stream, group);
      last = `${p.pending} pending, ${p.undelivered} unread`;
      return p.pending === pending && p.undelivered === 0 ? true : undefined;
    },
    { everyMs: 50 },
  );
  if (!done) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${stream}: ${pending} pending, 0 unread); last seen ${last}`);
}

/**
 * An entry's fields: an event's payload under `d` as JSON text (a msgpack event's JSON, its bytes
 * base64 under `m`), or all the fields of a dead letter (bytes under `<key>.base64`).
 */
export function entryFields(entry: BusEntry): Fields {
  if (entry.payload !== undefined) return new Map([['d', entry.payload]]);
  if (entry.packed !== undefined) {
    const json = packedAsJson(entry.packed);
    return new Map([...(json === undefined ? [] : [['d', json] as [string, string]]), ['m', Buffer.from(entry.packed).toString('base64')]]);
  }
  const fields: Fields = new Map();
  for (const [k, v] of Object.entries(JSON.parse(entry.foreign ?? '{}') as Record<string, unknown>)) fields.set(k, String(v));
  return fields;
}

/** Reads Redis directly (XRANGE, XINFO GROUPS): what the fault matrix's private Redis is checked with. */
export function redisReader(redis: Redis): StreamReader {
  return { entries: (stream) => readAll(redis, stream), progress: (stream, group) => groupProgress(redis, stream, group) };
}

/** Reads through the bus: its tail for entries, its `lag()` for a group's pending and unread records. */
export function busReader(bus: Bus): StreamReader {
  return {
    async entries(stream) {
      const entries = await bus.tail(stream, Number.MAX_SAFE_INTEGER);
      return entries.map((e): [string, Fields] => [e.id, entryFields(e)]);
    },
    async progress(stream, group) {
      const lag = await bus.lag(stream, group, Date.now());
      return { pending: lag.pending, undelivered: lag.undelivered, lag: undefined };
    },
  };
}

/** Waits until every stream has nothing pending and nothing unread; false if `timeoutMs` passed first. */
export async function waitSettled(source: Redis | StreamReader, streams: readonly string[], group: string, timeoutMs: number): Promise<boolean> {
  const reader = 'progress' in source ? source : redisReader(source);
  const settled = await pollUntil(
    timeoutMs,
    async () => {
      for (const stream of streams) {
        const p = await reader.progress(stream, group);
        if (p.pending > 0 || p.undelivered > 0) return undefined;
      }
      return true;
    },
    { everyMs: 250 },
  );
  return settled === true;
}

// ---------------------------------------------------------------------------------------------
// The bar audit: a trigger in the test's private database that records every rewrite of a bar.

/**
 * Installs, in a test's own database, a trigger recording every UPDATE that changes a bar's values
 * and every DELETE of a bar in `fault_bar_audit`. A committed bar must never change; the audit
 * catches a rewrite even when a later write restores the values. Rows written by a transaction
 * that rolls back vanish with it, so a fenced (rejected) write leaves no trace.
 *
 * In a shared database (the local stack's), pass `providerPrefix`: the triggers then watch only the
 * bars of providers starting with it, under names of their own, and {@link removeBarAudit} takes
 * them out again, so other tests and the live pipeline are neither audited nor slowed.
 */
export async function installBarAudit(db: Kysely<Database>, options: { readonly providerPrefix?: string } = {}): Promise<void> {
  await sql`
    CREATE TABLE IF NOT EXISTS fault_bar_audit (
      id bigserial PRIMARY KEY, op text NOT NULL, provider text, symbol text, "interval" text, ts timestamptz,
      old_values jsonb, new_values jsonb, backend_pid int NOT NULL DEFAULT pg_backend_pid(),
      at timestamptz NOT NULL DEFAULT clock_timestamp())`.execute(db);
  await sql`
    CREATE OR REPLACE FUNCTION fault_bar_audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO fault_bar_audit (op, provider, symbol, "interval", ts, old_values, new_values)
      VALUES (TG_OP, OLD.provider, OLD.symbol, OLD."interval", OLD.ts,
        jsonb_build_object('open', OLD.open, 'high', OLD.high, 'low', OLD.low, 'close', OLD.close, 'volume', OLD.volume, 'trades', OLD.trades),
        CASE WHEN TG_OP = 'UPDATE' THEN jsonb_build_object('open', NEW.open, 'high', NEW.high, 'low', NEW.low, 'close', NEW.close, 'volume', NEW.volume, 'trades', NEW.trades) END);
      RETURN NULL;
    END $$`.execute(db);
  const { rewrite, remove, scope } = auditTriggers(options.providerPrefix);
  await sql`DROP TRIGGER IF EXISTS ${sql.id(rewrite)} ON bars_ohlcv`.execute(db);
  await sql`
    CREATE TRIGGER ${sql.id(rewrite)} AFTER UPDATE ON bars_ohlcv FOR EACH ROW
    WHEN ((OLD.open, OLD.high, OLD.low, OLD.close, OLD.volume, OLD.trades) IS DISTINCT FROM (NEW.open, NEW.high, NEW.low, NEW.close, NEW.volume, NEW.trades)${scope})
    EXECUTE FUNCTION fault_bar_audit_row()`.execute(db);
  await sql`DROP TRIGGER IF EXISTS ${sql.id(remove)} ON bars_ohlcv`.execute(db);
  await sql`CREATE TRIGGER ${sql.id(remove)} AFTER DELETE ON bars_ohlcv FOR EACH ROW ${options.providerPrefix === undefined ? sql`` : sql`WHEN (true${scope})`} EXECUTE FUNCTION fault_bar_audit_row()`.execute(
    db,
  );
}

/** Drops the triggers {@link installBarAudit} installed for `providerPrefix`, and their audit rows. */
export async function removeBarAudit(db: Kysely<Database>, providerPrefix: string): Promise<void> {
  const { rewrite, remove } = auditTriggers(providerPrefix);
  await sql`DROP TRIGGER IF EXISTS ${sql.id(rewrite)} ON bars_ohlcv`.execute(db);
  await sql`DROP TRIGGER IF EXISTS ${sql.id(remove)} ON bars_ohlcv`.execute(db);
  await sql`DELETE FROM fault_bar_audit WHERE starts_with(provider, ${providerPrefix})`.execute(db);
}

/** The audit's trigger names, and the condition on the provider when it watches a prefix only. */
function auditTriggers(providerPrefix: string | undefined) {
  if (providerPrefix === undefined) return { rewrite: 'fault_bar_rewrite', remove: 'fault_bar_delete', scope: sql`` };
  if (!/^[A-Za-z0-9_-]+$/.test(providerPrefix)) throw new Error(`a bar audit's provider prefix is letters, digits, _ and - (got ${providerPrefix})`);
  const suffix = providerPrefix.toLowerCase().replace(/-/g, '_');
  // A trigger's WHEN cannot take parameters: the prefix, checked above, is written as a literal.
  return {
    rewrite: `bar_audit_rewrite_${suffix}`,
    remove: `bar_audit_delete_${suffix}`,
    scope: sql` AND starts_with(OLD.provider, ${sql.lit(providerPrefix)})`,
  };
}

interface AuditRow {
  op: string;
  provider: string;
  symbol: string;
  interval: string;
  ts: Date;
  old_values: Record<string, number>;
  new_values: Record<string, number> | null;
  at: Date;
}

/** Rewrites and deletions of bars of `providers` recorded by {@link installBarAudit}, oldest first. */
export async function barRewrites(db: Kysely<Database>, providers: readonly string[]): Promise<AuditRow[]> {
  if (providers.length === 0) return [];
  const { rows } = await sql<AuditRow>`
    SELECT op, provider, symbol, "interval", ts, old_values, new_values, at FROM fault_bar_audit
    WHERE provider = ANY(${[...providers]}::text[]) ORDER BY id`.execute(db);
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Comparing bars

/** The identity of a bar (its primary key), for maps. */
export function barKey(bar: Pick<Bar, 'provider' | 'symbol' | 'interval' | 'tsMs'>): string {
  return `${bar.provider}\0${bar.symbol}\0${bar.interval}\0${bar.tsMs}`;
}

/** A bar's key for people: long or odd symbols shortened and escaped. */
export function showBar(bar: Pick<Bar, 'provider' | 'symbol' | 'interval' | 'tsMs'>): string {
  const symbol = bar.symbol.length > 40 ? `${bar.symbol.slice(0, 12)}…(${bar.symbol.length} chars)` : JSON.stringify(bar.symbol).slice(1, -1);
  return `${bar.provider}|${symbol}|${bar.interval}|${new Date(bar.tsMs).toISOString()}`;
}

const sameNumber = (a: number, b: number) => a === b || Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b));

/** The fields in which two bars of one key differ, e.g. `trades 688 ≠ 750 (-62)`; empty when equal. */
export function barDifferences(actual: Bar, expected: Bar): string[] {
  const out: string[] = [];
  for (const field of ['open', 'high', 'low', 'close', 'volume', 'trades'] as const) {
    if (!sameNumber(actual[field], expected[field])) {
      const delta = actual[field] - expected[field];
      out.push(
        `${field} ${actual[field]} ≠ ${expected[field]}${field === 'trades' || field === 'volume' ? ` (${delta > 0 ? '+' : ''}${Math.round(delta * 1e6) / 1e6})` : ''}`,
      );
    }
  }
  return out;
}

/** Bars in `before` that are missing or different in `after` (a committed bar must never change). */
export function changedBars(before: readonly Bar[], after: readonly Bar[]): string[] {
  const now = new Map(after.map((b) => [barKey(b), b]));
  const out: string[] = [];
  for (const bar of before) {
    const later = now.get(barKey(bar));
    if (!later) out.push(`${showBar(bar)}: committed bar deleted`);
    else {
      const diff = barDifferences(later, bar);
      if (diff.length > 0) out.push(`${showBar(bar)}: committed bar rewritten: ${diff.join(', ')}`);
    }
  }
  return out;
}

/**
 * Waits until the stored bars of `provider` for these events' windows equal their aggregate (the
 * windows are committed); fails after `timeoutMs` naming `what` and the first bars still off.
 */
export async function waitForExactBars(
  db: Kysely<Database>,
  provider: string,
  events: readonly StreamEventV1[],
  windowMs: number,
  what: string,
  timeoutMs = 60_000,
): Promise<Bar[]> {
  const want = expectedBars(events, windowMs);
  const store = new StoreClient(db);
  let last = '';
  const got = await pollUntil(
    timeoutMs,
    async () => {
      const stored = new Map((await store.listBars({ provider })).map((b) => [barKey(b), b]));
      const off = want.flatMap((b) => {
        const have = stored.get(barKey(b));
        if (!have) return [`${showBar(b)} missing`];
        const diff = barDifferences(have, b);
        return diff.length ? [`${showBar(b)}: ${diff.join(', ')}`] : [];
      });
      last = off.slice(0, 5).join('; ');
      return off.length === 0 ? want : undefined;
    },
    { everyMs: 100 },
  );
  if (!got) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${last}`);
  return got;
}

/** Fails unless no bar of these events' windows is stored for `provider` (their windows are still open). */
export async function assertWindowsOpen(
  db: Kysely<Database>,
  provider: string,
  events: readonly StreamEventV1[],
  windowMs: number,
  what: string,
): Promise<void> {
  const keys = new Set(expectedBars(events, windowMs).map(barKey));
  const flushed = (await new StoreClient(db).listBars({ provider })).filter((b) => keys.has(barKey(b)));
  if (flushed.length > 0)
    throw new Error(
      `precondition failed: ${what}, but ${flushed.length} of its bars were already flushed (the machine may be too slow for micro_batch.flush_timeout_ms)`,
    );
}

async function storedBars(db: Kysely<Database>, providers: readonly string[]): Promise<Bar[]> {
  const store = new StoreClient(db);
  const bars: Bar[] = [];
  for (const provider of providers) bars.push(...(await store.listBars({ provider })));
  return bars;
}

// ---------------------------------------------------------------------------------------------
// Redis losing writes

/**
 * After Redis lost its last writes (see `redis-aof.ts`): which of the entries published before the
 * crash still count, and which Redis lost. The rule:
 *
 * - an entry the stream still holds after the restart was durably accepted: it counts;
 * - an entry it no longer holds was lost by Redis — unless it had already been persisted, i.e.
 *   read and committed in its window's bar before the crash. Bars are committed a window at a time,
 *   so for each (provider, symbol, window) with lost entries: if the bar stored at the crash equals
 *   the aggregate of all that window's entries published before the crash, the lost ones are in it
 *   (they count); if there is no such bar, or it equals the aggregate of the surviving entries alone,
 *   they are lost (exempt, and must appear nowhere); anything else cannot be attributed and throws.
 *
 * @param streamIdsAfterRestart `stream|id` of every entry the shard streams hold after the restart.
 */
export function survivorsOfRedisLoss(input: {
  readonly publishedBeforeCrash: readonly ProducedEntry[];
  readonly streamIdsAfterRestart: ReadonlySet<string>;
  readonly barsAtCrash: readonly Bar[];
  readonly windowMs: number;
}): { survived: ProducedEntry[]; lost: ProducedEntry[] } {
  const { publishedBeforeCrash, streamIdsAfterRestart, barsAtCrash, windowMs } = input;
  const survived: ProducedEntry[] = [];
  const missing = new Set<ProducedEntry>();
  for (const entry of publishedBeforeCrash) {
    if (entry.id === undefined) throw new Error('survivorsOfRedisLoss needs the XADD id of every entry');
    if (streamIdsAfterRestart.has(`${entry.stream}|${entry.id}`)) survived.push(entry);
    else missing.add(entry);
  }
  const atCrash = new Map(barsAtCrash.map((b) => [barKey(b), b]));
  const windowOf = (e: StreamEventV1) => barKey(expectedBars([e], windowMs)[0]);
  const byWindow = new Map<string, { all: StreamEventV1[]; kept: StreamEventV1[]; missing: ProducedEntry[] }>();
  for (const entry of publishedBeforeCrash) {
    if (entry.expect !== 'valid' || !entry.event) continue;
    const key = windowOf(entry.event);
    const w = byWindow.get(key) ?? { all: [], kept: [], missing: [] };
    byWindow.set(key, w);
    w.all.push(entry.event);
    if (missing.has(entry)) w.missing.push(entry);
    else w.kept.push(entry.event);
  }
  const lost: ProducedEntry[] = [...missing].filter((e) => e.expect !== 'valid' || !e.event);
  for (const [key, w] of byWindow) {
    if (w.missing.length === 0) continue;
    const bar = atCrash.get(key);
    if (!bar) {
      lost.push(...w.missing);
      continue;
    }
    if (barDifferences(bar, expectedBars(w.all, windowMs)[0]).length === 0) survived.push(...w.missing);
    else if (w.kept.length > 0 && barDifferences(bar, expectedBars(w.kept, windowMs)[0]).length === 0) lost.push(...w.missing);
    else throw new Error(`cannot tell whether the ${w.missing.length} lost entries of ${showBar(bar)} were in its bar at the crash`);
  }
  return { survived, lost };
}

// ---------------------------------------------------------------------------------------------
// The oracle

const MAX_LINES = 15;

/** Control characters (a NUL in a symbol…) shown as escapes, so a report stays text. */
function printable(line: string): string {
  return line.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function section(title: string, lines: readonly string[]): string[] {
  if (lines.length === 0) return [];
  const shown = lines.slice(0, MAX_LINES).map((l) => `    ${printable(l)}`);
  if (lines.length > MAX_LINES) shown.push(`    … and ${lines.length - MAX_LINES} more`);
  return [`  ${title} (${lines.length}):`, ...shown];
}

function describeEntry(e: ProducedEntry): string {
  const what = e.event ? e.event.event_id : JSON.stringify(e.payload.length > 60 ? `${e.payload.slice(0, 60)}…` : e.payload);
  return `${e.stream}${e.id ? ` ${e.id}` : ''} ${e.label ? `[${e.label}] ` : ''}${what.length > 120 ? `${what.slice(0, 120)}…` : what}`;
}

function eventIdOf(payload: string | undefined): string | undefined {
  if (payload === undefined) return undefined;
  try {
    const parsed = JSON.parse(payload) as { event_id?: unknown };
    return typeof parsed.event_id === 'string' ? parsed.event_id : undefined;
  } catch {
    return undefined;
  }
}

/** Reads bars, the late stream, the DLQ and the group, and accounts for every produced entry. */
export async function accountFor(options: AccountingOptions): Promise<Accounting> {
  const { db, produced, windowMs } = options;
  const reader = options.reader ?? (options.redis ? redisReader(options.redis) : undefined);
  if (!reader) throw new Error('accountFor needs a reader or a Redis client');
  const lost = options.lost ?? [];
  const all = [...produced, ...lost];
  const lostSet = new Set(lost);

  const byEventId = new Map<string, ProducedEntry>();
  const bySource = new Map<string, ProducedEntry>();
  const byPayload = new Map<string, ProducedEntry>();
  const others = new Set(options.others ?? []);
  for (const e of [...all, ...others]) {
    if (e.expect === 'valid') {
      if (!e.event) throw new Error(`a valid produced entry needs its event: ${describeEntry(e)}`);
      if (byEventId.has(e.event.event_id)) throw new Error(`the test produced event ${e.event.event_id} twice`);
      byEventId.set(e.event.event_id, e);
    }
    if (e.id !== undefined) bySource.set(`${e.stream}|${e.id}`, e);
    if (!byPayload.has(e.payload)) byPayload.set(e.payload, e);
  }

  const late = new Map<ProducedEntry, number>();
  const dlq = new Map<ProducedEntry, string[]>();
  const problems: string[] = [];
  const unknownLate: string[] = [];
  const unknownDlq: string[] = [];

  const lateEntries = await reader.entries(options.lateStream);
  for (const [id, fields] of lateEntries) {
    const payload = fields.get('d');
    const eventId = eventIdOf(payload);
    const match = (eventId !== undefined ? byEventId.get(eventId) : undefined) ?? (payload !== undefined ? byPayload.get(payload) : undefined);
    if (!match) unknownLate.push(`${id} ${payload?.slice(0, 100) ?? '(no payload)'}`);
    else if (!others.has(match)) late.set(match, (late.get(match) ?? 0) + 1);
  }
  const dlqEntries = await reader.entries(options.dlqStream);
  for (const [id, fields] of dlqEntries) {
    const original = fields.get('original');
    const source = `${fields.get('stream')}|${fields.get('id')}`;
    const eventId = eventIdOf(original);
    const match =
      bySource.get(source) ?? (original !== undefined ? byPayload.get(original) : undefined) ?? (eventId !== undefined ? byEventId.get(eventId) : undefined);
    const reason = `${fields.get('code') ?? '?'}: ${fields.get('reason') ?? ''}`;
    if (match && others.has(match)) continue;
    if (!match) unknownDlq.push(`${id} from ${source} (${reason}) ${original?.slice(0, 80) ?? ''}`);
    else dlq.set(match, [...(dlq.get(match) ?? []), reason]);
    if (!fields.get('reason')) problems.push(`DLQ entry ${id} (from ${source}) has no reason`);
  }

  const notAccounted: string[] = [];
  const twice: string[] = [];
  const lateButShouldNot: string[] = [];
  const dlqButShouldNot: string[] = [];
  const poisonNotInDlq: string[] = [];
  const lostButSeen: string[] = [];
  const inBars: StreamEventV1[] = [];
  for (const e of all) {
    const l = late.get(e) ?? 0;
    const d = dlq.get(e) ?? [];
    if (lostSet.has(e)) {
      if (l + d.length > 0) lostButSeen.push(`${describeEntry(e)}: late ${l}, DLQ ${d.length}`);
      continue;
    }
    if (l + d.length > 1) twice.push(`${describeEntry(e)}: late ${l}×, DLQ ${d.length}× ${d.join(' | ')}`);
    if (e.expect === 'poison') {
      if (d.length === 0) poisonNotInDlq.push(`${describeEntry(e)}${l > 0 ? ' (went to the late stream)' : ''}`);
      continue;
    }
    if (l > 0 && !options.allowLate) lateButShouldNot.push(describeEntry(e));
    if (d.length > 0 && !options.allowValidInDlq) dlqButShouldNot.push(`${describeEntry(e)}: ${d[0]}`);
    if (l === 0 && d.length === 0) inBars.push(e.event!);
  }

  const providers = [...new Set(all.flatMap((e) => (e.event ? [e.event.provider] : [])))];
  const bars = await storedBars(db, providers);
  const expected = expectedBars(inBars, windowMs);
  const stored = new Map(bars.map((b) => [barKey(b), b]));
  const wanted = new Map(expected.map((b) => [barKey(b), b]));
  const barProblems: string[] = [];
  for (const [key, want] of wanted) {
    const have = stored.get(key);
    if (!have) barProblems.push(`${showBar(want)}: missing (expected ${want.trades} trades)`);
    else {
      const diff = barDifferences(have, want);
      if (diff.length > 0) barProblems.push(`${showBar(want)}: ${diff.join(', ')}`);
    }
  }
  for (const [key, have] of stored) if (!wanted.has(key)) barProblems.push(`${showBar(have)}: unexpected bar (${have.trades} trades)`);
  if (barProblems.length > 0) notAccounted.push(...barProblems);

  let pending = 0,
    undelivered = 0;
  const groupLines: string[] = [];
  for (const stream of options.streams) {
    const p = await reader.progress(stream, options.group);
    pending += p.pending;
    undelivered += p.undelivered;
    if (p.pending > 0 || p.undelivered > 0) groupLines.push(`${stream}: ${p.pending} pending, ${p.undelivered} never delivered`);
    if (!options.redisRestarted && p.lag !== undefined && p.lag > p.undelivered)
      groupLines.push(
        `${stream}: Redis counts ${p.lag - p.undelivered} entries added that the group never read and the stream no longer holds (trimmed unread)`,
      );
  }

  const rewrites = await barRewrites(db, providers);
  const rewriteLines = rewrites.map(
    (r) =>
      `${showBar({ provider: r.provider, symbol: r.symbol, interval: r.interval, tsMs: r.ts.getTime() })} at ${r.at.toISOString()}: ${
        r.op === 'DELETE'
          ? 'deleted'
          : `trades ${r.old_values.trades} → ${r.new_values?.trades}, volume ${r.old_values.volume} → ${r.new_values?.volume}, close ${r.old_values.close} → ${r.new_values?.close}`
      }`,
  );

  problems.push(
    ...section('bars that differ from the aggregate of the events that should be in them', notAccounted),
    ...section('committed bars rewritten or deleted (bar audit)', rewriteLines),
    ...section('entries counted twice (late/DLQ)', twice),
    ...section('valid events sent to the late stream', lateButShouldNot),
    ...section('valid events sent to the DLQ', dlqButShouldNot),
    ...section('poison entries not in the DLQ', poisonNotInDlq),
    ...section('entries Redis lost that appear anyway', lostButSeen),
    ...section('late-stream entries the test never produced', unknownLate),
    ...section('DLQ entries the test never produced', unknownDlq),
    ...section('entries left in the consumer group', groupLines),
  );
  const summary: AccountingSummary = {
    produced: produced.length,
    valid: produced.filter((e) => e.expect === 'valid').length,
    poison: produced.filter((e) => e.expect === 'poison').length,
    lost: lost.length,
    barsStored: bars.length,
    barsExpected: expected.length,
    tradesStored: bars.reduce((n, b) => n + b.trades, 0),
    late: [...late.values()].reduce((n, c) => n + c, 0) + unknownLate.length,
    dlq: [...dlq.values()].reduce((n, r) => n + r.length, 0) + unknownDlq.length,
    pending,
    undelivered,
    rewrites: rewrites.length,
  };
  const head =
    `accounting of ${summary.produced} produced entries (${summary.valid} valid, ${summary.poison} poison${summary.lost ? `; ${summary.lost} lost by Redis, exempt` : ''}): ` +
    `${summary.barsStored} bars stored / ${summary.barsExpected} expected, ${summary.tradesStored} trades in bars (${inBars.length} expected), ` +
    `${summary.late} late, ${summary.dlq} in the DLQ, ${pending} pending, ${undelivered} unread, ${summary.rewrites} bar rewrites`;
  const report = problems.length === 0 ? `${head}: exact` : [`${head}. Problems:`, ...problems].join('\n');
  return { summary, problems, report, bars };
}

/**
 * Fails with the accounting's report, preceded by a row's own findings (`{ title: lines }`, e.g.
 * bars that changed after a crash), unless the accounting is exact and every finding is empty.
 */
export function assertAccounted(accounting: Accounting, findings: Readonly<Record<string, readonly string[]>> = {}): void {
  const extra = Object.entries(findings).flatMap(([title, lines]) => section(title, lines));
  if (accounting.problems.length === 0 && extra.length === 0) return;
  assert.fail([...(extra.length > 0 ? ['Findings:', ...extra] : []), accounting.report].join('\n'));
}
