/**
 * ESMTP parameters of MAIL and RCPT (RFC 5321 §4.1.2 `Mail-parameters` / `Rcpt-parameters`):
 * SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531), RET / ENVID / NOTIFY / ORCPT
 * (RFC 3461, RFC 6533 for ORCPT addr-type "utf-8"), AUTH (RFC 4954 §5); xtext (RFC 3461 §4).
 * Parsed and encoded by one grammar.
 *
 * Errors, in the order they are checked, parameter by parameter from left to right:
 *   a token that is not `esmtp-keyword ["=" esmtp-value]`   → 'mail.syntax' / 'rcpt.syntax'
 *   a keyword this verb does not know                      → 'param.unknown' {param: KEYWORD}
 *   a keyword given twice, or a malformed value            → 'param.syntax'  {param: KEYWORD}
 *   BODY=BINARYMIME (RFC 3030 needs CHUNKING + BINARYMIME)  → 'param.not-implemented' {param: 'BODY=BINARYMIME'}
 */
import { ADDR_TYPE, ESMTP_KEYWORD, ESMTP_VALUE, UTF8_ADDR_TEXT, XTEXT } from './abnf.js';
import type { NotifyParam, OriginalRecipient } from './dsn-params.js';
import type { ReplyId } from './reply-catalogue.js';
import type { ReplyVars } from './reply.js';

export interface MailParams {
  /** RFC 1870 SIZE=n; null when not given. */
  readonly size: number | null;
  /** RFC 6152 BODY; null when not given. */
  readonly body: '7BIT' | '8BITMIME' | null;
  /** RFC 6531 SMTPUTF8 given. */
  readonly smtputf8: boolean;
  /** RFC 3461 RET. */
  readonly ret: 'FULL' | 'HDRS' | null;
  /** RFC 3461 ENVID, xtext-decoded. */
  readonly envid: string | null;
  /** RFC 4954 AUTH=<mailbox> or "<>", xtext-decoded; null when not given. */
  readonly auth: string | null;
}

export interface RcptParams {
  readonly notify: NotifyParam | null;
  readonly orcpt: OriginalRecipient | null;
}

/**
 * Structurally the `CommandError` of command.ts (declared here so that the two modules do not
 * import each other).
 */
export interface ParamError {
  readonly replyId: ReplyId;
  readonly vars?: ReplyVars;
}

export type ParamsResult<P> =
  | { readonly ok: true; readonly params: P }
  | { readonly ok: false; readonly error: ParamError };

export const NO_MAIL_PARAMS: MailParams = Object.freeze({
  size: null, body: null, smtputf8: false, ret: null, envid: null, auth: null,
});

export const NO_RCPT_PARAMS: RcptParams = Object.freeze({ notify: null, orcpt: null });

/** RFC 3461 §4.4: "The maximum length of the value of the ENVID parameter is 100 characters." */
export const MAX_ENVID_LENGTH = 100;
/** RFC 3461 §4.2: the ORCPT value is at most 500 characters. */
export const MAX_ORCPT_LENGTH = 500;

// ── xtext (RFC 3461 §4) ─────────────────────────────────────────────────────────────────────────

const HEX = '0123456789ABCDEF';
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes RFC 3461 xtext: "+" HEXCHAR HEXCHAR stands for that octet; the octets are read as UTF-8.
 * Returns null when `s` is not xtext (a bare "+" or "=", a space, a control or non-ASCII
 * character, "+" without two hex digits) or the decoded octets are not valid UTF-8.
 */
export function decodeXtext(s: string): string | null {
  if (!XTEXT.test(s)) return null;
  if (s.indexOf('+') < 0) return s;
  const bytes = new Uint8Array(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2b) {
      bytes[n++] = parseInt(s.slice(i + 1, i + 3), 16);
      i += 2;
    } else bytes[n++] = c;
  }
  try {
    return utf8Decoder.decode(bytes.subarray(0, n));
  } catch {
    return null;
  }
}

function hexOctet(b: number): string {
  return `+${HEX[b >> 4]}${HEX[b & 15]}`;
}

/**
 * Encodes RFC 3461 xtext: every octet of the UTF-8 form outside "!".."~" (33–126), and "+" and
 * "=", becomes "+" and two upper-case hex digits. `decodeXtext(encodeXtext(s)) === s`.
 */
export function encodeXtext(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x21 && c <= 0x7e && c !== 0x2b && c !== 0x3d) out += s[i];
    else if (c < 0x80) out += hexOctet(c);
    else {
      const cp = s.codePointAt(i) as number;
      const ch = String.fromCodePoint(cp);
      for (const b of utf8Encoder.encode(ch)) out += hexOctet(b);
      i += ch.length - 1;
    }
  }
  return out;
}

const EMBEDDED_UNICODE = /\\x\{([0-9A-Fa-f]{1,6})\}/g;

