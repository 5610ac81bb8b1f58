import type { StreamingConfig } from '../pipeline/config/index.js';
import { parseDurationMs } from '../pipeline/contracts/index.js';
import { EVENT_PAYLOADS } from '../pipeline/routing/index.js';
import type { StreamEventV1 } from '../pipeline/contracts/index.js';
import { parseReplayBound } from '../pipeline/datasets/replay-range.js';
import { BacklogGate, openBus, RedisDeadLetterStore, ShardPublisher } from '../pipeline/bus/index.js';
import type { DeadLetterFilter, DeadLetterStore, RedriveMark, StoredDeadLetter } from '../pipeline/bus/index.js';
import { createLogger, createMetrics } from '../pipeline/telemetry/index.js';
import { DlqError } from './dlq-error.js';
import { OptionError } from './option-error.js';
import { alignColumns, parseOutput } from './output-format.js';

/** Flags of `mdp dlq ls | show | redrive`, as given on the command line. */
export interface DlqOptions {
  /** `show`: the entry; `redrive`: the entries to redrive (or `all`). */
  readonly ids?: readonly string[];
  /** `redrive`: every entry matching `--reason`/`--since`. */
  readonly all?: boolean;
  /** A code (`max_deliveries`) or a piece of the reason text. */
  readonly reason?: string | undefined;
  /** A duration back from now (`1h`) or a date/time (`2025-10-24T14:00:00Z`). */
  readonly since?: string | undefined;
  /** `ls`: newest entries shown (default 50). */
  readonly limit?: string | undefined;
  /** `redrive`: report what would be published, publish and mark nothing. */
  readonly dryRun?: boolean;
  readonly output?: string | undefined;
  /** The clock, for `--since 1h` and the future-event check (tests pin it). */
  readonly nowMs?: number;
}

export type Write = (text: string) => void;

/** A dead letter as `ls`/`show -o json` print it: the stored fields plus what its payload says. */
export interface DlqEntryView {
  readonly id: string;
  readonly time: string;
  readonly code: string;
  readonly reason: string;
  /** `file:line` for a producer's input line, `stream@id` for a stream entry. */
  readonly source: string;
  readonly provider: string | null;
  readonly symbol: string | null;
  readonly eventId: string | null;
  readonly group: string;
  readonly deliveries: number;
  readonly redriven: (RedriveMark & { readonly at: string }) | null;
  /** How the payload was encoded on the bus (a msgpack payload is shown as its JSON). */
  readonly encoding: 'json' | 'msgpack';
  /** The payload, parsed when it is JSON (or msgpack), else the text as stored. */
  readonly payload: unknown;
}

/** What redrive did with one entry. */
export type RedriveOutcome =
  | { readonly id: string; readonly outcome: 'redriven' | 'would-redrive'; readonly stream: string; readonly eventId: string }
  | { readonly id: string; readonly outcome: 'already-redriven'; readonly stream: string; readonly at: string }
  | { readonly id: string; readonly outcome: 'invalid' | 'not-found'; readonly reason: string };

/** Dead letters published per round trip (and marked right after). */
const REDRIVE_BATCH = 500;
/** How long a redrive waits for room on a full events stream before it gives up (exit 1). */
const BACKLOG_WAIT_MS = 60_000;

/**
 * `mdp dlq ls`: the newest dead letters (`--limit`, default 50), oldest first, filtered by
 * `--reason` and `--since`, as aligned columns (id, time, code, source, symbol, deliveries,
 * redriven, reason) or `-o json|jsonl`. Returns the exit code.
 */
export async function dlqList(config: StreamingConfig, options: DlqOptions, write: Write): Promise<number> {
  const output = parseOutput(options.output, ['text', 'json', 'jsonl']);
  const filter = parseFilter(options);
  const limit = parseLimit(options.limit);
  const letters = await withStore(config, (store) => store.newest(filter, limit));
  const views = letters.map(viewOf);
  if (output === 'json') write(JSON.stringify(views) + '\n');
  else if (output === 'jsonl') for (const v of views) write(JSON.stringify(v) + '\n');
  else if (views.length === 0) write(`no dead letters in ${config.bus.redis.dlq_stream}${filter.reason || filter.sinceMs ? ' matching the filter' : ''}\n`);
  else {
    const rows = views.map((v) => [v.id, v.time, v.code, v.source, v.symbol ?? '-', String(v.deliveries), v.redriven ? v.redriven.at : '-', v.reason]);
    for (const line of alignColumns([['ID', 'TIME', 'CODE', 'SOURCE', 'SYMBOL', 'DELIVERIES', 'REDRIVEN', 'REASON'], ...rows])) write(line + '\n');
  }
  return 0;
}

