import type { Logger, Metrics } from '../telemetry/index.js';
import type { Bus } from './bus.js';
import { BacklogWatch } from './backlog-watch.js';

export interface RetentionKeeperOptions {
  readonly bus: Bus;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly stream: string;
  readonly group: string;
  /** `component` label of what it counts in `errors_total` (the consumer's role). */
  readonly component: string;
  /** How often it looks for entries lost unread and at the backlog. */
  readonly checkEveryMs?: number;
  /**
   * How often it trims what every group has acknowledged. Every second by default: a trim with
   * nothing to remove costs ~0.05 ms, and an exact trim ~0.1 µs per entry removed, so trimming
   * often keeps each trim (and memory) small even while a consumer drains a large backlog.
   */
  readonly trimEveryMs?: number;
}

/**
 * Retention seen from a consumer group's owner, run from its consume loop ({@link RetentionKeeper.tick}):
 * - on its first tick and every `trimEveryMs` (1 s) after, removes what every group acknowledged (`Bus.trimAcknowledged`,
 *   counted in `stream_trimmed_entries_total{topic}`): the stream holds only what some group
 *   still needs, so retention never drops unread data;
 * - every `checkEveryMs` (1 s), counts entries removed before the group read them anyway (an
 *   operator's XTRIM, an old worker trimming by MAXLEN, an XDEL) into
 *   `errors_total{component, reason="trimmed_unread"}` with an error line, a deleted stream or group
 *   into `reason="stream_deleted"`, and watches the group's backlog against retention
 *   ({@link BacklogWatch}).
 */
export class RetentionKeeper {
  readonly #o: Required<RetentionKeeperOptions>;
  readonly #watch: BacklogWatch;
  #nextCheckMs = 0;
  /** The first tick trims: what earlier runs acknowledged goes at once. */
  #nextTrimMs = 0;

  constructor(options: RetentionKeeperOptions) {
    this.#o = { checkEveryMs: 1000, trimEveryMs: 1000, ...options };
    this.#watch = new BacklogWatch(options.metrics, options.log, options.component);
    // The series exist from the start, so a first loss shows as an increase.
    for (const reason of ['trimmed_unread', 'stream_deleted']) options.metrics.errors.inc({ component: options.component, reason }, 0);
    options.metrics.trimmedEntries.inc({ topic: options.stream }, 0);
  }

  /** Counts what the group lost unread since the last report, and watches its backlog. */
  async check(): Promise<void> {
    const { bus, metrics, log, stream, group, component } = this.#o;
    this.#nextCheckMs = Date.now() + this.#o.checkEveryMs;
    const loss = await bus.takeUnreadLoss(stream, group);
    if (loss.deleted) {
      metrics.errors.inc({ component, reason: 'stream_deleted' });
      log.error('stream or consumer group deleted: the entries the group had not acknowledged are lost, how many is not known', {
        stream,
        group,
        lastSeenUndelivered: loss.deleted.undelivered,
        lastSeenPending: loss.deleted.pending,
      });
    }
    if (loss.removed > 0) {
      metrics.errors.inc({ component, reason: 'trimmed_unread' }, loss.removed);
      log.error('entries removed from the stream before the group read them (trimmed or deleted behind its back): they are lost', {
        stream,
        group,
        entries: loss.removed,
      });
    }
    this.#watch.observe(stream, await bus.backlog(stream), group);
  }

  /** Removes what every group acknowledged; returns how many entries went. */
  async trim(): Promise<number> {
    const removed = await this.#o.bus.trimAcknowledged(this.#o.stream);
    if (removed > 0) this.#o.metrics.trimmedEntries.inc({ topic: this.#o.stream }, removed);
    return removed;
  }

  /** Does what is due at `nowMs`: a check every `checkEveryMs`, a trim every `trimEveryMs`. */
  async tick(nowMs: number): Promise<void> {
    if (nowMs >= this.#nextCheckMs) await this.check();
    if (nowMs >= this.#nextTrimMs) {
      this.#nextTrimMs = nowMs + this.#o.trimEveryMs;
      await this.trim();
    }
  }

  close(): void {
    this.#watch.close();
  }
}
