/**
 * The two ways the store writes bars (`store.copy_min_rows`): one upsert of array parameters, and
 * COPY into a staging table plus one upsert from it. The store's bar tests run on both.
 */
export const UPSERT_PATHS = [
  { name: 'INSERT path', copyMinRows: 0 },
  { name: 'COPY path', copyMinRows: 1 },
] as const;
