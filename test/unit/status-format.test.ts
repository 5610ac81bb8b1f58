import assert from 'node:assert/strict';
import type { PipelineProgress } from '../../client/progress.js';
import { formatProgress } from '../../client/progress.js';
import type { ConsumerView, FleetStatus } from '../../client/status-command.js';
import { feedText, formatFleetStatus, isWorkerShutdown, pipelineStop, providerLines, providerViews, stoppedText } from '../../client/status-command.js';
import { formatAge } from '../../pipeline/contracts/index.js';
import type { IbkrFeedView } from '../../activities/types.js';

const AT = Date.UTC(2025, 9, 24, 14, 2, 1, 234);
const PROGRESS: PipelineProgress = { atMs: AT, eventsIn: 1200, bars: 40, maxLagMs: 1500, pending: 3, late: 0, dlq: 0, signals: 2, shards: [] };

describe('status and progress lines', () => {
  it('start the progress line with the UTC clock time to the second', () => {
    assert.equal(formatProgress(PROGRESS), '14:02:01 | events in 1,200 | bars written 40 | lag 1.5s | pending 3 | signals 2 | late 0 | dlq 0');
  });

  it('show watermark, frontier and recovery runs as UTC clock times to the millisecond', () => {
    const consumer: ConsumerView = {
      role: 'microbatch',
      shard: 0,
      workflowId: 'mdp-microbatch-0',
      stream: 'mdp:events:0',
      status: 'RUNNING',
      attempt: 1,
      activityState: 'STARTED',
      lastHeartbeatMs: AT - 500,
      lastFailure: null,
      workerShutdown: false,
      closedMs: null,
      watermarkMs: AT - 2000,
      frontierMs: Date.UTC(2025, 9, 24, 9, 5, 7, 8),
      openWindows: 1,
      lastId: null,
      lagMs: 0,
      pending: 0,
      backlog: 12_345,
      retention: 1_000_000,
      adapter: null,
      modelVersion: null,
      published: null,
      feed: null,
      version: '0.4.0-3f2a1c9e0b',
    };
    const status: FleetStatus = {
      atMs: AT,
      temporalError: null,
      consumers: [consumer],
      replays: [],
      progress: PROGRESS,
      recovery: { scheduleId: 'mdp-recovery', intervalMs: 300_000, paused: false, nextRunMs: AT + 300_000, lastRunMs: null, runs: 0 },
      providers: [],
      stopped: null,
    };
    const text = formatFleetStatus(status);
    assert.match(text, /^microbatch\s+0\s+mdp-microbatch-0\s+RUNNING\s+0\.5s ago\s+14:01:59\.234\s+09:05:07\.008\s/m);
    assert.match(text, /^role .* pending +backlog \(of retention\) +model/m);
    assert.match(
      text,
      /^microbatch .* 0\.0s +0 +12345 \(1\.2%\) +- +0\.4\.0-3f2a1c9e0b$/m,
      "the group's backlog and its share of retention, and the version its run is on",
    );
    assert.match(text, /^recovery: schedule mdp-recovery every 5m, 0 runs, last -, next 14:07:01\.234$/m);
    const paused = formatFleetStatus({ ...status, recovery: { ...status.recovery!, paused: true, note: 'paused by mdp down', nextRunMs: null } });
    assert.match(
      paused,
      /^recovery: schedule mdp-recovery every 5m \(paused: paused by mdp down\), 0 runs, last -, next -$/m,
      'a paused schedule says who paused it',
    );
  });

  it('show an IBKR feed: live with its gaps, or the gap open now, and the refused contracts', () => {
    const feed: IbkrFeedView = {
      status: 'live',
      openGap: null,
      gaps: 2,
      gapSeconds: 4.25,
      lastGap: { fromMs: AT - 10_000, toMs: AT - 6_800, seconds: 3.2, reason: 'disconnected' },
      contracts: 3,
      refused: [{ contract: 'QQQ (STK SMART USD)', reason: 'beyond producers.ibkr.market_data_lines' }],
      dropped: 0,
    };
    assert.equal(
      feedText(feed, AT),
      'feed live (3 contracts); 2 gaps (4.25s in all), last 3.2s (disconnected) 14:01:51.234–14:01:54.434; refused: QQQ (STK SMART USD) (beyond producers.ibkr.market_data_lines)',
    );
    assert.equal(
      feedText({ ...feed, status: 'gap', openGap: { sinceMs: AT - 12_300, reason: 'connectivity_lost' }, refused: [], dropped: 17 }, AT),
      'feed GAP for 12.3s (connectivity_lost, since 14:01:48.934); 2 gaps (4.25s in all), last 3.2s (disconnected) 14:01:51.234–14:01:54.434; 17 events dropped (bus backpressure)',
    );
  });

  describe('a stopped pipeline, every provider', () => {
    const base: ConsumerView = {
      role: 'microbatch',
      shard: 0,
      workflowId: 'mdp-microbatch-0',
      stream: 'mdp:events:0',
      status: 'RUNNING',
      attempt: 3,
      activityState: 'SCHEDULED',
      lastHeartbeatMs: AT - 12 * 60_000,
      lastFailure: null,
      workerShutdown: true,
      closedMs: null,
      watermarkMs: null,
      frontierMs: null,
      openWindows: null,
      lastId: null,
      lagMs: 0,
      pending: 0,
      backlog: 0,
      retention: 1000,
      adapter: null,
      modelVersion: null,
      published: null,
      feed: null,
      version: null,
    };
    const providers = providerViews(
      [
        { provider: 'history', bars: 8296, lastBarMs: Date.UTC(2025, 9, 1, 20, 0), lastWrittenMs: AT - 3_600_000 },
        { provider: 'file', bars: 12, lastBarMs: AT - 13 * 60_000, lastWrittenMs: AT - 13 * 60_000 },
        { provider: 'synthetic', bars: 1_234_567, lastBarMs: AT - 12 * 60_000 - 4000, lastWrittenMs: AT - 12 * 60_000 - 1000 },
      ],
      new Set(['history']),
    );

    const FEEDS = new Set(['synthetic']);

    it('tells a worker shutdown from a failure', () => {
      assert.equal(isWorkerShutdown('Worker is shutting down'), true);
      assert.equal(isWorkerShutdown('WORKER_SHUTDOWN'), true);
      assert.equal(isWorkerShutdown('connect ECONNREFUSED 127.0.0.1:6379'), false);
    });

    it('lists live providers first, most bars first, then replays', () => {
      assert.deepEqual(
        providers.map((p) => [p.provider, p.lane]),
        [
          ['synthetic', 'live'],
          ['file', 'live'],
          ['history', 'replay'],
        ],
      );
      assert.deepEqual(providerLines(providers), [
        'bars: synthetic 1,234,567 (newest 2025-10-24T13:49:57Z), file 12 (newest 2025-10-24T13:49:01Z)',
        'replay bars: history 8,296 (newest 2025-10-01T20:00:00Z)',
      ]);
      assert.deepEqual(providerLines([]), ['bars: none from live providers']);
    });

    it('names the time since the pipeline stopped and the gap of the feed not in bars', () => {
      const stop = pipelineStop([base], providers, AT, 2000, FEEDS);
      assert.deepEqual(stop, { reason: 'no worker', sinceMs: AT - 12 * 60_000, barsEndMs: AT - 12 * 60_000 - 2000 });
      assert.equal(
        stoppedText(stop, AT),
        "pipeline stopped 12m ago (no worker since 13:50:01; mdp up resumes it); the feed's gap 13:49:59 → 14:02:01 (12m) is not in bars",
      );
      const text = formatFleetStatus({
        atMs: AT,
        temporalError: null,
        consumers: [base],
        replays: [],
        recovery: null,
        progress: PROGRESS,
        providers,
        stopped: stop,
      });
      assert.match(text, /^microbatch\s+0\s+mdp-microbatch-0\s+RUNNING \(no worker since 13:50:01\)\s+12m ago\s/m, 'an old heartbeat as an age');
      assert.doesNotMatch(text, /last attempt failed/);

      const drained = { ...base, status: 'COMPLETED', activityState: null, lastHeartbeatMs: null, workerShutdown: false, closedMs: AT - 90_000 };
      const drainedStop = pipelineStop([drained], providers, AT, 2000, FEEDS);
      assert.equal(drainedStop?.reason, 'drained');
      assert.match(
        stoppedText(drainedStop, AT),
        /^pipeline stopped 1m30s ago \(drained at 14:00:31; mdp up resumes it\); the feed's gap 13:49:59 → 14:02:01 \(12m\)/,
      );
      const drainedText = formatFleetStatus({
        atMs: AT,
        temporalError: null,
        consumers: [drained],
        replays: [],
        recovery: null,
        progress: PROGRESS,
        providers,
        stopped: drainedStop,
      });
      assert.match(drainedText, /^microbatch\s+0\s+mdp-microbatch-0\s+drained at 14:00:31\s/m);
      const terminated = { ...drained, status: 'TERMINATED' };
      assert.equal(pipelineStop([drained, terminated], providers, AT, 2000, FEEDS)?.reason, 'ended');
      assert.match(
        formatFleetStatus({
          atMs: AT,
          temporalError: null,
          consumers: [terminated],
          replays: [],
          recovery: null,
          progress: PROGRESS,
          providers,
          stopped: null,
        }),
        /^microbatch\s+0\s+mdp-microbatch-0\s+terminated at 14:00:31\s/m,
      );
      // A gap over midnight carries the date.
      assert.match(
        stoppedText({ reason: 'drained', sinceMs: AT - 86_400_000, barsEndMs: AT - 86_400_000 }, AT),
        /drained at 2025-10-23 14:02:01.*gap 2025-10-23 14:02:01 → 14:02:01 \(1d\)/,
      );
    });

    it('has no gap while a consumer consumes, nor before one ever ran', () => {
      const consuming = { ...base, activityState: 'STARTED', workerShutdown: false, lastHeartbeatMs: AT - 2000 };
      assert.equal(pipelineStop([consuming], providers, AT, 2000, FEEDS), null);
      assert.equal(pipelineStop([{ ...base, status: 'NOT_FOUND', lastHeartbeatMs: null, activityState: null }], [], AT, 2000, FEEDS), null);
      const frozen = { ...consuming, lastHeartbeatMs: AT - 5 * 60_000 };
      assert.equal(pipelineStop([frozen], providers, AT, 2000, FEEDS)?.reason, 'no worker', 'a heartbeat minutes old: its worker is gone');
    });

    it('writes ages as kubectl does', () => {
      assert.deepEqual([0, 999, 45_000, 90_000, 12 * 60_000 + 5000, 3_600_000, 3_900_000, 86_400_000 * 2 + 3_600_000 * 4].map(formatAge), [
        '0s',
        '0s',
        '45s',
        '1m30s',
        '12m',
        '1h',
        '1h5m',
        '2d4h',
      ]);
    });
  });
});
