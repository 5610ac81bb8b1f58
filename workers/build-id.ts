/**
 * The build id a worker registers its Worker Deployment version under: `temporal.deployment.build_id`
 * (env `MDP_BUILD_ID`) when set, else `<package version>-<git commit>`, with `-dirty.<hash>` when
 * the checkout has uncommitted changes (the hash of the diff, so two different edits of the same
 * commit are two versions and a pinned workflow is never replayed by code it did not start on).
 * Without git (an image built without `--build-arg MDP_BUILD_ID`): `<package version>-unknown`.
 * Every form is also a valid image tag (no `+`), so an image can be named after its version.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { StreamingConfig } from '../pipeline/config/index.js';

const ROOT = resolve(import.meta.dirname, '../..');

function git(args: readonly string[]): string | undefined {
  try {
    return execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 * 1024 * 1024 });
  } catch {
    return undefined;
  }
}

/** `<version>-<commit>[-dirty.<hash>]` of the checkout this code runs from. */
export function checkoutBuildId(): string {
  const { version } = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { version: string };
  const commit = git(['rev-parse', '--short=10', 'HEAD'])?.trim();
  if (!commit) return `${version}-unknown`;
  const diff = git(['diff', 'HEAD', '--', '.']) ?? '';
  return diff === '' ? `${version}-${commit}` : `${version}-${commit}-dirty.${createHash('sha256').update(diff).digest('hex').slice(0, 8)}`;
}

/** The build id of this worker (see the file's doc). */
export function buildIdOf(config: StreamingConfig): string {
  return config.temporal.deployment.build_id || checkoutBuildId();
}
