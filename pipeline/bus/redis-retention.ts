import type { Redis } from 'ioredis';
import type { StreamBacklog, UnreadLoss } from './bus.js';
import { LuaScript } from './lua-script.js';
import { compareStreamIds } from './sharding.js';
import { STREAM_STATE_1 } from './scripts/stream-state-1.js';
import { TRIM_ACKNOWLEDGED_1 } from './scripts/trim-acknowledged-1.js';

/**
 * Retention on Redis Streams: trimming below what every group acknowledged, the backlog producers
 * wait on, and counting entries a group lost unread. Redis 7.0 has neither acked-only trimming nor
 * `XACKDEL`, so the lowest needed id comes from the groups; the counting uses Redis 7's
 * `entries-added` and each group's `entries-read`.
 */

const STREAM_STATE = new LuaScript(STREAM_STATE_1);
const TRIM_ACKNOWLEDGED = new LuaScript(TRIM_ACKNOWLEDGED_1);

/** Undelivered entries are counted one by one up to this many when Redis cannot tell (see stream-state-1). */
const UNDELIVERED_PROBE = 100;

interface GroupState {
  readonly name: string;
  readonly pending: number;
  readonly lastDeliveredId: string;
  /** Redis' read counter of the group; undefined when Redis does not know it (after `XDEL` ahead of the group). */
  readonly entriesRead: number | undefined;
  /** Entries still in the stream that were never delivered to the group; undefined when not known. */
  readonly undelivered: number | undefined;
  /** `entries-added − entries-read`: undelivered plus those removed unread; undefined when Redis cannot tell. */
  readonly lag: number | undefined;
}

interface StreamState {
  readonly entriesAdded: number;
  readonly length: number;
  /** The newest id ever removed from the stream (`0-0`: none). */
  readonly maxDeletedId: string;
  readonly groups: readonly GroupState[];
}

const known = (n: number): number | undefined => (n < 0 ? undefined : n);

/** The stream and its groups in one atomic snapshot; undefined when the stream does not exist. */
async function readStreamState(redis: Redis, stream: string): Promise<StreamState | undefined> {
  const reply = (await STREAM_STATE.run(redis, [stream], [UNDELIVERED_PROBE])) as
    [] | [number, number, [string, number, string, number, number, number][], string];
  if (reply.length === 0) return undefined;
  const [entriesAdded, length, groups, maxDeletedId] = reply;
  return {
    entriesAdded,
    length,
    maxDeletedId,
    groups: groups.map(([name, pending, lastDeliveredId, entriesRead, undelivered, lag]) => ({
      name,
      pending,
      lastDeliveredId,
      entriesRead: known(entriesRead),
      undelivered: known(undelivered),
      lag: known(lag),
    })),
  };
}

/**
 * A group's backlog: pending plus never delivered. When the undelivered count is not known it is
 * bounded by Redis' lag (which also counts entries removed unread, so it over-estimates) and by the
 * stream's length: producers then wait a little early, never late.
 */
function groupBacklog(state: StreamState, g: GroupState): number {
  return g.pending + (g.undelivered ?? Math.min(state.length, g.lag ?? state.length));
}

export async function streamBacklog(redis: Redis, stream: string, retention: number): Promise<StreamBacklog> {
  const state = await readStreamState(redis, stream);
  if (!state) return { entries: 0, retention, groups: new Map() };
  const groups = new Map(state.groups.map((g) => [g.name, groupBacklog(state, g)]));
  const entries = groups.size === 0 ? state.length : Math.max(...groups.values());
  return { entries, retention, groups };
}

export async function trimAcknowledged(redis: Redis, stream: string): Promise<number> {
  return Number(await TRIM_ACKNOWLEDGED.run(redis, [stream]));
}

/**
 * `ENTRIESREAD` for a group created at `0`: the entries already removed before it existed (which it
 * never needed). Creating the group with a known read counter lets Redis count, from then on, the
 * entries removed before the group read them; without it the counter starts unknown and Redis
 * silently treats entries trimmed before the group's first read as read.
 */
export async function entriesRemovedSoFar(redis: Redis, stream: string): Promise<number> {
  try {
    const info = (await redis.xinfo('STREAM', stream)) as (string | number)[];
    const field = (name: string) => Number(info[info.indexOf(name) + 1]);
    return field('entries-added') - field('length');
  } catch (err) {
    if ((err as Error).message.includes('no such key')) return 0;
    throw err;
  }
}

