/**
 * The build id a worker registers its Worker Deployment version under: `temporal.deployment.build_id`
 * (env `MDP_BUILD_ID`) when set, else `<package version>-<hash of the compiled code>`: the first 10
 * hex digits of a SHA-256 over every compiled module a worker runs (`dist/` without tests and
 * benchmarks). Two workers run the same code exactly when they have the same id, whatever the git
 * state, so a pinned workflow is never replayed by code it did not start on, and a rebuild that
 * changed nothing is no new version. Every form is a valid image tag (no `+`).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { StreamingConfig } from '../pipeline/config/index.js';

/** The compiled tree (this file is `dist/workers/build-id.js`) and the package root above it. */
const DIST = resolve(import.meta.dirname, '..');
const ROOT = resolve(DIST, '..');
/** What a worker runs: everything compiled except the tests and the benchmarks. */
const RUNTIME_DIRS = ['activities', 'client', 'pipeline', 'store', 'workers', 'workflows'];

function modulesUnder(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => (e.isDirectory() ? modulesUnder(join(dir, e.name)) : e.name.endsWith('.js') ? [join(dir, e.name)] : []));
}

/** SHA-256 (hex) of the compiled runtime modules, path and content, in path order. */
export function compiledCodeHash(dist = DIST): string {
  const hash = createHash('sha256');
  const files = RUNTIME_DIRS.flatMap((d) => modulesUnder(join(dist, d))).sort();
  for (const file of files) hash.update(relative(dist, file)).update('\0').update(readFileSync(file)).update('\0');
  return hash.digest('hex');
}

/** `<package version>-<first 10 hex digits of the compiled code's hash>`. */
export function compiledBuildId(dist = DIST): string {
  const { version } = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { version: string };
  return `${version}-${compiledCodeHash(dist).slice(0, 10)}`;
}

/** The build id of this worker (see the file's doc). */
export function buildIdOf(config: StreamingConfig): string {
  return config.temporal.deployment.build_id || compiledBuildId();
}
