import type { ParsedCondition } from './condition-checker.js';

/** The trigger modes a rule may declare; `edge` is the default. */
export const RULE_MODES = ['edge', 'level'] as const;

/**
 * `edge`: fire when the condition turns from false to true for a (provider, symbol); the first
 * true evaluation counts as an edge. `level`: fire on every snapshot where the condition holds.
 */
export type RuleMode = (typeof RULE_MODES)[number];

/** One validated rule of a rules file. Built only by `parseRules`/`loadRulesFile`. */
export interface Rule {
  /** Signal name, unique within the file; the `name` of every signal the rule emits. */
  readonly name: string;
  /** The CEL condition as written in the file. */
  readonly condition: string;
  /** The signal `value` emitted when the rule fires. */
  readonly signal: number;
  /** The signal `score`, in [0, 1]. */
  readonly score: number;
  readonly mode: RuleMode;
  /** After firing, the rule stays silent until snapshot time reaches last firing + this (event time); 0 = no cooldown. */
  readonly cooldownMs: number;
  /**
   * `meta.window` label: as written, else the suffix of the first window-named feature the
   * condition reads (`vwap_1m` → `1m`); `undefined` means "the snapshot's bar interval".
   */
  readonly window: string | undefined;
  /** The features the condition reads, in order of first appearance; they become `meta.inputs`. */
  readonly variables: readonly string[];
  /** The parsed and checked condition, ready to plan. */
  readonly parsed: ParsedCondition;
}

/** A loaded rules file. */
export interface RuleSet {
  /** The label the file was loaded under (usually its path). */
  readonly file: string;
  /** First 12 hex digits of the SHA-256 of the file text; stored with every signal as `rule_version`. */
  readonly version: string;
  readonly rules: readonly Rule[];
}
