import { existsSync } from 'node:fs';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { findDataset, generateSampleDay, loadDatasetCatalog, openFileDataset, sampleDayFile, writeJsonl } from '../pipeline/datasets/index.js';

/** `mdp dataset ls`: one line per dataset with its format, where it lives and what it holds. */
export async function listDatasets(config: StreamingConfig, write: (line: string) => void): Promise<void> {
  const file = config.replay.datasets_file;
  const catalog = loadDatasetCatalog(file);
  if (catalog.size === 0) write(`(no datasets in ${file})`);
  for (const def of catalog.values()) {
    if (def.format === 'store') {
      write(`${def.name.padEnd(28)} store  bars_ohlcv provider=${def.provider} interval=${def.interval}${def.as_provider ? ` → ${def.as_provider}` : ''}`);
      continue;
    }
    const notGenerated = `not generated yet (mdp dataset generate ${def.name} --date YYYY-MM-DD)`;
    let holds: string;
    if (!existsSync(def.path)) {
      holds = def.generate ? notGenerated : 'missing';
    } else {
      try {
        const ds = openFileDataset(def);
        const files = await ds.files();
        const s = await ds.summary(0, 8.64e15, 86_400_000);
        if (files.length === 0 && def.generate) holds = notGenerated;
        else
          holds =
            s.events === 0
              ? `${files.length} files, empty`
              : `${files.length} files, ${s.events} events, ${new Date(s.firstMs!).toISOString()} .. ${new Date(s.lastMs! + 60_000).toISOString()}`;
      } catch (err) {
        // A file that is there but cannot be read (e.g. a CSV without a time column): say why.
        holds = `unreadable: ${(err as Error).message}`;
      }
    }
    write(`${def.name.padEnd(28)} ${def.format.padEnd(6)} ${def.path}  ${holds}`);
  }
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
