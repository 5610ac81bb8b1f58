import { readFile, stat } from 'node:fs/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { writeFileAtomically } from './atomic-file.js';
import { DatasetCatalogError, loadDatasetCatalog } from './dataset-catalog.js';

/**
 * A backfilled dataset on disk: one JSONL file per fetched chunk, named after the symbol, bar size,
 * data type and the chunk's bounds, so a chunk whose file exists is done (written whole, see
 * `writeFileAtomically`) and is never requested again.
 */

/** The part of a backfill that fixes what a dataset directory holds. */
export interface BackfillKind {
  readonly source: string;
  readonly bar: string;
  readonly what: string;
  readonly provider: string;
}

/** Beside the chunk files: what the directory holds, so a fetch of another bar size or data type is refused. */
export const BACKFILL_MANIFEST = '.mdp-backfill.json';

const compactUtc = (ms: number): string =>
  new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');

/** A symbol as a file-name part: letters, digits, "." and "-" as they are, anything else as `%HH`. */
function fileSafe(symbol: string): string {
  return symbol.replace(/[^A-Za-z0-9.-]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** `SPY_1s_TRADES_20251001T133000Z_20251001T140000Z.jsonl`: sorts by symbol, then time. */
export function backfillChunkFile(dir: string, symbol: string, kind: Pick<BackfillKind, 'bar' | 'what'>, chunk: { fromMs: number; toMs: number }): string {
  return join(dir, `${fileSafe(symbol)}_${kind.bar}_${kind.what}_${compactUtc(chunk.fromMs)}_${compactUtc(chunk.toMs)}.jsonl`);
}

/** Lines (bars) of a finished chunk file, or `undefined` when the chunk has no file yet. */
export async function chunkFileBars(file: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let lines = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines++;
  return lines;
}

/**
 * Makes `dir` hold backfills of `kind` only: records `kind` in its {@link BACKFILL_MANIFEST} the
 * first time, and refuses (naming both) when the directory already holds another bar size, data
 * type or provider — replaying 1 s and 1 min bars of one symbol together would count volume twice.
 */
export async function claimBackfillDir(dir: string, dataset: string, kind: BackfillKind): Promise<void> {
  try {
    if (!(await stat(dir)).isDirectory()) throw new DatasetCatalogError(`dataset ${dataset}: ${dir} is a file; a backfill writes a directory of chunk files`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const file = join(dir, BACKFILL_MANIFEST);
  let existing: BackfillKind | undefined;
  try {
    existing = JSON.parse(await readFile(file, 'utf8')) as BackfillKind;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new DatasetCatalogError(`${file}: unreadable backfill manifest: ${(err as Error).message}`);
  }
  if (existing === undefined) {
    await writeFileAtomically(file, JSON.stringify(kind) + '\n');
    return;
  }
  const describe = (k: BackfillKind) => `${k.source} ${k.bar} ${k.what} bars (provider ${k.provider})`;
  if (existing.source !== kind.source || existing.bar !== kind.bar || existing.what !== kind.what || existing.provider !== kind.provider) {
    throw new DatasetCatalogError(
      `dataset ${dataset} (${dir}) holds ${describe(existing)}; fetching ${describe(kind)} into it would mix them — use another --dataset`,
    );
  }
}

/** Where a dataset registered by {@link registerBackfillDataset} lives, and whether it was added now. */
export interface RegisteredDataset {
  readonly dir: string;
  readonly added: boolean;
}

let registering: Promise<unknown> = Promise.resolve();

/**
 * Finds dataset `name` in the catalog `catalogFile`, or appends it there (format jsonl, path
 * `defaultDir`, written relative to `baseDir` — by default the catalog's directory, against which
 * the catalog's relative paths resolve — when inside it) so `mdp stream replay --dataset name`
 * finds it. An existing entry must be a jsonl directory dataset; its path is used. The append is
 * checked by reloading the catalog; when the file's layout does not take it (e.g. `datasets:` is
 * not the last top-level key), the file is restored and the error shows the entry to add by hand.
 */
export function registerBackfillDataset(
  catalogFile: string,
  entry: { name: string; defaultDir: string; provider: string; description: string },
  baseDir = dirname(resolve(catalogFile)),
): Promise<RegisteredDataset> {
  // One registration at a time in this process: two appends must not interleave.
  const next = registering.then(() => register(catalogFile, entry, baseDir));
  registering = next.catch(() => undefined);
  return next;
}

function register(catalogFile: string, entry: { name: string; defaultDir: string; provider: string; description: string }, baseDir: string): RegisteredDataset {
  const catalog = loadDatasetCatalog(catalogFile, baseDir);
  const found = catalog.get(entry.name);
  if (found) {
    if (found.format !== 'jsonl')
      throw new DatasetCatalogError(`${catalogFile}: datasets.${entry.name} is a ${found.format} dataset; a backfill writes jsonl — use another --dataset`);
    return { dir: found.path, added: false };
  }
  const original = readFileSync(catalogFile, 'utf8');
  const lines = original.split('\n');
  const at = lines.findIndex((l) => /^datasets:\s*(#.*)?$/.test(l));
  const keyLine = lines.slice(at + 1).find((l) => /^\s+[^\s#]/.test(l));
  const indent = keyLine ? /^(\s+)/.exec(keyLine)![1] : '  ';
  const dir = resolve(baseDir, entry.defaultDir);
  const rel = relative(baseDir, dir);
  const path = rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : dir;
  const block = [
    `${indent}${entry.name}:`,
    `${indent}${indent}description: ${JSON.stringify(entry.description)}`,
    `${indent}${indent}format: jsonl`,
    `${indent}${indent}path: ${JSON.stringify(path)}`,
    `${indent}${indent}provider: ${JSON.stringify(entry.provider)}`,
    '',
  ].join('\n');
  const manual = `add it under "datasets:" in ${catalogFile} by hand:\n${block}`;
  if (at === -1) throw new DatasetCatalogError(`${catalogFile}: has no block "datasets:" mapping to register dataset ${entry.name} in; ${manual}`);
  writeFileSync(catalogFile, (original.endsWith('\n') || original === '' ? original : original + '\n') + block);
  let reloaded;
  try {
    reloaded = loadDatasetCatalog(catalogFile, baseDir);
  } catch {
    reloaded = undefined;
  }
  const added = reloaded?.get(entry.name);
  const kept = reloaded !== undefined && [...catalog.keys()].every((name) => reloaded.has(name));
  if (!added || added.format !== 'jsonl' || added.path !== dir || !kept) {
    writeFileSync(catalogFile, original);
    throw new DatasetCatalogError(`${catalogFile}: could not append dataset ${entry.name} (the file's layout did not take it); ${manual}`);
  }
  return { dir, added: true };
}
