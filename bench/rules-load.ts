#!/usr/bin/env node
/**
 * How long loading a rules file takes, by rule count: writes a generated file of N rules and times
 * `loadRulesFile` on it (read, YAML, CEL checks, positions), the way a worker loads its rules, with
 * the size bounds raised to fit the file.
 *
 *   node dist/bench/rules-load.js [count ...]        (default: 1000 10000 100000)
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRulesFile } from '../pipeline/inference/rules/index.js';
import { manyRulesText } from '../test/helpers/rules-text.js';

function run(): void {
  const counts = process.argv.slice(2).map(Number);
  const dir = mkdtempSync(join(tmpdir(), 'mdp-rules-load-'));
  try {
    for (const count of counts.length > 0 ? counts : [1000, 10_000, 100_000]) {
      if (!Number.isInteger(count) || count <= 0) throw new Error(`not a rule count: ${count}`);
      const file = join(dir, `rules-${count}.yaml`);
      writeFileSync(file, manyRulesText(count));
      const began = performance.now();
      const set = loadRulesFile(file, { maxRules: count, maxBytes: Number.MAX_SAFE_INTEGER });
      const ms = performance.now() - began;
      const mb = statSync(file).size / 1e6;
      console.log(`${String(count).padStart(7)} rules  ${mb.toFixed(2).padStart(6)} MB  ${(ms / 1000).toFixed(3).padStart(8)} s  (${set.rules.length} loaded)`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

try {
  run();
} catch (err) {
  console.error(err);
  process.exit(1);
}
