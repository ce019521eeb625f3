/**
 * Command-line framing (RFC 5321 §2.3.8, §4.5.3.1.4): commands end with CRLF and are at most
 * 512 octets including the CRLF. Anything else is reported, never buffered without bound:
 * an overlong line is reported as soon as it exceeds the limit and the rest of it is skipped.
 */

const LF = 0x0a;
const CR = 0x0d;

export type LineResult =
  /** A complete command line (without its line ending). */
  | { readonly kind: 'line'; readonly line: Buffer; readonly next: number }
  /** A line that ended in a bare LF: RFC 5321 §2.3.8 forbids it. */
  | { readonly kind: 'bare-lf'; readonly line: Buffer; readonly next: number }
  /** The line is longer than the limit; the reader now skips to its end. */
  | { readonly kind: 'too-long'; readonly next: number }
  /** No complete line in the buffer: need more data. `next` is where unconsumed input starts. */
  | { readonly kind: 'incomplete'; readonly next: number };

export class CommandLineReader {
  /** True while the remainder of an overlong line is being skipped. */
  private skipping = false;

  constructor(private readonly maxLineLength: number) {}

  /**
   * Looks for the next line in `buf` from `start`. `maxLength` overrides the limit for this
   * line (AUTH responses may be 12,288 octets, RFC 4954 §4).
   */
  read(buf: Buffer, start: number, maxLength = this.maxLineLength): LineResult {
    const lf = buf.indexOf(LF, start);
    if (this.skipping) {
      if (lf < 0) return { kind: 'incomplete', next: buf.length };
      this.skipping = false;
      return this.read(buf, lf + 1, maxLength);
    }
    const end = lf < 0 ? buf.length : lf + 1;
    if (end - start > maxLength) {
      // Report now: a client that never sends CRLF must not make us wait or buffer.
      this.skipping = lf < 0;
      return { kind: 'too-long', next: lf < 0 ? buf.length : lf + 1 };
    }
    if (lf < 0) return { kind: 'incomplete', next: start };
    if (lf > start && buf[lf - 1] === CR) {
      return { kind: 'line', line: buf.subarray(start, lf - 1), next: lf + 1 };
    }
    return { kind: 'bare-lf', line: buf.subarray(start, lf), next: lf + 1 };
  }
}
