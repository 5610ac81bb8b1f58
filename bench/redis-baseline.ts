/**
 * The ceiling to compare against: how many pipelined XADDs per second this Redis takes from
 * `redis-benchmark` (C, 50 connections, 64 commands per pipeline) with a payload the size of one
 * of our events. No event pipeline built on this Redis can publish faster than that.
 */
import { spawn } from 'node:child_process';
import type { Bus } from '../pipeline/bus/index.js';
import { progress } from './bench-progress.js';
import { fmtInt } from './bench-report.js';
import type { RunPlan } from './run-plan.js';
import { sampleEventPayload } from './run-plan.js';

export interface RedisBaselineOptions {
  readonly host: string;
  readonly port: number;
  /** Stream written by the benchmark; deleted afterwards by the caller. */
  readonly stream: string;
  /** Field value of every entry (an encoded event, ~260–300 bytes). */
  readonly payload: string;
  readonly requests?: number;
  readonly pipeline?: number;
  readonly timeoutMs?: number;
}

export interface RedisBaseline {
  readonly xaddPerSecond: number;
  readonly requests: number;
  readonly pipeline: number;
  readonly payloadBytes: number;
  /** The command line, for the report. */
  readonly command: string;
}

/** Runs `redis-benchmark -q -n N -P P XADD <stream> MAXLEN ~ 100000 * d <payload>` and parses its rate. */
export function runRedisBaseline(options: RedisBaselineOptions): Promise<RedisBaseline> {
  const requests = options.requests ?? 200_000;
  const pipeline = options.pipeline ?? 64;
  const args = [
    '-h',
    options.host,
    '-p',
    String(options.port),
    '-q',
    '-n',
    String(requests),
    '-P',
    String(pipeline),
    'XADD',
    options.stream,
    'MAXLEN',
    '~',
    '100000',
    '*',
    'd',
    options.payload,
  ];
  const command = `redis-benchmark ${args
    .slice(0, -1)
    .map((a) => (a === '*' || a === '~' ? `'${a}'` : a))
    .join(' ')} '<${Buffer.byteLength(options.payload)}-byte event JSON>'`;
  return new Promise((resolve, reject) => {
    // No shell: the JSON payload goes through as one argument, untouched.
    const child = spawn('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run redis-benchmark (install redis-tools): ${e.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      // -q prints progress lines separated by \r, then "<command>: 217739.12 requests per second, p50=...".
      const rates = [...out.matchAll(/([\d.]+) requests per second/g)];
      const last = rates[rates.length - 1];
      if (code !== 0 || !last) {
        reject(new Error(`redis-benchmark failed (exit ${String(code)}): ${(err || out).trim().slice(-300)}`));
        return;
      }
      resolve({ xaddPerSecond: Number(last[1]), requests, pipeline, payloadBytes: Buffer.byteLength(options.payload), command });
    });
  });
}

/**
 * The run's ceiling: redis-benchmark's pipelined XADD with one of the run's events as the payload,
 * on the run's Redis; its stream is deleted right after. Skipped with `--skip-baseline`, and when
 * the URI carries credentials (they would show on redis-benchmark's command line).
 */
export async function measureRedisCeiling(enabled: boolean, plan: RunPlan, bus: Bus): Promise<RedisBaseline | { skipped: string }> {
  const redisUrl = new URL(plan.config.bus.redis.uri);
  if (!enabled) return { skipped: '--skip-baseline' };
  if (redisUrl.password !== '' || redisUrl.username !== '') return { skipped: 'the Redis URI carries credentials' };
  progress('redis-benchmark: pipelined XADD baseline...');
  const baseline = await runRedisBaseline({
    host: redisUrl.hostname,
    port: Number(redisUrl.port || 6379),
    stream: plan.baselineStream,
    payload: sampleEventPayload(plan),
  });
  await bus.dropStream(plan.baselineStream);
  progress(`redis-benchmark: ${fmtInt(baseline.xaddPerSecond)} XADD/s`);
  return baseline;
}
