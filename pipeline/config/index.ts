// Public surface of the config: loading configs/streaming.yaml and the errors it raises.
export { CONFIG_ERROR_CODES, ConfigError } from './config-error.js';
export type { ConfigErrorCode, ConfigErrorDetails, ConfigIssue } from './config-error.js';
export { expandEnv } from './expand-env.js';
export { redactSecrets } from './redact.js';
export { BUS_TYPES, busNames, configuredAdapter, deploymentNameOf, LOG_LEVELS, loadStreamingConfig, ROLLOUTS } from './streaming-config.js';
export type {
  BusConfig,
  DeploymentConfig,
  Rollout,
  BusNames,
  KafkaBusConfig,
  BusType,
  FeatureWindowConfig,
  InferenceAdaptersConfig,
  LoadStreamingConfigOptions,
  LogLevel,
  MicroBatchConfig,
  RedisBusConfig,
  ReplayConfig,
  StoreConfig,
  StreamingConfig,
  StreamingConfigOverrides,
  SyntheticProducerConfig,
  IbkrContractConfig,
  IbkrPacingConfig,
  IbkrProducerConfig,
  TelemetryConfig,
  TemporalConfig,
} from './streaming-config.js';
