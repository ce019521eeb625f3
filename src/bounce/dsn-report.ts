/**
 * Delivery status notifications: RFC 3464 reports in an RFC 6522 multipart/report
 * (report-type=delivery-status) — a human-readable part, the machine-readable
 * message/delivery-status part (per-message fields, then one block per recipient), and the
 * returned content as RFC 3461 §4.3 RET asks: the whole message (message/rfc822) or its header
 * (text/rfc822-headers). Without RET, the whole message when it is under 10 KB, else the header.
 * Addresses in UTF-8 make it a message/global-delivery-status report (RFC 6533).
 *
 * The original body is not copied here: the rendered DSN names the place it goes
 * ({@link ORIGINAL_BODY}) and the store copies it in, so memory stays bounded.
 */
import { hasNonAscii } from '../smtp/abnf.js';
import type { OriginalRecipient } from '../smtp/dsn-params.js';
import type { Diagnostic } from './classify-reply.js';

/** RFC 3464 §2.3.3; 'expanded': delivered to an alias, which forwarded it to several addresses. */
export type DsnAction = 'failed' | 'delayed' | 'delivered' | 'relayed' | 'expanded';

/** Why the DSN is sent; it picks the subject and the human-readable text. */
export type DsnKind = 'failure' | 'delay' | 'success' | 'postmaster-copy';

export interface DsnRecipient {
  /** RFC 3464 §2.3.2: the address the final attempt was made for. */
  readonly finalRecipient: string;
  /** RFC 3461 §4.2 ORCPT as given by the client, when it was. */
  readonly originalRecipient: OriginalRecipient | null;
  readonly action: DsnAction;
  /** RFC 3463 status. */
  readonly status: string;
  readonly diagnostic: Diagnostic | null;
  /** The host that said it (RFC 3464 §2.3.5), when one did. */
  readonly remoteMta: string | null;
  readonly lastAttemptAt: number | null;
  /** Delayed only (RFC 3464 §2.3.8). */
  readonly willRetryUntil: number | null;
  /** One line for people: "host mx.example.test said: 550 5.1.1 User unknown (in reply to RCPT TO command)". */
  readonly reason: string;
}

export interface DsnOriginal {
  readonly queueId: string;
  /** The reverse-path; "" for the null sender. */
  readonly sender: string;
  readonly envid: string | null;
  readonly ret: 'FULL' | 'HDRS' | null;
  readonly receivedAt: number;
  /** Bytes of the stored message. */
  readonly size: number;
  /** The message needs SMTPUTF8 (RFC 6531). */
  readonly smtputf8: boolean;
  /** BODY=8BITMIME (RFC 6152). */
  readonly eightBit: boolean;
  /** The message's header section (up to the empty line); used when only headers are returned. */
  readonly headers: Buffer;
}

export interface DsnInput {
  readonly kind: DsnKind;
  /** Our host name: Reporting-MTA and the From: address's domain. */
  readonly reportingMta: string;
  /** The address the DSN goes to (the sender, or the postmaster). */
  readonly to: string;
  readonly original: DsnOriginal;
  readonly recipients: readonly DsnRecipient[];
  readonly now: number;
  /** Originals larger than this come back as headers only, whatever RET says. */
  readonly maxReturnedSize: number;
}

/** Marks where the store inserts the original message's stored body. */
export const ORIGINAL_BODY = Symbol('ORIGINAL_BODY');

export interface RenderedDsn {
  readonly parts: readonly (Buffer | typeof ORIGINAL_BODY)[];
  readonly returned: 'full' | 'headers';
  /** The DSN must go with SMTPUTF8 (UTF-8 addresses or a UTF-8 returned message). */
  readonly smtputf8: boolean;
  /** The DSN has 8-bit content (BODY=8BITMIME). */
  readonly eightBit: boolean;
  readonly messageId: string;
}

/** RFC 3461 §4.3 and the rule: without RET, the whole message only when under 10 KB. */
export const RETURN_FULL_WITHOUT_RET_BELOW = 10 * 1024;

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 §3.3 date-time in UTC: "Sat, 28 Nov 2026 14:50:53 +0000". */
export function rfc5322Date(ms: number): string {
  const d = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} `
    + `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;
}

/** Folds a header field at spaces so that no line exceeds 78 characters where it can be helped (RFC 5322 §2.2.3). */
export function foldField(name: string, value: string): string {
  // eslint-disable-next-line no-control-regex
  const words = value.replace(/[\r\n\x00]/g, ' ').split(' ');
  let line = `${name}:`;
  const lines: string[] = [];
  for (const w of words) {
    if (w === '') continue;
    if (line.length + 1 + w.length > 78 && line.trim().length > name.length + 1) {
      lines.push(line);
      line = `    ${w}`;
    } else {
      line += ` ${w}`;
    }
  }
  lines.push(line);
  return lines.join('\r\n');
}

