import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FeatureSnapshot, SignalEventV1 } from '../../pipeline/contracts/index.js';
import {
  CANONICAL_FEATURES,
  DEFAULT_MAX_RULES,
  DEFAULT_MAX_RULES_BYTES,
  RulesAdapter,
  RulesError,
  loadRulesFile,
  parseRules,
} from '../../pipeline/inference/rules/index.js';
import type { RuleEvaluationError, RuleSet, RulesErrorCode } from '../../pipeline/inference/rules/index.js';
import { SeededRandom } from '../../pipeline/producers/index.js';
import { loadStreamingConfig } from '../../pipeline/config/index.js';
import { createLogger, createMetrics } from '../../pipeline/telemetry/index.js';
import { adapterFactory } from '../../workers/adapters.js';
import { manyRulesText } from '../helpers/rules-text.js';

// dist/test/unit/ → repo root
const SHIPPED = fileURLToPath(new URL('../../../configs/rules.yaml', import.meta.url));
const SHIPPED_CONFIG = fileURLToPath(new URL('../../../configs/streaming.yaml', import.meta.url));
const LABEL = 'configs/rules.yaml';
const FEATURES = [...CANONICAL_FEATURES, 'vwap_1m', 'ret_30s', 'vol_5m'];
const T0 = Date.UTC(2025, 9, 24, 14, 2, 0);