/**
 * Decodes RFC 6533 §3 utf-8-addr-xtext / utf-8-addr-unitext (ORCPT addr-type "utf-8"):
 * "\x{HEX}" stands for that code point; UTF-8 characters may appear as themselves.
 * Returns null when malformed, or a "\x{…}" names a surrogate or a value above U+10FFFF.
 */
export function decodeUtf8AddrXtext(s: string): string | null {
  if (!UTF8_ADDR_TEXT.test(s)) return null;
  let bad = false;
  const out = s.replace(EMBEDDED_UNICODE, (_m, hex: string) => {
    const cp = parseInt(hex, 16);
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) { bad = true; return ''; }
    return String.fromCodePoint(cp);
  });
  return bad ? null : out;
}

/**
 * Encodes RFC 6533 §3 utf-8-addr-xtext: everything but QCHAR ("!".."~" without "+", "=", "\")
 * becomes "\x{HEX}", so the result is plain ASCII and needs no SMTPUTF8.
 */
export function encodeUtf8AddrXtext(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (c >= 0x21 && c <= 0x7e && c !== 0x2b && c !== 0x3d && c !== 0x5c) out += ch;
    else out += `\\x{${c.toString(16).toUpperCase()}}`;
  }
  return out;
}

// ── Parsing ─────────────────────────────────────────────────────────────────────────────────────

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A handler stores the value in the builder, or returns the error for a malformed value. */
type Handler<P> = (value: string | null, into: Mutable<P>, keyword: string) => ParamError | null;

function paramSyntax(keyword: string): ParamError {
  return { replyId: 'param.syntax', vars: { param: keyword } };
}

/** Printable US-ASCII, space included (RFC 3461 §4.4: ENVID is printable US-ASCII). */
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;
/** No C0 control, DEL or C1 control (a decoded value must not smuggle line breaks anywhere). */
const NO_CONTROLS = /^[^\x00-\x1f\x7f-\x9f]+$/;
const SIZE_VALUE = /^\d{1,20}$/;

const MAIL_HANDLERS: Readonly<Record<string, Handler<MailParams>>> = {
  // RFC 1870 §3: size-value ::= 1*20DIGIT. Values beyond 2^53 are clamped: they exceed any limit.
  SIZE(value, into, kw) {
    if (value === null || !SIZE_VALUE.test(value)) return paramSyntax(kw);
    into.size = Math.min(Number(value), Number.MAX_SAFE_INTEGER);
    return null;
  },
  // RFC 6152 §2: body-value ::= "7BIT" / "8BITMIME"; RFC 3030 §3 adds "BINARYMIME".
  BODY(value, into, kw) {
    const v = value === null ? '' : value.toUpperCase();
    if (v === '7BIT' || v === '8BITMIME') { into.body = v; return null; }
    if (v === 'BINARYMIME') return { replyId: 'param.not-implemented', vars: { param: 'BODY=BINARYMIME' } };
    return paramSyntax(kw);
  },
  // RFC 6531 §3.4: the SMTPUTF8 parameter has no value.
  SMTPUTF8(value, into, kw) {
    if (value !== null) return paramSyntax(kw);
    into.smtputf8 = true;
    return null;
  },
  // RFC 3461 §4.3: ret-value = "FULL" / "HDRS".
  RET(value, into, kw) {
    const v = value === null ? '' : value.toUpperCase();
    if (v !== 'FULL' && v !== 'HDRS') return paramSyntax(kw);
    into.ret = v;
    return null;
  },
  // RFC 3461 §4.4: "ENVID=" xtext, printable US-ASCII, at most 100 characters (decoded).
  ENVID(value, into, kw) {
    const v = value === null ? null : decodeXtext(value);
    if (v === null || v.length > MAX_ENVID_LENGTH || !PRINTABLE_ASCII.test(v)) return paramSyntax(kw);
    into.envid = v;
    return null;
  },
  // RFC 4954 §5: auth-param = "AUTH=" xtext, a mailbox or "<>" once decoded.
  AUTH(value, into, kw) {
    const v = value === null ? null : decodeXtext(value);
    if (v === null || !NO_CONTROLS.test(v)) return paramSyntax(kw);
    into.auth = v;
    return null;
  },
};

const NOTIFY_ELEMENTS: ReadonlySet<string> = new Set(['SUCCESS', 'FAILURE', 'DELAY']);

