/**
 * An audit of shard ownership for fault tests: a trigger in the test's private database records
 * every effective write to `shard_positions` — an owner taking the shard with its epoch (`acquire`),
 * and every commit of bars with the shard's position (`commit`) — in the order PostgreSQL applied
 * them. A fenced write (an older epoch) is refused and rolled back, so it leaves no row: what the
 * audit holds is what the owners actually did, and a shard with one owner at a time shows epochs
 * that never go back.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Database } from '../../store/index.js';

/** One effective write to a shard's row. */
export interface OwnerEvent {
  readonly stream: string;
  readonly op: 'acquire' | 'commit';
  readonly epoch: number;
  readonly frontierMs: number | undefined;
  readonly at: Date;
}

/** Installs the trigger (idempotent); call before the consumers start. */
export async function installOwnerAudit(db: Kysely<Database>): Promise<void> {
  await sql`
    CREATE TABLE IF NOT EXISTS fault_owner_audit (
      id bigserial PRIMARY KEY, op text NOT NULL, stream text NOT NULL, consumer_group text NOT NULL, owner text NOT NULL,
      epoch bigint NOT NULL, frontier_ms bigint, at timestamptz NOT NULL DEFAULT clock_timestamp())`.execute(db);
  await sql`
    CREATE OR REPLACE FUNCTION fault_owner_audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' OR NEW.epoch IS DISTINCT FROM OLD.epoch OR NEW.acquired_at IS DISTINCT FROM OLD.acquired_at THEN
        INSERT INTO fault_owner_audit (op, stream, consumer_group, owner, epoch, frontier_ms)
        VALUES ('acquire', NEW.stream, NEW.consumer_group, NEW.owner, NEW.epoch, NEW.frontier_ms);
      END IF;
      IF TG_OP = 'UPDATE' AND NEW.committed_at IS DISTINCT FROM OLD.committed_at THEN
        INSERT INTO fault_owner_audit (op, stream, consumer_group, owner, epoch, frontier_ms)
        VALUES ('commit', NEW.stream, NEW.consumer_group, NEW.owner, NEW.epoch, NEW.frontier_ms);
      END IF;
      RETURN NULL;
    END $$`.execute(db);
  await sql`DROP TRIGGER IF EXISTS fault_owner_audit ON shard_positions`.execute(db);
  await sql`CREATE TRIGGER fault_owner_audit AFTER INSERT OR UPDATE ON shard_positions FOR EACH ROW EXECUTE FUNCTION fault_owner_audit_row()`.execute(db);
}

/** The audited writes to these streams' rows in `group`, in the order they were applied. */
export async function ownerHistory(db: Kysely<Database>, streams: readonly string[], group: string): Promise<OwnerEvent[]> {
  const { rows } = await sql<{ stream: string; op: 'acquire' | 'commit'; epoch: string; frontier_ms: string | null; at: Date }>`
    SELECT stream, op, epoch, frontier_ms, at FROM fault_owner_audit
    WHERE stream = ANY(${[...streams]}::text[]) AND consumer_group = ${group} ORDER BY id`.execute(db);
  return rows.map((r) => ({
    stream: r.stream,
    op: r.op,
    epoch: Number(r.epoch),
    frontierMs: r.frontier_ms === null ? undefined : Number(r.frontier_ms),
    at: r.at,
  }));
}

/**
 * What breaks "one owner at a time" in a shard's history: a write by an older epoch after a newer
 * one took the shard, or a commit by an epoch other than the one that last took it.
 */
export function ownerViolations(history: readonly OwnerEvent[]): string[] {
  const out: string[] = [];
  const held = new Map<string, number>();
  for (const e of history) {
    const current = held.get(e.stream);
    if (current !== undefined && e.epoch < current)
      out.push(`${e.stream}: ${e.op} by epoch ${e.epoch} at ${e.at.toISOString()} after epoch ${current} took the shard`);
    if (e.op === 'commit' && e.epoch !== current)
      out.push(`${e.stream}: commit by epoch ${e.epoch} at ${e.at.toISOString()} while epoch ${current ?? '(none)'} held the shard`);
    if (e.op === 'acquire') held.set(e.stream, Math.max(current ?? e.epoch, e.epoch));
  }
  return out;
}