/** Asserts `fn` throws a RulesError with `code` and returns it for further checks. */
function rulesError(fn: () => unknown, code: RulesErrorCode): RulesError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof RulesError, `expected RulesError, got ${String(err)}`);
    assert.equal(err.name, 'RulesError');
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected a RulesError ${code}`);
}

/** A rules file with one rule; `extra` lines are appended to the rule's mapping. */
function oneRule(condition: string, ...extra: string[]): string {
  return ['- name: "r"', `  condition: ${JSON.stringify(condition)}`, '  signal: 1.0', '  score: 0.5', ...extra.map((line) => `  ${line}`)].join('\n') + '\n';
}

function rules(text: string): RuleSet {
  return parseRules(text, 'test.yaml', { knownFeatures: FEATURES });
}

/** A snapshot of SPY at `T0 + offsetMs` (2 s bars) with the given feature values. */
function snapshot(offsetMs: number, values: Record<string, number | null>, overrides: Partial<FeatureSnapshot> = {}): FeatureSnapshot {
  const tsMs = T0 + offsetMs;
  return {
    ver: 1,
    provider: 'synthetic',
    symbol: 'SPY',
    interval: '2s',
    ts: new Date(tsMs).toISOString().replace('.000Z', 'Z'),
    tsMs,
    price: 425.15,
    values,
    windows: {},
    ...overrides,
  };
}

/** Runs `values` as 2-second snapshots and returns, per snapshot, the names that fired. */
function fired(adapter: RulesAdapter, sequence: readonly Record<string, number | null>[], stepMs = 2000): string[][] {
  return sequence.map((values, i) => adapter.evaluateSync(snapshot(i * stepMs, values)).map((s) => s.name));
}

describe('rules file', () => {
  it('loads the shipped configs/rules.yaml: the five spec rules, edge mode, no cooldown, content-hash version', () => {
    const set = loadRulesFile(SHIPPED);
    assert.equal(set.file, SHIPPED);
    assert.equal(set.version, createHash('sha256').update(readFileSync(SHIPPED)).digest('hex').slice(0, 12));
    assert.match(set.version, /^[0-9a-f]{12}$/);
    assert.deepEqual(
      set.rules.map(({ name, condition, signal, score, mode, cooldownMs, window, variables }) => ({
        name,
        condition,
        signal,
        score,
        mode,
        cooldownMs,
        window,
        variables,
      })),
      [
        {
          name: 'price_momentum_up',
          condition: 'momentum > 0.01',
          signal: 1,
          score: 0.8,
          mode: 'edge',
          cooldownMs: 0,
          window: undefined,
          variables: ['momentum'],
        },
        {
          name: 'price_momentum_down',
          condition: 'momentum < -0.01',
          signal: -1,
          score: 0.8,
          mode: 'edge',
          cooldownMs: 0,
          window: undefined,
          variables: ['momentum'],
        },
        {
          name: 'high_volatility',
          condition: 'volatility > 0.3',
          signal: 0,
          score: 0.9,
          mode: 'edge',
          cooldownMs: 0,
          window: undefined,
          variables: ['volatility'],
        },
        { name: 'rsi_overbought', condition: 'rsi > 70', signal: -1, score: 0.7, mode: 'edge', cooldownMs: 0, window: undefined, variables: ['rsi'] },
        { name: 'rsi_oversold', condition: 'rsi < 30', signal: 1, score: 0.7, mode: 'edge', cooldownMs: 0, window: undefined, variables: ['rsi'] },
      ],
    );
  });

  it('changes the version when the file text changes', () => {
    assert.notEqual(rules(oneRule('rsi > 70')).version, rules(oneRule('rsi > 71')).version);
    assert.equal(rules(oneRule('rsi > 70')).version, rules(oneRule('rsi > 70')).version);
  });

  it('reads mode, cooldown and window, and derives the window from the first window-named feature', () => {
    const set = rules(
      [
        oneRule('rsi > 70', 'mode: level', 'cooldown: "30s"', 'window: "14 bars"'),
        oneRule('rsi < 30 && vwap_1m > vwap && ret_30s > 0.0').replace('"r"', '"derived"'),
        oneRule('ret_30s > 0.0 && vwap_1m > vwap').replace('"r"', '"first"'),
        oneRule('momentum > 0.0', 'cooldown: 500ms').replace('"r"', '"canonical"'),
      ].join('\n'),
    );
    const [explicit, derived, first, canonical] = set.rules;
    assert.deepEqual([explicit?.mode, explicit?.cooldownMs, explicit?.window], ['level', 30_000, '14 bars']);
    assert.deepEqual([derived?.window, derived?.variables], ['1m', ['rsi', 'vwap_1m', 'vwap', 'ret_30s']]);
    assert.equal(first?.window, '30s');
    assert.deepEqual([canonical?.mode, canonical?.cooldownMs, canonical?.window], ['edge', 500, undefined]);
  });

  it('refuses a syntax error, naming the rule, the file and the position in the file', () => {
    const text = readFileSync(SHIPPED, 'utf8').replace('"rsi > 70"', '"rsi >> 70"');
    const err = rulesError(() => parseRules(text, LABEL), 'RULE_SYNTAX');
    const lines = text.split('\n');
    const line = lines.findIndex((l) => l.includes('rsi >> 70')) + 1;
    // `rsi` parses; the parser cannot go on at the first `>` (offset 4), whose operand would be `> 70`.
    const column = (lines[line - 1] ?? '').indexOf('rsi >> 70') + 1 + 4;
    assert.equal(err.file, LABEL);
    assert.equal(err.rule, 'rsi_overbought');
    assert.equal(err.key, 'condition');
    assert.equal(err.offset, 4);
    assert.deepEqual(err.position, { line, column });
    assert.ok(
      err.message.startsWith(`${LABEL}: rule "rsi_overbought": condition "rsi >> 70": syntax error at line ${line}, column ${column} (condition column 5)`),
      err.message,
    );
  });

  it('maps positions in plain and single-quoted scalars, and falls back to the condition offset for block scalars', () => {
    // The error is at the first `&` of `&&&` (condition offset 9).
    const plain = rulesError(() => rules('- name: p\n  condition: rsi > 70 &&& rsi < 80\n  signal: 1\n  score: 0.1\n'), 'RULE_SYNTAX');
    assert.deepEqual(plain.position, { line: 2, column: 14 + 9 });
    const quoted = rulesError(() => rules("- {name: q, signal: 1, score: 0.1,\n   condition: 'rsi > 70 &&& rsi < 80'}\n"), 'RULE_SYNTAX');
    assert.deepEqual(quoted.position, { line: 2, column: 16 + 9 });
    const block = rulesError(() => rules('- name: b\n  signal: 1\n  score: 0.1\n  condition: |\n    rsi > 70 &&\n    rsi <> 80\n'), 'RULE_SYNTAX');
    assert.equal(block.position, undefined);
    assert.equal(block.offset, 16);
    assert.match(block.message, /rule "b": condition "rsi > 70 &&\\nrsi <> 80\\n": syntax error at condition line 2, column 5/);
  });

  it('refuses an unknown feature, naming the variable, the rule and the known features', () => {
    const text = readFileSync(SHIPPED, 'utf8').replace('"momentum > 0.01"', '"momentun > 0.01"');
    const err = rulesError(() => parseRules(text, LABEL), 'RULE_UNKNOWN_VARIABLE');
    assert.equal(err.variable, 'momentun');
    assert.equal(err.rule, 'price_momentum_up');
    assert.match(
      err.message,
      /^configs\/rules\.yaml: rule "price_momentum_up": condition "momentun > 0\.01": unknown variable "momentun" at line \d+, column \d+ \(condition column 1\); known features: kurtosis, momentum,/,
    );
    // A configured window is unknown unless the caller passes it in.
    assert.equal(rulesError(() => parseRules(oneRule('vwap_1m > vwap'), LABEL), 'RULE_UNKNOWN_VARIABLE').variable, 'vwap_1m');
    assert.equal(rules(oneRule('vwap_1m > vwap')).rules.length, 1);
    // The first unknown identifier in the text is the one reported.
    assert.equal(rulesError(() => rules(oneRule('rsi > 1.0 && foo > bar')), 'RULE_UNKNOWN_VARIABLE').variable, 'foo');
  });

  it('never evaluates host code: JavaScript names and calls are unknown identifiers or unsupported', () => {
    for (const [condition, variable] of [
      ['process.exit(1)', 'process'],
      ['constructor', 'constructor'],
      ['__proto__ == null', '__proto__'],
      ['this.constructor("return process") != null', 'this'],
      ['globalThis.process.exit(1) == null', 'globalThis'],
      ['require("child_process") != null', undefined],
      ['eval("1") == 1', undefined],
    ] as const) {
      const err = rulesError(() => rules(oneRule(condition)), variable === undefined ? 'RULE_TYPE' : 'RULE_UNKNOWN_VARIABLE');
      assert.equal(err.variable, variable, err.message);
    }
    for (const [condition, reason] of [
      ['rsi.toString() == "1"', /method calls are not supported \("\.toString\(\)"\)/],
      ['rsi.exit(1) > 0', /method calls are not supported/],
      ['has(rsi.x)', /has\(\) macro is not supported/],
      ['rsi.x > 1', /field selection "\.x" is not supported/],
      ['[rsi].exists(x, x > 1.0)', /macros \(all, exists, map, filter, …\) are not supported/],
      ['[rsi][0] > 1.0', /lists are not supported/],
      ['{"a": rsi}["a"] > 1.0', /unsupported function|maps and messages are not supported|string literals/],
      ['size("abc") > 1', /string literals are not supported/],
    ] as const) {
      assert.match(rulesError(() => rules(oneRule(condition)), 'RULE_TYPE').message, reason, condition);
    }
  });

  it('type-checks conditions: bool result, one numeric type in arithmetic, bool operands for && and ||', () => {
    assert.match(
      rulesError(() => rules(oneRule('momentum * 100 > 1.0')), 'RULE_TYPE').message,
      /operator "\*" needs operands of one numeric type, got double and int \(write a double literal such as 100\.0\) at line 2, column \d+ \(condition column 12\)/,
    );
    assert.match(rulesError(() => rules(oneRule('rsi')), 'RULE_TYPE').message, /must be a bool expression, got double/);
    assert.match(rulesError(() => rules(oneRule('rsi && true')), 'RULE_TYPE').message, /operator "&&" needs bool operands, got double/);
    assert.match(rulesError(() => rules(oneRule('rsi == true')), 'RULE_TYPE').message, /compares two numbers or two bools/);
    assert.match(rulesError(() => rules(oneRule('rsi % 2.0 > 0.0')), 'RULE_TYPE').message, /"%" needs int operands/);
    assert.match(rulesError(() => rules(oneRule('(rsi > 1.0 ? 1 : 2.0) > 0')), 'RULE_TYPE').message, /both branches/);
    // Accepted: mixed comparisons, conversions, ternaries, negation and int arithmetic.
    const ok = [
      'rsi > 70',
      'rsi >= 70u',
      'rsi != 50',
      '-momentum > 0.01',
      '!(rsi > 70) || volume / 2.0 > price',
      'int(rsi) % 2 == 0',
      'double(1) < rsi',
      '(rsi > 50.0 ? momentum : -momentum) > 0.0',
      'rsi < 30 && momentum > 0',
    ];
    for (const condition of ok) assert.equal(rules(oneRule(condition)).rules[0]?.condition, condition);
  });

  it('refuses duplicate names', () => {
    const text = readFileSync(SHIPPED, 'utf8').replace('"price_momentum_down"', '"price_momentum_up"');
    const err = rulesError(() => parseRules(text, LABEL), 'RULE_DUPLICATE_NAME');
    assert.equal(err.rule, 'price_momentum_up');
    assert.match(err.message, /^configs\/rules\.yaml: rule "price_momentum_up": duplicate name \(rule #1 has it too.*at line \d+, column 9$/);
  });

  it('refuses a score outside [0, 1] or not a number, naming the key and the value', () => {
    for (const score of ['1.5', '-0.1', '"0.8"', '.nan', '.inf']) {
      const err = rulesError(() => rules(oneRule('rsi > 70').replace('score: 0.5', `score: ${score}`)), 'RULES_INVALID');
      assert.equal(err.key, 'score');
      assert.equal(err.rule, 'r');
      assert.deepEqual(err.position, { line: 4, column: 10 });
      assert.match(err.message, /^test\.yaml: rule "r": score: must be a number between 0 and 1 \(got /);
    }
    assert.equal(rules(oneRule('rsi > 70').replace('score: 0.5', 'score: 0')).rules[0]?.score, 0);
    assert.equal(rules(oneRule('rsi > 70').replace('score: 0.5', 'score: 1')).rules[0]?.score, 1);
  });

  it('refuses unknown keys, missing keys and bad values', () => {
    const cases: [string, string, RegExp][] = [
      [
        oneRule('rsi > 70').replace('score:', 'scroe:'),
        'scroe',
        /scroe: unknown key \(expected one of name, condition, signal, score, mode, cooldown, window\)/,
      ],
      [oneRule('rsi > 70', 'description: "x"'), 'description', /unknown key/],
      [oneRule('rsi > 70').replace('  signal: 1.0\n', ''), 'signal', /signal: missing/],
      [oneRule('rsi > 70').replace('signal: 1.0', 'signal: "up"'), 'signal', /must be a finite number \(got "up"\)/],
      [oneRule('rsi > 70').replace('name: "r"', 'name: ""'), 'name', /rule #1: name: must be a non-empty string/],
      [oneRule('rsi > 70').replace('"rsi > 70"', '""'), 'condition', /condition: must be a non-empty string/],
      [oneRule('rsi > 70').replace('"rsi > 70"', 'true'), 'condition', /condition: must be a non-empty string \(got true\)/],
      [oneRule('rsi > 70', 'mode: sometimes'), 'mode', /mode: must be one of edge, level \(got "sometimes"\)/],
      [oneRule('rsi > 70', 'cooldown: 30'), 'cooldown', /cooldown: must be a duration with a unit/],
      [oneRule('rsi > 70', 'cooldown: "soon"'), 'cooldown', /cooldown: must be a duration/],
      [oneRule('rsi > 70', 'window: ""'), 'window', /window: must be a non-empty string/],
    ];
    for (const [text, key, reason] of cases) {
      const err = rulesError(() => rules(text), 'RULES_INVALID');
      assert.equal(err.key, key, err.message);
      assert.match(err.message, reason);
      assert.ok(err.position, `no position for: ${err.message}`);
    }
    assert.match(rulesError(() => rules('rules:\n  - name: a\n'), 'RULES_INVALID').message, /^test\.yaml: expected a YAML list of rules, got a mapping$/);
    assert.match(rulesError(() => rules(''), 'RULES_INVALID').message, /got nothing/);
    assert.match(rulesError(() => rules('- just a string\n'), 'RULES_INVALID').message, /rule #1: expected a mapping .* at line 1, column 3$/);
  });

  it('reports invalid YAML and a missing file with their own codes', () => {
    const yamlErr = rulesError(() => rules('- name: a\n  condition: [rsi\n'), 'RULES_YAML');
    assert.match(yamlErr.message, /^test\.yaml: invalid YAML: .* at line \d+, column \d+$/);
    assert.ok(yamlErr.position);
    assert.match(rulesError(() => rules('- name: a\n  name: b\n'), 'RULES_YAML').message, /duplicated mapping key/);
    const missing = rulesError(() => loadRulesFile('/nonexistent/rules.yaml'), 'RULES_FILE_NOT_FOUND');
    assert.equal(missing.file, '/nonexistent/rules.yaml');
  });
});

describe('rules file size', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mdp-rules-test-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('loads 100,000 rules (a 10 MB file) in linear time, under a generous bound', function () {
    // Issue 9 measured 328 s for this file when every rule's position rescanned the file; one line
    // index makes it about 10 s on a busy 2-core machine.
    this.timeout(180_000);
    const file = join(dir, 'rules-100k.yaml');
    writeFileSync(file, manyRulesText(100_000));
    const began = performance.now();
    const set = loadRulesFile(file, { maxRules: 100_000, maxBytes: 16 * 1024 * 1024 });
    const seconds = (performance.now() - began) / 1000;
    assert.equal(set.rules.length, 100_000);
    assert.equal(set.rules[99_999]?.name, 'rule_099999');
    assert.ok(seconds < 60, `loading took ${seconds.toFixed(1)} s`);
  });

  it('still points at the line of a bad rule deep in a large file', () => {
    const text = manyRulesText(5000).replace('rule_004999"\n  condition: "rsi > 99.5', 'rule_004999"\n  condition: "rsi >> 99.5');
    const err = rulesError(() => parseRules(text, 'big.yaml'), 'RULE_SYNTAX');
    const line = text.split('\n').findIndex((l) => l.includes('rsi >> 99.5')) + 1;
    assert.equal(err.rule, 'rule_004999');
    assert.deepEqual(err.position, { line, column: '  condition: "'.length + 1 + 4 });
  });

  it('refuses a file with more rules than max_rules, naming the file and the limit, before checking any', () => {
    // The first rule is broken: the count is refused before any rule is looked at.
    const text = '- just a string\n' + manyRulesText(DEFAULT_MAX_RULES);
    const err = rulesError(() => parseRules(text, 'huge.yaml'), 'RULES_TOO_LARGE');
    assert.equal(err.file, 'huge.yaml');
    assert.equal(err.limit, DEFAULT_MAX_RULES);
    assert.equal(
      err.message,
      `huge.yaml: the file has ${DEFAULT_MAX_RULES + 1} rules, more than the limit of ${DEFAULT_MAX_RULES} (inference.adapters.rules.max_rules)`,
    );
    assert.equal(rules(manyRulesText(3)).rules.length, 3);
    assert.equal(rulesError(() => parseRules(manyRulesText(3), 'x.yaml', { maxRules: 2 }), 'RULES_TOO_LARGE').limit, 2);
  });

  it('refuses a file larger than max_bytes before reading it, naming the file and the limit', () => {
    const large = join(dir, 'rules-large.yaml');
    writeFileSync(large, `# ${'x'.repeat(DEFAULT_MAX_RULES_BYTES)}\n`);
    const err = rulesError(() => loadRulesFile(large), 'RULES_TOO_LARGE');
    assert.equal(err.file, large);
    assert.equal(err.limit, DEFAULT_MAX_RULES_BYTES);
    assert.equal(
      err.message,
      `${large}: the file has ${DEFAULT_MAX_RULES_BYTES + 3} bytes, more than the limit of ${DEFAULT_MAX_RULES_BYTES} (inference.adapters.rules.max_bytes)`,
    );
    const small = join(dir, 'rules-small.yaml');
    writeFileSync(small, manyRulesText(10));
    const size = statSync(small).size;
    assert.equal(rulesError(() => loadRulesFile(small, { maxBytes: size - 1 }), 'RULES_TOO_LARGE').limit, size - 1);
    assert.equal(loadRulesFile(small, { maxBytes: size }).rules.length, 10);
  });

  it('the worker loads its rules under inference.adapters.rules.max_rules and max_bytes', async () => {
    const load = (rules: Record<string, unknown>) => {
      const config = loadStreamingConfig({ file: SHIPPED_CONFIG, env: {}, overrides: { inference: { adapters: { rules: { file: SHIPPED, ...rules } } } } });
      return adapterFactory(
        config,
        createMetrics(),
        createLogger('ERROR', () => undefined),
      )('rules');
    };
    assert.equal((await load({})).name, 'rules');
    const tooMany = await load({ max_rules: 4 }).then(
      () => undefined,
      (err: unknown) => err,
    );
    assert.ok(tooMany instanceof RulesError && tooMany.code === 'RULES_TOO_LARGE' && tooMany.limit === 4, String(tooMany));
    const tooLarge = await load({ max_bytes: 100 }).then(
      () => undefined,
      (err: unknown) => err,
    );
    assert.ok(tooLarge instanceof RulesError && tooLarge.code === 'RULES_TOO_LARGE' && tooLarge.limit === 100, String(tooLarge));
  });
});

