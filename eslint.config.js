// One linter for the repo: typescript-eslint with type information, so promise misuse is caught,
// plus the layer rules of DESIGN.md ("enforced by lint, not by memory").
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';
import mdp from './scripts/lint/layer-imports.js';

// Patterns of `mdp/layer-imports`: `/dir/**` is a repo path (resolved from the importing file),
// `node:*` any Node built-in (bare `fs` included), anything else a package and its subpaths.
const TEMPORAL = { patterns: ['@temporalio/*'], reason: 'Temporal belongs to activities/, workflows/, workers/ and client/' };
const SQL = { patterns: ['kysely', 'pg'], reason: 'SQL belongs to store/' };
const BUS_CLIENTS = { patterns: ['ioredis', '@platformatic/kafka'], reason: 'bus clients belong to pipeline/bus/, behind the Bus interface' };
const IB_CLIENT = { patterns: ['@stoqey/ib'], reason: 'the IB API client belongs to pipeline/producers/ibkr/, behind IbSession' };
const upper = (layer, dirs) => ({ patterns: dirs.map((d) => `/${d}/**`), reason: `${layer} sits below ${dirs.join('/, ')}/ and must not depend on them` });

const PIPELINE_DENY = [TEMPORAL, SQL, upper('pipeline/', ['store', 'activities', 'workflows', 'workers', 'client'])];

const layer = (files, options, ignores = []) => ({ files, ignores, rules: { 'mdp/layer-imports': ['error', options] } });

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cache/**', '.data/**', 'eslint.config.js', 'scripts/lint/**'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { mdp, 'import-x': importX },
    settings: {
      // import-x reads only .js files by default; ours are .ts, imported with `.js` specifiers that this resolver maps as tsc does.
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: import.meta.dirname })],
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      'no-eval': 'error',
      'no-new-func': 'error',
      // A value-import cycle makes module initialisation order-dependent (a `const` read before it is set);
      // `import type` cycles are erased by tsc and ignored by the rule.
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
  // Workflow code is replayed by Temporal and must stay deterministic: an allow-list, so a new
  // dependency is a decision, not an accident. Activities are reached through proxyActivities.
  layer(['workflows/**/*.ts'], {
    layer: 'workflows/',
    allow: [
      { patterns: ['@temporalio/workflow'] },
      // Deterministic helpers the workflow bundle carries anyway (search attribute keys).
      { patterns: ['@temporalio/common'] },
      { patterns: ['/workflows/**'] },
      { patterns: ['/pipeline/contracts/index.js'] },
      // Import-free chunk arithmetic shared with the replay and backfill activities (see their headers).
      { patterns: ['/pipeline/datasets/replay-range.js'] },
      { patterns: ['/pipeline/datasets/backfill-range.js'] },
      {
        patterns: ['/activities/**'],
        typeOnly: true,
        reason: 'activities do I/O outside the workflow sandbox; use `import type` and call them through proxyActivities',
      },
    ],
    notAllowedReason:
      'workflow code is replayed and must be deterministic with no I/O (no Node built-ins, clients or non-contract pipeline modules); allowed: @temporalio/workflow, @temporalio/common, workflows/, pipeline/contracts/index.js, pipeline/datasets/replay-range.js, pipeline/datasets/backfill-range.js, `import type` from activities/',
  }),
  // The modules workflows may import must stay as pure as workflows themselves.
  layer(['pipeline/contracts/**/*.ts', 'pipeline/datasets/replay-range.ts', 'pipeline/datasets/backfill-range.ts'], {
    layer: 'workflow-reachable pipeline code',
    deny: PIPELINE_DENY,
    allow: [{ patterns: ['/pipeline/contracts/**'] }],
    notAllowedReason: 'workflows import this file, so it may import only pipeline/contracts/ (no Node built-ins, packages or other pipeline modules)',
  }),
  // pipeline/ is the pure engine: no SQL, no Temporal, no upper layers; bus clients only in pipeline/bus/.
  // The IB API client only in pipeline/producers/ibkr/.
  layer(['pipeline/bus/**/*.ts'], { layer: 'pipeline/', deny: [...PIPELINE_DENY, IB_CLIENT] }),
  layer(['pipeline/producers/ibkr/**/*.ts'], { layer: 'pipeline/', deny: [...PIPELINE_DENY, BUS_CLIENTS] }),
  layer(['pipeline/**/*.ts'], { layer: 'pipeline/', deny: [...PIPELINE_DENY, BUS_CLIENTS, IB_CLIENT] }, [
    'pipeline/bus/**',
    'pipeline/producers/ibkr/**',
    'pipeline/contracts/**',
    'pipeline/datasets/replay-range.ts',
    'pipeline/datasets/backfill-range.ts',
  ]),
  layer(['store/**/*.ts'], { layer: 'store/', deny: [TEMPORAL, IB_CLIENT, upper('store/', ['activities', 'workflows', 'workers', 'client'])] }),
  layer(['activities/**/*.ts'], { layer: 'activities/', deny: [IB_CLIENT, upper('activities/', ['workflows', 'workers', 'client'])] }),
  layer(['workers/**/*.ts', 'client/**/*.ts'], { layer: 'workers/ and client/', deny: [IB_CLIENT] }),
  // Library code logs through the injected logger (pipeline/telemetry), never the console: one JSON
  // shape, one level filter, passwords masked. Process entrypoints print their fatal error (and
  // store/migrate-cli.ts its output); client/, bench/ and test/ print to people.
  {
    files: ['pipeline/**/*.ts', 'activities/**/*.ts', 'store/**/*.ts', 'workers/**/*.ts', 'workflows/**/*.ts'],
    ignores: ['store/migrate-cli.ts'],
    rules: { 'no-console': ['error'] },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-unused-expressions': 'off' },
  },
);