function addressType(address: string): string {
  return hasNonAscii(address) ? 'utf-8' : 'rfc822';
}

const SUBJECTS: Readonly<Record<DsnKind, string>> = {
  failure: 'Undelivered Mail Returned to Sender',
  delay: 'Delayed Mail (still being retried)',
  success: 'Successful Mail Delivery Report',
  'postmaster-copy': 'Postmaster Copy: Undelivered Mail',
};

function hours(ms: number): string {
  const h = ms / 3_600_000;
  return h >= 48 ? `${(h / 24).toFixed(1)} days` : `${h.toFixed(1)} hours`;
}

function humanText(input: DsnInput): string[] {
  const host = input.reportingMta;
  const lines = [`This is the mail system at host ${host}.`, ''];
  switch (input.kind) {
    case 'failure':
      lines.push(
        "I'm sorry to have to inform you that your message could not",
        'be delivered to one or more recipients. It is attached below.',
        '',
        'For further assistance, please send mail to postmaster.',
        '',
        'If you do so, please include this problem report.',
      );
      break;
    case 'delay': {
      const first = input.recipients.find((r) => r.willRetryUntil !== null);
      lines.push(
        '####################################################################',
        '# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #',
        '####################################################################',
        '',
        `Your message could not be delivered for ${hours(input.now - input.original.receivedAt)}.`,
        first?.willRetryUntil ? `It will be retried until ${rfc5322Date(first.willRetryUntil)}.` : 'It will be retried.',
      );
      break;
    }
    case 'success':
      lines.push(
        'Your message was successfully delivered to the destination(s)',
        'listed below. If the message was delivered to a mailbox you will',
        'receive no further notifications. Otherwise you may still receive',
        'notifications of mail delivery errors from other systems.',
      );
      break;
    case 'postmaster-copy':
      lines.push(
        'A delivery status notification sent by this mail system could not',
        'be delivered either. Postern does not bounce a bounce; this report',
        'is for the postmaster.',
      );
      break;
  }
  lines.push('', '                   The mail system', '');
  for (const r of input.recipients) {
    lines.push(foldField(`<${r.finalRecipient}>`, r.reason));
  }
  return lines;
}

function deliveryStatus(input: DsnInput, utf8: boolean): string {
  const o = input.original;
  const perMessage = [
    `Reporting-MTA: dns; ${input.reportingMta}`,
    `X-Postern-Queue-ID: ${o.queueId}`,
    ...(o.sender === '' ? [] : [foldField('X-Postern-Sender', `${addressType(o.sender)}; ${o.sender}`)]),
    ...(o.envid === null ? [] : [`Original-Envelope-Id: ${o.envid}`]),
    `Arrival-Date: ${rfc5322Date(o.receivedAt)}`,
  ];
  const blocks = input.recipients.map((r) => {
    const f: string[] = [];
    f.push(`Final-Recipient: ${utf8 ? addressType(r.finalRecipient) : 'rfc822'}; ${r.finalRecipient}`);
    if (r.originalRecipient !== null) {
      f.push(foldField('Original-Recipient', `${r.originalRecipient.addrType}; ${r.originalRecipient.address}`));
    }
    f.push(`Action: ${r.action}`);
    f.push(`Status: ${r.status}`);
    if (r.remoteMta !== null) f.push(`Remote-MTA: dns; ${r.remoteMta}`);
    if (r.diagnostic !== null) f.push(foldField('Diagnostic-Code', `${r.diagnostic.type}; ${r.diagnostic.text}`));
    if (r.lastAttemptAt !== null) f.push(`Last-Attempt-Date: ${rfc5322Date(r.lastAttemptAt)}`);
    if (r.willRetryUntil !== null && r.action === 'delayed') f.push(`Will-Retry-Until: ${rfc5322Date(r.willRetryUntil)}`);
    return f.join('\r\n');
  });
  return [perMessage.join('\r\n'), ...blocks].join('\r\n\r\n') + '\r\n';
}

/** Whether the whole original goes back (else its header section). */
export function returnsFullMessage(ret: 'FULL' | 'HDRS' | null, size: number, maxReturnedSize: number): boolean {
  if (size > maxReturnedSize) return false;
  if (ret === 'FULL') return true;
  if (ret === 'HDRS') return false;
  return size < RETURN_FULL_WITHOUT_RET_BELOW;
}

