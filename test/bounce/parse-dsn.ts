/**
 * A small, strict reader of the DSNs Postern writes (RFC 6522 multipart/report, RFC 3464
 * delivery-status), so tests assert on fields, not on bytes.
 */
import assert from 'node:assert/strict';

export type Fields = Map<string, string>;

/** Header fields of a block (unfolded; names lower-cased; the first of a repeated name wins). */
export function parseFields(text: string): Fields {
  const fields = new Map<string, string>();
  const unfolded = text.replace(/\r\n[ \t]+/g, ' ');
  for (const line of unfolded.split('\r\n')) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    assert.ok(colon > 0, `not a header field: ${JSON.stringify(line)}`);
    const name = line.slice(0, colon).toLowerCase();
    if (!fields.has(name)) fields.set(name, line.slice(colon + 1).trim());
  }
  return fields;
}

export interface MimePart {
  readonly headers: Fields;
  readonly body: string;
}

export interface ParsedDsn {
  readonly headers: Fields;
  readonly parts: readonly MimePart[];
  readonly perMessage: Fields;
  readonly perRecipient: readonly Fields[];
  /** The third part: its content type and body. */
  readonly returned: MimePart;
}

function splitHeader(text: string): { head: string; body: string } {
  const end = text.indexOf('\r\n\r\n');
  assert.ok(end >= 0, 'a header section ends with an empty line');
  return { head: text.slice(0, end), body: text.slice(end + 4) };
}

export function parseDsn(raw: Buffer | string): ParsedDsn {
  const text = typeof raw === 'string' ? raw : raw.toString('latin1');
  assert.ok(!/[^\r]\n/.test(text) && !/\r[^\n]/.test(text), 'CRLF line endings only');
  const { head, body } = splitHeader(text);
  const headers = parseFields(head);
  const type = headers.get('content-type') ?? '';
  assert.match(type, /^multipart\/report;/i);
  assert.match(type, /report-type=delivery-status/i);
  const boundary = /boundary="([^"]+)"/.exec(type)?.[1];
  assert.ok(boundary, 'a boundary');
  const first = body.indexOf(`--${boundary}\r\n`);
  assert.ok(first >= 0, 'the first part');
  const inner = body.slice(first + boundary.length + 4);
  const pieces = inner.split(`\r\n--${boundary}`);
  const closing = pieces.pop();
  assert.ok(closing !== undefined && closing.startsWith('--'), 'a closing delimiter');
  const parts = pieces.map((p, i) => {
    const s = i === 0 ? p : p.replace(/^\r\n/, '');
    const { head: h, body: b } = splitHeader(s);
    return { headers: parseFields(h), body: b };
  });
  assert.equal(parts.length, 3, 'three parts: notification, report, returned content');
  assert.match(parts[0].headers.get('content-type') ?? '', /^text\/plain/);
  assert.match(parts[1].headers.get('content-type') ?? '', /^message\/(global-)?delivery-status$/);
  const blocks = parts[1].body.replace(/\r\n$/, '').split('\r\n\r\n');
  const perMessage = parseFields(blocks[0]);
  const perRecipient = blocks.slice(1).map(parseFields);
  assert.ok(perMessage.get('reporting-mta'), 'Reporting-MTA is required (RFC 3464 §2.2.2)');
  for (const r of perRecipient) {
    assert.ok(r.get('final-recipient'), 'Final-Recipient is required (RFC 3464 §2.3.2)');
    assert.ok(r.get('action'), 'Action is required (RFC 3464 §2.3.3)');
    assert.match(r.get('status') ?? '', /^[245]\.\d{1,3}\.\d{1,3}$/, 'Status is required (RFC 3464 §2.3.4)');
  }
  return { headers, parts, perMessage, perRecipient, returned: parts[2] };
}
