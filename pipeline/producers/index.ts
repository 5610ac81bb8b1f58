// Public surface of the producers: event sources that turn a provider's data into v1 events.
export { SeededRandom, hash32 } from './seeded-random.js';
export type { SeededRandomState } from './seeded-random.js';
export { SyntheticProducer, TRADING_SECONDS_PER_YEAR, defaultStartPrice } from './synthetic-producer.js';
export type { GenerateFiniteOptions, SyntheticProducerOptions, SyntheticProducerState, SyntheticSchedule, SyntheticSymbolState } from './synthetic-producer.js';
export { parseEventLine, sniffFormat } from './event-lines.js';
export type { EventLine, EventLineOptions } from './event-lines.js';
export { EventPace, parsePublishSpeed } from './event-pace.js';
export type { PublishSpeed } from './event-pace.js';
export { FILE_SOURCE_ERROR_CODES, FileSourceError } from './file-source-error.js';
export type { FileSourceErrorCode } from './file-source-error.js';
