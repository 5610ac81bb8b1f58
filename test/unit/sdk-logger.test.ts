import assert from 'node:assert/strict';
import { LogTimestamp } from '@temporalio/worker';
import { createLogger } from '../../pipeline/telemetry/index.js';
import type { LogLevel } from '../../pipeline/telemetry/index.js';
import { sdkLoggerOf, sdkRuntimeOptions } from '../../workers/sdk-logger.js';

describe('Temporal SDK logs through the project logger (workers/sdk-logger.ts)', function () {
  const capture = (level: LogLevel) => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger(level, (line) => lines.push(JSON.parse(line) as Record<string, unknown>), { component: 'worker' });
    return { lines, sdk: sdkLoggerOf(log) };
  };

  it('forwards every level the config asks for, with the SDK component as ours', function () {
    const { lines, sdk } = capture('DEBUG');
    sdk.trace('t', { sdkComponent: 'worker' });
    sdk.debug('Activity completed', { sdkComponent: 'worker', activityType: 'validateModel' });
    sdk.info('Workflow bundle created', { sdkComponent: 'worker', size: '1.9MB' });
    sdk.warn('Activity failed', { sdkComponent: 'worker' });
    sdk.error('Worker failed', { sdkComponent: 'worker' });
    sdk.log('INFO', 'Initializing worker', { sdkComponent: 'core', target: 'temporalio_sdk_core::worker', spanContexts: ['x'], [LogTimestamp]: 1n });
    sdk.info('from an activity', { sdkComponent: 'activity' });
    assert.deepEqual(
      lines.map((l) => [l.level, l.component, l.msg]),
      [
        ['debug', 'temporal.sdk', 't'],
        ['debug', 'temporal.sdk', 'Activity completed'],
        ['info', 'temporal.sdk', 'Workflow bundle created'],
        ['warning', 'temporal.sdk', 'Activity failed'],
        ['error', 'temporal.sdk', 'Worker failed'],
        // "Initializing worker" says what our "worker running" says: debug.
        ['debug', 'temporal.core', 'Initializing worker'],
        ['info', 'activity', 'from an activity'],
      ],
    );
    assert.equal(lines[1].activityType, 'validateModel');
    assert.equal(lines[5].target, 'temporalio_sdk_core::worker');
    assert.ok(!('spanContexts' in lines[5]) && !('sdkComponent' in lines[5]));
  });

  it('drops below the configured level; a worker stop is not a block of state changes', function () {
    const { lines, sdk } = capture('INFO');
    sdk.debug('Activity completed', { sdkComponent: 'worker' });
    for (const state of ['STOPPING', 'DRAINING', 'DRAINED', 'STOPPED']) sdk.info('Worker state changed', { sdkComponent: 'worker', state });
    sdk.info('asset workflow-bundle-1.js 1.89 MiB\nwebpack 5.112.2 compiled successfully', { sdkComponent: 'worker' });
    sdk.info('Workflow bundle created', { sdkComponent: 'worker' });
    assert.deepEqual(
      lines.map((l) => l.msg),
      ['Workflow bundle created'],
    );
  });

  it('asks the core to forward its logs at the configured level', function () {
    const options = sdkRuntimeOptions(
      createLogger('WARNING', () => undefined),
      'WARNING',
    );
    assert.deepEqual(options.telemetryOptions?.logging, { filter: { core: 'WARN', other: 'WARN' }, forward: {} });
    assert.deepEqual(
      sdkRuntimeOptions(
        createLogger('DEBUG', () => undefined),
        'DEBUG',
      ).telemetryOptions?.logging,
      {
        filter: { core: 'DEBUG', other: 'DEBUG' },
        forward: {},
      },
    );
  });
});
