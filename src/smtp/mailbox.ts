/**
 * Mailbox, reverse-path and forward-path (RFC 5321 §4.1.2, §4.1.1.3, §4.5.3.1; RFC 6531 §3.3 for
 * UTF-8). Parsing and formatting; the grammar fragments live in abnf.ts.
 *
 * UTF-8 local parts and U-label domains are accepted and flagged `utf8: true`: whether the session
 * allows them (SMTPUTF8 given on MAIL, RFC 6531 §3.4) is the caller's decision.
 */
import {
  hasNonAscii, isAddressLiteral, isDomain, isLocalPart, MAX_DOMAIN_OCTETS, utf8Length,
} from './abnf.js';

export interface Mailbox {
  /** The local part as it appears on the wire, quotes included when it was a quoted-string. */
  readonly localPart: string;
  /** A domain (as given, case kept) or an address literal including brackets: "[192.0.2.1]", "[IPv6:::1]". */
  readonly domain: string;
  /** True when local part or domain contain non-ASCII (needs SMTPUTF8, RFC 6531). */
  readonly utf8: boolean;
}

/**
 * Result of parsing a path at the start of a text. `rest` is what follows the closing ">".
 * kind 'syntax': no "<", or no matching ">" (the command is malformed: 501).
 * kind 'mailbox': the brackets are fine but what is inside is not an acceptable mailbox (553).
 */
export type PathResult =
  | { readonly ok: true; readonly mailbox: Mailbox | null; readonly rest: string }
  | { readonly ok: false; readonly kind: 'syntax' | 'mailbox' };

export type ForwardPathResult =
  | { readonly ok: true; readonly mailbox: Mailbox; readonly rest: string }
  | { readonly ok: false; readonly kind: 'syntax' | 'mailbox' };

/** RFC 5321 §4.5.3.1.1: "The maximum total length of a user name or other local-part is 64 octets." */
export const MAX_LOCAL_PART_OCTETS = 64;
/** RFC 5321 §4.5.3.1.3: a path is at most 256 octets, "including the punctuation and element separators". */
export const MAX_PATH_OCTETS = 256;

const SYNTAX: PathResult = { ok: false, kind: 'syntax' };
const BAD_MAILBOX: PathResult = { ok: false, kind: 'mailbox' };

/** RFC 5321 §4.1.1.3: `"<Postmaster>"` without a domain is always accepted as a recipient. */
export const POSTMASTER: Mailbox = { localPart: 'Postmaster', domain: '', utf8: false };

/**
 * Index of the ">" closing the path opened by text[0] === "<", honouring quoted-strings and
 * address literals (a ">" or "<" is a qtextSMTP and a dcontent character, RFC 5321 §4.1.2,
 * §4.1.3); -1 when there is none, -2 on a stray "<".
 */
function findPathEnd(text: string): number {
  let quoted = false;
  let literal = false;
  for (let i = 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (quoted) {
      if (c === 0x5c) i++; // quoted-pairSMTP: the next character is literal
      else if (c === 0x22) quoted = false;
    } else if (literal) {
      if (c === 0x5d) literal = false; // dcontent has no "]"
    } else if (c === 0x22) quoted = true;
    else if (c === 0x5b) literal = true;
    else if (c === 0x3e) return i;
    else if (c === 0x3c) return -2;
  }
  return -1;
}

/**
 * `Mailbox = Local-part "@" ( Domain / address-literal )` (RFC 5321 §4.1.2, RFC 6531 §3.3), with
 * the length limits of RFC 5321 §4.5.3.1. `text` is the bare mailbox, no brackets. Returns null
 * when it is not acceptable.
 */