const RCPT_HANDLERS: Readonly<Record<string, Handler<RcptParams>>> = {
  // RFC 3461 §4.1: notify-esmtp-value = "NEVER" / 1#notify-list-element,
  // notify-list-element = "SUCCESS" / "FAILURE" / "DELAY". Repeated elements collapse.
  NOTIFY(value, into, kw) {
    if (value === null) return paramSyntax(kw);
    const v = value.toUpperCase();
    if (v === 'NEVER') { into.notify = 'NEVER'; return null; }
    const list: Array<'SUCCESS' | 'FAILURE' | 'DELAY'> = [];
    for (const element of v.split(',')) {
      if (!NOTIFY_ELEMENTS.has(element)) return paramSyntax(kw); // also NEVER with others, ""
      const e = element as 'SUCCESS' | 'FAILURE' | 'DELAY';
      if (!list.includes(e)) list.push(e);
    }
    into.notify = list;
    return null;
  },
  // RFC 3461 §4.2: orcpt-value = addr-type ";" xtext, addr-type = atom; RFC 6533 §3 for "utf-8".
  ORCPT(value, into, kw) {
    const semi = value === null ? -1 : value.indexOf(';');
    if (value === null || semi <= 0) return paramSyntax(kw);
    const addrType = value.slice(0, semi);
    if (!ADDR_TYPE.test(addrType)) return paramSyntax(kw);
    const encoded = value.slice(semi + 1);
    const address = addrType.toLowerCase() === 'utf-8' ? decodeUtf8AddrXtext(encoded) : decodeXtext(encoded);
    if (address === null || address.length > MAX_ORCPT_LENGTH || !NO_CONTROLS.test(address)) {
      return paramSyntax(kw);
    }
    into.orcpt = { addrType, address };
    return null;
  },
};

function parseParams<P>(
  text: string,
  handlers: Readonly<Record<string, Handler<P>>>,
  into: Mutable<P>,
  commandSyntax: ReplyId,
): ParamsResult<P> {
  const seen = new Set<string>();
  for (const token of text.split(' ')) {
    if (token === '') continue; // parameters are separated by one or more SP
    const eq = token.indexOf('=');
    const keyword = eq < 0 ? token : token.slice(0, eq);
    if (!ESMTP_KEYWORD.test(keyword)) return { ok: false, error: { replyId: commandSyntax } };
    const kw = keyword.toUpperCase();
    const handler = Object.hasOwn(handlers, kw) ? handlers[kw] : undefined;
    // RFC 5321 §4.1.1.11: an unrecognised parameter gets 555.
    if (handler === undefined) return { ok: false, error: { replyId: 'param.unknown', vars: { param: kw } } };
    const value = eq < 0 ? null : token.slice(eq + 1);
    if (seen.has(kw) || (value !== null && !ESMTP_VALUE.test(value))) return { ok: false, error: paramSyntax(kw) };
    seen.add(kw);
    const error = handler(value, into, kw);
    if (error !== null) return { ok: false, error };
  }
  return { ok: true, params: into };
}

/**
 * Parses `Mail-parameters = esmtp-param *(SP esmtp-param)` (RFC 5321 §4.1.2): the text after
 * the reverse-path; leading, trailing and repeated spaces are allowed; "" gives no parameters.
 */
export function parseMailParams(text: string): ParamsResult<MailParams> {
  if (text === '') return { ok: true, params: NO_MAIL_PARAMS };
  return parseParams<MailParams>(text, MAIL_HANDLERS, { ...NO_MAIL_PARAMS }, 'mail.syntax');
}

/** Parses `Rcpt-parameters` (RFC 5321 §4.1.2), as {@link parseMailParams}. */
export function parseRcptParams(text: string): ParamsResult<RcptParams> {
  if (text === '') return { ok: true, params: NO_RCPT_PARAMS };
  return parseParams<RcptParams>(text, RCPT_HANDLERS, { ...NO_RCPT_PARAMS }, 'rcpt.syntax');
}

// ── Encoding ────────────────────────────────────────────────────────────────────────────────────

/** The wire form of MAIL parameters, separated by single spaces; "" when there are none. */
export function encodeMailParams(p: MailParams): string {
  const out: string[] = [];
  if (p.size !== null) out.push(`SIZE=${p.size}`);
  if (p.body !== null) out.push(`BODY=${p.body}`);
  if (p.smtputf8) out.push('SMTPUTF8');
  if (p.ret !== null) out.push(`RET=${p.ret}`);
  if (p.envid !== null) out.push(`ENVID=${encodeXtext(p.envid)}`);
  if (p.auth !== null) out.push(`AUTH=${encodeXtext(p.auth)}`);
  return out.join(' ');
}

/** The wire form of RCPT parameters, separated by single spaces; "" when there are none. */
export function encodeRcptParams(p: RcptParams): string {
  const out: string[] = [];
  if (p.notify !== null) out.push(`NOTIFY=${p.notify === 'NEVER' ? 'NEVER' : p.notify.join(',')}`);
  if (p.orcpt !== null) {
    const { addrType, address } = p.orcpt;
    const encoded = addrType.toLowerCase() === 'utf-8' ? encodeUtf8AddrXtext(address) : encodeXtext(address);
    out.push(`ORCPT=${addrType};${encoded}`);
  }
  return out.join(' ');
}
