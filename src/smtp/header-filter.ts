/**
 * Dropping header fields from a message as it streams: the header section is held until its
 * end (the first empty line), filtered, and passed on; the body passes through untouched. Pure:
 * bytes in, bytes out.
 *
 * Used for RFC 8601 §5: an MTA deletes any Authentication-Results field that claims its own
 * authserv-id but did not come from inside its trust boundary — otherwise a sender could forge
 * "dmarc=pass" in our name for the mail readers and filters downstream.
 *
 * Memory: at most `maxHeaderBytes` of header are held; a header section longer than that passes
 * on unfiltered from there (the session refuses such a message anyway: 552 5.3.4).
 */

export class HeaderFieldFilter {
  private held: Buffer[] = [];
  private heldBytes = 0;
  private done = false;
  /** The last bytes seen while looking for CRLF CRLF across chunk boundaries. */
  private carry = '';
  /** Fields dropped so far. */
  dropped = 0;

  constructor(
    /** The whole field as received (name, colon, value, folded lines; no final CRLF): true to drop it. */
    private readonly drop: (field: string) => boolean,
    private readonly maxHeaderBytes: number,
  ) {}

  /** Bytes to pass on now: none while the header section is still arriving. */
  write(chunk: Buffer): Buffer[] {
    if (this.done || chunk.length === 0) return chunk.length === 0 ? [] : [chunk];
    if (this.heldBytes === 0 && chunk.length >= 2 && chunk[0] === 0x0d && chunk[1] === 0x0a) {
      // An empty header section: nothing to filter.
      this.release();
      return [chunk];
    }
    const text = this.carry + chunk.toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      this.carry = text.slice(-3);
      if (this.heldBytes > this.maxHeaderBytes) return this.giveUp();
      return [];
    }
    // The header ends after the first CRLF of CRLF CRLF; `text` starts carry.length bytes before `chunk`.
    const headerEnd = this.heldBytes + (end + 2 - this.carry.length);
    const all = Buffer.concat([...this.held, chunk]);
    this.release();
    return [this.filter(all.subarray(0, headerEnd)), all.subarray(headerEnd)].filter((b) => b.length > 0);
  }

  /** End of data: whatever is still held (a message that is all header), filtered. */
  end(): Buffer[] {
    if (this.done) return [];
    const header = Buffer.concat(this.held);
    this.release();
    return header.length === 0 ? [] : [this.filter(header)];
  }

  private giveUp(): Buffer[] {
    const held = this.held;
    this.release();
    return held;
  }

  private release(): void {
    this.done = true;
    this.held = [];
    this.heldBytes = 0;
    this.carry = '';
  }

  /** `header`: complete lines, each ending with CRLF (the last one possibly without). */
  private filter(header: Buffer): Buffer {
    const text = header.toString('latin1');
    const lines = text.split(/(?<=\r\n)/);
    const kept: string[] = [];
    let field: string[] = [];
    const flush = (): void => {
      if (field.length === 0) return;
      const whole = field.join('');
      if (this.drop(whole.replace(/\r\n$/, ''))) this.dropped++;
      else kept.push(whole);
      field = [];
    };
    for (const line of lines) {
      if ((line.startsWith(' ') || line.startsWith('\t')) && field.length > 0) field.push(line);
      else {
        flush();
        field.push(line);
      }
    }
    flush();
    return this.dropped === 0 ? header : Buffer.from(kept.join(''), 'latin1');
  }
}

/**
 * An Authentication-Results field whose authserv-id is `authservId` (RFC 8601 §2.2: the first
 * token of the value, after optional comments), compared without case.
 */
export function isAuthenticationResultsOf(authservId: string): (field: string) => boolean {
  const id = authservId.toLowerCase();
  return (field) => {
    const m = /^authentication-results[ \t]*:((?:.|\r\n[ \t])*)$/i.exec(field);
    if (!m) return false;
    const value = m[1].replace(/\r\n/g, '').replace(/\([^()]*\)/g, ' ').trim();
    const token = /^[^\s;]+/.exec(value)?.[0] ?? '';
    return token.replace(/\.$/, '').toLowerCase() === id;
  };
}
