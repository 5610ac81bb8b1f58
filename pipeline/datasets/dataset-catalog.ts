import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { CORE_SCHEMA, load as parseYaml } from 'js-yaml';
import type { FileFormat } from './file-dataset.js';
import { FileDataset } from './file-dataset.js';

/** How `mdp dataset generate` makes a sample day for a dataset (`generate:` in the catalog). */
export interface GenerateSpec {
  readonly symbols: readonly string[];
  readonly seed: number;
  readonly ticks_per_day?: number;
  readonly volatility?: number;
  readonly start_prices?: Readonly<Record<string, number>>;
}

/** A dataset of JSONL/CSV files of ticks or bars. */
export interface FileDatasetDefinition {
  readonly name: string;
  readonly description?: string;
  readonly format: FileFormat;
  /** File or directory: absolute once loaded (relative ones in a catalog are relative to the catalog file). */
  readonly path: string;
  readonly provider?: string;
  readonly symbols?: readonly string[];
  readonly generate?: GenerateSpec;
}

/** A time range of bars already in the store, re-aggregated (e.g. 2s bars into a new window). */
export interface StoreDatasetDefinition {
  readonly name: string;
  readonly description?: string;
  readonly format: 'store';
  /** Provider and interval of the stored bars to read. */
  readonly provider: string;
  readonly interval: string;
  readonly symbols?: readonly string[];
  /** Provider written on the replayed bars (default: `provider`); must differ when `interval` equals the replay window. */
  readonly as_provider?: string;
}

export type DatasetDefinition = FileDatasetDefinition | StoreDatasetDefinition;

/** A catalog error names the file and the key at fault. */
export class DatasetCatalogError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}

const FILE_KEYS = new Set(['description', 'format', 'path', 'provider', 'symbols', 'generate']);
const STORE_KEYS = new Set(['description', 'format', 'provider', 'interval', 'symbols', 'as_provider']);
const NAME = /^[A-Za-z0-9_.-]+$/;

function str(where: string, value: unknown, optional = false): string | undefined {
  if (value === undefined && optional) return undefined;
  if (typeof value !== 'string' || value.trim() === '') throw new DatasetCatalogError(`${where}: must be a non-empty string`);
  return value;
}

function symbolsOf(where: string, value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length === 0 || !value.every((s) => typeof s === 'string' && s !== '' && !s.includes('|'))) {
    throw new DatasetCatalogError(`${where}: must be a non-empty list of symbols`);
  }
  return value as string[];
}

/**
 * Reads a dataset catalog (`configs/datasets.yaml`): `datasets: { <name>: { format, ... } }`.
 * Relative paths resolve against `baseDir`, by default the directory of `file` — the file that
 * names them — so the worker and the CLI read the same files whatever their working directories.
 *
 * @throws DatasetCatalogError naming the file and key at fault
 */
export function loadDatasetCatalog(file: string, baseDir = dirname(resolve(file))): Map<string, DatasetDefinition> {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'), { filename: file, schema: CORE_SCHEMA });
  } catch (err) {
    throw new DatasetCatalogError(`${file}: ${(err as Error).message}`);
  }
  const datasets = (doc as { datasets?: unknown } | null)?.datasets;
  if (typeof datasets !== 'object' || datasets === null || Array.isArray(datasets)) {
    throw new DatasetCatalogError(`${file}: must have a "datasets" mapping of name → definition`);
  }
  const out = new Map<string, DatasetDefinition>();
  for (const [name, raw] of Object.entries(datasets as Record<string, unknown>)) {
    out.set(name, parseDatasetDefinition(name, raw, `${file}: datasets.${name}`, baseDir));
  }
  return out;
}

/**
 * One dataset definition, checked: `raw` as written in a catalog (relative paths resolved against
 * `baseDir`), or as carried in a replay's input (`baseDir` undefined: paths must be absolute, since
 * a worker's working directory means nothing to whoever started the replay).
 *
 * @throws DatasetCatalogError naming `where` and the key at fault
 */
export function parseDatasetDefinition(name: string, raw: unknown, where: string, baseDir: string | undefined): DatasetDefinition {
  if (!NAME.test(name)) throw new DatasetCatalogError(`${where}: names use letters, digits, "_", "." and "-" only`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new DatasetCatalogError(`${where}: must be a mapping`);
  const d = raw as Record<string, unknown>;
  const format = d.format;
  const allowed = format === 'store' ? STORE_KEYS : FILE_KEYS;
  for (const key of Object.keys(d)) {
    if (!allowed.has(key) && !(baseDir === undefined && key === 'name')) {
      throw new DatasetCatalogError(`${where}.${key}: unknown key (allowed: ${[...allowed].join(', ')})`);
    }
  }
  const description = str(`${where}.description`, d.description, true);
  if (format === 'store') {
    return {
      name,
      format,
      description,
      provider: str(`${where}.provider`, d.provider)!,
      interval: str(`${where}.interval`, d.interval)!,
      symbols: symbolsOf(`${where}.symbols`, d.symbols),
      as_provider: str(`${where}.as_provider`, d.as_provider, true),
    };
  }
  if (format !== 'jsonl' && format !== 'csv') throw new DatasetCatalogError(`${where}.format: must be jsonl, csv or store (got ${JSON.stringify(format)})`);
  const path = str(`${where}.path`, d.path)!;
  if (baseDir === undefined && !isAbsolute(path)) throw new DatasetCatalogError(`${where}.path: must be an absolute path (got ${JSON.stringify(path)})`);
  let generate: GenerateSpec | undefined;
  if (d.generate !== undefined) {
    const g = d.generate as Record<string, unknown>;
    if (typeof g !== 'object' || g === null) throw new DatasetCatalogError(`${where}.generate: must be a mapping`);
    if (!Number.isSafeInteger(g.seed)) throw new DatasetCatalogError(`${where}.generate.seed: must be an integer`);
    generate = {
      symbols: symbolsOf(`${where}.generate.symbols`, g.symbols) ?? ['SPY'],
      seed: g.seed as number,
      ticks_per_day: g.ticks_per_day as number | undefined,
      volatility: g.volatility as number | undefined,
      start_prices: g.start_prices as Record<string, number> | undefined,
    };
  }
  return {
    name,
    format,
    description,
    path: isAbsolute(path) || baseDir === undefined ? path : resolve(baseDir, path),
    provider: str(`${where}.provider`, d.provider, true),
    symbols: symbolsOf(`${where}.symbols`, d.symbols),
    generate,
  };
}

/** The named dataset, or an error listing the known names. */
export function findDataset(catalog: ReadonlyMap<string, DatasetDefinition>, name: string, file: string): DatasetDefinition {
  const found = catalog.get(name);
  if (!found) throw new DatasetCatalogError(`unknown dataset "${name}" (${file} defines: ${[...catalog.keys()].join(', ') || 'none'})`);
  return found;
}

/** A reader for a file dataset. */
export function openFileDataset(def: FileDatasetDefinition): FileDataset {
  return new FileDataset({ format: def.format, path: def.path, provider: def.provider, symbols: def.symbols });
}

/** File a generated sample day goes to: `<path>/<date>.jsonl`. */
export function sampleDayFile(def: FileDatasetDefinition, date: string): string {
  return join(def.path, `${date}.jsonl`);
}