/** What the last loss report saw of a group, kept beside the stream (it outlives a deleted stream). */
interface LossMemo {
  /** The stream's entries-added then: it only grows while the stream lives. */
  readonly added: number;
  readonly undelivered: number | null;
  readonly pending: number;
  /** Entries Redis counted as removed before the group read them, already reported. */
  readonly reported: number;
  /** The Redis server's `run_id` then: a new one means Redis restarted (and reloaded its AOF). */
  readonly runId?: string;
}

/** The server's `run_id`, new at every Redis start. */
async function serverRunId(redis: Redis): Promise<string | undefined> {
  return /^run_id:(\w+)/m.exec(await redis.info('server'))?.[1];
}

/** Hash beside the stream, one field per group. */
export function lossMemoKey(stream: string): string {
  return `${stream}:unread-loss`;
}

/**
 * Entries removed before `group` read them, not yet reported. Redis 7 keeps, per group, a read
 * counter (`entries-read`, valid when the group was created with one, see
 * {@link entriesRemovedSoFar}) next to the stream's `entries-added`, so
 * `entries-added − entries-read − undelivered` is what the group will never read: it grows when an
 * XTRIM, a `MAXLEN` or an XDEL removes entries ahead of the group. The count already reported is
 * kept in {@link lossMemoKey}, so a loss is reported once even when it happened while no consumer
 * ran. When Redis cannot tell (its counter unknown after an XDEL ahead of the group, or the group
 * deep in a backlog whose undelivered part is not counted cheaply) nothing is reported this time.
 * A stream or group gone since the last report (memo without group), or a stream recreated under
 * the same name (`entries-added` went back), is reported as `deleted`.
 */
export async function takeUnreadLoss(redis: Redis, stream: string, group: string): Promise<UnreadLoss> {
  const key = lossMemoKey(stream);
  const [state, memoText, runId] = await Promise.all([readStreamState(redis, stream), redis.hget(key, group), serverRunId(redis)]);
  const memo = memoText === null ? undefined : (JSON.parse(memoText) as LossMemo);
  const g = state?.groups.find((x) => x.name === group);
  const gone = memo && { undelivered: memo.undelivered, pending: memo.pending };
  if (!state || !g) {
    if (memo) await redis.hdel(key, group);
    return gone ? { removed: 0, deleted: gone } : { removed: 0 };
  }
  const recreated = memo !== undefined && state.entriesAdded < memo.added;
  const reported = recreated ? 0 : (memo?.reported ?? 0);
  const counted = g.entriesRead !== undefined && g.undelivered !== undefined ? state.entriesAdded - g.entriesRead - g.undelivered : undefined;
  // Redis 7.0 does not restore a group's read counter when it reloads its AOF: it restarts from the
  // value the group was created with, so for a group that had read anything the counter would then
  // claim a loss that never happened. On first sight of a group in a Redis' lifetime (no memo, or a
  // memo of another run_id) the counter is trusted only for a group that never read (its counter is
  // still the one it was created with) or when an entry past its position was deleted (XDEL);
  // otherwise it becomes the new baseline. The keeper checks every second, so a trim behind a
  // running group's back is seen by a memo of the same run.
  const restarted = memo?.runId === undefined || (runId !== undefined && memo.runId !== runId);
  const trusted = !restarted || g.lastDeliveredId === '0-0' || compareStreamIds(state.maxDeletedId, g.lastDeliveredId) > 0;
  const lost = counted;
  const next: LossMemo = {
    added: state.entriesAdded,
    undelivered: g.undelivered ?? null,
    pending: g.pending,
    // Lower than reported: Redis re-derived its counter (after an XDEL) and forgot; count from there.
    reported: lost ?? reported,
    // A restart is settled once the counter could be read again (and taken as the new baseline).
    ...(runId === undefined ? {} : restarted && lost === undefined ? (memo?.runId === undefined ? {} : { runId: memo.runId }) : { runId }),
  };
  const nextText = JSON.stringify(next);
  if (nextText !== memoText) await redis.hset(key, group, nextText);
  const removed = lost === undefined || !trusted ? 0 : Math.max(0, lost - reported);
  return recreated && gone ? { removed, deleted: gone } : { removed };
}
