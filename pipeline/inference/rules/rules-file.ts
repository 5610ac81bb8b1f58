import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import yaml from 'js-yaml';
import { parseDurationMs } from '../../contracts/index.js';
import { checkCondition } from './condition-checker.js';
import { LineIndex } from './line-index.js';
import type { Rule, RuleMode, RuleSet } from './rule-set.js';
import { RULE_MODES } from './rule-set.js';
import { RulesError } from './rules-error.js';
import type { RulesErrorCode, RulesFilePosition } from './rules-error.js';

/** The canonical feature names every snapshot carries (spec §7.1); the default `knownFeatures`. */
export const CANONICAL_FEATURES = ['vwap', 'returns', 'volatility', 'momentum', 'rsi', 'skewness', 'kurtosis', 'price', 'volume'] as const;

/**
 * Default most rules a file may hold. Loading runs on the worker's event loop (about 0.1 ms per rule,
 * mostly CEL parsing), so 10,000 rules hold it for about a second, well inside a heartbeat timeout.
 */
export const DEFAULT_MAX_RULES = 10_000;
/** Default largest rules file, in bytes: room for {@link DEFAULT_MAX_RULES} commented rules. */
export const DEFAULT_MAX_RULES_BYTES = 2 * 1024 * 1024;

export interface ParseRulesOptions {
  /**
   * Feature names a condition may use, each a CEL `double`: the canonical names plus the configured
   * window names (`vwap_1m`, `ret_30s`, …). Defaults to `CANONICAL_FEATURES`.
   */
  readonly knownFeatures?: readonly string[];
  /** Most rules the file may hold; more is refused (`RULES_TOO_LARGE`) before any is checked. Default {@link DEFAULT_MAX_RULES}. */
  readonly maxRules?: number;
}

export interface LoadRulesOptions extends ParseRulesOptions {
  /** Largest file, in bytes; a larger one is refused (`RULES_TOO_LARGE`) before it is read. Default {@link DEFAULT_MAX_RULES_BYTES}. */
  readonly maxBytes?: number;
}

const RULE_KEYS = ['name', 'condition', 'signal', 'score', 'mode', 'cooldown', 'window'] as const;
const REQUIRED_KEYS = ['name', 'condition', 'signal', 'score'] as const;
/** A feature named after its window (`vwap_1m`, `ret_30s`, `vol_5m`) carries its window label as suffix. */
const WINDOW_SUFFIX = /_(\d+(?:ms|s|m|h|d))$/;

/**
 * Reads and validates a rules file; `path` also labels errors and the rule set.
 *
 * @example
 * const rules = loadRulesFile('configs/rules.yaml', { knownFeatures: [...CANONICAL_FEATURES, 'vwap_1m'] });
 * const adapter = new RulesAdapter(rules);
 */
export function loadRulesFile(path: string, options: LoadRulesOptions = {}): RuleSet {
  return parseRules(readRulesText(path, options.maxBytes), path, options);
}

/**
 * Reads and checks a rules file like {@link loadRulesFile}, but returns every problem instead of
 * throwing the first: what `mdp rules check` reports. A file that cannot be read or parsed as YAML
 * has that one problem; otherwise each bad rule has one.
 */
export function checkRulesFile(path: string, options: LoadRulesOptions = {}): RulesCheck {
  let text: string;
  try {
    text = readRulesText(path, options.maxBytes);
  } catch (error) {
    if (!(error instanceof RulesError)) throw error;
    return { file: path, rules: [], problems: [error] };
  }
  return checkRules(text, path, options);
}

/** The text of a rules file, refused before it is read when larger than `maxBytes`. */
function readRulesText(path: string, maxBytes = DEFAULT_MAX_RULES_BYTES): string {
  try {
    const { size } = statSync(path);
    if (size > maxBytes) {
      const detail = `the file has ${size} bytes, more than the limit of ${maxBytes} (inference.adapters.rules.max_bytes)`;
      throw new RulesError(`${path}: ${detail}`, { code: 'RULES_TOO_LARGE', file: path, limit: maxBytes, detail });
    }
    return readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof RulesError) throw error;
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    const code: RulesErrorCode = missing ? 'RULES_FILE_NOT_FOUND' : 'RULES_READ';
    const detail = missing ? 'file not found' : `cannot read the file: ${(error as Error).message}`;
    throw new RulesError(`${path}: ${detail}`, { code, file: path, cause: error, detail });
  }
}

/**
 * Parses and validates the text of a rules file: a YAML list of
 * `{ name, condition, signal, score, mode?, cooldown?, window? }`. Every condition is parsed as CEL
 * and checked against `knownFeatures` here, so a rule that cannot work is refused with a
 * `RulesError` naming the file, the rule and the position instead of failing at evaluation.
 */
