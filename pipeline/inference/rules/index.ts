// Public surface of the rules adapter: loading a rules file and evaluating it on feature snapshots.
export { RULES_ERROR_CODES, RulesError } from './rules-error.js';
export type { RulesErrorCode, RulesErrorDetails, RulesFilePosition } from './rules-error.js';
export { RULE_MODES } from './rule-set.js';
export type { Rule, RuleMode, RuleSet } from './rule-set.js';
export { CANONICAL_FEATURES, checkRules, checkRulesFile, DEFAULT_MAX_RULES, DEFAULT_MAX_RULES_BYTES, loadRulesFile, parseRules } from './rules-file.js';
export type { LoadRulesOptions, ParseRulesOptions, RulesCheck } from './rules-file.js';
export { RulesAdapter } from './rules-adapter.js';
export type { RuleEvaluationError, RulesAdapterOptions } from './rules-adapter.js';
