/**
 * The layer rules of DESIGN.md are enforced by `npm run lint`; these tests run the repo's real
 * ESLint config on small snippets so a loosened rule fails here, not in review.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ESLint } from 'eslint';
import type { Linter } from 'eslint';

const REPO_ROOT = resolve(import.meta.dirname, '../../..');

describe('lint enforces the architecture', function () {
  // Type-aware linting loads the TypeScript project once (several seconds), then each snippet is fast.
  this.timeout(120_000);

  let eslint: ESLint;
  // A cycle needs files on disk (the rule reads the imported modules); they live under test/ so the
  // project's tsconfig covers them, and are created before the first lint loads the project.
  const fixtureDir = join(REPO_ROOT, 'test', 'unit', `lint-cycle-fixture-${randomUUID()}`);

  before(() => {
    mkdirSync(fixtureDir);
    writeFileSync(join(fixtureDir, 'a.ts'), "import { b } from './b.js';\nimport { c } from './c.js';\n\nexport const a = (): number => b + c;\n");
    writeFileSync(join(fixtureDir, 'b.ts'), "import { a } from './a.js';\n\nexport const b = 1;\nexport const callA = (): number => a();\n");
    writeFileSync(join(fixtureDir, 'c.ts'), "import type { a } from './a.js';\n\nexport const c = 2;\nexport type A = typeof a;\n");
    eslint = new ESLint({ cwd: REPO_ROOT });
  });
  after(() => rmSync(fixtureDir, { recursive: true, force: true }));

  /** Lints `code` as if it were the repo file `file` (an existing file, so the TypeScript project knows it). */
  async function lintAs(file: string, code: string): Promise<Linter.LintMessage[]> {
    const [result] = await eslint.lintText(code, { filePath: join(REPO_ROOT, file) });
    return result.messages;
  }

  const layerErrors = (messages: Linter.LintMessage[]) => messages.filter((m) => m.ruleId === 'mdp/layer-imports').map((m) => m.message);

  async function assertRejected(file: string, code: string, expected: RegExp): Promise<void> {
    const errors = layerErrors(await lintAs(file, code));
    assert.equal(errors.length, 1, `${file} should reject:\n${code}\ngot: ${JSON.stringify(errors)}`);
    assert.match(errors[0], expected);
  }

  async function assertClean(file: string, code: string): Promise<void> {
    const messages = await lintAs(file, code);
    assert.deepEqual(
      messages.map((m) => `${m.ruleId}: ${m.message}`),
      [],
      `${file} should accept:\n${code}`,
    );
  }

  describe('pipeline/ is pure', () => {
    for (const [source, reason] of [
      ['@temporalio/activity', /Temporal belongs to/],
      ['kysely', /SQL belongs to store/],
      ['pg', /SQL belongs to store/],
      ['../../store/index.js', /must not depend on/],
      ['../../activities/index.js', /must not depend on/],
    ] as const) {
      it(`rejects ${source}`, async () => {
        await assertRejected('pipeline/windowing/index.ts', `import * as m from '${source}';\nexport const x = m;\n`, reason);
      });
    }

    it('keeps bus clients inside pipeline/bus/', async () => {
      await assertRejected('pipeline/windowing/index.ts', "import { Redis } from 'ioredis';\nexport const R = Redis;\n", /bus clients belong to pipeline\/bus/);
      const inBus = await lintAs('pipeline/bus/index.ts', "import { Redis } from 'ioredis';\nexport const R = Redis;\n");
      assert.deepEqual(layerErrors(inBus), []);
      await assertRejected('pipeline/bus/index.ts', "import { sql } from 'kysely';\nexport const s = sql;\n", /SQL belongs to store/);
    });

    it('lets the contracts workflows import reach nothing but contracts', async () => {
      await assertRejected(
        'pipeline/contracts/index.ts',
        "import { createHash } from 'node:crypto';\nexport const h = createHash;\n",
        /workflows import this file/,
      );
    });
  });

  describe('workflows/ is an allow-list', () => {
    for (const [what, code, reason] of [
      ['a Node built-in', "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n", /deterministic/],
      ['a bare built-in name', "import * as path from 'path';\nexport const p = path;\n", /deterministic/],
      ['an I/O client', "import { Redis } from 'ioredis';\nexport const R = Redis;\n", /deterministic/],
      ['datasets (pulls node:fs)', "import * as datasets from '../pipeline/datasets/index.js';\nexport const d = datasets;\n", /deterministic/],
      ['a value from activities', "import { createActivities } from '../activities/index.js';\nexport const c = createActivities;\n", /use `import type`/],
      [
        'inline type specifiers, which still load the module',
        "import { type Activities } from '../activities/index.js';\nexport type A = Activities;\n",
        /write `import type/,
      ],
      ['a dynamic import', "export const load = (): Promise<unknown> => import('../store/index.js');\n", /deterministic/],
      ['a re-export', "export * from '../pipeline/bus/index.js';\n", /deterministic/],
    ] as const) {
      it(`rejects ${what}`, async () => {
        await assertRejected('workflows/index.ts', code, reason);
      });
    }

    it('accepts the Temporal workflow API, the contracts and activity types', async () => {
      await assertClean(
        'workflows/index.ts',
        [
          "import { proxyActivities } from '@temporalio/workflow';",
          "import * as contracts from '../pipeline/contracts/index.js';",
          "import type { Activities } from '../activities/index.js';",
          "export type { Activities } from '../activities/index.js';",
          '',
          'export const acts = proxyActivities<Activities>({ startToCloseTimeout: 1000 });',
          'export const c = contracts;',
          '',
        ].join('\n'),
      );
    });
  });

  describe('store/ and activities/ point down', () => {
    it('rejects Temporal and upper layers in store/', async () => {
      await assertRejected('store/index.ts', "import { Client } from '@temporalio/client';\nexport const C = Client;\n", /Temporal belongs to/);
      await assertRejected('store/index.ts', "import * as a from '../activities/index.js';\nexport const x = a;\n", /must not depend on/);
    });

    it('rejects client/ and workers/ in activities/', async () => {
      await assertRejected('activities/index.ts', "import * as w from '../workers/wiring.js';\nexport const x = w;\n", /must not depend on/);
      await assertRejected('activities/index.ts', "import * as c from '../client/cli.js';\nexport const x = c;\n", /must not depend on/);
    });
  });

  // Last: linting a snippet as a file replaces that file in the type checker's project, and
  // activities/ and its imports are what the workflows tests above need intact.
  describe('@stoqey/ib stays in pipeline/producers/ibkr/', () => {
    it('keeps the IB API client inside pipeline/producers/ibkr/', async () => {
      const code = "import { IBApi } from '@stoqey/ib';\nexport const I = IBApi;\n";
      await assertRejected('pipeline/producers/seeded-random.ts', code, /IB API client belongs to pipeline\/producers\/ibkr/);
      await assertRejected('activities/index.ts', code, /IB API client belongs to pipeline\/producers\/ibkr/);
      await assertRejected('client/cli.ts', code, /IB API client belongs to pipeline\/producers\/ibkr/);
      assert.deepEqual(layerErrors(await lintAs('pipeline/producers/ibkr/pacer.ts', code)), []);
      await assertRejected(
        'pipeline/producers/ibkr/pacer.ts',
        "import { Redis } from 'ioredis';\nexport const R = Redis;\n",
        /bus clients belong to pipeline\/bus/,
      );
    });
  });

  describe('import cycles', () => {
    it('reports a value-import cycle and ignores a type-only one', async () => {
      const results = await eslint.lintFiles([join(fixtureDir, 'b.ts'), join(fixtureDir, 'c.ts')]);
      const cycles = (name: string) => results.find((r) => r.filePath.endsWith(name))!.messages.filter((m) => m.ruleId === 'import-x/no-cycle');
      assert.equal(cycles('b.ts').length, 1, 'b.ts imports a.ts, which imports b.ts');
      assert.deepEqual(cycles('c.ts'), [], 'c.ts imports a.ts as a type only');
    });
  });

  describe('library code logs through the injected logger', () => {
    const consoleErrors = (messages: Linter.LintMessage[]) => messages.filter((m) => m.ruleId === 'no-console');
    for (const file of ['pipeline/bus/redis-bus.ts', 'activities/shard-consumer.ts', 'store/db.ts', 'workers/wiring.ts']) {
      it(`rejects console.* in ${file}`, async () => {
        const messages = await lintAs(file, "export function f(err: Error): void {\n  console.error('failed', err);\n}\n");
        assert.equal(consoleErrors(messages).length, 1, JSON.stringify(messages));
      });
    }

    it('lets the CLI print, and the repo has no console.* left in library code', async () => {
      assert.deepEqual(consoleErrors(await lintAs('client/progress.ts', "export function f(): void {\n  console.log('done');\n}\n")), []);
      // Only the files that mention the console need linting (the others cannot break the rule).
      const mentioning = ['pipeline', 'activities', 'store', 'workers', 'workflows']
        .flatMap((dir) => readdirSync(join(REPO_ROOT, dir), { recursive: true, encoding: 'utf8' }).map((f) => join(REPO_ROOT, dir, f)))
        .filter((f) => f.endsWith('.ts') && readFileSync(f, 'utf8').includes('console.'));
      assert.ok(
        mentioning.some((f) => f.endsWith('workers/worker.ts')),
        'the worker entrypoint prints its fatal error',
      );
      const results = await eslint.lintFiles(mentioning);
      const found = results.flatMap((r) => consoleErrors(r.messages).map((m) => `${r.filePath}:${m.line}`));
      assert.deepEqual(found, []);
    });
  });
});
