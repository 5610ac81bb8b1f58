/**
 * `mdp stream produce --provider file`: the real CLI process reads a JSONL or CSV file (or stdin)
 * and publishes it through the configured bus; real micro-batch consumers under Temporal turn the
 * events into bars in PostgreSQL. Every line is accounted for exactly (test/helpers/accounting.ts):
 * each valid line's event in exactly one bar, every bar equal to an independent aggregation of the
 * planned events, each invalid line exactly once in the DLQ with a reason naming the file and the
 * line, nothing late, nothing left unread.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Kysely } from 'kysely';
import type { StreamEventV1 } from '../../pipeline/contracts/index.js';
import { parseIsoToMicros } from '../../pipeline/contracts/index.js';
import type { Database } from '../../store/index.js';
import { JobRunTracker } from '../../store/index.js';
import { fileJobName } from '../../client/file-produce-command.js';
import type { ProducedEntry } from '../helpers/accounting.js';
import { assertAccounted } from '../helpers/accounting.js';
import { entryFields } from '../helpers/bus-probe.js';
import { planWindows } from '../helpers/event-plan.js';
import type { BusRun } from '../helpers/bus-run.js';
import { useBusRuns } from '../helpers/bus-run.js';
import { connectStore, REPO_ROOT, startTemporal, testConfig, uniqueTag } from '../helpers/services.js';
import { configFreeEnv, writeConfigFile } from '../helpers/worker-process.js';

const CLI = resolve(REPO_ROOT, 'dist/client/cli.js');
const FILES = resolve(REPO_ROOT, '.data/test/file-provider');

interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface CliOptions {
  /** Written to the CLI's stdin, a pause between chunks; stdin is closed after the last. */
  readonly stdin?: readonly string[];
  /** Called with the output so far on every write to stdout (e.g. to send SIGINT at a point). */
  readonly onStdout?: (stdout: string, signal: (name: NodeJS.Signals) => void) => void;
}

