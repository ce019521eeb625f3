/**
 * Where a user's Maildir is: `<mailboxes.path>/<domain>/<local-part>/`, or
 * `<mailboxes.path>/<maildir>` when the users file names one. Domain and local part are the
 * compared forms (lower case when insensitive, IDNs as A-labels), made safe as one path
 * segment each: every byte outside `A-Z a-z 0-9 . _ + = -` (and a leading ".") is written as
 * `%XX` of its UTF-8 encoding, so no address can name "..", a "/", or a hidden Maildir++ folder.
 */
import { join } from 'node:path';

export interface MaildirOwner {
  readonly localPart: string;
  readonly domain: string;
  readonly maildir: string | null;
}

const SAFE = /^[A-Za-z0-9._+=-]$/;

/** One path segment for `text`; injective, so two addresses never share a directory. */
export function pathSegment(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const ch = String.fromCharCode(byte);
    const leadingDot = out === '' && ch === '.';
    out += byte < 0x80 && SAFE.test(ch) && !leadingDot ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out === '' ? '%' : out;
}

/** The absolute Maildir of `owner` under `root` (mailboxes.path, absolute). */
export function maildirPath(root: string, owner: MaildirOwner): string {
  if (owner.maildir !== null) return join(root, owner.maildir);
  return join(root, pathSegment(owner.domain), pathSegment(owner.localPart));
}
