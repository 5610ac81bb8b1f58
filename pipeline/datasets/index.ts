// Public surface of the datasets: named historical data for replays, and the sample-day generator.
export { DatasetCatalogError, findDataset, loadDatasetCatalog, openFileDataset, sampleDayFile } from './dataset-catalog.js';
export type { DatasetDefinition, FileDatasetDefinition, GenerateSpec, StoreDatasetDefinition } from './dataset-catalog.js';
export { rowToEvent, splitCsvLine } from './event-rows.js';
export { FileDataset, fileLabel, writeJsonl } from './file-dataset.js';
export type { DatasetSummary, FileDatasetOptions, FileFormat, SkippedLine } from './file-dataset.js';
export { alignDown, alignUp, chunkAt, nextCursor, parseReplayBound, replayRange } from './replay-range.js';
export type { ReplayRange } from './replay-range.js';
export { generateSampleDay, intradayIntensity, newYorkOffsetHours, sessionBounds } from './sample-day.js';
export type { SampleDayOptions } from './sample-day.js';
