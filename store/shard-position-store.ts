import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Bar, ShardLease, ShardPosition, ShardStore, UpsertCounts } from '../pipeline/contracts/index.js';
import { BarsRejectedError, OwnerFencedError } from '../pipeline/contracts/index.js';
import { upsertBarsIsolated } from './bars-upsert.js';
import type { UpsertBarsOptions } from './bars-upsert.js';
import type { WriteObserver } from './bars-store-client.js';
import type { Database, ShardPositionsTable } from './schema.js';

interface PositionRow {
  readonly owner: string;
  readonly epoch: string;
  readonly frontier_ms: string | null;
  readonly read_id: string | null;
  readonly oldest_open_id: string | null;
  readonly marks: ShardPositionsTable['marks']['__select__'];
  readonly last_commit_from_ms: string | null;
}

function toPosition(row: PositionRow): ShardPosition | undefined {
  if (row.read_id === null && row.frontier_ms === null) return undefined;
  return {
    frontierMs: row.frontier_ms === null ? undefined : Number(row.frontier_ms),
    readId: row.read_id ?? undefined,
    oldestOpenId: row.oldest_open_id ?? undefined,
    marks: row.marks,
    lastCommitFromMs: row.last_commit_from_ms === null ? undefined : Number(row.last_commit_from_ms),
  };
}

/**
 * The shard owners' positions in `shard_positions`, stored with the bars they cover (the way
 * exactly-once sinks keep offsets with their data), and fenced: every write names the owner's
 * epoch and is refused when a newer epoch has taken the shard since.
 *
 * @example
 * const lease = { stream: 'mdp.events.3', group: 'mdp-consumers', owner: 'mdp-microbatch-mdp.events-3', epoch };
 * const position = await shards.acquire(lease);            // undefined on the first run
 * await shards.commit(lease, bars, nextPosition);          // bars + position, one transaction
 */
export class ShardPositionStore implements ShardStore {
  readonly #db: Kysely<Database>;
  readonly #onWrite: WriteObserver | undefined;
  readonly #upsert: UpsertBarsOptions;

  /** `copyMinRows`: commits of at least that many bars write them through COPY (see {@link UpsertBarsOptions}). */
  constructor(db: Kysely<Database>, options: { readonly onWrite?: WriteObserver } & UpsertBarsOptions = {}) {
    this.#db = db;
    this.#onWrite = options.onWrite;
    this.#upsert = { copyMinRows: options.copyMinRows ?? 0 };
  }

  /**
   * Takes the shard for `lease` unless an owner with a newer epoch holds it (then throws
   * {@link OwnerFencedError}); returns the position stored by the last commit. The row lock of a
   * commit in flight makes this wait for that commit to end.
   */
  async acquire(lease: ShardLease): Promise<ShardPosition | undefined> {
    const { rows } = await sql<PositionRow>`
      INSERT INTO shard_positions AS p (stream, consumer_group, owner, epoch)
      VALUES (${lease.stream}, ${lease.group}, ${lease.owner}, ${lease.epoch})
      ON CONFLICT (stream, consumer_group) DO UPDATE SET owner = excluded.owner, epoch = excluded.epoch, acquired_at = now()
      WHERE p.epoch <= excluded.epoch
      RETURNING owner, epoch, frontier_ms, read_id, oldest_open_id, marks, last_commit_from_ms`.execute(this.#db);
    if (rows.length === 0) throw new OwnerFencedError(lease, await this.#holder(this.#db, lease));
    return toPosition(rows[0]);
  }

  /**
   * In one transaction: checks that `lease` still holds the shard (locking its row, so a newer
   * owner's `acquire` waits for this commit), upserts `bars`, and stores `position`. A fenced
   * lease writes nothing and throws {@link OwnerFencedError}. Bars PostgreSQL refuses for their own
   * values are found by {@link upsertBarsIsolated}; then nothing is written either, and
   * {@link BarsRejectedError} names them, so the caller settles their events before a position
   * covers them and commits the rest again.
   */
  async commit(lease: ShardLease, bars: readonly Bar[], position: ShardPosition): Promise<UpsertCounts> {
    const started = performance.now();
    const counts = await this.#db.transaction().execute(async (trx) => {
      const { rows } = await sql<{ owner: string; epoch: string }>`
        SELECT owner, epoch FROM shard_positions WHERE stream = ${lease.stream} AND consumer_group = ${lease.group} FOR UPDATE`.execute(trx);
      const held = rows[0];
      if (held === undefined || Number(held.epoch) !== lease.epoch) {
        throw new OwnerFencedError(lease, held ? { owner: held.owner, epoch: Number(held.epoch) } : { owner: '(nobody)', epoch: 0 });
      }
      const { counts: written, rejected } = await upsertBarsIsolated(trx, bars, this.#upsert);
      if (rejected.length > 0) throw new BarsRejectedError(rejected, bars.length); // rolls the transaction back
      await sql`
        UPDATE shard_positions SET frontier_ms = ${position.frontierMs ?? null}, read_id = ${position.readId ?? null},
          oldest_open_id = ${position.oldestOpenId ?? null}, marks = ${JSON.stringify(position.marks)}::jsonb,
          last_commit_from_ms = ${position.lastCommitFromMs ?? null}, committed_at = now()
        WHERE stream = ${lease.stream} AND consumer_group = ${lease.group}`.execute(trx);
      return written;
    });
    if (bars.length > 0) this.#onWrite?.((performance.now() - started) / 1000, 'bars_ohlcv');
    return counts;
  }

  /** The stored position of a shard, without taking it (for status and tests). */
  async read(stream: string, group: string): Promise<(ShardPosition & { readonly owner: string; readonly epoch: number }) | undefined> {
    const { rows } = await sql<PositionRow>`
      SELECT owner, epoch, frontier_ms, read_id, oldest_open_id, marks, last_commit_from_ms FROM shard_positions
      WHERE stream = ${stream} AND consumer_group = ${group}`.execute(this.#db);
    if (rows.length === 0) return undefined;
    const position = toPosition(rows[0]) ?? { frontierMs: undefined, readId: undefined, oldestOpenId: undefined, marks: [], lastCommitFromMs: undefined };
    return { ...position, owner: rows[0].owner, epoch: Number(rows[0].epoch) };
  }

  async #holder(db: Kysely<Database>, lease: ShardLease): Promise<{ owner: string; epoch: number }> {
    const { rows } = await sql<{ owner: string; epoch: string }>`
      SELECT owner, epoch FROM shard_positions WHERE stream = ${lease.stream} AND consumer_group = ${lease.group}`.execute(db);
    return rows[0] ? { owner: rows[0].owner, epoch: Number(rows[0].epoch) } : { owner: '(nobody)', epoch: 0 };
  }
}
