// Public surface of the producers: event sources that turn a provider's data into v1 events.
export { SeededRandom, hash32 } from './seeded-random.js';
export type { SeededRandomState } from './seeded-random.js';
export { SyntheticProducer, TRADING_SECONDS_PER_YEAR, defaultStartPrice } from './synthetic-producer.js';
export type { GenerateFiniteOptions, SyntheticProducerOptions, SyntheticProducerState, SyntheticSchedule, SyntheticSymbolState } from './synthetic-producer.js';
