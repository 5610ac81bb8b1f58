import assert from 'node:assert/strict';
import { formatRunSummary, redrawPanel, renderLivePanel } from '../../client/live-panel.js';
import type { LivePanelState } from '../../client/live-panel.js';
import type { PipelineProgress } from '../../client/progress.js';
import { formatProgress } from '../../client/progress.js';

const AT = Date.UTC(2025, 9, 24, 14, 2, 1, 234);
const BEFORE: PipelineProgress = {
  atMs: AT - 1000,
  eventsIn: 12_000,
  bars: 3_990,
  maxLagMs: 1600,
  pending: 5,
  late: 0,
  dlq: 0,
  signals: 10,
  shards: [
    { shard: 0, eventsIn: 6_000, lagMs: 1600, pending: 3 },
    { shard: 1, eventsIn: 6_000, lagMs: 900, pending: 2 },
  ],
};
const NOW: PipelineProgress = {
  atMs: AT,
  eventsIn: 12_006,
  bars: 3_993,
  maxLagMs: 1700,
  pending: 4,
  late: 1,
  dlq: 0,
  signals: 12,
  shards: [
    { shard: 0, eventsIn: 6_004, lagMs: 1700, pending: 3 },
    { shard: 1, eventsIn: 6_002, lagMs: 1200, pending: 1 },
  ],
};
const STATE: LivePanelState = {
  header: [
    'mdp live pipeline: SPY, AAPL at 1 ticks/s each, 2000 ms windows, 2 shards on Redis',
    '  Temporal UI  http://127.0.0.1:8233/namespaces/default/workflows',
  ],
  progress: NOW,
  previous: BEFORE,
  startedMs: AT - 12 * 60_000,
  signals: [
    { ts: '2025-10-24T14:01:50Z', provider: 'synthetic', symbol: 'SPY', name: 'momentum_up', score: 0.8123 },
    { ts: '2025-10-24T14:01:58Z', provider: 'synthetic', symbol: 'AAPL', name: 'rsi_oversold', score: 1 },
  ],
  warnings: ['1 late events since start (mdp stream tail --topic mdp.events.late)'],
};

describe('mdp up: the live panel on a terminal, the plain line elsewhere', () => {
  it('renders a given state as an exact frame at a fixed width', () => {
    assert.deepEqual(renderLivePanel(STATE, { columns: 80, rows: 40 }), [
      'mdp live pipeline: SPY, AAPL at 1 ticks/s each, 2000 ms windows, 2 shards on Re…',
      '  Temporal UI  http://127.0.0.1:8233/namespaces/default/workflows',
      '─'.repeat(80),
      '14:02:01  up 12m | events in 12,006 (6/s) | bars written 3,993 (3/s)',
      'signals 12 | late 1 | dlq 0 | pending 4',
      'shard  events in  rate  lag   pending',
      '0      6,004      4/s   1.7s  3',
      '1      6,002      2/s   1.2s  1',
      'last signals',
      '  14:01:58  AAPL  rsi_oversold  score 1.00  synthetic',
      '  14:01:50  SPY   momentum_up   score 0.81  synthetic',
      'warnings',
      '  1 late events since start (mdp stream tail --topic mdp.events.late)',
      'Ctrl-C stops the worker and pauses the recovery schedule; mdp up again resumes.',
    ]);
  });

  it('keeps the header and totals on a short terminal; the signals give way', () => {
    const frame = renderLivePanel(STATE, { columns: 120, rows: 12 });
    assert.equal(frame.length, 11, 'one line less than the terminal: the cursor stays on screen');
    assert.equal(frame[0], STATE.header[0]);
    assert.equal(frame[3], '14:02:01  up 12m | events in 12,006 (6/s) | bars written 3,993 (3/s)');
    assert.deepEqual(frame.slice(8, 10), ['last signals', '  14:01:58  AAPL  rsi_oversold  score 1.00  synthetic']);
  });

  it('says when no signal fired yet, and has no rates on the first frame', () => {
    const { previous: _previous, ...first } = STATE;
    const frame = renderLivePanel({ ...first, signals: [], warnings: [] }, { columns: 200, rows: 40 });
    assert.ok(frame.includes('  (none yet)'));
    assert.ok(frame.includes('0      6,004      -     1.7s  3'), frame.join('\n'));
    assert.ok(!frame.includes('warnings'));
  });

  it('redraws in place: cursor up over the last frame, each line cleared to its end, the rest cleared', () => {
    assert.equal(redrawPanel(['a', 'b'], 0), '\ra\x1b[K\nb\x1b[K\n\x1b[J');
    assert.equal(redrawPanel(['a'], 3), '\x1b[3A\ra\x1b[K\n\x1b[J');
  });

  it('prints one plain line per interval when not on a terminal, with rates over the interval', () => {
    const tenBefore = { ...BEFORE, atMs: AT - 10_000, eventsIn: 11_946, bars: 3_963 };
    assert.equal(
      formatProgress(NOW, tenBefore),
      '14:02:01 | events in 12,006 (6/s) | bars written 3,993 (3/s) | lag 1.7s | pending 4 | signals 12 | late 1 | dlq 0',
    );
  });

  it('sums up a run when it stops', () => {
    assert.equal(formatRunSummary(BEFORE, NOW, AT - 90_000), 'ran 1m30s | events in 6 | bars written 3 | signals 2 | late 1 | dlq 0');
  });
});
