import type { UpsertCounts } from '../pipeline/contracts/index.js';

/** Adds an upsert's inserted/updated/unchanged counts to a run's counts. */
export function addUpserts(counts: { inserted: number; updated: number; unchanged: number }, written: UpsertCounts): void {
  counts.inserted += written.inserted;
  counts.updated += written.updated;
  counts.unchanged += written.unchanged;
}
