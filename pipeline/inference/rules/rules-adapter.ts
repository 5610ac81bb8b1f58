import { celEnv, isCelError, plan } from '@bufbuild/cel';
import type { FeatureSnapshot, InferenceAdapter, SignalEventV1 } from '../../contracts/index.js';
import type { Rule, RuleSet } from './rule-set.js';

/** One condition that failed at evaluation time (it then counts as false). */
export interface RuleEvaluationError {
  readonly rule: string;
  readonly provider: string;
  readonly symbol: string;
  /** `ts` of the snapshot being evaluated. */
  readonly ts: string;
  readonly message: string;
}

export interface RulesAdapterOptions {
  /** Called for every runtime evaluation error, after it is counted in `errors`. Must not throw. */
  readonly onError?: (error: RuleEvaluationError) => void;
}

type Program = (bindings: Record<string, number>) => unknown;

interface CompiledRule {
  readonly rule: Rule;
  readonly program: Program;
  readonly level: boolean;
}

/** Per (provider, symbol) state, one slot per rule. */
interface SymbolState {
  /** 1 when the condition held on the previous snapshot (edge detection). */
  readonly held: Uint8Array;
  /** Snapshot `tsMs` of the last firing; NaN when the rule has not fired. */
  readonly lastFiredMs: Float64Array;
}

/**
 * Evaluates a rule set (see `parseRules`) on feature snapshots and emits v1 signals.
 *
 * - A condition is evaluated only when every feature it reads has a finite value; a feature that is
 *   `null` (warming up), missing or not finite makes the whole condition false, without an error.
 *   So `momentum > 0.01` never fires on a warming-up symbol, and neither does `rsi > 70 || momentum > 0`
 *   until both are known.
 * - `edge` rules fire when their condition goes false → true for a (provider, symbol), the first true
 *   evaluation included; `level` rules fire on every snapshot where it holds.
 * - `cooldown`: after a firing, the rule stays silent until a snapshot with `tsMs` ≥ last firing +
 *   cooldown (event time, so replays behave like live runs). An edge inside the cooldown is dropped,
 *   not deferred.
 * - A runtime error (e.g. integer division by zero) counts as false, increments `errors` and calls
 *   `onError`; `evaluate` never throws for it.
 *
 * Deterministic: state depends only on the snapshot sequence, and signals are built with a fixed key
 * order, so the same snapshots give byte-identical `JSON.stringify` output.
 *
 * @example
 * const adapter = new RulesAdapter(loadRulesFile('configs/rules.yaml'));
 * for (const signal of await adapter.evaluate(snapshot)) await bus.publish(signal);
 */
export class RulesAdapter implements InferenceAdapter {
  readonly name = 'rules';
  /** The rules file's content hash (`RuleSet.version`). */
  readonly version: string;
  readonly #rules: readonly CompiledRule[];
  readonly #states = new Map<string, Map<string, SymbolState>>();
  readonly #onError: ((error: RuleEvaluationError) => void) | undefined;
  #errors = 0;

  constructor(ruleSet: RuleSet, options: RulesAdapterOptions = {}) {
    this.version = ruleSet.version;
    this.#onError = options.onError;
    // No variables are declared: conditions were type-checked at load, and only the features a
    // condition reads are ever bound.
    const env = celEnv();
    this.#rules = ruleSet.rules.map((rule) => ({ rule, program: plan(env, rule.parsed), level: rule.mode === 'level' }));
  }

  /** Runtime evaluation errors seen so far (each made its condition false). */
  get errors(): number {
    return this.#errors;
  }

  evaluate(snapshot: FeatureSnapshot): Promise<readonly SignalEventV1[]> {
    return Promise.resolve(this.evaluateSync(snapshot));
  }

  /** `evaluate` without the promise, for callers on the hot path and for tests. */
  evaluateSync(snapshot: FeatureSnapshot): readonly SignalEventV1[] {
    const state = this.#stateOf(snapshot.provider, snapshot.symbol);
    const signals: SignalEventV1[] = [];
    for (let i = 0; i < this.#rules.length; i += 1) {
      const compiled = this.#rules[i];
      const inputs = this.#holds(compiled, snapshot);
      const heldBefore = state.held[i] === 1;
      state.held[i] = inputs === undefined ? 0 : 1;
      if (inputs === undefined || (heldBefore && !compiled.level)) continue;
      const { rule } = compiled;
      const lastFired = state.lastFiredMs[i];
      if (rule.cooldownMs > 0 && !Number.isNaN(lastFired) && snapshot.tsMs < lastFired + rule.cooldownMs) continue;
      state.lastFiredMs[i] = snapshot.tsMs;
      signals.push({
        ver: 1,
        provider: snapshot.provider,
        symbol: snapshot.symbol,
        ts: snapshot.ts,
        name: rule.name,
        value: rule.signal,
        score: rule.score,
        meta: {
          window: rule.window ?? snapshot.interval,
          price: snapshot.price,
          inputs,
          adapter: this.name,
          rule_version: this.version,
          condition: rule.condition,
        },
      });
    }
    return signals;
  }

  /** The bound inputs when the condition holds, `undefined` when it does not (or cannot be evaluated). */
  #holds(compiled: CompiledRule, snapshot: FeatureSnapshot): Record<string, number> | undefined {
    const inputs: Record<string, number> = {};
    for (const variable of compiled.rule.variables) {
      const value = snapshot.values[variable];
      if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
      inputs[variable] = value;
    }
    let result: unknown;
    try {
      result = compiled.program(inputs);
    } catch (error) {
      // plan() catches evaluation errors itself; this is a second line so a rule can never throw.
      result = error;
    }
    if (result === true) return inputs;
    if (result !== false) this.#fail(compiled.rule, snapshot, result);
    return undefined;
  }

  #fail(rule: Rule, snapshot: FeatureSnapshot, result: unknown): void {
    this.#errors += 1;
    const message = isCelError(result) || result instanceof Error ? result.message : `condition gave ${String(result)}, not a bool`;
    this.#onError?.({ rule: rule.name, provider: snapshot.provider, symbol: snapshot.symbol, ts: snapshot.ts, message });
  }

  #stateOf(provider: string, symbol: string): SymbolState {
    let symbols = this.#states.get(provider);
    if (symbols === undefined) {
      symbols = new Map();
      this.#states.set(provider, symbols);
    }
    let state = symbols.get(symbol);
    if (state === undefined) {
      state = { held: new Uint8Array(this.#rules.length), lastFiredMs: new Float64Array(this.#rules.length).fill(Number.NaN) };
      symbols.set(symbol, state);
    }
    return state;
  }
}
