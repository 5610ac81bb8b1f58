// Public surface of the datasets: named historical data for replays, and the sample-day generator.
export { DatasetCatalogError, findDataset, loadDatasetCatalog, openFileDataset, parseDatasetDefinition, sampleDayFile } from './dataset-catalog.js';
export type { DatasetDefinition, FileDatasetDefinition, GenerateSpec, StoreDatasetDefinition } from './dataset-catalog.js';
export { csvHeader, csvRow, parseRow, rowProblem, rowToEvent, splitCsvLine } from './event-rows.js';
export type { FileFormat } from './event-rows.js';
export { lineBatches, lineBytes } from './source-lines.js';
export type { LineBatch, SourceLine } from './source-lines.js';
export { FileDataset, fileLabel, writeJsonl } from './file-dataset.js';
export type { DatasetSummary, FileDatasetOptions, SkippedLine } from './file-dataset.js';
export { alignDown, alignUp, chunkAt, nextCursor, parseReplayBound, replayRange } from './replay-range.js';
export type { ReplayRange } from './replay-range.js';
export { generateSampleDay, intradayIntensity, sessionBounds } from './sample-day.js';
export type { SampleDayOptions } from './sample-day.js';
export { removeTempFiles, writeFileAtomically, writeJsonlAtomically } from './atomic-file.js';
export { BACKFILL_MANIFEST, backfillChunkFile, chunkFileBars, claimBackfillDir, registerBackfillDataset } from './backfill-dataset.js';
export type { BackfillKind, RegisteredDataset } from './backfill-dataset.js';
export { backfillChunk, backfillChunkCount, backfillRange } from './backfill-range.js';
export type { BackfillRange } from './backfill-range.js';
