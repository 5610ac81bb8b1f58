import type { Logger, Metrics } from '../telemetry/index.js';
import type { StreamBacklog } from './bus.js';

/** Producers wait while a stream's backlog is at or above this share of the retention bound. */
export const BACKLOG_WAIT_RATIO = 0.9;
/** A backlog-near-retention episode ends below this share; the next crossing warns again. */
export const BACKLOG_CLEAR_RATIO = 0.8;

/** The share of retention the backlog's age uses (0 on a bus that does not delete by age). */
export function backlogAgeShare(backlog: StreamBacklog): number {
  return backlog.ageMs === undefined || !backlog.retentionMs ? 0 : backlog.ageMs / backlog.retentionMs;
}

/**
 * Watches backlogs against the retention bound, for producers and consumers alike: sets
 * `stream_backlog_ratio{topic}` (the slowest group's share) and, once per episode of a backlog at
 * or above {@link BACKLOG_WAIT_RATIO}, logs a warning and counts
 * `errors_total{component, reason="backlog_near_retention"}`. The episode ends (with an info line)
 * when the backlog falls below {@link BACKLOG_CLEAR_RATIO}, so a backlog hovering at the bound does
 * not warn on every poll.
 */
export class BacklogWatch {
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #component: string;
  /** Streams in an episode, with when it began. */
  readonly #near = new Map<string, number>();
  readonly #topics = new Set<string>();

  constructor(metrics: Metrics, log: Logger, component: string) {
    this.#metrics = metrics;
    this.#log = log;
    this.#component = component;
    // The series exists from the start, so the first episode shows as an increase.
    metrics.errors.inc({ component, reason: 'backlog_near_retention' }, 0);
  }

  /**
   * Records a stream's backlog; the episode follows `group`'s own backlog when given (a consumer
   * watches its group), else the slowest group's. Returns the share of retention it followed.
   */
  observe(stream: string, backlog: StreamBacklog, group?: string): number {
    const age = backlogAgeShare(backlog);
    this.#metrics.backlogRatio.set({ topic: stream }, Math.max(backlog.entries / backlog.retention, age));
    this.#topics.add(stream);
    const entries = group === undefined ? backlog.entries : (backlog.groups.get(group) ?? backlog.entries);
    const ratio = Math.max(entries / backlog.retention, age);
    const since = this.#near.get(stream);
    if (since === undefined && ratio >= BACKLOG_WAIT_RATIO) {
      this.#near.set(stream, Date.now());
      this.#metrics.errors.inc({ component: this.#component, reason: 'backlog_near_retention' });
      const slowest = [...backlog.groups].reduce<[string, number] | undefined>((a, b) => (a && a[1] >= b[1] ? a : b), undefined)?.[0];
      this.#log.warn('stream backlog near retention: producers wait until consumers catch up', {
        stream,
        ...(group === undefined ? { slowestGroup: slowest ?? null } : { group }),
        backlog: entries,
        retention: backlog.retention,
        ...(backlog.ageMs === undefined ? {} : { oldestAgeMs: backlog.ageMs, retentionMs: backlog.retentionMs }),
        percent: Math.round(ratio * 1000) / 10,
      });
    } else if (since !== undefined && ratio < BACKLOG_CLEAR_RATIO) {
      this.#near.delete(stream);
      this.#log.info('stream backlog back under retention', {
        stream,
        ...(group === undefined ? {} : { group }),
        backlog: entries,
        episodeMs: Date.now() - since,
      });
    }
    return ratio;
  }

  /** Removes the gauges this watch set (a stopped component no longer vouches for them). */
  close(): void {
    for (const topic of this.#topics) this.#metrics.backlogRatio.remove({ topic });
    this.#topics.clear();
  }
}