describe('RulesAdapter', () => {
  it('fires the shipped rules on crafted snapshots with full v1 signals', async () => {
    const set = loadRulesFile(SHIPPED);
    const adapter = new RulesAdapter(set);
    assert.equal(adapter.name, 'rules');
    assert.equal(adapter.version, set.version);
    const quiet = { momentum: 0.001, volatility: 0.1, rsi: 50 };
    assert.deepEqual(await adapter.evaluate(snapshot(0, quiet)), []);
    const signals = await adapter.evaluate(snapshot(2000, { ...quiet, momentum: 0.02, rsi: 75.5 }));
    const meta = (inputs: Record<string, number>, condition: string): SignalEventV1['meta'] => ({
      window: '2s',
      price: 425.15,
      inputs,
      adapter: 'rules',
      rule_version: set.version,
      condition,
    });
    const base = { ver: 1, provider: 'synthetic', symbol: 'SPY', ts: '2025-10-24T14:02:02Z' } as const;
    assert.deepEqual(signals, [
      { ...base, name: 'price_momentum_up', value: 1, score: 0.8, meta: meta({ momentum: 0.02 }, 'momentum > 0.01') },
      { ...base, name: 'rsi_overbought', value: -1, score: 0.7, meta: meta({ rsi: 75.5 }, 'rsi > 70') },
    ]);
    // Key order is part of the contract of byte-identical output.
    assert.equal(
      JSON.stringify(signals[0]),
      `{"ver":1,"provider":"synthetic","symbol":"SPY","ts":"2025-10-24T14:02:02Z","name":"price_momentum_up","value":1,"score":0.8,` +
        `"meta":{"window":"2s","price":425.15,"inputs":{"momentum":0.02},"adapter":"rules","rule_version":"${set.version}","condition":"momentum > 0.01"}}`,
    );
    const next = fired(adapter, [{ momentum: -0.05, volatility: 0.31, rsi: 29.9 }]);
    assert.deepEqual(next, [['price_momentum_down', 'high_volatility', 'rsi_oversold']]);
    assert.equal(adapter.errors, 0);
  });

  it('edge mode fires on false → true only, the first true evaluation included', () => {
    const adapter = new RulesAdapter(rules(oneRule('rsi > 70')));
    assert.deepEqual(fired(adapter, [{ rsi: 75 }, { rsi: 76 }, { rsi: 70 }, { rsi: 71 }, { rsi: 72 }, { rsi: 10 }, { rsi: 99 }]), [
      ['r'],
      [],
      [],
      ['r'],
      [],
      [],
      ['r'],
    ]);
  });

  it('level mode fires on every snapshot where the condition holds', () => {
    const adapter = new RulesAdapter(rules(oneRule('rsi > 70', 'mode: level')));
    assert.deepEqual(fired(adapter, [{ rsi: 75 }, { rsi: 76 }, { rsi: 70 }, { rsi: 71 }]), [['r'], ['r'], [], ['r']]);
  });

  it('cooldown suppresses firings until snapshot time reaches last firing + cooldown (event time)', () => {
    // Level, 5 s cooldown, 2 s bars: fires at 0 s, 6 s, 12 s.
    const level = new RulesAdapter(rules(oneRule('rsi > 70', 'mode: level', 'cooldown: 5s')));
    assert.deepEqual(
      fired(
        level,
        Array.from({ length: 7 }, () => ({ rsi: 80 })),
      ),
      [['r'], [], [], ['r'], [], [], ['r']],
    );
    // Exactly at last + cooldown fires again.
    const exact = new RulesAdapter(rules(oneRule('rsi > 70', 'mode: level', 'cooldown: 4s')));
    assert.deepEqual(
      fired(
        exact,
        Array.from({ length: 5 }, () => ({ rsi: 80 })),
      ),
      [['r'], [], ['r'], [], ['r']],
    );
    // Edge, 10 s cooldown: the edge at 4 s falls inside it and is dropped, not deferred; the edge at 12 s fires.
    const edge = new RulesAdapter(rules(oneRule('rsi > 70', 'cooldown: 10s')));
    assert.deepEqual(fired(edge, [{ rsi: 80 }, { rsi: 50 }, { rsi: 80 }, { rsi: 80 }, { rsi: 80 }, { rsi: 50 }, { rsi: 80 }]), [
      ['r'],
      [],
      [],
      [],
      [],
      [],
      ['r'],
    ]);
    // Wall-clock time plays no part: snapshots an hour apart evaluated back to back are not throttled.
    const hourly = new RulesAdapter(rules(oneRule('rsi > 70', 'mode: level', 'cooldown: 30m')));
    assert.deepEqual(fired(hourly, [{ rsi: 80 }, { rsi: 80 }, { rsi: 80 }], 3_600_000), [['r'], ['r'], ['r']]);
  });

  it('keeps edge and cooldown state per (provider, symbol)', () => {
    const adapter = new RulesAdapter(rules(oneRule('rsi > 70', 'cooldown: 1m')));
    const at = (offsetMs: number, rsi: number, provider: string, symbol: string): number =>
      adapter.evaluateSync(snapshot(offsetMs, { rsi }, { provider, symbol })).length;
    assert.deepEqual(
      [at(0, 80, 'p', 'SPY'), at(0, 80, 'p', 'QQQ'), at(0, 80, 'q', 'SPY'), at(2000, 80, 'p', 'SPY'), at(2000, 50, 'p', 'QQQ'), at(4000, 80, 'p', 'QQQ')],
      [1, 1, 1, 0, 0, 0],
    );
    assert.equal(at(60_000, 80, 'p', 'QQQ'), 0); // still true since 4 s: no new edge
    assert.equal(at(62_000, 50, 'p', 'QQQ') + at(64_000, 80, 'p', 'QQQ'), 1);
  });

  it('treats null, missing and non-finite features as "condition false", without errors', () => {
    const errors: RuleEvaluationError[] = [];
    const adapter = new RulesAdapter(loadRulesFile(SHIPPED), { onError: (e) => errors.push(e) });
    const warmingUp = { momentum: null, volatility: null, rsi: null };
    assert.deepEqual(fired(adapter, [warmingUp, {}, { momentum: Number.NaN, rsi: Number.POSITIVE_INFINITY }]), [[], [], []]);
    // Warm-up over: the first true evaluation is an edge.
    assert.deepEqual(
      adapter.evaluateSync(snapshot(6000, { momentum: 0.02, volatility: null, rsi: null })).map((s) => s.name),
      ['price_momentum_up'],
    );
    // A reset to null makes the condition false, so it fires again once the value is back.
    assert.deepEqual(fired(adapter, [{ momentum: null }, { momentum: 0.02 }]), [[], ['price_momentum_up']]);
    assert.equal(adapter.errors, 0);
    assert.deepEqual(errors, []);
  });

  it('evaluates compound conditions; any null input makes the whole condition false', () => {
    const adapter = new RulesAdapter(
      rules(
        [
          oneRule('rsi < 30 && momentum > 0', 'mode: level').replace('"r"', '"and"'),
          oneRule('rsi > 70 || momentum > 0.05', 'mode: level').replace('"r"', '"or"'),
        ].join('\n'),
      ),
    );
    assert.deepEqual(
      fired(adapter, [
        { rsi: 25, momentum: 0.01 },
        { rsi: 25, momentum: -0.01 },
        { rsi: 35, momentum: 0.01 },
        { rsi: 80, momentum: 0.0 },
        { rsi: 25, momentum: 0.06 },
        { rsi: 80, momentum: null },
        { rsi: null, momentum: 0.06 },
      ]),
      [['and'], [], [], ['or'], ['and', 'or'], [], []],
    );
    const [signal] = adapter.evaluateSync(snapshot(20_000, { rsi: 25, momentum: 0.01, volatility: 0.5 }));
    assert.deepEqual(signal?.meta.inputs, { rsi: 25, momentum: 0.01 });
  });

  it('counts runtime errors as false and reports them, never throwing', async () => {
    const errors: RuleEvaluationError[] = [];
    const adapter = new RulesAdapter(rules(oneRule('rsi > 50 && 1 / (2 - 2) > 0')), { onError: (e) => errors.push(e) });
    assert.deepEqual(fired(adapter, [{ rsi: 40 }, { rsi: 60 }, { rsi: 70 }]), [[], [], []]);
    assert.deepEqual(await adapter.evaluate(snapshot(6000, { rsi: 80 })), []);
    assert.equal(adapter.errors, 3);
    assert.deepEqual(errors[0], { rule: 'r', provider: 'synthetic', symbol: 'SPY', ts: '2025-10-24T14:02:02Z', message: 'int divide by zero' });
    // Integer overflow in a conversion is an error too; floating-point division by zero is not (it is ±Inf).
    const overflow = new RulesAdapter(rules(oneRule('int(rsi) > 0')));
    assert.deepEqual(fired(overflow, [{ rsi: 1e300 }, { rsi: 5 }]), [[], ['r']]);
    assert.equal(overflow.errors, 1);
    const inf = new RulesAdapter(rules(oneRule('rsi / 0.0 > 1.0')));
    assert.deepEqual(fired(inf, [{ rsi: 5 }]), [['r']]);
    assert.equal(inf.errors, 0);
  });

  it('labels meta.window from the rule, else its first window-named feature, else the bar interval', () => {
    const adapter = new RulesAdapter(
      rules(
        [
          oneRule('vwap_1m > vwap && ret_30s > 0.0').replace('"r"', '"derived"'),
          oneRule('rsi > 0.0', 'window: "14 bars"').replace('"r"', '"explicit"'),
          oneRule('rsi > 0.0').replace('"r"', '"interval"'),
        ].join('\n'),
      ),
    );
    const signals = adapter.evaluateSync(snapshot(0, { vwap_1m: 2, vwap: 1, ret_30s: 0.1, rsi: 1 }));
    assert.deepEqual(
      signals.map((s) => [s.name, s.meta.window]),
      [
        ['derived', '1m'],
        ['explicit', '14 bars'],
        ['interval', '2s'],
      ],
    );
    assert.deepEqual(signals[0]?.meta.inputs, { vwap_1m: 2, vwap: 1, ret_30s: 0.1 });
  });

  it('is deterministic: 1000 random snapshots give byte-identical signals on fresh adapters', () => {
    const set = rules(
      [
        readFileSync(SHIPPED, 'utf8'),
        oneRule('rsi < 40 && momentum > 0', 'mode: level', 'cooldown: 10s').replace('"r"', '"combo"'),
        oneRule('vwap_1m > vwap * 1.001', 'cooldown: 1m').replace('"r"', '"vwap_cross"'),
      ].join('\n'),
    );
    const run = (): string => {
      const rng = SeededRandom.fromSeed(7);
      const maybe = (value: number): number | null => (rng.next() < 0.05 ? null : value);
      const adapter = new RulesAdapter(set);
      const out: SignalEventV1[] = [];
      for (let i = 0; i < 1000; i += 1) {
        const values = {
          momentum: maybe((rng.next() - 0.5) * 0.05),
          volatility: maybe(rng.next() * 0.4),
          rsi: maybe(rng.next() * 100),
          vwap: 100,
          vwap_1m: maybe(100 + (rng.next() - 0.5) * 0.5),
        };
        const symbol = rng.next() < 0.5 ? 'SPY' : 'QQQ';
        out.push(...adapter.evaluateSync(snapshot(Math.floor(i / 2) * 2000, values, { symbol, price: 400 + rng.next() })));
      }
      return JSON.stringify(out);
    };
    const first = run();
    assert.equal(run(), first);
    const names = new Set((JSON.parse(first) as SignalEventV1[]).map((s) => s.name));
    assert.deepEqual([...names].sort(), [
      'combo',
      'high_volatility',
      'price_momentum_down',
      'price_momentum_up',
      'rsi_overbought',
      'rsi_oversold',
      'vwap_cross',
    ]);
  });
});
