import type { RulesFilePosition } from './rules-error.js';

/**
 * Maps offsets of one text to 1-based line and column. The line starts are found in one pass, on
 * first use, and each lookup is a binary search: positions for every rule of a 100k-rule file cost
 * one scan of the file, not one scan per rule.
 */
export class LineIndex {
  readonly #text: string;
  #starts: number[] | undefined;

  constructor(text: string) {
    this.#text = text;
  }

  position(offset: number): RulesFilePosition {
    const starts = (this.#starts ??= lineStarts(this.#text));
    // The last line start at or before `offset`.
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >>> 1;
      if (starts[mid] <= offset) low = mid;
      else high = mid - 1;
    }
    return { line: low + 1, column: offset - starts[low] + 1 };
  }
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}
