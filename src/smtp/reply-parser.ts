/**
 * Replies as the client reads them (RFC 5321 §4.2): possibly multi-line, each line "code-text"
 * but the last, "code text" (or the bare code) on the last; with RFC 2034 enhanced status codes
 * leading the text. Shared by the client session and the tests that read a server's replies.
 *
 * The parser is bounded: a line longer than `maxLineLength` or a reply of more than `maxLines`
 * lines is a protocol error, never a buffer that grows with what the peer sends.
 * Robustness: a bare LF is accepted as a line end (replies carry no data to smuggle), and a
 * continuation line with a different code is tolerated; the last line's code counts.
 */

/** A reply received from a server (or an LMTP/SMTP peer), remembered as read. */
export interface ServerReply {
  readonly code: number;
  /** RFC 3463 status from the first line, when its class matches the code's; else null. */
  readonly enhanced: string | null;
  /** Text of each line, the code and the enhanced status removed. */
  readonly lines: readonly string[];
}

export interface ReplyParserLimits {
  /** Octets of one line including its line end (RFC 5321 §4.5.3.1.5 says 512; servers exceed it). */
  readonly maxLineLength: number;
  readonly maxLines: number;
}

export const DEFAULT_REPLY_PARSER_LIMITS: ReplyParserLimits = { maxLineLength: 4096, maxLines: 1000 };

export type ReplyParseResult =
  | { readonly kind: 'reply'; readonly reply: ServerReply }
  | { readonly kind: 'need-data' }
  | { readonly kind: 'error'; readonly detail: string };

const LF = 0x0a;
const CR = 0x0d;
/** RFC 5321 §4.2: `Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF`. */
const REPLY_LINE = /^([2-5][0-9][0-9])(?:([ -])(.*))?$/s;
/** RFC 2034 §4: `status-code SP text`; the class must agree with the reply code's first digit. */
const ENHANCED_PREFIX = /^([245])\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})(?: |$)/;

const latin1 = new TextDecoder('latin1');
const utf8 = new TextDecoder('utf-8');

function decodeLine(bytes: Uint8Array): string {
  // Replies are ASCII; some servers send UTF-8 (RFC 6531 §3.7.4.2 allows it). Keep every byte
  // readable either way, and never pass a control character on.
  let ascii = true;
  for (const b of bytes) if (b >= 0x80) { ascii = false; break; }
  const text = ascii ? latin1.decode(bytes) : utf8.decode(bytes);
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '?');
}

/** Splits off the enhanced status of one line when its class matches `code`. */
function splitEnhanced(code: number, text: string): { enhanced: string | null; text: string } {
  const m = ENHANCED_PREFIX.exec(text);
  if (m === null || Number(m[1]) !== Math.floor(code / 100)) return { enhanced: null, text };
  return { enhanced: `${m[1]}.${m[2]}.${m[3]}`, text: text.slice(m[0].length) };
}

/** Builds a ServerReply from raw lines ("250-First", "250 Last"); used by the parser and tests. */
export function replyFromLines(code: number, texts: readonly string[]): ServerReply {
  const first = splitEnhanced(code, texts[0] ?? '');
  const lines = texts.map((t, i) => (i === 0 ? first.text : first.enhanced === null ? t : splitEnhanced(code, t).text));
  return { code, enhanced: first.enhanced, lines };
}

/** Reads replies from a byte stream, one at a time. */
export class ReplyParser {
  private buf: Buffer = Buffer.alloc(0);
  private texts: string[] = [];
  private readonly limits: ReplyParserLimits;

  constructor(limits: Partial<ReplyParserLimits> = {}) {
    this.limits = { ...DEFAULT_REPLY_PARSER_LIMITS, ...limits };
  }

  receiveData(data: Uint8Array): void {
    if (data.length === 0) return;
    const chunk = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** Bytes received and not yet part of a complete reply. */
  get buffered(): number {
    return this.buf.length;
  }

  /** Drops everything buffered (RFC 3207 §4.2: nothing read before TLS may be used after it). */
  discardBuffered(): void {
    this.buf = Buffer.alloc(0);
    this.texts = [];
  }

  /** The next complete reply, 'need-data', or a protocol error (after which the parser is spent). */
  next(): ReplyParseResult {
    for (;;) {
      const lf = this.buf.indexOf(LF);
      if (lf < 0) {
        if (this.buf.length > this.limits.maxLineLength) return this.fail(`reply line longer than ${this.limits.maxLineLength} octets`);
        return { kind: 'need-data' };
      }
      if (lf + 1 > this.limits.maxLineLength) return this.fail(`reply line longer than ${this.limits.maxLineLength} octets`);
      const end = lf > 0 && this.buf[lf - 1] === CR ? lf - 1 : lf;
      const line = decodeLine(this.buf.subarray(0, end));
      this.buf = lf + 1 >= this.buf.length ? Buffer.alloc(0) : this.buf.subarray(lf + 1);
      const m = REPLY_LINE.exec(line);
      if (m === null) return this.fail(`malformed reply line ${JSON.stringify(line.slice(0, 80))}`);
      this.texts.push(m[3] ?? '');
      if (this.texts.length > this.limits.maxLines) return this.fail(`reply of more than ${this.limits.maxLines} lines`);
      if (m[2] === '-') continue;
      const texts = this.texts;
      this.texts = [];
      return { kind: 'reply', reply: replyFromLines(Number(m[1]), texts) };
    }
  }

  private fail(detail: string): ReplyParseResult {
    this.buf = Buffer.alloc(0);
    this.texts = [];
    return { kind: 'error', detail };
  }
}

/**
 * One-line form for logs, tracking and DSN Diagnostic-Code fields: "550 5.1.1 User unknown";
 * the lines of a multi-line reply are joined with a space.
 */
export function formatServerReply(r: ServerReply): string {
  const text = r.lines.map((l) => l.trim()).filter((l) => l !== '').join(' ');
  return [String(r.code), r.enhanced ?? '', text].filter((p) => p !== '').join(' ');
}

/** The wire form (for test peers): every line carries the code and, when set, the enhanced status. */
export function encodeServerReply(r: ServerReply): string {
  const last = r.lines.length - 1;
  const lines = r.lines.length === 0 ? [''] : r.lines;
  return lines
    .map((line, i) => `${r.code}${i === last || lines.length === 1 ? ' ' : '-'}${r.enhanced ? `${r.enhanced} ` : ''}${line}`.trimEnd() + '\r\n')
    .join('');
}
