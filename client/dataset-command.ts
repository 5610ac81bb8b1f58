import { existsSync } from 'node:fs';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { findDataset, generateSampleDay, loadDatasetCatalog, openFileDataset, sampleDayFile, writeJsonl } from '../pipeline/datasets/index.js';

/** One dataset of `mdp dataset ls`, as `-o json` prints it. */
export interface DatasetListing {
  readonly name: string;
  readonly format: string;
  /** The file or directory (file datasets), or `bars_ohlcv` (store datasets). */
  readonly path: string;
  /** What it holds, for people: `1 files, 60000 events, … .. …`, `missing`, `not generated yet (…)`, `unreadable: …`. */
  readonly holds: string;
  readonly files?: number;
  readonly events?: number;
  readonly first?: string;
  readonly last?: string;
  /** Store datasets: the bars they read. */
  readonly provider?: string;
  readonly interval?: string;
  readonly asProvider?: string;
}

/** The datasets of `replay.datasets_file`, each with its format, where it lives and what it holds. */
export async function readDatasets(config: StreamingConfig): Promise<DatasetListing[]> {
  const file = config.replay.datasets_file;
  const catalog = loadDatasetCatalog(file);
  const listings: DatasetListing[] = [];
  for (const def of catalog.values()) {
    if (def.format === 'store') {
      listings.push({
        name: def.name,
        format: def.format,
        path: 'bars_ohlcv',
        holds: `provider=${def.provider} interval=${def.interval}${def.as_provider ? ` → ${def.as_provider}` : ''}`,
        provider: def.provider,
        interval: def.interval,
        ...(def.as_provider ? { asProvider: def.as_provider } : {}),
      });
      continue;
    }
    const base = { name: def.name, format: def.format, path: def.path };
    const notGenerated = `not generated yet (mdp dataset generate ${def.name} --date YYYY-MM-DD)`;
    if (!existsSync(def.path)) {
      listings.push({ ...base, holds: def.generate ? notGenerated : 'missing' });
      continue;
    }
    try {
      const ds = openFileDataset(def);
      const files = await ds.files();
      const s = await ds.summary(0, 8.64e15, 86_400_000);
      if (files.length === 0 && def.generate) listings.push({ ...base, holds: notGenerated, files: 0, events: 0 });
      else if (s.events === 0) listings.push({ ...base, holds: `${files.length} files, empty`, files: files.length, events: 0 });
      else {
        const first = new Date(s.firstMs!).toISOString();
        const last = new Date(s.lastMs! + 60_000).toISOString();
        listings.push({ ...base, holds: `${files.length} files, ${s.events} events, ${first} .. ${last}`, files: files.length, events: s.events, first, last });
      }
    } catch (err) {
      // A file that is there but cannot be read (e.g. a CSV without a time column): say why.
      listings.push({ ...base, holds: `unreadable: ${(err as Error).message}` });
    }
  }
  return listings;
}

/** One line of `mdp dataset ls`. */
export function formatDatasetListing(d: DatasetListing): string {
  return d.format === 'store' ? `${d.name.padEnd(28)} store  bars_ohlcv ${d.holds}` : `${d.name.padEnd(28)} ${d.format.padEnd(6)} ${d.path}  ${d.holds}`;
}

/** `mdp dataset ls`: one line per dataset with its format, where it lives and what it holds. */
export async function listDatasets(config: StreamingConfig, write: (line: string) => void): Promise<void> {
  const listings = await readDatasets(config);
  if (listings.length === 0) write(`(no datasets in ${config.replay.datasets_file})`);
  for (const d of listings) write(formatDatasetListing(d));
}

/** `mdp dataset generate NAME --date D`: writes the deterministic sample day; returns the file and count. */
export async function generateDataset(config: StreamingConfig, name: string, date: string): Promise<{ file: string; events: number }> {
  const file = config.replay.datasets_file;
  const def = findDataset(loadDatasetCatalog(file), name, file);
  if (def.format === 'store' || !def.generate) throw new Error(`dataset ${name} has no generate: block in ${file}`);
  const spec = def.generate;
  const events = generateSampleDay({
    date,
    provider: def.provider ?? 'history',
    symbols: spec.symbols,
    seed: spec.seed,
    ticksPerDay: spec.ticks_per_day,
    volatility: spec.volatility,
    startPrices: spec.start_prices,
  });
  const out = sampleDayFile(def, date);
  await writeJsonl(out, events);
  return { file: out, events: events.length };
}
