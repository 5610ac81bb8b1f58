import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
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

/**
 * scripts/npm-install.sh: never `npm ci` through a linked node_modules (a worktree sharing another
 * checkout's packages: npm ci there emptied the shared folder), and no reinstall when the recorded
 * lock hash matches, however new the lock file's mtime (a fresh checkout). No case here runs npm.
 */
describe('scripts/npm-install.sh (npm ci only when the packages are missing or from another lock)', function () {
  this.timeout(30_000);
  let root: string;

  beforeEach(function () {
    root = mkdtempSync(join(tmpdir(), 'mdp-npm-'));
    mkdirSync(join(root, 'scripts'));
    for (const script of ['env.sh', 'npm-install.sh']) writeFileSync(join(root, 'scripts', script), readFileSync(resolve(REPO_ROOT, 'scripts', script)));
    writeFileSync(join(root, 'package-lock.json'), '{"lockfileVersion": 3}\n');
  });

  afterEach(function () {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const install = () => spawnSync('bash', [join(root, 'scripts', 'npm-install.sh')], { env: { ...process.env, MDP_ROOT: root }, encoding: 'utf8' });

  it('refuses to install through a linked node_modules whose target has no packages, leaving the target alone', function () {
    const shared = join(root, 'shared-modules');
    mkdirSync(shared);
    writeFileSync(join(shared, 'keep.txt'), 'another checkout uses this');
    symlinkSync(shared, join(root, 'node_modules'));
    const r = install();
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /node_modules links to .*shared-modules, which has no packages installed: run npm ci there/);
    assert.ok(existsSync(join(shared, 'keep.txt')), 'the shared folder is untouched');
  });

  it('uses a linked node_modules as it is, even when the lock file is newer', function () {
    const shared = join(root, 'shared-modules');
    mkdirSync(shared);
    writeFileSync(join(shared, '.package-lock.json'), '{}');
    utimesSync(join(shared, '.package-lock.json'), new Date(2020, 0, 1), new Date(2020, 0, 1));
    symlinkSync(shared, join(root, 'node_modules'));
    const r = install();
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /installing npm packages/);
  });

  it('does not reinstall when the recorded lock hash matches, however new the lock file is', function () {
    mkdirSync(join(root, 'node_modules'));
    writeFileSync(join(root, 'node_modules', '.package-lock.json'), '{}');
    utimesSync(join(root, 'node_modules', '.package-lock.json'), new Date(2020, 0, 1), new Date(2020, 0, 1));
    const sha = spawnSync('sha256sum', [join(root, 'package-lock.json')], { encoding: 'utf8' }).stdout.split(' ')[0];
    writeFileSync(join(root, 'node_modules', '.mdp-lock-sha256'), `${sha}\n`);
    const r = install();
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /installing npm packages/);
  });
});