export function parseRules(text: string, fileLabel: string, options: ParseRulesOptions = {}): RuleSet {
  const { rules, problems, version } = checkRules(text, fileLabel, options);
  const [first] = problems;
  if (first !== undefined) {
    if (problems.length === 1) throw first;
    // The worker names the first problem in full and counts the rest; `mdp rules check` lists them all.
    const more = problems.length - 1;
    throw new RulesError(`${first.message} (and ${more} more problem${more === 1 ? '' : 's'} in the file: mdp rules check ${fileLabel} lists them all)`, {
      code: first.code,
      file: first.file,
      rule: first.rule,
      key: first.key,
      position: first.position,
      offset: first.offset,
      variable: first.variable,
      limit: first.limit,
      detail: first.detail,
      cause: first.cause,
    });
  }
  return Object.freeze({ file: fileLabel, version: version ?? '', rules: Object.freeze([...rules]) });
}

/** Every problem of a rules file at once, with the rules that passed: see {@link checkRules}. */
export interface RulesCheck {
  /** The label the file was checked under (usually its path). */
  readonly file: string;
  /** The rules that passed, in file order (a rule with a problem is left out). */
  readonly rules: readonly Rule[];
  /** One per bad rule, in file order; or the one problem that stopped the whole file (YAML, size, shape). */
  readonly problems: readonly RulesError[];
  /** The {@link RuleSet.version} the file would load as; absent when it could not be read. */
  readonly version?: string;
}

/**
 * Checks the text of a rules file like {@link parseRules}, collecting a problem per bad rule
 * instead of stopping at the first. Both `parseRules` (the worker) and `mdp rules check` run it,
 * so they report a rule in the same words.
 */
export function checkRules(text: string, fileLabel: string, options: ParseRulesOptions = {}): RulesCheck {
  const version = createHash('sha256').update(text).digest('hex').slice(0, 12);
  const known = new Set<string>(options.knownFeatures ?? CANONICAL_FEATURES);
  const fileProblem = (error: RulesError): RulesCheck => ({ file: fileLabel, rules: [], problems: [error], version });
  let loaded: ReturnType<typeof loadYaml>;
  try {
    loaded = loadYaml(text, fileLabel);
  } catch (error) {
    if (error instanceof RulesError) return fileProblem(error);
    throw error;
  }
  const { document, input, items } = loaded;
  const lines = new LineIndex(input);
  if (!Array.isArray(document)) {
    const detail = `expected a YAML list of rules, got ${describe(document)}`;
    return fileProblem(new RulesError(`${fileLabel}: ${detail}`, { code: 'RULES_INVALID', file: fileLabel, detail }));
  }
  const maxRules = options.maxRules ?? DEFAULT_MAX_RULES;
  if (document.length > maxRules) {
    const detail = `the file has ${document.length} rules, more than the limit of ${maxRules} (inference.adapters.rules.max_rules)`;
    return fileProblem(new RulesError(`${fileLabel}: ${detail}`, { code: 'RULES_TOO_LARGE', file: fileLabel, limit: maxRules, detail }));
  }
  const rules: Rule[] = [];
  const problems: RulesError[] = [];
  const seen = new Map<string, number>();
  document.forEach((item: unknown, index) => {
    const rule = validateRule(item, index, items[index], input, lines, fileLabel, known);
    if (rule instanceof RulesError) {
      problems.push(rule);
      return;
    }
    const previous = seen.get(rule.name);
    if (previous !== undefined) {
      const position = positionOf(lines, items[index]?.values.get('name') ?? items[index]?.start);
      const detail = `rule "${rule.name}": duplicate name (rule #${previous + 1} has it too; signals are keyed by name)`;
      problems.push(
        new RulesError(`${fileLabel}: ${detail}${at(position)}`, {
          code: 'RULE_DUPLICATE_NAME',
          file: fileLabel,
          rule: rule.name,
          key: 'name',
          position,
          detail,
        }),
      );
      return;
    }
    seen.set(rule.name, index);
    rules.push(rule);
  });
  return { file: fileLabel, rules, problems, version };
}

/** Where a list item and the values of its keys start in the YAML text (offsets into `input`). */
interface ItemLayout {
  readonly start: number;
  readonly values: ReadonlyMap<string, number>;
}

/** A node of the YAML document as seen by js-yaml's parse-event listener. */
interface YamlNode {
  result: unknown;
  start: number;
  readonly children: YamlNode[];
}

/**
 * Loads the YAML and, through js-yaml's parse-event listener, records where each list item and
 * each of its values starts, so errors can point at a line and column of the file.
 */
