/**
 * How far a file producer got through one input file, recorded after every published batch so a
 * run started again continues after it. Valid only for the same bytes: `prefixSha256` is the hash
 * of the file's first `bytes` bytes, and a file whose beginning changed is read from line 1 again.
 */
export interface FilePosition {
  /** End of the last line published or dead-lettered (a byte offset). */
  readonly bytes: number;
  /** Lines up to there, header and blank lines included (the next line is `lines + 1`). */
  readonly lines: number;
  /** Data rows up to there (the next plain row's default `seq`, as in datasets). */
  readonly rows: number;
  readonly format: 'jsonl' | 'csv';
  /** The CSV header line, once read. */
  readonly header?: string;
  /** SHA-256 (hex) of bytes `[0, bytes)`. */
  readonly prefixSha256: string;
}
