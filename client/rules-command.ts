import { resolve } from 'node:path';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { checkRulesFile } from '../pipeline/inference/rules/index.js';
import type { RulesError } from '../pipeline/inference/rules/index.js';
import { rulesLoadOptions } from '../workers/adapters.js';
import { parseOutput } from './output-format.js';

/** Options of `mdp rules check`. */
export interface RulesCheckOptions {
  /** The rules file; default `inference.adapters.rules.file` of the config. */
  readonly file?: string | undefined;
  /** `-o`: `text` (default) or `json`. */
  readonly output?: string | undefined;
}

/** One problem of a rules file as `-o json` prints it. */
export interface RulesProblem {
  readonly file: string;
  /** 1-based; absent when the problem is about the whole file (unreadable, too large). */
  readonly line?: number;
  readonly column?: number;
  readonly code: RulesError['code'];
  readonly rule?: string;
  readonly key?: string;
  readonly message: string;
}

/** What `mdp rules check` found. */
export interface RulesCheckReport {
  readonly file: string;
  /** Rules that passed. */
  readonly ok: number;
  readonly problems: readonly RulesProblem[];
}

/**
 * `mdp rules check [FILE]`: checks a rules file the way the worker loads it (same features, same
 * limits, same words) and reports every problem at once as `file:line:column: message`, then a
 * summary line. Returns the exit code: 2 when the file has a problem (it is the user's input),
 * 0 when every rule is good.
 *
 * @example
 * const code = rulesCheck(config, { file: 'configs/rules.yaml' }, (text) => process.stdout.write(text));
 */
export function rulesCheck(config: StreamingConfig, options: RulesCheckOptions, write: (text: string) => void): number {
  const output = parseOutput(options.output, ['text', 'json']);
  const file = options.file ?? resolve(config.inference.adapters.rules.file);
  const report = checkRules(file, config);
  if (output === 'json') write(JSON.stringify(report) + '\n');
  else {
    for (const p of report.problems) write(`${formatProblem(p)}\n`);
    write(`${summary(report)}\n`);
  }
  return report.problems.length > 0 ? 2 : 0;
}

/** Checks `file` with the worker's load options. */
export function checkRules(file: string, config: StreamingConfig): RulesCheckReport {
  const check = checkRulesFile(file, rulesLoadOptions(config));
  const problems = check.problems.map((e): RulesProblem => {
    const place = e.position ? { line: e.position.line, column: e.position.column } : {};
    return {
      file: e.file,
      ...place,
      code: e.code,
      ...(e.rule !== undefined ? { rule: e.rule } : {}),
      ...(e.key !== undefined ? { key: e.key } : {}),
      message: e.detail,
    };
  });
  return { file, ok: check.rules.length, problems };
}

/** `file:line:column: message`, the shape compilers and linters use, so editors can jump to it. */
export function formatProblem(problem: RulesProblem): string {
  const place = problem.line === undefined ? '' : `:${problem.line}:${problem.column ?? 1}`;
  return `${problem.file}${place}: ${problem.message}`;
}

function summary(report: RulesCheckReport): string {
  const rules = (n: number) => `${n} rule${n === 1 ? '' : 's'}`;
  if (report.problems.length === 0) return `${rules(report.ok)} OK`;
  const n = report.problems.length;
  return `${n} problem${n === 1 ? '' : 's'} in ${report.file} (${rules(report.ok)} OK)`;
}