function loadYaml(text: string, file: string): { document: unknown; input: string; items: (ItemLayout | undefined)[] } {
  const stack: YamlNode[] = [{ result: undefined, start: 0, children: [] }];
  let input = text;
  let document: unknown;
  try {
    document = yaml.load(text, {
      filename: file,
      listener: (event, state) => {
        input = state.input; // js-yaml drops a BOM; offsets refer to its copy of the text
        if (event === 'open') {
          stack.push({ result: undefined, start: state.position, children: [] });
          return;
        }
        const node = stack.pop();
        const parent = stack[stack.length - 1];
        if (node === undefined || parent === undefined) return;
        node.result = state.result as unknown;
        node.start = skipBlanks(state.input, node.start);
        parent.children.push(node);
      },
    });
  } catch (error) {
    if (error instanceof yaml.YAMLException) {
      const position = { line: error.mark.line + 1, column: error.mark.column + 1 };
      const detail = `invalid YAML: ${error.reason}`;
      throw new RulesError(`${file}: ${detail}${at(position)}`, { code: 'RULES_YAML', file, position, cause: error, detail });
    }
    throw error;
  }
  const root = stack[0]?.children[0];
  const list = root === undefined ? [] : unwrap(root).children.map(unwrap);
  const items = Array.isArray(document) && list.length === document.length && list.every((node, i) => node.result === document[i]) ? list.map(itemLayout) : [];
  return { document, input, items };
}

/** js-yaml reports some nodes twice (a flow mapping inside a block list): keep the innermost. */
function unwrap(node: YamlNode): YamlNode {
  let current = node;
  while (current.children.length === 1 && current.children[0]?.result === current.result) current = current.children[0];
  return current;
}

/** Pairs the key and value nodes of one item; gives up on values (item start only) when they do not line up. */
function itemLayout(node: YamlNode): ItemLayout {
  const values = new Map<string, number>();
  const keys = isRecord(node.result) ? Object.keys(node.result) : [];
  const nodes = node.children.map(unwrap);
  if (nodes.length === keys.length * 2 && keys.every((key, i) => nodes[2 * i]?.result === key)) {
    keys.forEach((key, i) => values.set(key, nodes[2 * i + 1]?.start ?? node.start));
  }
  return { start: node.start, values };
}