/** Runs `mdp stream produce --provider file …` in `cwd` with the run's config file. */
function produce(run: BusRun, cwd: string, args: readonly string[], options: CliOptions = {}): Promise<CliRun> {
  const configFile = writeConfigFile(run.config, `file-provider/${run.tag}-config`);
  const child = spawn(process.execPath, [CLI, 'stream', 'produce', '--config', configFile, '--provider', 'file', ...args], {
    cwd,
    env: configFreeEnv(),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '',
    stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    options.onStdout?.(stdout, (name) => child.kill(name));
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  void (async () => {
    for (const [i, chunk] of (options.stdin ?? []).entries()) {
      if (i > 0) await new Promise((done) => setTimeout(done, 300));
      child.stdin.write(chunk);
    }
    child.stdin.end();
  })();
  return new Promise((done) => child.once('close', (code) => done({ code, stdout, stderr })));
}

/** A line the producer must dead-letter, with the reason its DLQ entry must carry (after `<file> line <n>: `). */
interface BadLine {
  readonly text: string;
  readonly reason: RegExp;
}

/** A file's lines with what each must become: an event (in a bar), a dead letter, or nothing (blank, header). */
interface Planned {
  readonly lines: string[];
  readonly events: StreamEventV1[];
  readonly bad: { line: number; text: string; reason: RegExp }[];
}

/** Lines of valid events with a bad line after every `every`-th, and a blank line now and then. */
function interleave(
  head: readonly string[],
  events: readonly StreamEventV1[],
  toLine: (e: StreamEventV1) => string,
  bad: readonly BadLine[],
  firstLine = 1,
): Planned {
  const planned: Planned = { lines: [...head], events: [], bad: [] };
  const every = Math.max(1, Math.floor(events.length / (bad.length + 1)));
  let next = 0;
  events.forEach((event, i) => {
    planned.lines.push(toLine(event));
    planned.events.push(event);
    if (i % every === every - 1 && next < bad.length) {
      const b = bad[next++];
      planned.bad.push({ line: firstLine + planned.lines.length, text: b.text, reason: b.reason });
      planned.lines.push(b.text);
    }
    if (i === Math.floor(events.length / 2)) planned.lines.push('');
  });
  assert.equal(next, bad.length, 'every bad line is in the file');
  return planned;
}

/**
 * Planned events of the run's symbols in parts, each `windows` windows of `perWindow` events, two
 * minutes of event time apart. A pause between two CLI runs (or two writes to stdin) lets a quiet
 * shard's watermark follow the wall clock (`flush_timeout_ms`): the next part starts far enough
 * ahead that no window it needs can have closed meanwhile.
 */
function parts(run: BusRun, windows: readonly number[], perWindow: number): StreamEventV1[][] {
  let startMs = Math.floor((Date.now() - 10 * 60_000) / run.windowMs) * run.windowMs;
  return windows.map((count, i) => {
    const events = planWindows({
      provider: run.provider,
      symbols: run.symbols,
      windowMs: run.windowMs,
      startMs,
      windows: count,
      perWindow,
      seed: 7 + i,
    }).flat();
    startMs += count * run.windowMs + 120_000;
    return events;
  });
}

const CSV_HEADER = 'seq,symbol,src_ts,price,o,h,l,c,v,provider';
/** A planned tick as a CSV row (columns in another order than the event's, o..c empty: a tick). */
const csvRow = (e: StreamEventV1) => `${e.seq},${e.symbol},${e.src_ts},${e.c},,,,,${e.v},${e.provider}`;

function badJsonl(base: StreamEventV1): BadLine[] {
  const variant = (seq: number, overrides: Record<string, unknown>) => {
    const e: Record<string, unknown> = { ...base, seq, event_id: `${base.provider}|${base.symbol}|${base.src_ts}|${seq}`, ...overrides };
    return JSON.stringify(e);
  };
  return [
    { text: JSON.stringify(base).slice(0, 50), reason: /^malformed JSON: / },
    { text: variant(900_001, { o: 101, h: 100.5, l: 101, c: 101, kind: 'bar' }), reason: /^field "h" must be >= "l" \(h=100\.5, l=101\)$/ },
    { text: JSON.stringify({ ...JSON.parse(variant(900_002, {})), symbol: undefined }), reason: /^field "symbol" must be a non-empty string$/ },
    { text: variant(900_003, { src_ts: '2025-02-30T14:00:00.000000Z' }), reason: /^field "src_ts" is not an ISO-8601 timestamp/ },
    { text: '[1, 2, 3]', reason: /^line is not a JSON object$/ },
    { text: variant(900_004, { ver: 2 }), reason: /^field "ver" must be 1 \(got 2\)$/ },
  ];
}

function badCsv(base: StreamEventV1): BadLine[] {
  const at = `${base.symbol},${base.src_ts}`;
  return [
    { text: `900001,${at},,101,100.5,101,101,5,${base.provider}`, reason: /^field "h" must be >= "l" \(h=100\.5, l=101\)$/ },
    { text: `900002,${at},abc,,,,,5,${base.provider}`, reason: /^"price" is not a number \(got "abc"\)$/ },
    { text: `900003,${at},101`, reason: /^has 4 comma-separated values, the header names 10 \(seq,symbol,src_ts,price,o,h,l,c,v,provider\)$/ },
    { text: `900004,${base.symbol},yesterday,101,,,,,5,${base.provider}`, reason: /^field "src_ts" is not an ISO-8601 timestamp \(got "yesterday"\)$/ },
    { text: `900005,${at},101,,,,,-5,${base.provider}`, reason: /^field "v" must be >= 0 \(got -5\)$/ },
  ];
}

/** The entries a file's lines must become, for the accounting: valid events by event id, bad lines by (source, line). */
function producedOf(run: BusRun, source: string, planned: Planned): ProducedEntry[] {
  return [
    ...planned.events.map((event): ProducedEntry => ({ stream: run.streamOf(event), payload: JSON.stringify(event), event, expect: 'valid' })),
    ...planned.bad.map((b): ProducedEntry => ({ stream: source, id: String(b.line), payload: b.text, expect: 'poison', label: `line ${b.line}` })),
  ];
}

/** Every DLQ entry of `source` has code invalid_event, the line as its payload and the reason `<label> line <n>: …`. */
async function assertDeadLetters(run: BusRun, source: string, label: string, planned: Planned): Promise<void> {
  const letters = (await run.probe.entries(run.names.dlq_stream)).map(entryFields).filter((f) => f.get('stream') === source);
  const byLine = new Map(letters.map((f) => [f.get('id'), f]));
  assert.equal(letters.length, planned.bad.length, `one dead letter per bad line of ${label}`);
  for (const b of planned.bad) {
    const letter = byLine.get(String(b.line));
    assert.ok(letter, `${label} line ${b.line} is in the DLQ`);
    assert.equal(letter.get('code'), 'invalid_event');
    assert.equal(letter.get('original'), b.text, `the DLQ keeps ${label} line ${b.line} as it was`);
    const reason = letter.get('reason') ?? '';
    const prefix = `${label} line ${b.line}: `;
    assert.ok(reason.startsWith(prefix), `reason names the file and line: ${reason}`);
    assert.match(reason.slice(prefix.length), b.reason, `${label} line ${b.line}`);
  }
}

/** The file's runs in job_runs, oldest first. */
async function fileRuns(db: Kysely<Database>, file: string) {
  return (await new JobRunTracker(db).listRecent(fileJobName(file), 50)).reverse();
}

describe('file provider: mdp stream produce --provider file (CLI → bus → bars, DLQ)', function () {
  this.timeout(180_000);
  let env: TestWorkflowEnvironment;
  let db: Kysely<Database>;
  const dirs: string[] = [];

  before(async function () {
    db = await connectStore(testConfig(uniqueTag()));
    env = await startTemporal();
  });

  afterEach(async function () {
    for (const dir of dirs.splice(0)) await db.deleteFrom('job_runs').where('job_name', 'like', `%${dir}/%`).execute();
  });

  after(async function () {
    await db?.destroy();
    await env?.teardown();
  });

  /** A directory of the run's own for its files. */
  function runDir(run: BusRun): string {
    const dir = resolve(FILES, run.tag);
    mkdirSync(dir, { recursive: true });
    dirs.push(dir);
    return dir;
  }

  for (const busType of ['redis', 'kafka'] as const) {
    describe(`on ${busType}`, function () {
      const runs = useBusRuns(busType, () => ({ env, db }));

      it('a JSONL and a CSV file with invalid lines: valid lines in bars equal to an independent aggregation, invalid ones in the DLQ naming file and line', async function () {
        const run = await runs.run('files');
        const dir = runDir(run);
        const [early, later] = parts(run, [4, 4], 60);
        const jsonl = interleave([], early, (e) => JSON.stringify(e), badJsonl(early[70]));
        const csv = interleave([CSV_HEADER], later, csvRow, badCsv(later[130]));
        writeFileSync(resolve(dir, 'ticks.jsonl'), jsonl.lines.join('\n') + '\n');
        writeFileSync(resolve(dir, 'ticks.csv'), '\uFEFF' + csv.lines.join('\r\n') + '\r\n');
        await run.startWorker();
        await run.startConsumers();

        const first = await produce(run, dir, ['--path', 'ticks.jsonl']);
        assert.equal(first.code, 0, first.stderr + first.stdout);
        const second = await produce(run, dir, ['--path', 'ticks.csv', '--speed', 'max']);
        assert.equal(second.code, 0, second.stderr + second.stdout);
        assert.match(
          first.stdout,
          new RegExp(
            `ticks\\.jsonl: done: ${jsonl.lines.length} lines read: ${jsonl.events.length} events published to \\S+ \\(2 shards\\), ${jsonl.bad.length} invalid lines`,
          ),
        );
        assert.match(
          second.stdout,
          new RegExp(`ticks\\.csv: done: ${csv.lines.length} lines read: ${csv.events.length} events published .* 1 blank, 1 header`),
        );
        assert.match(second.stdout, /^ {2}ticks\.csv line \d+: field "h" must be >= "l" \(h=100\.5, l=101\)$/m, 'the summary shows the invalid lines');

        assert.ok(await run.settle(), 'every published event read and acknowledged');
        const jsonlSource = `file:${resolve(dir, 'ticks.jsonl')}`;
        const csvSource = `file:${resolve(dir, 'ticks.csv')}`;
        assertAccounted(await run.account({ produced: [...producedOf(run, jsonlSource, jsonl), ...producedOf(run, csvSource, csv)] }));
        await assertDeadLetters(run, jsonlSource, 'ticks.jsonl', jsonl);
        await assertDeadLetters(run, csvSource, 'ticks.csv', csv);
        const recorded = [...(await fileRuns(db, resolve(dir, 'ticks.jsonl'))), ...(await fileRuns(db, resolve(dir, 'ticks.csv')))];
        assert.deepEqual(
          recorded.map((r) => [r.kind, r.status, r.counts.published, r.counts.invalid]),
          [
            ['file_produce', 'success', jsonl.events.length, jsonl.bad.length],
            ['file_produce', 'success', csv.events.length, csv.bad.length],
          ],
        );
      });
    });
  }

  describe('on redis', function () {
    const runs = useBusRuns('redis', () => ({ env, db }));

    it('reads stdin (--path -) as it arrives, with the DLQ naming "stdin" and the line', async function () {
      const run = await runs.run('stdin');
      const dir = runDir(run);
      const [first, second] = parts(run, [2, 2], 60);
      const piped = interleave([], [...first, ...second], (e) => JSON.stringify(e), badJsonl(first[30]).slice(0, 3));
      await run.startWorker();
      await run.startConsumers();
      const text = piped.lines.map((l) => l + '\n');
      // Two writes 300 ms apart, the first ending in the middle of the second part's first line.
      const cut = piped.lines.indexOf(JSON.stringify(second[0]));
      const firstChunk = text.slice(0, cut).join('') + text[cut].slice(0, 10);
      const result = await produce(run, dir, ['--path', '-'], { stdin: [firstChunk, text[cut].slice(10) + text.slice(cut + 1).join('')] });
      assert.equal(result.code, 0, result.stderr + result.stdout);
      assert.match(result.stdout, new RegExp(`stdin: done: ${piped.lines.length} lines read: ${piped.events.length} events published`));
      assert.ok(await run.settle(), 'every published event read and acknowledged');
      assertAccounted(await run.account({ produced: producedOf(run, 'stdin', piped) }));
      await assertDeadLetters(run, 'stdin', 'stdin', piped);
      assert.deepEqual(await fileRuns(db, resolve(dir, '-')), [], 'stdin keeps no position');
    });

    it('a file run again continues after its last published line: nothing published or dead-lettered twice', async function () {
      const run = await runs.run('resume');
      const dir = runDir(run);
      const file = resolve(dir, 'ticks.csv');
      const [early, later] = parts(run, [4, 4], 60);
      const part1 = interleave([CSV_HEADER], early, csvRow, badCsv(early[50]).slice(0, 2));
      const part2 = interleave([], later, csvRow, badCsv(later[50]).slice(2), part1.lines.length + 1);
      writeFileSync(file, part1.lines.join('\n') + '\n');
      await run.startWorker();
      await run.startConsumers();

      const first = await produce(run, dir, ['--path', 'ticks.csv']);
      assert.equal(first.code, 0, first.stderr + first.stdout);
      const again = await produce(run, dir, ['--path', 'ticks.csv']);
      assert.equal(again.code, 0, again.stderr + again.stdout);
      assert.match(again.stdout, new RegExp(`continuing after line ${part1.lines.length} `));
      assert.match(again.stdout, /ticks\.csv: nothing new: 0 lines read: 0 events published .*, 0 invalid lines/);

      // The recording grows: only the new lines go out.
      appendFileSync(file, part2.lines.join('\n') + '\n');
      const grown = await produce(run, dir, ['--path', 'ticks.csv']);
      assert.equal(grown.code, 0, grown.stderr + grown.stdout);
      assert.match(grown.stdout, new RegExp(`ticks\\.csv: done: ${part2.lines.length} lines read: ${part2.events.length} events published`));

      assert.ok(await run.settle(), 'every published event read and acknowledged');
      const whole: Planned = { lines: [...part1.lines, ...part2.lines], events: [...part1.events, ...part2.events], bad: [...part1.bad, ...part2.bad] };
      assertAccounted(await run.account({ produced: producedOf(run, `file:${file}`, whole) }));
      await assertDeadLetters(run, `file:${file}`, 'ticks.csv', whole);
      assert.deepEqual(
        (await fileRuns(db, file)).map((r) => [r.status, r.counts.published, r.counts.invalid]),
        [
          ['success', part1.events.length, part1.bad.length],
          ['success', 0, 0],
          ['success', part2.events.length, part2.bad.length],
        ],
      );

      // A file whose beginning changed is not the one recorded: it is read from line 1 again, and says so.
      writeFileSync(file, [CSV_HEADER.toUpperCase(), ...part1.lines.slice(1), ...part2.lines].join('\n') + '\n');
      const changed = await produce(run, dir, ['--path', 'ticks.csv']);
      assert.equal(changed.code, 0, changed.stderr + changed.stdout);
      assert.match(changed.stdout, /^ticks\.csv: reading it from line 1 again: its first \d+ bytes are not the ones read before/m);
      assert.match(changed.stdout, new RegExp(`ticks\\.csv: done: ${whole.lines.length} lines read: ${whole.events.length} events published`));
    });

    it('--speed 1 publishes at the recorded pace; Ctrl-C stops after the batch in flight and a new run continues exactly there', async function () {
      const run = await runs.run('pace');
      const dir = runDir(run);
      const [events] = parts(run, [10], 20); // 10 s of event time at 1 s windows
      const planned = interleave([], events, (e) => JSON.stringify(e), badJsonl(events[30]).slice(0, 2));
      writeFileSync(resolve(dir, 'ticks.jsonl'), planned.lines.join('\n') + '\n');
      await run.startWorker();
      await run.startConsumers();

      let firstProgressAt: number | undefined;
      let interruptedAt: number | undefined;
      const paced = await produce(run, dir, ['--path', 'ticks.jsonl', '--speed', '1'], {
        onStdout: (stdout, signal) => {
          if (firstProgressAt === undefined && / \| published \d+/.test(stdout)) {
            firstProgressAt = Date.now();
            setTimeout(() => {
              interruptedAt = Date.now();
              signal('SIGINT');
            }, 3000);
          }
        },
      });
      assert.equal(paced.code, 130, paced.stderr + paced.stdout);
      const stopped = /interrupted after line (\d+)/.exec(paced.stdout);
      assert.ok(stopped, paced.stdout);
      const line = Number(stopped[1]);
      assert.ok(line < planned.lines.length, 'stopped before the end of the file');
      // Event time published is about the wall time it ran (3 s after its first progress line).
      const eventLines = new Map(planned.events.map((e) => [JSON.stringify(e), e]));
      const sent = planned.lines.slice(0, line).flatMap((l) => {
        const e = eventLines.get(l);
        return e ? [parseIsoToMicros(e.src_ts)! / 1000] : [];
      });
      const spanMs = Math.max(...sent) - Math.min(...sent);
      const ranMs = interruptedAt! - firstProgressAt!;
      assert.ok(spanMs >= ranMs - 1000 && spanMs <= ranMs + 2000, `published ${spanMs} ms of event time in about ${ranMs} ms at --speed 1`);

      const rest = await produce(run, dir, ['--path', 'ticks.jsonl', '--speed', 'max']);
      assert.equal(rest.code, 0, rest.stderr + rest.stdout);
      assert.match(rest.stdout, new RegExp(`continuing after line ${line} `));
      assert.match(rest.stdout, new RegExp(`ticks\\.jsonl: done: ${planned.lines.length - line} lines read`));
      assert.ok(await run.settle(), 'every published event read and acknowledged');
      // The pause between the two runs let the quiet shards' watermarks follow the wall clock
      // (flush_timeout_ms): events of windows closed meanwhile are in the late stream, each once.
      assertAccounted(await run.account({ produced: producedOf(run, `file:${resolve(dir, 'ticks.jsonl')}`, planned), allowLate: true }));
      assert.deepEqual(
        (await fileRuns(db, resolve(dir, 'ticks.jsonl'))).map((r) => [r.status, r.error]),
        [
          ['failure', 'interrupted'],
          ['success', null],
        ],
      );
    });

    it('an unreadable file or a CSV without a time column: exit 1 naming the file (and line), nothing published', async function () {
      const run = await runs.run('unreadable');
      const dir = runDir(run);
      writeFileSync(resolve(dir, 'bad.csv'), 'symbol,time,price\nSPY,2025-10-01T13:30:00Z,1\n');
      const missing = await produce(run, dir, ['--path', 'nope.csv']);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /^mdp: cannot read nope\.csv: no such file$/m);
      const directory = await produce(run, dir, ['--path', '.']);
      assert.equal(directory.code, 1);
      assert.match(directory.stderr, /^mdp: cannot read \.: it is a directory/m);
      const header = await produce(run, dir, ['--path', 'bad.csv']);
      assert.equal(header.code, 1);
      assert.match(header.stderr, /^mdp: bad\.csv line 1: CSV header must name a src_ts \(or ts\) column \(got "symbol,time,price"\)$/m);
      const usage = await produce(run, dir, ['--path', 'bad.csv', '--speed', 'fast']);
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /--speed must be a positive number/);
      for (const stream of [...run.streams, run.names.dlq_stream]) assert.equal(await run.probe.bus.length(stream), 0, `nothing on ${stream}`);
    });
  });
});
