/**
 * In-memory stores behind the pipeline's sink contracts, for unit tests of the activities without
 * PostgreSQL. They keep the contracts' semantics: upserts are idempotent by key and report
 * inserted/updated/unchanged; a job row moves once from `running` to a terminal status.
 */
import type {
  Bar,
  BarSink,
  JobRunSink,
  RejectedBar,
  ShardLease,
  ShardPosition,
  ShardStore,
  SignalEventV1,
  SignalSink,
  UpsertCounts,
} from '../../pipeline/contracts/index.js';
import { BarsRejectedError, OwnerFencedError } from '../../pipeline/contracts/index.js';

function upsertByKey<T>(rows: Map<string, T>, items: readonly T[], key: (item: T) => string): UpsertCounts {
  let inserted = 0,
    updated = 0,
    unchanged = 0;
  for (const item of items) {
    const k = key(item);
    const before = rows.get(k);
    if (before === undefined) inserted++;
    else if (JSON.stringify(before) !== JSON.stringify(item)) updated++;
    else unchanged++;
    rows.set(k, item);
  }
  return { inserted, updated, unchanged };
}

/** Bars and shard positions in one store, like PostgreSQL: a commit writes both or neither. */
export class MemoryBarStore implements BarSink, ShardStore {
  readonly rows = new Map<string, Bar>();
  readonly positions = new Map<string, { owner: string; epoch: number; position: ShardPosition | undefined }>();
  upserts = 0;
  /** When set, the next upserts throw it (a store outage or a rejected statement). */
  failWith: Error | undefined;
  /**
   * When set, bars it returns a code and reason for are refused like PostgreSQL refuses a bar for
   * its own values (e.g. `54000` index row size): `commit` then writes nothing and throws
   * `BarsRejectedError`; `upsertBars` writes the others and throws.
   */
  reject: ((bar: Bar) => { readonly code: string; readonly reason: string } | undefined) | undefined;
  /** Every bar refused so far, in order. */
  readonly rejected: RejectedBar[] = [];

  upsertBars(bars: readonly Bar[]): Promise<UpsertCounts> {
    if (this.failWith) return Promise.reject(this.failWith);
    this.upserts++;
    const refused = this.#refused(bars);
    const counts = upsertByKey(
      this.rows,
      refused.length === 0 ? bars : bars.filter((bar) => !refused.some((r) => r.bar === bar)),
      (b) => `${b.provider}|${b.symbol}|${b.interval}|${b.tsMs}`,
    );
    // Like StoreClient: the others are written, and the call fails naming the refused ones.
    if (refused.length > 0) return Promise.reject(new Error(`the store rejected ${refused.length} of ${bars.length} bars: ${refused[0].reason}`));
    return Promise.resolve(counts);
  }

  /** The bars {@link reject} refuses, recorded in {@link rejected}. */
  #refused(bars: readonly Bar[]): RejectedBar[] {
    const refused: RejectedBar[] = [];
    for (const bar of bars) {
      const refusal = this.reject?.(bar);
      if (refusal) refused.push({ bar, ...refusal });
    }
    this.rejected.push(...refused);
    return refused;
  }

  acquire(lease: ShardLease): Promise<ShardPosition | undefined> {
    const key = `${lease.stream}|${lease.group}`;
    const held = this.positions.get(key);
    if (held && held.epoch > lease.epoch) return Promise.reject(new OwnerFencedError(lease, held));
    this.positions.set(key, { owner: lease.owner, epoch: lease.epoch, position: held?.position });
    return Promise.resolve(held?.position);
  }

  async commit(lease: ShardLease, bars: readonly Bar[], position: ShardPosition): Promise<UpsertCounts> {
    const held = this.positions.get(`${lease.stream}|${lease.group}`);
    if (!held || held.epoch !== lease.epoch) throw new OwnerFencedError(lease, held ?? { owner: '(nobody)', epoch: 0 });
    if (this.failWith) throw this.failWith;
    // Like PostgreSQL's transaction: a refused bar means nothing of the commit is written.
    const refused = this.#refused(bars);
    if (refused.length > 0) throw new BarsRejectedError(refused, bars.length);
    const written = await this.upsertBars(bars);
    held.position = position;
    return written;
  }

  listBars(query: { interval: string; fromMs: number }): Promise<Bar[]> {
    return Promise.resolve(this.sorted().filter((b) => b.interval === query.interval && b.tsMs >= query.fromMs));
  }

  /** Every stored bar ordered by provider, symbol, ts. */
  sorted(): Bar[] {
    return [...this.rows.values()].sort(
      (a, b) => (a.provider < b.provider ? -1 : a.provider > b.provider ? 1 : 0) || (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0) || a.tsMs - b.tsMs,
    );
  }
}

export class MemorySignalStore implements SignalSink {
  readonly rows = new Map<string, SignalEventV1>();

  upsertSignals(signals: readonly SignalEventV1[]): Promise<UpsertCounts> {
    return Promise.resolve(upsertByKey(this.rows, signals, (s) => `${s.provider}|${s.symbol}|${s.name}|${s.ts}`));
  }
}

export interface MemoryJobRow {
  readonly id: number;
  readonly jobName: string;
  readonly kind: string;
  status: 'running' | 'success' | 'failure' | 'abandoned';
  counts: Record<string, number>;
  error?: string;
}

export class MemoryJobRuns implements JobRunSink {
  readonly rows: MemoryJobRow[] = [];
  /** When set, `start` throws it (PostgreSQL down when a run starts). */
  failStartWith: Error | undefined;

  start(input: { jobName: string; kind: string }): Promise<number> {
    if (this.failStartWith) return Promise.reject(this.failStartWith);
    const id = this.rows.length + 1;
    this.rows.push({ id, jobName: input.jobName, kind: input.kind, status: 'running', counts: {} });
    return Promise.resolve(id);
  }

  heartbeat(id: number, counts: Record<string, number>): Promise<void> {
    const row = this.rows[id - 1];
    if (row?.status === 'running') row.counts = { ...counts };
    return Promise.resolve();
  }

  finish(id: number, status: 'success' | 'failure', counts: Record<string, number>, error?: string): Promise<void> {
    const row = this.rows[id - 1];
    if (row?.status === 'running') Object.assign(row, { status, counts: { ...counts }, ...(error === undefined ? {} : { error }) });
    return Promise.resolve();
  }

  markAbandoned(jobName: string): Promise<number> {
    const running = this.rows.filter((r) => r.jobName === jobName && r.status === 'running');
    for (const row of running) row.status = 'abandoned';
    return Promise.resolve(running.length);
  }
}