function validateRule(
  item: unknown,
  index: number,
  layout: ItemLayout | undefined,
  input: string,
  lines: LineIndex,
  file: string,
  known: ReadonlySet<string>,
): Rule | RulesError {
  const itemPosition = positionOf(lines, layout?.start);
  if (!isRecord(item)) {
    const detail = `rule #${index + 1}: expected a mapping with name, condition, signal and score, got ${describe(item)}`;
    return new RulesError(`${file}: ${detail}${at(itemPosition)}`, { code: 'RULES_INVALID', file, position: itemPosition, detail });
  }
  const label = typeof item.name === 'string' && item.name.trim() !== '' ? `rule "${item.name}"` : `rule #${index + 1}`;
  const invalid = (key: string, reason: string): RulesError => {
    const position = positionOf(lines, layout?.values.get(key) ?? layout?.start);
    const detail = `${label}: ${key}: ${reason}`;
    return new RulesError(`${file}: ${detail}${at(position)}`, {
      detail,
      code: 'RULES_INVALID',
      file,
      rule: typeof item.name === 'string' ? item.name : undefined,
      key,
      position,
    });
  };

  // Unknown keys first: a misspelt `scroe` is better reported as itself than as a missing `score`.
  for (const key of Object.keys(item)) {
    if (!(RULE_KEYS as readonly string[]).includes(key)) return invalid(key, `unknown key (expected one of ${RULE_KEYS.join(', ')})`);
  }
  for (const key of REQUIRED_KEYS) {
    if (item[key] === null || item[key] === undefined) return invalid(key, 'missing');
  }
  const { name, condition, signal, score } = item;
  if (typeof name !== 'string' || name.trim() === '' || name.trim() !== name) {
    return invalid('name', `must be a non-empty string without surrounding spaces (got ${describe(name)})`);
  }
  if (typeof condition !== 'string' || condition.trim() === '') return invalid('condition', `must be a non-empty string (got ${describe(condition)})`);
  if (typeof signal !== 'number' || !Number.isFinite(signal)) return invalid('signal', `must be a finite number (got ${describe(signal)})`);
  if (typeof score !== 'number' || !Number.isFinite(score) || score < 0 || score > 1) {
    return invalid('score', `must be a number between 0 and 1 (got ${describe(score)})`);
  }
  let mode: RuleMode = 'edge';
  if (item.mode !== undefined) {
    if (!(RULE_MODES as readonly unknown[]).includes(item.mode)) return invalid('mode', `must be one of ${RULE_MODES.join(', ')} (got ${describe(item.mode)})`);
    mode = item.mode as RuleMode;
  }
  let cooldownMs = 0;
  if (item.cooldown !== undefined) {
    // A bare number would silently mean milliseconds; ask for the unit.
    const parsed = typeof item.cooldown === 'string' && /[a-z]\s*$/.test(item.cooldown) ? parseDurationMs(item.cooldown) : undefined;
    if (parsed === undefined || !Number.isFinite(parsed)) {
      return invalid('cooldown', `must be a duration with a unit such as "500ms", "30s", "5m" or "1h" (got ${describe(item.cooldown)})`);
    }
    cooldownMs = parsed;
  }
  let window: string | undefined;
  if (item.window !== undefined) {
    if (typeof item.window !== 'string' || item.window.trim() === '') return invalid('window', `must be a non-empty string (got ${describe(item.window)})`);
    window = item.window;
  }

  const checked = checkCondition(condition, known);
  if (!checked.ok) {
    const position = conditionPosition(input, lines, layout?.values.get('condition'), condition, checked.offset);
    const where = describeOffset(condition, checked.offset, position);
    const what =
      checked.kind === 'syntax'
        ? `syntax error ${where}: ${checked.reason}`
        : checked.kind === 'unknown-variable'
          ? `${checked.reason} ${where}; known features: ${[...known].sort().join(', ')}`
          : `${checked.reason} ${where}`;
    const code: RulesErrorCode = checked.kind === 'syntax' ? 'RULE_SYNTAX' : checked.kind === 'unknown-variable' ? 'RULE_UNKNOWN_VARIABLE' : 'RULE_TYPE';
    // The detail goes with a file position of its own, so it keeps only the column within the condition.
    const local = describeOffset(condition, checked.offset, undefined);
    const why =
      checked.kind === 'syntax'
        ? `syntax error ${local}: ${checked.reason}`
        : checked.kind === 'unknown-variable'
          ? `${checked.reason} ${local}; known features: ${[...known].sort().join(', ')}`
          : `${checked.reason} ${local}`;
    return new RulesError(`${file}: rule "${name}": condition ${JSON.stringify(condition)}: ${what}`, {
      detail: `rule "${name}": condition ${JSON.stringify(condition)}: ${why}`,
      code,
      file,
      rule: name,
      key: 'condition',
      position,
      offset: checked.offset,
      variable: checked.variable,
    });
  }
  window ??= windowOf(checked.variables);
  return Object.freeze({
    name,
    condition,
    signal,
    score,
    mode,
    cooldownMs,
    window,
    variables: Object.freeze([...checked.variables]),
    parsed: checked.parsed,
  });
}

function windowOf(variables: readonly string[]): string | undefined {
  for (const variable of variables) {
    const match = WINDOW_SUFFIX.exec(variable);
    if (match) return match[1];
  }
  return undefined;
}

/**
 * Maps an offset within a condition to the file. Only single-line plain or quoted scalars whose raw
 * text up to the offset equals the condition are mapped; escapes, folding or block scalars would
 * shift columns, so those report the offset within the condition instead.
 */
function conditionPosition(input: string, lines: LineIndex, valueStart: number | undefined, condition: string, offset: number): RulesFilePosition | undefined {
  if (valueStart === undefined) return undefined;
  const first = input[valueStart];
  if (first === '|' || first === '>') return undefined;
  const contentStart = first === '"' || first === "'" ? valueStart + 1 : valueStart;
  const raw = input.slice(contentStart, contentStart + offset);
  if (raw !== condition.slice(0, offset) || raw.includes('\n')) return undefined;
  return positionOf(lines, contentStart + offset);
}

/** `at line 17, column 19 (condition column 5)`, or just the condition column when unmapped. */
function describeOffset(condition: string, offset: number, position: RulesFilePosition | undefined): string {
  const before = condition.slice(0, offset);
  const lineInCondition = before.split('\n').length;
  const columnInCondition = offset - (before.lastIndexOf('\n') + 1) + 1;
  const local = lineInCondition > 1 ? `condition line ${lineInCondition}, column ${columnInCondition}` : `condition column ${columnInCondition}`;
  return position ? `at line ${position.line}, column ${position.column} (${local})` : `at ${local}`;
}

function positionOf(lines: LineIndex, offset: number | undefined): RulesFilePosition | undefined {
  return offset === undefined ? undefined : lines.position(offset);
}

function at(position: RulesFilePosition | undefined): string {
  return position ? ` at line ${position.line}, column ${position.column}` : '';
}

function skipBlanks(input: string, offset: number): number {
  let i = offset;
  while (i < input.length && (input[i] === ' ' || input[i] === '\t' || input[i] === '\r' || input[i] === '\n')) i += 1;
  return i;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return typeof value;
}
