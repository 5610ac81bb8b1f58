/**
 * `mdp stream tail`: the newest entries of a topic, its shards merged in order, for people (aligned
 * columns) or programs (`-o json|jsonl`), optionally filtered and followed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { packedAsJson, shardStream, streamIdMs } from '../pipeline/bus/index.js';
import type { Bus, BusEntry } from '../pipeline/bus/index.js';
import { busNames } from '../pipeline/config/index.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { UsageError } from './usage-error.js';

/** How many entries of each shard a filtered tail (`--symbol`, `--since`) looks through. */
export const FILTER_SCAN_ENTRIES = 10_000;
/** Entries read per shard and round while following. */
const FOLLOW_BATCH = 1000;

export interface TailOptions {
  readonly topic: string;
  /** The newest `limit` matching entries are shown (before following). */
  readonly limit: number;
  readonly symbol?: string;
  /** Only entries newer than this (epoch ms). */
  readonly sinceMs?: number;
  /** Keep printing new entries until `signal` aborts. */
  readonly follow?: boolean;
  readonly format: 'text' | 'json' | 'jsonl';
  readonly signal?: AbortSignal;
  /** Pause between reads while following and nothing is new. */
  readonly pollMs?: number;
  readonly write: (text: string) => void;
}

/** One entry as `-o json|jsonl` prints it: the payload parsed when it is JSON, else as text. */
export interface TailEntry {
  readonly stream: string;
  readonly id: string;
  /** The decoded payload; a string when it is not JSON; absent for an entry without one. */
  readonly payload?: unknown;
  /** The fields of an entry written without a payload (a dead letter on Redis). */
  readonly fields?: Record<string, string>;
}

interface Row {
  readonly stream: string;
  readonly entry: BusEntry;
  readonly value: Record<string, unknown> | undefined;
}

/** The topics `--topic` accepts: the configured streams (sharded ones by their base name). */
export function knownTopics(config: StreamingConfig): string[] {
  const n = busNames(config);
  return [n.stream, n.features_stream, n.signals_stream, n.dlq_stream, n.late_stream];
}

/**
 * The streams behind `--topic`: every shard of a sharded topic (events, features), one shard when
 * named (`mdp.events.2`), else the stream itself. An unknown topic is a usage error listing them.
 */
export function topicStreams(config: StreamingConfig, topic: string): string[] {
  const n = busNames(config);
  const sharded = [n.stream, n.features_stream];
  if (sharded.includes(topic)) return Array.from({ length: config.bus.shards }, (_, shard) => shardStream(topic, shard));
  if (knownTopics(config).includes(topic)) return [topic];
  for (const base of sharded) {
    const shard = topic.startsWith(`${base}.`) ? topic.slice(base.length + 1) : '';
    if (/^\d+$/.test(shard) && Number(shard) < config.bus.shards) return [topic];
  }
  throw new UsageError(
    `unknown topic "${topic}" (known: ${knownTopics(config).join(', ')}; a shard of ${sharded.join(' or ')} by its number, e.g. ${shardStream(n.stream, 0)})`,
  );
}

/** Prints the newest entries, then (with `follow`) every new one until `signal` aborts. */
export async function tailTopic(bus: Bus, config: StreamingConfig, options: TailOptions): Promise<void> {
  const streams = topicStreams(config, options.topic);
  const filtered = options.symbol !== undefined || options.sinceMs !== undefined;
  const last = new Map<string, string | undefined>();
  const rows: Row[] = [];
  for (const stream of streams) {
    const entries = await bus.tail(stream, filtered ? Math.max(options.limit, FILTER_SCAN_ENTRIES) : options.limit);
    last.set(stream, entries.at(-1)?.id);
    for (const entry of entries) rows.push(toRow(stream, entry));
  }
  const shown = sortRows(bus, rows)
    .filter((r) => matches(bus, r, options))
    .slice(-options.limit);
  if (options.format === 'json') {
    options.write(JSON.stringify(shown.map(toTailEntry)) + '\n');
    return;
  }
  if (shown.length === 0 && options.format === 'text' && !options.follow) options.write(`(no entries in ${options.topic})\n`);
  for (const row of shown) options.write(formatRow(row, options.format) + '\n');
  if (!options.follow) return;

  const pollMs = options.pollMs ?? 200;
  while (!options.signal?.aborted) {
    const fresh: Row[] = [];
    for (const stream of streams) {
      const entries = await bus.readAfter(stream, last.get(stream), FOLLOW_BATCH);
      if (entries.length > 0) last.set(stream, entries.at(-1)!.id);
      for (const entry of entries) fresh.push(toRow(stream, entry));
    }
    for (const row of sortRows(bus, fresh)) if (matches(bus, row, options)) options.write(formatRow(row, options.format) + '\n');
    if (fresh.length === 0) await sleep(pollMs, undefined, { signal: options.signal }).catch(() => undefined);
  }
}

function toRow(stream: string, entry: BusEntry): Row {
  return { stream, entry, value: parseObject(jsonOf(entry)) ?? deadLetterOriginal(entry) };
}

/** An entry's payload as JSON text: a msgpack event shown as its JSON (`base64:<bytes>` when it does not decode). */
function jsonOf(entry: BusEntry): string | undefined {
  if (entry.payload !== undefined || entry.packed === undefined) return entry.payload;
  return packedAsJson(entry.packed) ?? `base64:${Buffer.from(entry.packed).toString('base64')}`;
}

