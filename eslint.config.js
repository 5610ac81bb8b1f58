// One linter for the repo: typescript-eslint with type information, so promise misuse is caught.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cache/**', '.data/**', 'eslint.config.js'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      'no-eval': 'error',
      'no-new-func': 'error',
    },
  },
  {
    // Workflow code is replayed by Temporal and must stay deterministic: no Node built-ins, no I/O clients.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:*', 'fs', 'net', 'http', 'child_process', 'crypto', 'os', 'path'], message: 'workflows must be deterministic: no Node built-ins' },
          { group: ['ioredis', 'pg', 'kysely', 'prom-client', '../store/*', '../pipeline/bus/*', '../activities/*'], allowTypeImports: true, message: 'workflows must not do I/O; import activity types only' },
        ],
      }],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-unused-expressions': 'off' },
  },
);