export function parseMailbox(text: string): Mailbox | null {
  let at: number;
  if (text.charCodeAt(0) === 0x22) {
    // Quoted-string: find its closing quote, skipping quoted-pairs; "@" must follow it.
    let i = 1;
    while (i < text.length && text.charCodeAt(i) !== 0x22) i += text.charCodeAt(i) === 0x5c ? 2 : 1;
    at = i + 1;
    if (at >= text.length || text.charCodeAt(at) !== 0x40) return null;
  } else {
    at = text.indexOf('@'); // a Dot-string has no "@"
    if (at <= 0) return null;
  }
  const localPart = text.slice(0, at);
  const domain = text.slice(at + 1);
  const utf8 = hasNonAscii(text);
  if (!isLocalPart(localPart, utf8)) return null;
  if ((utf8 ? utf8Length(localPart) : localPart.length) > MAX_LOCAL_PART_OCTETS) return null;
  if (domain.charCodeAt(0) === 0x5b) {
    if (!isAddressLiteral(domain)) return null; // ASCII only, ≤ 255 by construction of the line
    if (domain.length > MAX_DOMAIN_OCTETS) return null;
  } else if (!isDomain(domain, true)) return null;
  return { localPart, domain, utf8 };
}

/**
 * `A-d-l = At-domain *( "," At-domain )`, `At-domain = "@" Domain` (RFC 5321 §4.1.2). Source
 * routes are accepted and ignored (RFC 5321 §3.6.1, §4.1.2), but must still be well-formed.
 */
function isAdl(adl: string): boolean {
  for (const atDomain of adl.split(',')) {
    if (atDomain.charCodeAt(0) !== 0x40 || !isDomain(atDomain.slice(1), true)) return false;
  }
  return true;
}

/**
 * Parses `Reverse-path = Path / "<>"` or `Forward-path = Path` at the start of `text`, where
 * `Path = "<" [ A-d-l ":" ] Mailbox ">"` (RFC 5321 §4.1.2). `<>` gives mailbox null.
 * Invalid UTF-8 (U+FFFD from the decoder, lone surrogates) makes the mailbox unacceptable.
 */
export function parsePath(text: string): PathResult {
  if (text.charCodeAt(0) !== 0x3c) return SYNTAX;
  const end = findPathEnd(text);
  if (end === -2) return SYNTAX;
  if (end === -1) return text.indexOf('>', 1) > 0 ? BAD_MAILBOX : SYNTAX; // e.g. an unclosed quote
  const rest = text.slice(end + 1);
  if (end === 1) return { ok: true, mailbox: null, rest };
  const path = text.slice(0, end + 1);
  if (utf8Length(path) > MAX_PATH_OCTETS) return BAD_MAILBOX; // RFC 5321 §4.5.3.1.3
  let inner = text.slice(1, end);
  if (inner.charCodeAt(0) === 0x40) {
    const colon = inner.indexOf(':');
    if (colon < 0 || !isAdl(inner.slice(0, colon))) return BAD_MAILBOX;
    inner = inner.slice(colon + 1);
  }
  const mailbox = parseMailbox(inner);
  return mailbox === null ? BAD_MAILBOX : { ok: true, mailbox, rest };
}

/**
 * A forward-path for RCPT (RFC 5321 §4.1.1.3): `<Postmaster>` (any case, no domain) gives
 * {@link POSTMASTER}; the null path `<>` is not a recipient (kind 'mailbox').
 */
export function parseForwardPath(text: string): ForwardPathResult {
  if (text.length >= 12 && text.charCodeAt(0) === 0x3c && text.slice(1, 12).toLowerCase() === 'postmaster>') {
    return { ok: true, mailbox: POSTMASTER, rest: text.slice(12) };
  }
  const r = parsePath(text);
  if (!r.ok) return r;
  if (r.mailbox === null) return { ok: false, kind: 'mailbox' };
  return { ok: true, mailbox: r.mailbox, rest: r.rest };
}

/** The address without brackets: "user@example.com", "Postmaster"; "" for the null path. */
export function formatMailbox(m: Mailbox | null): string {
  if (m === null) return '';
  return m.domain === '' ? m.localPart : `${m.localPart}@${m.domain}`;
}

/** The path as on the wire: "<user@example.com>", "<>" for the null path. */
export function formatPath(m: Mailbox | null): string {
  return `<${formatMailbox(m)}>`;
}

/**
 * The domain in lower case, for lookups and comparisons (domains are case-insensitive,
 * RFC 5321 §2.4); "" for the null path and for `<Postmaster>`.
 */
export function mailboxDomainLower(m: Mailbox | null): string {
  return m === null ? '' : m.domain.toLowerCase();
}
