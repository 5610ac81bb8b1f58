/**
 * The ceiling to compare against on Kafka: how many records per second the broker takes from its
 * own `kafka-producer-perf-test` (`org.apache.kafka.tools.ProducerPerformance`, the Java client,
 * unthrottled) with mdp's producer guarantees — acks=all, idempotence on — and one of our events
 * as every record's value. No event pipeline built on this broker can publish faster than that.
 */
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Admin, findErrorBy } from '@platformatic/kafka';
import { progress } from './bench-progress.js';
import { fmtInt } from './bench-report.js';
import { REPO_ROOT } from './repo-paths.js';
import type { RunPlan } from './run-plan.js';
import { sampleEventPayload } from './run-plan.js';

/** Records per ceiling run: a few seconds at the rates a 2-CPU dev box reaches (~60k–150k/s). */
const CEILING_RECORDS = 500_000;
/**
 * The Java producer's batch size, bytes: about one batch of the bench's publisher (1,000 events of
 * ~260 bytes per produce request), as redis-benchmark pipelines 64 commands. With the default
 * 16 KiB the tool measured half the rate on this box (its five in-flight requests carry ~60 records
 * each), below what mdp's own publisher reached: no ceiling.
 */
export const CEILING_BATCH_BYTES = 262_144;

export interface KafkaBaselineOptions {
  /** `host:port` of the broker(s), passed as the producer's `bootstrap.servers`. */
  readonly brokers: readonly string[];
  /** An existing topic; deleted afterwards by the caller. */
  readonly topic: string;
  /** A file holding one payload (an encoded event, no newline inside): every record's value. */
  readonly payloadFile: string;
  readonly payloadBytes: number;
  readonly records?: number;
  readonly timeoutMs?: number;
}

export interface KafkaBaseline {
  readonly recordsPerSecond: number;
  readonly records: number;
  readonly payloadBytes: number;
  /** The producer's `batch.size`. */
  readonly batchBytes: number;
  /** ProducerPerformance's send → acknowledgement latency over all records, ms. */
  readonly latencyMs: { readonly avg: number; readonly p50: number; readonly p95: number; readonly p99: number; readonly max: number };
  /** The command line, for the report. */
  readonly command: string;
}

/**
 * The summary line ProducerPerformance prints last, e.g. "500000 records sent, 74386.3 records/sec
 * (19.30 MB/sec), 920.95 ms avg latency, 1505.00 ms max latency, 909 ms 50th, 1428 ms 95th, 1488 ms 99th, 1498 ms 99.9th."
 * (the lines every 5 s before it have no percentiles).
 */
const SUMMARY =
  /(\d+) records sent, ([\d.]+) records\/sec \([\d.]+ MB\/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th/;

/** Parses ProducerPerformance's final summary line; undefined when the output has none. */
export function parseProducerPerformance(output: string): Omit<KafkaBaseline, 'payloadBytes' | 'batchBytes' | 'command'> | undefined {
  const lines = output.split('\n').filter((line) => SUMMARY.test(line));
  const m = lines.length > 0 ? SUMMARY.exec(lines[lines.length - 1]) : null;
  if (!m) return undefined;
  return {
    records: Number(m[1]),
    recordsPerSecond: Number(m[2]),
    latencyMs: { avg: Number(m[3]), max: Number(m[4]), p50: Number(m[5]), p95: Number(m[6]), p99: Number(m[7]) },
  };
}

/** Runs `scripts/kafka-tool.sh producer-perf-test` unthrottled with acks=all, idempotence on and 256 KiB batches, and parses its rate. */
export function runProducerPerformance(options: KafkaBaselineOptions): Promise<KafkaBaseline> {
  const records = options.records ?? CEILING_RECORDS;
  const toolArgs = [
    'producer-perf-test',
    '--topic',
    options.topic,
    '--num-records',
    String(records),
    '--throughput',
    '-1',
    '--payload-file',
    options.payloadFile,
    '--producer-props',
    `bootstrap.servers=${options.brokers.join(',')}`,
    'acks=all',
    'enable.idempotence=true',
    `batch.size=${CEILING_BATCH_BYTES}`,
  ];
  const command = `bash scripts/kafka-tool.sh ${toolArgs.join(' ').replace(options.payloadFile, `<file: ${options.payloadBytes}-byte event JSON>`)}`;
  return new Promise((done, reject) => {
    const child = spawn('bash', [resolve(REPO_ROOT, 'scripts/kafka-tool.sh'), ...toolArgs], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    // kafka-tool.sh execs the JVM: this pid is the tool's.
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run scripts/kafka-tool.sh: ${e.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const parsed = parseProducerPerformance(out);
      if (code !== 0 || parsed === undefined) {
        reject(new Error(`kafka producer-perf-test failed (exit ${String(code)}): ${(err || out).trim().slice(-300)}`));
        return;
      }
      done({ ...parsed, payloadBytes: options.payloadBytes, batchBytes: CEILING_BATCH_BYTES, command });
    });
  });
}

/**
 * The run's ceiling on Kafka: ProducerPerformance into a topic of the run's own (`<tag>.baseline`,
 * one partition per shard, `min.insync.replicas` as the bus sets it), with one of the run's events
 * as the value; the topic and the payload file are deleted right after. Skipped with `--skip-baseline`.
 */
export async function measureKafkaCeiling(enabled: boolean, plan: RunPlan): Promise<KafkaBaseline | { skipped: string }> {
  if (!enabled) return { skipped: '--skip-baseline' };
  const k = plan.config.bus.kafka;
  const topic = plan.baselineStream;
  const payload = sampleEventPayload(plan);
  const payloadFile = resolve(plan.configPath, '..', `${plan.tag}.payload`);
  const admin = new Admin({ clientId: `${k.client_id}-bench`, bootstrapBrokers: [...k.brokers], retries: 2, retryDelay: 250 });
  try {
    await admin.createTopics({
      topics: [topic],
      partitions: plan.shards,
      replicas: k.replication_factor,
      configs: [{ name: 'min.insync.replicas', value: String(Math.min(2, k.replication_factor)) }],
    });
    writeFileSync(payloadFile, payload);
    progress(`kafka producer-perf-test: ${fmtInt(CEILING_RECORDS)} records, acks=all, idempotent...`);
    const baseline = await runProducerPerformance({ brokers: k.brokers, topic, payloadFile, payloadBytes: Buffer.byteLength(payload) });
    progress(`kafka producer-perf-test: ${fmtInt(baseline.recordsPerSecond)} records/s`);
    return baseline;
  } finally {
    rmSync(payloadFile, { force: true });
    await admin.deleteTopics({ topics: [topic] }).catch((err: unknown) => {
      if (!findErrorBy(err as Error, 'apiId', 'UNKNOWN_TOPIC_OR_PARTITION')) progress(`note: deleting ${topic} failed: ${(err as Error).message}`);
    });
    await admin.close();
  }
}
