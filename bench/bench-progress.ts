/** Progress lines of a bench run go to stderr, so stdout holds only the report. */
export const progress = (line: string): void => {
  process.stderr.write(`[bench] ${line}\n`);
};
