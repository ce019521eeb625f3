/**
 * How addresses of local mailboxes compare: the domain always case-insensitively and in its
 * ASCII form (RFC 5321 §2.4; `bücher.test` = `xn--bcher-kva.test`), the local part per
 * `local_part_case` — except `postmaster`, which RFC 5321 §4.5.1 makes case-insensitive always.
 * A quoted local part that needs no quotes is the same as the bare one (`"alice"` = `alice`,
 * RFC 5321 §4.1.2), so both have one key.
 */
import { domainToASCII } from 'node:url';
import { DOT_STRING, DOT_STRING_UTF8, hasNonAscii } from '../smtp/abnf.js';
import { parseMailbox } from '../smtp/mailbox.js';
import type { LocalPartCase } from '../config/mailboxes-schema.js';

export interface CanonicalAddress {
  /** `local@domain` as compared: the key of every table in the users file. */
  readonly key: string;
  /** The local part as compared: unquoted where quotes are not needed, lower case when insensitive. */
  readonly localPart: string;
  /** Lower case, IDNs as A-labels; address literals lower case with brackets. */
  readonly domain: string;
  /** The local part is "postmaster" in any case. */
  readonly isPostmaster: boolean;
}

/** `"a\"b"` → `a"b`: the content of a quoted-string. */
function unquote(quoted: string): string {
  return quoted.slice(1, -1).replace(/\\([\s\S])/g, '$1');
}

/** The local part in its shortest equivalent form: without quotes where it is a Dot-string. */
function minimalLocalPart(localPart: string): string {
  if (!localPart.startsWith('"')) return localPart;
  const inner = unquote(localPart);
  const dotString = hasNonAscii(inner) ? DOT_STRING_UTF8 : DOT_STRING;
  if (inner !== '' && dotString.test(inner)) return inner;
  return `"${inner.replace(/(["\\])/g, '\\$1')}"`;
}

/** The domain as compared: lower case, U-labels turned into A-labels. */
export function canonicalDomain(domain: string): string {
  const lower = domain.toLowerCase();
  if (lower.startsWith('[')) return lower;
  const ascii = domainToASCII(lower);
  return ascii === '' ? lower : ascii;
}

/** The canonical form of `text` (a bare `local@domain`, no brackets), or null when it is not a mailbox. */
export function canonicalAddress(text: string, localPartCase: LocalPartCase): CanonicalAddress | null {
  const mailbox = parseMailbox(text.trim());
  if (mailbox === null) return null;
  const minimal = minimalLocalPart(mailbox.localPart);
  const isPostmaster = minimal.toLowerCase() === 'postmaster';
  const localPart = localPartCase === 'insensitive' || isPostmaster ? minimal.toLowerCase() : minimal;
  const domain = canonicalDomain(mailbox.domain);
  return { key: `${localPart}@${domain}`, localPart, domain, isPostmaster };
}

/** True when `text` is `Postmaster` without a domain (RFC 5321 §4.1.1.3 `<Postmaster>`). */
export function isBarePostmaster(text: string): boolean {
  return text.trim().toLowerCase() === 'postmaster';
}
