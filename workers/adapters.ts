import { resolve } from 'node:path';
import type { StreamingConfig } from '../pipeline/config/index.js';
import type { InferenceAdapter } from '../pipeline/contracts/index.js';
import { OnnxAdapter } from '../pipeline/inference/onnx/index.js';
import { CANONICAL_FEATURES, loadRulesFile, RulesAdapter } from '../pipeline/inference/rules/index.js';
import type { LoadRulesOptions } from '../pipeline/inference/rules/index.js';
import type { Logger, Metrics } from '../pipeline/telemetry/index.js';

const BREAKER_LEVEL = { closed: 0, 'half-open': 1, open: 2 } as const;

/** Feature names a rule may reference: the canonical ones plus every configured window. */
export function knownFeatures(config: StreamingConfig): string[] {
  return [...CANONICAL_FEATURES, ...config.features.windows.map((w) => w.name)];
}

/** How the worker loads its rules file: the features rules may use and the configured size bounds. */
export function rulesLoadOptions(config: StreamingConfig): LoadRulesOptions {
  const { max_rules: maxRules, max_bytes: maxBytes } = config.inference.adapters.rules;
  return { knownFeatures: knownFeatures(config), maxRules, maxBytes };
}

/**
 * Builds inference adapters from the config: `rules` from `inference.adapters.rules.file`;
 * `sklearn` from an ONNX model with the rules adapter as its circuit-breaker fallback.
 * Relative paths are resolved against `baseDir` (the working directory of the process).
 */
export function adapterFactory(config: StreamingConfig, metrics: Metrics, log: Logger, baseDir = process.cwd()) {
  const rules = (): RulesAdapter => {
    const file = resolve(baseDir, config.inference.adapters.rules.file);
    const ruleSet = loadRulesFile(file, rulesLoadOptions(config));
    return new RulesAdapter(ruleSet, {
      onError: (error) => {
        metrics.errors.inc({ component: 'inference', reason: 'rule_evaluation' });
        log.warn('rule evaluation failed', { error });
      },
    });
  };
  return async function createAdapter(kind: 'rules' | 'sklearn', modelPath?: string): Promise<InferenceAdapter> {
    if (kind === 'rules') return rules();
    const sklearn = config.inference.adapters.sklearn;
    const path = resolve(baseDir, modelPath ?? sklearn.model_path);
    const adapter = await OnnxAdapter.create({
      modelPath: path,
      timeoutMs: sklearn.timeout_ms,
      fallback: config.inference.adapters.rules.enabled ? rules() : undefined,
      onTransition: (from, to, reason) => {
        metrics.breakerTransitions.inc({ adapter: 'sklearn', from, to });
        metrics.breakerState.set({ adapter: 'sklearn' }, BREAKER_LEVEL[to]);
        log.warn('inference circuit breaker', { adapter: 'sklearn', from, to, reason });
      },
    });
    metrics.breakerState.set({ adapter: 'sklearn' }, 0);
    return adapter;
  };
}
