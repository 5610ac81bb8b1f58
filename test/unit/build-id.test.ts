import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadStreamingConfig } from '../../pipeline/config/index.js';
import { buildIdOf, compiledBuildId, compiledCodeHash } from '../../workers/build-id.js';

describe('worker build id', function () {
  let dist: string;
  const write = (path: string, text: string) => {
    mkdirSync(join(dist, path, '..'), { recursive: true });
    writeFileSync(join(dist, path), text);
  };

  beforeEach(function () {
    dist = mkdtempSync(join(tmpdir(), 'mdp-dist-'));
    write('workflows/index.js', 'export const a = 1;\n');
    write('activities/x.js', 'export const b = 2;\n');
  });
  afterEach(function () {
    rmSync(dist, { recursive: true, force: true });
  });

  it('is the hash of the compiled runtime code: the same code is one version, a change is another', function () {
    const before = compiledCodeHash(dist);
    assert.equal(compiledCodeHash(dist), before, 'deterministic');
    write('test/unit/y.test.js', 'tests do not count\n');
    write('bench/z.js', 'nor benchmarks\n');
    write('workflows/index.js.map', 'nor source maps\n');
    assert.equal(compiledCodeHash(dist), before);
    write('workflows/index.js', 'export const a = 2;\n');
    assert.notEqual(compiledCodeHash(dist), before, 'a changed workflow module');
    write('workflows/index.js', 'export const a = 1;\n');
    write('activities/x2.js', '');
    assert.notEqual(compiledCodeHash(dist), before, 'a new module');
  });

  it('reads <package version>-<10 hex digits>, a valid image tag; MDP_BUILD_ID wins', function () {
    assert.match(compiledBuildId(dist), /^\d+\.\d+\.\d+-[0-9a-f]{10}$/);
    const config = loadStreamingConfig({ env: { MDP_BUILD_ID: '1.2.3-ci42' } });
    assert.equal(buildIdOf(config), '1.2.3-ci42');
    assert.match(buildIdOf(loadStreamingConfig({ env: {} })), /^\d+\.\d+\.\d+-[0-9a-f]{10}$/, "this checkout's compiled code");
  });
});
