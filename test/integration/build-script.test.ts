import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { REPO_ROOT } from '../helpers/services.js';

/**
 * scripts/build.sh against a small project of its own (MDP_ROOT): live.sh and test.sh start with
 * it, so a current build must cost no tsc run, and any source change must rebuild.
 */
describe('scripts/build.sh (tsc only when the sources changed)', function () {
  this.timeout(120_000);
  let root: string;

  before(function () {
    root = mkdtempSync(join(tmpdir(), 'mdp-build-'));
    mkdirSync(join(root, 'client'));
    mkdirSync(join(root, 'scripts'));
    for (const script of ['env.sh', 'build.sh']) writeFileSync(join(root, 'scripts', script), readFileSync(resolve(REPO_ROOT, 'scripts', script)));
    symlinkSync(resolve(REPO_ROOT, 'node_modules'), join(root, 'node_modules'));
    writeFileSync(
      join(root, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'NodeNext', target: 'ES2022', outDir: 'dist', rootDir: '.', types: [], strict: true }, include: ['client'] }),
    );
    writeFileSync(join(root, 'package-lock.json'), '{}\n');
    writeFileSync(join(root, 'client', 'cli.ts'), 'export const answer: number = 41;\n');
  });

  after(function () {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const build = () => {
    const r = spawnSync('bash', [join(root, 'scripts', 'build.sh')], { env: { ...process.env, MDP_ROOT: root, MDP_FORCE_BUILD: '' }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stderr;
  };
  const built = () => readFileSync(join(root, 'dist/client/cli.js'), 'utf8');

  it('builds once, skips tsc while nothing changed, and builds again after a change', function () {
    assert.match(build(), /building TypeScript/);
    assert.match(built(), /answer = 41/);
    assert.ok(existsSync(join(root, 'dist/.build-stamp')));

    const started = Date.now();
    assert.equal(build(), '', 'a current build runs no tsc');
    assert.ok(Date.now() - started < 5000, 'the check is quick');

    writeFileSync(join(root, 'client', 'cli.ts'), 'export const answer: number = 42;\n');
    assert.match(build(), /building TypeScript/);
    assert.match(built(), /answer = 42/);
    assert.equal(build(), '');

    // A new file, a tsconfig change, a lost dist: each builds.
    writeFileSync(join(root, 'client', 'extra.ts'), 'export const more = 1;\n');
    assert.match(build(), /building TypeScript/);
    rmSync(join(root, 'dist'), { recursive: true });
    assert.match(build(), /building TypeScript/);
    assert.match(built(), /answer = 42/);
  });

  it('leaves no stamp after a failed build, so the next start tries again', function () {
    writeFileSync(join(root, 'client', 'cli.ts'), 'export const answer: number = "not a number";\n');
    const r = spawnSync('bash', [join(root, 'scripts', 'build.sh')], { env: { ...process.env, MDP_ROOT: root }, encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.equal(existsSync(join(root, 'dist/.build-stamp')), false);
  });
});
