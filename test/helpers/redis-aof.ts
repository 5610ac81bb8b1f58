/**
 * Cutting a Redis 7 append-only file back to an earlier point, to simulate what `appendfsync
 * everysec` may lose on a host crash: the writes of (up to) the last second.
 *
 * Redis 7.0 keeps a multi-part AOF in `<dir>/appendonlydir/`: a manifest naming one base file
 * (an RDB snapshot, `type b`) and incremental files (`type i`, RESP commands appended in order).
 * Writes since the last rewrite are in the last incremental file. A test takes an {@link AofMark}
 * (the byte size of that file at a moment when Redis has written every acknowledged command to it),
 * lets the "last second" happen, SIGKILLs Redis, then {@link cutAofToMark} truncates the file to
 * the last command boundary at or before the mark, treating MULTI…EXEC as one unit. Every write
 * acknowledged after the mark is gone after a restart; every write before it is kept: deterministic,
 * whatever the machine's speed, unlike cutting "the last 1000 ms" by wall clock.
 */
import { readFileSync, statSync, truncateSync } from 'node:fs';
import { resolve } from 'node:path';

/** Where the incremental AOF stood at a moment: the file and its size. */
export interface AofMark {
  readonly file: string;
  readonly offset: number;
  /** Wall clock of the mark (ms), to report how much time the cut removes. */
  readonly atMs: number;
}

/** One complete unit of the incremental AOF: a command, or a whole MULTI…EXEC block. */
export interface AofUnit {
  /** Byte offset just past the unit. */
  readonly end: number;
  /** Upper-case command names in the unit (MULTI and EXEC included). */
  readonly commands: readonly string[];
}

/** What {@link cutAofToMark} removed. */
export interface AofCut {
  readonly file: string;
  readonly keptBytes: number;
  readonly droppedBytes: number;
  /** Dropped commands by name, e.g. `{ XADD: 812, XACK: 3, HSET: 1 }`. */
  readonly droppedCommands: Readonly<Record<string, number>>;
}

const CR = 0x0d;

/** Index just past the `\r\n` ending the line that starts at `pos`, or -1 if the line is incomplete. */
function lineEnd(buf: Buffer, pos: number): number {
  const at = buf.indexOf('\r\n', pos, 'latin1');
  return at < 0 ? -1 : at + 2;
}

/**
 * Parses an incremental AOF (RESP arrays of bulk strings, plus `#…` annotation lines) into its
 * complete units. A trailing partial command, or a MULTI without its EXEC, is not a unit.
 *
 * @throws Error on bytes that are not RESP where a command must start (not an AOF).
 */
export function parseAofUnits(buf: Buffer): AofUnit[] {
  const units: AofUnit[] = [];
  let pos = 0;
  let block: string[] | undefined; // inside MULTI…EXEC
  while (pos < buf.length) {
    const first = buf[pos];
    if (first === 0x23 /* # annotation, e.g. #TS:… */) {
      const end = lineEnd(buf, pos);
      if (end < 0) break;
      pos = end;
      if (!block) units.push({ end: pos, commands: [] });
      continue;
    }
    if (first !== 0x2a /* * */) throw new Error(`not an AOF command at byte ${pos}: ${JSON.stringify(buf.subarray(pos, pos + 16).toString('latin1'))}`);
    let end = lineEnd(buf, pos);
    if (end < 0) break;
    const argc = Number(buf.subarray(pos + 1, end - 2).toString('latin1'));
    let name = '';
    let complete = true;
    for (let i = 0; i < argc; i++) {
      if (end >= buf.length) {
        complete = false;
        break;
      }
      if (buf[end] !== 0x24 /* $ */) throw new Error(`bad bulk string at byte ${end}`);
      const lenEnd = lineEnd(buf, end);
      if (lenEnd < 0) {
        complete = false;
        break;
      }
      const len = Number(buf.subarray(end + 1, lenEnd - 2).toString('latin1'));
      const dataEnd = lenEnd + len + 2;
      if (dataEnd > buf.length || buf[dataEnd - 2] !== CR) {
        complete = false;
        break;
      }
      if (i === 0)
        name = buf
          .subarray(lenEnd, lenEnd + len)
          .toString('latin1')
          .toUpperCase();
      end = dataEnd;
    }
    if (!complete) break;
    pos = end;
    if (name === 'MULTI') {
      block = ['MULTI'];
    } else if (block) {
      block.push(name);
      if (name === 'EXEC') {
        units.push({ end: pos, commands: block });
        block = undefined;
      }
    } else {
      units.push({ end: pos, commands: [name] });
    }
  }
  return units;
}

/** The incremental file the manifest of `<dir>/<appendDir>` appends to (the last `type i`). */
export function currentIncrFile(dir: string, appendDir = 'appendonlydir'): string {
  const aofDir = resolve(dir, appendDir);
  const manifest = readFileSync(resolve(aofDir, 'appendonly.aof.manifest'), 'utf8');
  let incr: string | undefined;
  for (const line of manifest.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const get = (key: string) => fields[fields.indexOf(key) + 1];
    if (fields.includes('file') && get('type') === 'i') incr = get('file');
  }
  if (incr === undefined) throw new Error(`no incremental AOF in ${aofDir}/appendonly.aof.manifest:\n${manifest}`);
  return resolve(aofDir, incr);
}

/** The current end of the incremental AOF of the Redis whose `--dir` is `dir` (see the module doc). */
export function markAof(dir: string): AofMark {
  const file = currentIncrFile(dir);
  return { file, offset: statSync(file).size, atMs: Date.now() };
}

/**
 * Truncates the incremental AOF of a stopped Redis to the last complete unit ending at or before
 * `mark.offset`. Call it only while that Redis is not running.
 *
 * @throws Error when the manifest names another file than at the mark (the AOF was rewritten in
 *   between, so the mark means nothing; the fault stack disables automatic rewrites).
 */
export function cutAofToMark(dir: string, mark: AofMark): AofCut {
  const file = currentIncrFile(dir);
  if (file !== mark.file) throw new Error(`the AOF was rewritten since the mark (${mark.file} → ${file}); cannot cut`);
  const buf = readFileSync(file);
  const units = parseAofUnits(buf);
  let kept = 0;
  const droppedCommands: Record<string, number> = {};
  for (const unit of units) {
    if (unit.end <= mark.offset) kept = unit.end;
    else for (const name of unit.commands) droppedCommands[name] = (droppedCommands[name] ?? 0) + 1;
  }
  truncateSync(file, kept);
  return { file, keptBytes: kept, droppedBytes: buf.length - kept, droppedCommands };
}