/** A dead letter's original payload as JSON text: msgpack bytes (`encoding: msgpack`) decoded. */
function originalOf(fields: Record<string, unknown> | undefined): string | undefined {
  if (!fields) return undefined;
  if (fields.encoding === 'msgpack') {
    const b64 = fields['original.base64'];
    const bytes = typeof b64 === 'string' ? Buffer.from(b64, 'base64') : typeof fields.original === 'string' ? Buffer.from(fields.original, 'utf8') : undefined;
    return bytes && packedAsJson(bytes);
  }
  return typeof fields.original === 'string' ? fields.original : undefined;
}

function parseObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A dead letter's original event (for `--symbol`), when it was one. */
function deadLetterOriginal(entry: BusEntry): Record<string, unknown> | undefined {
  return parseObject(originalOf(parseObject(entry.foreign)));
}

/** Redis ids are append times across shards; Kafka offsets only order one partition, so shards merge by the events' own time there. */
function sortRows(bus: Bus, rows: Row[]): Row[] {
  // Two shards' entries appended in the same millisecond have ids that cannot tell which came first: the events' time does.
  if (bus.kind === 'redis') return rows.sort((a, b) => bus.compareIds(a.entry.id, b.entry.id) || eventTime(a).localeCompare(eventTime(b)));
  return rows.sort((a, b) => eventTime(a).localeCompare(eventTime(b)));
}

function eventTime(row: Row): string {
  const v = row.value;
  const t = v?.src_ts ?? v?.ts;
  return typeof t === 'string' ? t : '';
}

/** When the entry was appended: the Redis id's milliseconds; on Kafka, the event's own time. */
function entryTimeMs(bus: Bus, row: Row): number {
  if (bus.kind === 'redis') return streamIdMs(row.entry.id);
  const ingest = row.value?.ingest_ts;
  const t = Date.parse(typeof ingest === 'string' ? ingest : eventTime(row));
  return Number.isNaN(t) ? 0 : t;
}

function matches(bus: Bus, row: Row, options: TailOptions): boolean {
  if (options.symbol !== undefined && row.value?.symbol !== options.symbol) return false;
  if (options.sinceMs !== undefined && entryTimeMs(bus, row) < options.sinceMs) return false;
  return true;
}

function toTailEntry(row: Row): TailEntry {
  const { id, foreign } = row.entry;
  const payload = jsonOf(row.entry);
  if (payload !== undefined) return { stream: row.stream, id, payload: parseJson(payload) };
  return foreign !== undefined ? { stream: row.stream, id, fields: JSON.parse(foreign) as Record<string, string> } : { stream: row.stream, id };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function formatRow(row: Row, format: 'text' | 'json' | 'jsonl'): string {
  if (format !== 'text') return JSON.stringify(toTailEntry(row));
  return formatEntry(row.stream, row.entry.id, jsonOf(row.entry), row.entry.foreign);
}

const num = (v: unknown): string => (typeof v === 'number' ? String(Number(v.toFixed(6))) : String(v));

/**
 * One line per entry in aligned columns: time, stream, provider:symbol, kind or name, values.
 * Events, feature snapshots, signals and dead letters are recognised; anything else is shown raw.
 */
export function formatEntry(stream: string, id: string, payload: string | undefined, foreign?: string): string {
  const e = parseObject(payload);
  const cols = (time: unknown, who: string, what: string, rest: string) =>
    `${String(time).padEnd(27)}  ${stream.padEnd(16)} ${who.padEnd(22)} ${what.padEnd(14)} ${rest}`;
  if (e && (e.kind === 'tick' || e.kind === 'bar')) {
    const price = e.kind === 'tick' ? num(e.c) : `o=${num(e.o)} h=${num(e.h)} l=${num(e.l)} c=${num(e.c)}`;
    return cols(
      e.src_ts,
      `${String(e.provider)}:${String(e.symbol)}`,
      String(e.kind),
      `${price.padStart(10)} x ${String(e.v).padStart(5)}  seq=${String(e.seq)}`,
    );
  }
  if (e && typeof e.name === 'string' && 'value' in e) {
    return cols(e.ts, `${String(e.provider)}:${String(e.symbol)}`, e.name, `value=${num(e.value)} score=${num(e.score)}`);
  }
  if (e && typeof e.values === 'object' && e.values !== null && typeof e.symbol === 'string') {
    const values = Object.entries(e.values as Record<string, unknown>)
      .filter(([k]) => ['price', 'vwap', 'returns', 'rsi', 'volatility'].includes(k))
      .map(([k, v]) => `${k}=${v === null ? '-' : num(v)}`)
      .join(' ');
    return cols(e.ts, `${String(e.provider)}:${e.symbol}`, `features ${String(e.interval)}`, values);
  }
  const fields = parseObject(foreign);
  if (fields && typeof fields.reason === 'string') {
    const original = parseObject(originalOf(fields));
    const who = original ? `${String(original.provider)}:${String(original.symbol)}` : '-';
    return cols(
      id.includes('-') ? new Date(streamIdMs(id)).toISOString() : '-',
      who,
      typeof fields.code === 'string' ? fields.code : 'dead letter',
      `${fields.reason} (from ${String(fields.stream)} ${String(fields.id)})`,
    );
  }
  if (payload === undefined) return `${id} ${stream} ${foreign ?? '(no payload)'}`;
  return `${id} ${stream} ${payload}`;
}