/** `mdp dlq show ID`: every field of one dead letter and its payload, pretty. Throws `DlqError` NOT_FOUND. */
export async function dlqShow(config: StreamingConfig, options: DlqOptions, write: Write): Promise<number> {
  const output = parseOutput(options.output, ['text', 'json']);
  const id = options.ids?.[0];
  if (id === undefined || options.ids?.length !== 1) throw new OptionError('dlq show needs one entry ID (see mdp dlq ls)');
  const letter = await withStore(config, (store) => store.get(id));
  if (letter === undefined) throw new DlqError(`no entry ${id} in ${config.bus.redis.dlq_stream} (see mdp dlq ls)`, 'NOT_FOUND');
  const view = viewOf(letter);
  if (output === 'json') {
    write(JSON.stringify(view) + '\n');
    return 0;
  }
  const fields: [string, string][] = [
    ['id', view.id],
    ['time', view.time],
    ['code', view.code],
    ['reason', view.reason],
    ['source', view.source],
    ['group', view.group],
    ['deliveries', String(view.deliveries)],
    ['encoding', view.encoding],
    ['redriven', view.redriven ? `${view.redriven.at} → ${view.redriven.stream}` : 'no'],
  ];
  for (const line of alignColumns(fields.map(([k, v]) => [`${k}:`, v]))) write(line + '\n');
  write(`payload:\n${typeof view.payload === 'string' ? view.payload : JSON.stringify(view.payload, null, 2)}\n`);
  return 0;
}

/**
 * `mdp dlq redrive [ID...] [--all] [--reason R] [--since T] [--dry-run]`: re-publishes the original
 * events of dead letters onto their shard streams through the producers' {@link ShardPublisher},
 * once the cause is fixed. Idempotent: each redriven entry is marked (never deleted), and a marked
 * entry is reported as already redriven and not published again; the pipeline's per-`event_id`
 * dedupe covers the one gap (a crash between publishing and marking). A payload that still fails
 * the v1 contract, or is still too far in the future, is reported and not published.
 *
 * Returns the exit code: 1 when an entry named could not be redriven (not found, still invalid), else 0.
 */
