/**
 * Splits a byte stream into lines ("\n", with an optional "\r" before it) with a bound on the
 * length of a line, so that a hostile or broken client cannot make the server buffer without end:
 * the bytes of an over-long line are dropped as they arrive and the line is reported as too long
 * once its end is seen.
 */

export type LineItem = { line: string } | { tooLongBytes: number };

export class LineSplitter {
  readonly maxBytes: number;
  private readonly emit: (item: LineItem) => void;
  private parts: Buffer[] = [];
  private size = 0;
  /** Bytes of the current line seen so far, when it has passed maxBytes (0: not discarding). */
  private discarded = 0;

  constructor(maxBytes: number, emit: (item: LineItem) => void) {
    if (!(Number.isInteger(maxBytes) && maxBytes > 0)) {
      throw new Error(`LineSplitter: maxBytes must be a positive integer, got ${maxBytes}`);
    }
    this.maxBytes = maxBytes;
    this.emit = emit;
  }

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(10, start);
      const end = newline === -1 ? chunk.length : newline;
      const length = end - start;
      if (this.discarded > 0) {
        this.discarded += length;
      } else if (this.size + length > this.maxBytes) {
        this.discarded = this.size + length;
        this.parts = [];
        this.size = 0;
      } else if (newline !== -1 && this.size === 0) {
        // The common case: a whole line inside one chunk.
        this.emitLine(chunk.toString("utf8", start, end));
        start = newline + 1;
        continue;
      } else if (length > 0) {
        this.parts.push(chunk.subarray(start, end));
        this.size += length;
      }
      if (newline === -1) return;
      this.finishLine();
      start = newline + 1;
    }
  }

  /** The stream ended: a last line without its newline still counts. */
  end(): void {
    if (this.size > 0 || this.discarded > 0) this.finishLine();
  }

  private finishLine(): void {
    if (this.discarded > 0) {
      const bytes = this.discarded;
      this.discarded = 0;
      this.emit({ tooLongBytes: bytes });
      return;
    }
    const line = Buffer.concat(this.parts, this.size).toString("utf8");
    this.parts = [];
    this.size = 0;
    this.emitLine(line);
  }

  private emitLine(line: string): void {
    this.emit({ line: line.endsWith("\r") ? line.slice(0, -1) : line });
  }
}
