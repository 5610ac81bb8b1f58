/** One line of a byte source: its text (without the `\n`) and where it lies. */
export interface SourceLine {
  /** 1-based line number in the whole source. */
  readonly number: number;
  readonly text: string;
  /** Byte offset of its first byte, and just past its `\n` (or its last byte, for a last line without one). */
  readonly offset: number;
  readonly end: number;
}

/** The complete lines one read of the source yielded, with the bytes they came from. */
export interface LineBatch {
  readonly lines: readonly SourceLine[];
  /** Holds every line of the batch; `bytes(line)` is its raw content. */
  readonly buffer: Buffer;
  /** Source offset of `buffer[0]`. */
  readonly base: number;
}

/** A line's raw bytes (newline included), e.g. to hash exactly what was read. */
export function lineBytes(batch: LineBatch, line: SourceLine): Buffer {
  return batch.buffer.subarray(line.offset - batch.base, line.end - batch.base);
}

/**
 * Splits a byte stream (a file's read stream, stdin…) into lines, one batch per chunk read: the
 * lines completed by that chunk, so a pipe's lines come out as soon as they arrive and a file's in
 * large batches. A last line without a newline comes out at the end. `from` continues a source
 * read from the middle (its byte offset and the number of lines before it).
 */
export async function* lineBatches(chunks: AsyncIterable<Buffer>, from: { readonly offset?: number; readonly line?: number } = {}): AsyncGenerator<LineBatch> {
  let carry: Buffer | undefined;
  let carryOffset = from.offset ?? 0;
  let position = carryOffset;
  let number = from.line ?? 0;
  for await (const chunk of chunks) {
    const buffer: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
    const base = carry ? carryOffset : position;
    position += chunk.length;
    const lines: SourceLine[] = [];
    let lineStart = 0;
    for (let nl = buffer.indexOf(10); nl !== -1; nl = buffer.indexOf(10, lineStart)) {
      lines.push({ number: ++number, text: buffer.toString('utf8', lineStart, nl), offset: base + lineStart, end: base + nl + 1 });
      lineStart = nl + 1;
    }
    carry = lineStart < buffer.length ? buffer.subarray(lineStart) : undefined;
    carryOffset = base + lineStart;
    if (lines.length > 0) yield { lines, buffer, base };
  }
  if (carry && carry.length > 0) {
    yield {
      lines: [{ number: ++number, text: carry.toString('utf8'), offset: carryOffset, end: carryOffset + carry.length }],
      buffer: carry,
      base: carryOffset,
    };
  }
}