export async function dlqRedrive(config: StreamingConfig, options: DlqOptions, write: Write): Promise<number> {
  const output = parseOutput(options.output, ['text', 'json', 'jsonl']);
  const ids = options.ids ?? [];
  if (ids.length > 0 && options.all) throw new OptionError('dlq redrive takes entry IDs or --all, not both');
  if (ids.length === 0 && !options.all) throw new OptionError('dlq redrive needs entry IDs (see mdp dlq ls) or --all (with --reason/--since to narrow it)');
  if (ids.length > 0 && (options.reason !== undefined || options.since !== undefined))
    throw new OptionError('--reason and --since select entries for --all; with IDs, name the entries');
  const filter = parseFilter(options);
  const nowMs = options.nowMs ?? Date.now();
  const outcomes: RedriveOutcome[] = [];
  const report = (o: RedriveOutcome) => {
    outcomes.push(o);
    if (output === 'jsonl') write(JSON.stringify(o) + '\n');
    else if (output === 'text') write(formatOutcome(o) + '\n');
  };

  await withStore(config, async (store) => {
    // The bus opens once the store has reached Redis, so an unreachable server is one error line.
    await store.connect();
    const bus = openBus(config);
    const metrics = createMetrics();
    // Like a producer, a large `--all` waits while a shard's backlog nears retention (bus.redis.maxlen).
    const log = createLogger('WARNING', (line) => process.stderr.write(line + '\n'), { component: 'dlq-redrive' });
    const gate = new BacklogGate({ bus, metrics, log, component: 'dlq-redrive' });
    const publisher = new ShardPublisher({ bus, metrics, stream: config.bus.redis.stream, shards: config.bus.shards, gate });
    try {
      /** The DLQ entries of each event a run publishes (two dead letters of one event publish it once). */
      const lettersOf = new Map<string, string[]>();
      const redrive = async (letters: readonly StoredDeadLetter[]) => {
        const events: StreamEventV1[] = [];
        const marks = new Map<string, RedriveMark>();
        for (const letter of letters) {
          if (letter.redriven) {
            report({ id: letter.id, outcome: 'already-redriven', stream: letter.redriven.stream, at: new Date(letter.redriven.atMs).toISOString() });
            continue;
          }
          const problem = stillFailing(letter, nowMs, config.micro_batch.max_future_ms);
          if (problem !== undefined) {
            report({ id: letter.id, outcome: 'invalid', reason: problem });
            continue;
          }
          const event = JSON.parse(letter.original) as StreamEventV1;
          const stream = publisher.streamOf(event);
          // Two dead letters of one event (a rejected bar dead-letters all its events): publish it once.
          const same = lettersOf.get(event.event_id);
          if (same === undefined) {
            events.push(event);
            lettersOf.set(event.event_id, [letter.id]);
          } else same.push(letter.id);
          marks.set(letter.id, { atMs: nowMs, stream });
          report({ id: letter.id, outcome: options.dryRun ? 'would-redrive' : 'redriven', stream, eventId: event.event_id });
        }
        if (options.dryRun) return;
        // Published first, marked after, as much as the backlog has room for at a time: a crash in
        // between can publish once more on the next redrive (the pipeline drops the duplicate
        // event_id), but an event that was not published is never marked.
        for (let rest = events; rest.length > 0;) {
          const room = await gate.waitForRoom(publisher.streamsOf(rest), { untilMs: Date.now() + BACKLOG_WAIT_MS });
          if (room === 0) {
            throw new DlqError(
              `the events stream stayed near its retention bound (bus.redis.maxlen) for ${BACKLOG_WAIT_MS / 1000} s: are the consumers running? What was redriven so far is marked; run the redrive again`,
              'BACKLOG_FULL',
            );
          }
          const piece = rest.slice(0, room);
          await publisher.publish(piece);
          const ids = new Set(piece.flatMap((e) => lettersOf.get(e.event_id) ?? []));
          await store.markRedriven(new Map([...marks].filter(([id]) => ids.has(id))));
          rest = rest.slice(room);
        }
      };
      if (options.all) {
        for await (const page of store.scan(filter)) await redrive(page);
        return;
      }
      const letters: StoredDeadLetter[] = [];
      for (const id of new Set(ids)) {
        const letter = await store.get(id);
        if (letter === undefined) report({ id, outcome: 'not-found', reason: `no entry ${id} in ${config.bus.redis.dlq_stream}` });
        else letters.push(letter);
      }
      for (let i = 0; i < letters.length; i += REDRIVE_BATCH) await redrive(letters.slice(i, i + REDRIVE_BATCH));
    } finally {
      gate.close();
      await bus.close();
    }
  });
  if (output === 'json') write(JSON.stringify(outcomes) + '\n');
  else if (output === 'text') write(summary(outcomes, options.dryRun === true) + '\n');
  return outcomes.some((o) => o.outcome === 'invalid' || o.outcome === 'not-found') ? 1 : 0;
}

/** Why a dead letter's payload would fail again, or `undefined` when it is a valid event to publish. */
function stillFailing(letter: StoredDeadLetter, nowMs: number, maxFutureMs: number): string | undefined {
  if (letter.original === '') return 'the dead letter kept no payload';
  // The bytes as they were read when the payload was msgpack: the same check a consumer makes.
  const decoded = EVENT_PAYLOADS.decode(letter.packed ?? letter.original);
  if (!decoded.ok) return `still invalid: ${decoded.reason}`;
  if (decoded.value.srcTsUs > (nowMs + maxFutureMs) * 1000) {
    return `still in the future: src_ts is more than micro_batch.max_future_ms (${maxFutureMs} ms) ahead of the wall clock`;
  }
  return undefined;
}