/** Renders a DSN: the message's header and MIME parts, with {@link ORIGINAL_BODY} where the original goes. */
export function renderDsn(input: DsnInput): RenderedDsn {
  const o = input.original;
  const utf8 = o.smtputf8 || hasNonAscii(input.to) || input.recipients.some((r) => hasNonAscii(r.finalRecipient));
  const full = returnsFullMessage(o.ret, o.size, input.maxReturnedSize);
  const boundary = `${o.queueId}.${input.now}/${input.reportingMta}`;
  const messageId = `<${o.queueId}.${input.kind}.${input.now}@${input.reportingMta}>`;
  const eightBit = utf8 || o.eightBit || (!full && o.headers.some((b) => b >= 0x80));
  const header = [
    `From: Mail Delivery System <MAILER-DAEMON@${input.reportingMta}>`,
    foldField('To', `<${input.to}>`),
    `Subject: ${SUBJECTS[input.kind]}`,
    `Date: ${rfc5322Date(input.now)}`,
    `Message-ID: ${messageId}`,
    // RFC 3834 §5: an automatic response; nobody should answer it automatically.
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="${boundary}"`,
    `Content-Transfer-Encoding: ${eightBit ? '8bit' : '7bit'}`,
    '',
    'This is a MIME-encapsulated message.',
    '',
  ].join('\r\n');
  const human = [
    `--${boundary}`,
    'Content-Description: Notification',
    `Content-Type: text/plain; charset=${utf8 ? 'utf-8' : 'us-ascii'}`,
    '',
    ...humanText(input),
  ].join('\r\n');
  const status = [
    `--${boundary}`,
    'Content-Description: Delivery report',
    // RFC 6533 §6.1 for reports that carry UTF-8 addresses.
    `Content-Type: message/${utf8 ? 'global-delivery-status' : 'delivery-status'}`,
    '',
    deliveryStatus(input, utf8),
  ].join('\r\n');
  const contentType = full
    ? (o.smtputf8 ? 'message/global' : 'message/rfc822')
    : (o.smtputf8 ? 'message/global-headers' : 'text/rfc822-headers');
  const returnedHead = [
    `--${boundary}`,
    `Content-Description: ${full ? 'Undelivered Message' : 'Undelivered Message Headers'}`,
    `Content-Type: ${contentType}`,
    ...(full && o.eightBit ? ['Content-Transfer-Encoding: 8bit'] : []),
    '',
    '',
  ].join('\r\n');
  const end = `\r\n--${boundary}--\r\n`;
  const head = Buffer.from(`${header}\r\n${human}\r\n\r\n${status}\r\n${returnedHead}`, 'utf8');
  const parts: (Buffer | typeof ORIGINAL_BODY)[] = full
    ? [head, ORIGINAL_BODY, Buffer.from(end)]
    : [head, o.headers, Buffer.from(end)];
  return { parts, returned: full ? 'full' : 'headers', smtputf8: utf8, eightBit, messageId };
}

/**
 * The header section of a message: everything up to and including the empty line that ends it
 * (RFC 5322 §2.1), at most `max` bytes. Feed chunks until it returns done.
 */
export class HeaderCollector {
  private readonly parts: Buffer[] = [];
  private size = 0;
  private done = false;
  /** Trailing bytes of the previous chunk, to find a CRLF CRLF split across chunks. */
  private tail = '';

  constructor(private readonly max: number) {}

  /** Takes the next chunk; returns true once the header is complete (or the limit reached). */
  push(chunk: Buffer): boolean {
    if (this.done) return true;
    const room = this.max - this.size;
    const window = this.tail + chunk.subarray(0, Math.min(chunk.length, room)).toString('latin1');
    let end = window.indexOf('\r\n\r\n');
    if (end < 0 && window.startsWith('\r\n') && this.size === 0) end = -2; // no header at all
    if (end === -2) {
      this.done = true;
      return true;
    }
    if (end >= 0) {
      const upto = end + 4 - this.tail.length;
      this.parts.push(chunk.subarray(0, upto));
      this.size += upto;
      this.done = true;
      return true;
    }
    const take = Math.min(chunk.length, room);
    this.parts.push(chunk.subarray(0, take));
    this.size += take;
    this.tail = window.slice(-3);
    if (this.size >= this.max) this.done = true;
    return this.done;
  }

  headers(): Buffer {
    const h = Buffer.concat(this.parts);
    // A header cut at the limit still ends with a line end and the empty line.
    if (h.length > 0 && !h.subarray(-4).equals(Buffer.from('\r\n\r\n'))) {
      return Buffer.concat([h, Buffer.from(h.subarray(-2).equals(Buffer.from('\r\n')) ? '\r\n' : '\r\n\r\n')]);
    }
    return h;
  }
}
