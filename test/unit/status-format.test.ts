import assert from 'node:assert/strict';
import type { PipelineProgress } from '../../client/progress.js';
import { formatProgress } from '../../client/progress.js';
import type { ConsumerView, FleetStatus } from '../../client/status-command.js';
import { feedText, formatFleetStatus } from '../../client/status-command.js';
import type { IbkrFeedView } from '../../activities/types.js';

const AT = Date.UTC(2025, 9, 24, 14, 2, 1, 234);
const PROGRESS: PipelineProgress = { atMs: AT, eventsIn: 1200, bars: 40, maxLagMs: 1500, pending: 3, late: 0, dlq: 0, signals: 2 };

describe('status and progress lines', () => {
  it('start the progress line with the UTC clock time to the second', () => {
    assert.equal(formatProgress(PROGRESS), '14:02:01 | events in 1200 | bars written 40 | lag 1.5s | pending 3 | signals 2 | late 0 | dlq 0');
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
});