function formatOutcome(o: RedriveOutcome): string {
  switch (o.outcome) {
    case 'redriven':
      return `${o.id}: redriven → ${o.stream} (${o.eventId})`;
    case 'would-redrive':
      return `${o.id}: would redrive → ${o.stream} (${o.eventId})`;
    case 'already-redriven':
      return `${o.id}: already redriven at ${o.at} → ${o.stream}; not published again`;
    case 'invalid':
      return `${o.id}: not redriven: ${o.reason}`;
    case 'not-found':
      return `${o.id}: not redriven: ${o.reason}`;
  }
}

function summary(outcomes: readonly RedriveOutcome[], dryRun: boolean): string {
  const count = (kind: RedriveOutcome['outcome']) => outcomes.filter((o) => o.outcome === kind).length;
  const parts = [
    dryRun ? `${count('would-redrive')} would be redriven (dry run: nothing published)` : `${count('redriven')} redriven`,
    `${count('already-redriven')} already redriven`,
    `${count('invalid')} still failing`,
  ];
  if (count('not-found') > 0) parts.push(`${count('not-found')} not found`);
  return parts.join(', ');
}

function viewOf(letter: StoredDeadLetter): DlqEntryView {
  let payload: unknown = letter.original;
  try {
    payload = JSON.parse(letter.original);
  } catch {
    // Not JSON (a CSV line, a foreign entry): shown as stored.
  }
  const field = (key: string): string | null => {
    const value = typeof payload === 'object' && payload !== null ? (payload as Record<string, unknown>)[key] : undefined;
    return typeof value === 'string' ? value : null;
  };
  return {
    id: letter.id,
    time: new Date(letter.timeMs).toISOString(),
    code: letter.code,
    reason: letter.reason,
    source: sourceOf(letter),
    provider: field('provider'),
    symbol: field('symbol'),
    eventId: field('event_id'),
    group: letter.group,
    deliveries: letter.deliveries,
    encoding: letter.encoding,
    redriven: letter.redriven ? { ...letter.redriven, at: new Date(letter.redriven.atMs).toISOString() } : null,
    payload,
  };
}

/** `path:line` for a producer's input line, `stream@id` for a stream entry. */
function sourceOf(letter: StoredDeadLetter): string {
  if (letter.sourceStream.startsWith('file:')) return `${letter.sourceStream.slice('file:'.length)}:${letter.sourceId}`;
  if (letter.sourceStream === 'stdin') return `stdin:${letter.sourceId}`;
  return `${letter.sourceStream}@${letter.sourceId}`;
}

function parseFilter(options: DlqOptions): DeadLetterFilter {
  const filter: { sinceMs?: number; reason?: string } = {};
  if (options.reason !== undefined) {
    if (options.reason.trim() === '') throw new OptionError('--reason must not be empty');
    filter.reason = options.reason;
  }
  if (options.since !== undefined) {
    const back = parseDurationMs(options.since);
    const sinceMs = back !== undefined ? (options.nowMs ?? Date.now()) - back : parseReplayBound(options.since);
    if (sinceMs === undefined) throw new OptionError(`--since must be a duration such as 1h or a time such as 2025-10-24T14:00:00Z (got "${options.since}")`);
    filter.sinceMs = sinceMs;
  }
  return filter;
}

function parseLimit(text: string | undefined): number {
  if (text === undefined) return 50;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new OptionError(`--limit must be a whole number above 0 (got "${text}")`);
  return n;
}

/** The DLQ of the configured bus, closed after `fn`. */
async function withStore<T>(config: StreamingConfig, fn: (store: DeadLetterStore) => Promise<T>): Promise<T> {
  if (config.bus.type !== 'redis') {
    throw new DlqError(
      `the dlq commands are not supported on ${config.bus.type} yet: they read the Redis dead-letter stream (bus.redis.dlq_stream)`,
      'UNSUPPORTED_BUS',
    );
  }
  const store = new RedisDeadLetterStore(config.bus.redis.uri, config.bus.redis.dlq_stream);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
