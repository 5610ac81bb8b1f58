import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { StreamEventV1 } from '../contracts/index.js';

/** Suffix of a file being written: `<name>.tmp-<pid>-<random>`; dataset readers never list it (not `.jsonl`). */
const TEMP_MARK = '.tmp-';

/**
 * Writes `text` to `file` all or nothing: into a temporary file beside it, flushed to disk, then
 * renamed over `file` (atomic on one filesystem) and the directory flushed. A process killed at any
 * point leaves either no `file` or the whole of it, plus at most a temporary file that
 * {@link removeTempFiles} clears.
 */
export async function writeFileAtomically(file: string, text: string): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true });
  const temp = `${file}${TEMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  const dirHandle = await open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}

/** Writes events as JSONL (one v1 event per line) with {@link writeFileAtomically}. */
export function writeJsonlAtomically(file: string, events: readonly StreamEventV1[]): Promise<void> {
  return writeFileAtomically(file, events.map((e) => JSON.stringify(e)).join('\n') + (events.length ? '\n' : ''));
}

/** Removes temporary files a killed writer of `file` left behind; returns how many. */
export async function removeTempFiles(file: string): Promise<number> {
  const prefix = `${basename(file)}${TEMP_MARK}`;
  let names: string[];
  try {
    names = await readdir(dirname(file));
  } catch {
    return 0;
  }
  const stale = names.filter((n) => n.startsWith(prefix));
  await Promise.all(stale.map((n) => rm(join(dirname(file), n), { force: true })));
  return stale.length;
}
