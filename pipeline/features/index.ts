// Public surface of rolling features: the per-shard engine, the feature kinds and their errors.
export { FeatureEngine } from './feature-engine.js';
export type { FeatureEngineOptions } from './feature-engine.js';
export { featureWarmSpanMs } from './warm-span.js';
export { FEATURE_KINDS, featureKindOf } from './feature-kind.js';
export type { FeatureKind, FeatureWindowSpec } from './feature-kind.js';
export { FEATURE_ERROR_CODES, FeatureError } from './feature-error.js';
export type { FeatureErrorCode } from './feature-error.js';
