import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadRulesFile, RulesError } from '../../pipeline/inference/rules/index.js';
import { rulesLoadOptions } from '../../workers/adapters.js';
import { REPO_ROOT, testConfig, uniqueTag } from '../helpers/services.js';
import { runNodeScript, writeConfigFile } from '../helpers/worker-process.js';

const CLI = resolve(REPO_ROOT, 'dist/client/cli.js');

/** One good rule, then three bad ones, each bad in its own way; the comments move them off line 1. */
const BAD_RULES = `# rules with three problems
- name: fine
  condition: "momentum > 0.01"
  signal: 1.0
  score: 0.8

- name: bad_syntax
  condition: "rsi >> 70"
  signal: 1.0
  score: 0.5

- name: bad_variable
  condition: 'momentum > 0.0 && nope < 1.0'
  signal: 1.0
  score: 0.5

- name: bad_score
  condition: "rsi > 70"
  signal: 1.0
  score: 1.5
`;

function rulesFile(name: string, text: string): string {
  const dir = resolve(REPO_ROOT, '.data/test');
  mkdirSync(dir, { recursive: true });
  const file = resolve(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('mdp rules check', function () {
  this.timeout(60_000);
  const tag = uniqueTag('rules');
  const config = testConfig(tag);
  const configFile = writeConfigFile(config, tag);

  it('reports all three bad rules with file:line:column, and exits 2', async function () {
    const file = rulesFile(`${tag}-bad.yaml`, BAD_RULES);
    const result = await runNodeScript(CLI, ['rules', 'check', file, '--config', configFile]);
    assert.equal(result.code, 2, result.stderr);
    const lines = result.stdout.trimEnd().split('\n');
    // Line 8: `  condition: "rsi >> 70"`, the second ">" is column 19.
    assert.match(lines[0] ?? '', new RegExp(`^${file}:8:19: rule "bad_syntax": condition "rsi >> 70": syntax error`));
    // Line 13: `  condition: 'momentum > 0.0 && nope < 1.0'`, "nope" starts at column 33.
    assert.match(lines[1] ?? '', new RegExp(`^${file}:13:33: rule "bad_variable": condition .*unknown variable "nope"`));
    // Line 20: `  score: 1.5`, the value at column 10.
    assert.match(lines[2] ?? '', new RegExp(`^${file}:20:10: rule "bad_score": score: must be a number between 0 and 1 \\(got 1\\.5\\)`));
    assert.equal(lines[3], `3 problems in ${file} (1 rule OK)`);
    assert.equal(lines.length, 4);
  });

  it('-o json lists the problems with their positions and codes', async function () {
    const file = rulesFile(`${tag}-bad.yaml`, BAD_RULES);
    const result = await runNodeScript(CLI, ['rules', 'check', file, '-o', 'json', '--config', configFile]);
    assert.equal(result.code, 2);
    const report = JSON.parse(result.stdout) as { ok: number; problems: { line: number; column: number; code: string; rule: string }[] };
    assert.equal(report.ok, 1);
    assert.deepEqual(
      report.problems.map((p) => [p.line, p.column, p.code, p.rule]),
      [
        [8, 19, 'RULE_SYNTAX', 'bad_syntax'],
        [13, 33, 'RULE_UNKNOWN_VARIABLE', 'bad_variable'],
        [20, 10, 'RULES_INVALID', 'bad_score'],
      ],
    );
  });

  it('the worker refuses the same file naming the first problem in the same words, and counts the rest', function () {
    const file = rulesFile(`${tag}-bad.yaml`, BAD_RULES);
    const err = (() => {
      try {
        loadRulesFile(file, rulesLoadOptions(config));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof RulesError);
    assert.equal(err.code, 'RULE_SYNTAX');
    assert.deepEqual(err.position, { line: 8, column: 19 });
    assert.match(err.message, /\(and 2 more problems in the file: mdp rules check .* lists them all\)$/);
  });

  it('a good file (the shipped rules) exits 0 with a one-line summary', async function () {
    const result = await runNodeScript(CLI, ['rules', 'check', resolve(REPO_ROOT, 'configs/rules.yaml'), '--config', configFile]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.equal(result.stdout, '5 rules OK\n');
  });

  it('a missing file and a bad -o are the user input: exit 2 naming them', async function () {
    const missing = await runNodeScript(CLI, ['rules', 'check', resolve(REPO_ROOT, '.data/test/no-such-rules.yaml'), '--config', configFile]);
    assert.equal(missing.code, 2);
    assert.match(missing.stdout, /no-such-rules\.yaml: file not found/);
    const output = await runNodeScript(CLI, ['rules', 'check', resolve(REPO_ROOT, 'configs/rules.yaml'), '-o', 'yaml', '--config', configFile]);
    assert.equal(output.code, 2);
    assert.match(output.stderr, /^mdp: --output must be one of text, json \(got "yaml"\)$/m);
  });
});
