/**
 * Message-data framing, shared by the server (receiving DATA and BDAT) and, for the encoding
 * direction, the client.
 *
 * RFC 5321 §4.5.2 (transparency): a line that starts with "." has it removed on receipt.
 * RFC 5321 §4.1.1.4: the data ends with CRLF "." CRLF, and only that sequence ends it.
 * RFC 5321 §2.3.8: a bare CR or bare LF is not a line ending. Accepting one as such is what
 * "SMTP smuggling" exploits (`\n.\n`, `\n.\r\n`, `\r.\r\n`, `\r\n.\n`): a second message, or
 * commands, hidden inside the first. Here none of them ends the data; any bare CR or LF is
 * flagged so the server can reject the whole message (554 5.5.2), or, for clients a site trusts,
 * normalised to CRLF while still ending the data only at CRLF.CRLF.
 *
 * The framer emits body bytes as slices of the input buffers (no copies) to a sink.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF_BYTES = Buffer.from('\r\n');
const CR_BYTES = Buffer.from('\r');
const LF_BYTES = Buffer.from('\n');

export type BareLineEndingMode = 'reject' | 'normalize';

export type BodySink = (chunk: Buffer) => void;

const enum State {
  /** Just after CRLF (or at the very start of the data). */
  LineStart,
  /** After a bare LF/CR that was normalised: a "." here is unstuffed but can never end the data. */
  SoftLineStart,
  Mid,
  /** After a CR in the middle of a line (already emitted). */
  Cr,
  /** After "." at a line start (the dot is not emitted). */
  Dot,
  /** After "." CR at a line start (neither emitted yet). */
  DotCr,
}

export interface FeedResult {
  /** Bytes of the input consumed. */
  readonly consumed: number;
  /** True when CRLF.CRLF was seen: the data is complete. */
  readonly ended: boolean;
}

export class DataFramer {
  private state = State.LineStart;
  /** Whether a bare CR or bare LF was seen in this message. */
  bareLineEnding = false;

  /**
   * @param dotTerminated true for DATA (dot-stuffing, CRLF.CRLF ends), false for BDAT chunks
   *   (RFC 3030: raw octets; the size says where the chunk ends).
   */
  constructor(
    private readonly mode: BareLineEndingMode,
    private readonly dotTerminated: boolean,
  ) {}

  feed(buf: Buffer, start: number, end: number, sink: BodySink): FeedResult {
    let sliceStart = start;
    let i = start;
    const flush = (to: number): void => {
      if (to > sliceStart) sink(buf.subarray(sliceStart, to));
    };
    while (i < end) {
      const b = buf[i];
      switch (this.state) {
        case State.LineStart:
          if (b === DOT && this.dotTerminated) {
            flush(i);
            sliceStart = i + 1;
            this.state = State.Dot;
            i++;
            continue;
          }
          this.state = State.Mid;
          continue; // re-dispatch b as a mid-line byte
        case State.SoftLineStart:
          if (b === DOT && this.dotTerminated) {
            flush(i);
            sliceStart = i + 1;
            this.state = State.Mid;
            i++;
            continue;
          }
          this.state = State.Mid;
          continue;
        case State.Mid:
          if (b === CR) {
            this.state = State.Cr;
          } else if (b === LF) {
            // Bare LF (RFC 5321 §2.3.8).
            this.bareLineEnding = true;
            if (this.mode === 'normalize') {
              flush(i);
              sink(CRLF_BYTES);
              sliceStart = i + 1;
              this.state = State.SoftLineStart;
            }
          }
          i++;
          continue;
        case State.Cr:
          if (b === LF) {
            this.state = State.LineStart;
            i++;
            continue;
          }
          // Bare CR: the CR was emitted already; re-dispatch b mid-line.
          this.bareLineEnding = true;
          if (this.mode === 'normalize') {
            flush(i);
            sink(LF_BYTES);
            sliceStart = i;
            this.state = State.SoftLineStart;
          } else {
            this.state = State.Mid;
          }
          continue;
        case State.Dot:
          if (b === CR) {
            sliceStart = i + 1;
            this.state = State.DotCr;
            i++;
            continue;
          }
          // The dot was transparency stuffing: dropped. b is an ordinary mid-line byte.
          this.state = State.Mid;
          continue;
        case State.DotCr:
          if (b === LF) {
            // CRLF "." CRLF: the end of the data (RFC 5321 §4.1.1.4).
            this.state = State.LineStart;
            return { consumed: i + 1 - start, ended: true };
          }
          // ".<CR>x": the dot was stuffing, the CR is bare.
          this.bareLineEnding = true;
          sink(this.mode === 'normalize' ? CRLF_BYTES : CR_BYTES);
          sliceStart = i;
          this.state = this.mode === 'normalize' ? State.SoftLineStart : State.Mid;
          continue;
      }
    }
    if (this.state !== State.DotCr) flush(end);
    return { consumed: end - start, ended: false };
  }

  /** For BDAT: at the end of the LAST chunk a pending CR is a bare CR (no LF can follow). */
  finish(sink: BodySink): void {
    if (this.state === State.Cr) {
      this.bareLineEnding = true;
      if (this.mode === 'normalize') sink(LF_BYTES);
    }
    this.state = State.LineStart;
  }
}

/**
 * Counts header lines and header bytes of a message as its body streams by (RFC 5322 §2.1:
 * the header ends at the first empty line).
 */
export class HeaderMeter {
  lines = 0;
  bytes = 0;
  private inHeader = true;
  private atLineStart = true;
  private prevCr = false;

  observe(chunk: Buffer): void {
    if (!this.inHeader) return;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b === LF && this.prevCr) {
        if (this.atLineStart) {
          // CRLF on its own: the empty line that ends the header.
          this.inHeader = false;
          return;
        }
        this.lines++;
        this.atLineStart = true;
      } else if (b !== CR) {
        this.atLineStart = false;
      }
      this.prevCr = b === CR;
      this.bytes++;
    }
  }
}

/**
 * Dot-stuffing for sending with DATA (RFC 5321 §4.5.2), streamed: a line that starts with "."
 * gets one more, also when the line starts in the next chunk. The body must use CRLF line
 * endings (the store keeps them canonical); a bare LF does not start a line, as on receipt.
 */
export class DotStuffer {
  private lineStart = true;
  private prevCr = false;
  private total = 0;

  /** The stuffed form of `chunk` (the same buffer when nothing needs stuffing). */
  push(chunk: Buffer): Buffer {
    const n = chunk.length;
    if (n === 0) return chunk;
    let parts: Buffer[] | null = null;
    let sliceStart = 0;
    // Candidates are the byte after each LF (found with indexOf, not byte by byte) and byte 0.
    if (this.lineStart && chunk[0] === DOT) parts = [DOT_BYTES];
    for (let lf = chunk.indexOf(LF); lf >= 0 && lf + 1 < n; lf = chunk.indexOf(LF, lf + 1)) {
      const afterCr = lf === 0 ? this.prevCr : chunk[lf - 1] === CR;
      if (afterCr && chunk[lf + 1] === DOT) {
        parts ??= [];
        parts.push(chunk.subarray(sliceStart, lf + 1), DOT_BYTES);
        sliceStart = lf + 1;
      }
    }
    const last = chunk[n - 1];
    this.lineStart = last === LF && (n === 1 ? this.prevCr : chunk[n - 2] === CR);
    this.prevCr = last === CR;
    this.total += n;
    if (parts === null) return chunk;
    parts.push(chunk.subarray(sliceStart));
    return Buffer.concat(parts);
  }

  /** The end of data: "." CRLF after a final CRLF (or an empty body), else CRLF "." CRLF. */
  end(): Buffer {
    return this.total === 0 || this.lineStart ? END_AFTER_CRLF : END_MID_LINE;
  }
}

const DOT_BYTES = Buffer.from('.');
const END_AFTER_CRLF = Buffer.from('.\r\n');
const END_MID_LINE = Buffer.from('\r\n.\r\n');

/**
 * Dot-stuffs a whole body for sending with DATA (RFC 5321 §4.5.2) and appends the terminator.
 * The body should end with CRLF (or be empty); otherwise CRLF is added before the final ".".
 */
export function dotStuff(body: Buffer): Buffer {
  const stuffer = new DotStuffer();
  return Buffer.concat([stuffer.push(body), stuffer.end()]);
}
