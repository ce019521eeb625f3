/**
 * Grammar fragments of SMTP as precompiled regexes and small scanners, each beside the ABNF it
 * implements: RFC 5321 §4.1.2 (paths, mailboxes, domains, ESMTP parameters) and §4.1.3 (address
 * literals), extended for UTF-8 by RFC 6531 §3.3; xtext of RFC 3461 §4; U-label length per
 * RFC 5890 / RFC 3492 (Punycode). Input is a JS string already decoded from UTF-8.
 *
 * Pure: no I/O, no state. Every regex here is compiled once, at module load.
 */

// ── Character classes ──────────────────────────────────────────────────────────────────────────

/**
 * RFC 5322 §3.2.3 (used by RFC 5321 §4.1.2 `Atom`):
 *   atext = ALPHA / DIGIT / "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "/" / "=" /
 *           "?" / "^" / "_" / "`" / "{" / "|" / "}" / "~"
 */
const ATEXT = "A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~";

/**
 * RFC 6531 §3.3 / RFC 6532 §3.1: `UTF8-non-ascii` (UTF8-2 / UTF8-3 / UTF8-4), as code points.
 * Deliberately narrower than the ABNF: C1 controls (U+0080–U+009F), lone surrogates (never valid
 * UTF-8), U+FFFD (what a decoder puts in place of invalid UTF-8) and U+FFFE/U+FFFF are refused,
 * so invalid UTF-8 on the wire can never pass as part of an address. Use with the `u` flag.
 */
const UTF8_NON_ASCII = '\\u00a0-\\ud7ff\\ue000-\\ufffc\\u{10000}-\\u{10ffff}';

/** Any code point outside US-ASCII. */
const NON_ASCII = /[^\x00-\x7f]/;

/** True when `s` contains a code point above U+007F. */
export function hasNonAscii(s: string): boolean {
  return NON_ASCII.test(s);
}

/** Length of `s` in UTF-8 octets (RFC 5321 §4.5.3.1 limits count octets, not characters). */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { n += 2; i++; } // pair: 2 UTF-16 units → 4 octets
      else n += 2;
    } else n += 2;
  }
  return n;
}

// ── Local part (RFC 5321 §4.1.2, RFC 6531 §3.3) ─────────────────────────────────────────────────

/** `Atom = 1*atext` (RFC 5321 §4.1.2), ASCII only. */
export const ATOM = new RegExp(`^[${ATEXT}]+$`);

/** `Dot-string = Atom *("." Atom)` (RFC 5321 §4.1.2), ASCII only. */
export const DOT_STRING = new RegExp(`^[${ATEXT}]+(?:\\.[${ATEXT}]+)*$`);

/** `Dot-string` with RFC 6531 §3.3 `atext =/ UTF8-non-ascii`. */
export const DOT_STRING_UTF8 = new RegExp(
  `^[${ATEXT}${UTF8_NON_ASCII}]+(?:\\.[${ATEXT}${UTF8_NON_ASCII}]+)*$`, 'u');

/**
 * RFC 5321 §4.1.2:
 *   Quoted-string   = DQUOTE *QcontentSMTP DQUOTE
 *   QcontentSMTP    = qtextSMTP / quoted-pairSMTP
 *   quoted-pairSMTP = %d92 %d32-126
 *   qtextSMTP       = %d32-33 / %d35-91 / %d93-126
 */
export const QUOTED_STRING = /^"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"$/;

/** `Quoted-string` with RFC 6531 §3.3 `qtextSMTP =/ UTF8-non-ascii`. */
export const QUOTED_STRING_UTF8 = new RegExp(
  `^"(?:[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e${UTF8_NON_ASCII}]|\\\\[\\x20-\\x7e])*"$`, 'u');

/** Local-part = Dot-string / Quoted-string (RFC 5321 §4.1.2); UTF-8 per RFC 6531 when `utf8`. */
export function isLocalPart(s: string, utf8: boolean): boolean {
  if (s.charCodeAt(0) === 0x22) return (utf8 ? QUOTED_STRING_UTF8 : QUOTED_STRING).test(s);
  return (utf8 ? DOT_STRING_UTF8 : DOT_STRING).test(s);
}

// ── Domain (RFC 5321 §4.1.2, RFC 6531 §3.3, RFC 5890) ───────────────────────────────────────────

/** `Let-dig = ALPHA / DIGIT` (RFC 5321 §4.1.2). */
export const LET_DIG = /^[A-Za-z0-9]$/;

/** `Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig` (RFC 5321 §4.1.2). */
export const LDH_STR = /^[A-Za-z0-9-]*[A-Za-z0-9]$/;

/**
 * `sub-domain = Let-dig [Ldh-str]` (RFC 5321 §4.1.2), at most 63 octets (RFC 1035 §2.3.4,
 * RFC 5321 §4.5.3.1.2 refers to it).
 */
export const SUB_DOMAIN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** `Domain = sub-domain *("." sub-domain)` (RFC 5321 §4.1.2), ASCII, labels ≤ 63 octets. */
const DOMAIN_ASCII =
  /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * The shape of a U-label (RFC 6531 §3.3 `sub-domain =/ U-label`; RFC 5890 §2.3.2.1,
 * RFC 5891 §4.2.3): letters, combining marks, decimal digits, hyphens and the joiners; it does not
 * start with a hyphen or a combining mark, and does not end with a hyphen. The full IDNA2008
 * code point tables are out of scope; DNS refuses what slips through.
 */
const U_LABEL = /^[\p{L}\p{Nd}](?:[\p{L}\p{Mn}\p{Mc}\p{Nd}\u200c\u200d-]*[\p{L}\p{Mn}\p{Mc}\p{Nd}])?$/u;

/** RFC 5891 §4.2.3.1: a U-label has no "--" in its third and fourth positions. */
function isULabel(label: string): boolean {
  if (!U_LABEL.test(label)) return false;
  if (label.charCodeAt(2) === 0x2d && label.charCodeAt(3) === 0x2d) return false;
  // RFC 5890 §2.3.2.1: its A-label ("xn--" + Punycode) is a valid LDH label, so ≤ 63 octets.
  return 4 + punycodeEncode(label.toLowerCase()).length <= 63;
}

/** RFC 5321 §4.5.3.1.2: "The maximum total length of a domain name or number is 255 octets." */
export const MAX_DOMAIN_OCTETS = 255;

/**
 * `Domain = sub-domain *("." sub-domain)` (RFC 5321 §4.1.2), at most 255 octets. With
 * `allowULabels`, a label may also be a U-label (RFC 6531 §3.3); then its A-label must fit in 63
 * octets and the whole domain in A-label form in 255. No trailing dot, no empty label.
 */
export function isDomain(s: string, allowULabels: boolean): boolean {
  if (!hasNonAscii(s)) return s.length <= MAX_DOMAIN_OCTETS && DOMAIN_ASCII.test(s);
  if (!allowULabels || utf8Length(s) > MAX_DOMAIN_OCTETS) return false;
  let aceLength = -1;
  for (const label of s.split('.')) {
    if (hasNonAscii(label)) {
      if (!isULabel(label)) return false;
      aceLength += 1 + 4 + punycodeEncode(label.toLowerCase()).length;
    } else {
      if (!SUB_DOMAIN.test(label)) return false;
      aceLength += 1 + label.length;
    }
  }
  return aceLength <= MAX_DOMAIN_OCTETS;
}

// ── Address literals (RFC 5321 §4.1.3) ─────────────────────────────────────────────────────────

/**
 *   IPv4-address-literal = Snum 3("."  Snum)
 *   Snum = 1*3DIGIT  ; representing a decimal integer value in the range 0 through 255
 * Leading zeros are allowed by the ABNF ("010" is 10) and accepted.
 */
export const IPV4_ADDRESS_LITERAL =
  /^(?:[01]?\d?\d|2[0-4]\d|25[0-5])(?:\.(?:[01]?\d?\d|2[0-4]\d|25[0-5])){3}$/;

/** `IPv6-hex = 1*4HEXDIG` */
const IPV6_HEX = /^[0-9A-Fa-f]{1,4}$/;

/** Counts the `IPv6-hex` groups of a ":"-separated run ("" has none), or -1 when one is bad. */
function countHexGroups(run: string): number {
  if (run === '') return 0;
  const groups = run.split(':');
  for (const g of groups) if (!IPV6_HEX.test(g)) return -1;
  return groups.length;
}

/**
 * RFC 5321 §4.1.3:
 *   IPv6-addr   = IPv6-full / IPv6-comp / IPv6v4-full / IPv6v4-comp
 *   IPv6-full   = IPv6-hex 7(":" IPv6-hex)
 *   IPv6-comp   = [IPv6-hex *5(":" IPv6-hex)] "::" [IPv6-hex *5(":" IPv6-hex)]
 *   IPv6v4-full = IPv6-hex 5(":" IPv6-hex) ":" IPv4-address-literal
 *   IPv6v4-comp = [IPv6-hex *3(":" IPv6-hex)] "::" [IPv6-hex *3(":" IPv6-hex) ":"]
 *                 IPv4-address-literal
 * RFC 5321's prose makes "::" stand for at least two groups; RFC 4291 §2.2 lets it stand for one
 * (e.g. "1:2:3:4:5:6:7::"), and such an address is unambiguous, so it is accepted here
 * (be liberal in what you accept): at most 7 explicit groups beside "::", an IPv4 tail counting 2.
 */
export function isIPv6Addr(s: string): boolean {
  if (s.length < 2 || s.length > 45) return false;
  const lastColon = s.lastIndexOf(':');
  if (lastColon < 0) return false;
  let head = s;
  let tailGroups = 0;
  if (s.indexOf('.', lastColon) >= 0) {
    // IPv6v4-*: the part after the last ":" is an IPv4-address-literal worth two groups.
    if (!IPV4_ADDRESS_LITERAL.test(s.slice(lastColon + 1))) return false;
    tailGroups = 2;
    head = s.slice(0, lastColon + 1);
    if (!head.endsWith('::')) head = head.slice(0, -1);
  }
  const dc = head.indexOf('::');
  if (dc < 0) {
    const n = countHexGroups(head);
    return n >= 0 && n + tailGroups === 8;
  }
  if (head.indexOf('::', dc + 1) >= 0) return false; // at most one "::" (also refuses ":::")
  const left = countHexGroups(head.slice(0, dc));
  const right = countHexGroups(head.slice(dc + 2));
  return left >= 0 && right >= 0 && left + right + tailGroups <= 7;
}

/**
 *   General-address-literal = Standardized-tag ":" 1*dcontent
 *   Standardized-tag = Ldh-str   ; registered with IANA
 *   dcontent = %d33-90 / %d94-126 ; printable US-ASCII, excl. "[", "\", "]"
 */
export const GENERAL_ADDRESS_LITERAL = /^[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+$/;

/** `"IPv6:"` — ABNF strings are case-insensitive (RFC 5234 §2.3). */
const IPV6_TAG = /^IPv6:/i;

/**
 *   address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
 *                           General-address-literal ) "]"
 *   IPv6-address-literal = "IPv6:" IPv6-addr
 * `s` includes the brackets. A literal tagged "IPv6" must be a valid IPv6 address (it is never
 * taken as a General-address-literal instead).
 */
export function isAddressLiteral(s: string): boolean {
  if (s.length < 3 || s.charCodeAt(0) !== 0x5b || s.charCodeAt(s.length - 1) !== 0x5d) return false;
  const inner = s.slice(1, -1);
  if (IPV4_ADDRESS_LITERAL.test(inner)) return true;
  if (IPV6_TAG.test(inner)) return isIPv6Addr(inner.slice(5));
  return GENERAL_ADDRESS_LITERAL.test(inner);
}

// ── ESMTP parameters (RFC 5321 §4.1.2, RFC 6531 §3.3) ──────────────────────────────────────────

/** `esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")` */
export const ESMTP_KEYWORD = /^[A-Za-z0-9][A-Za-z0-9-]*$/;

/**
 * `esmtp-value = 1*(%d33-60 / %d62-126)` — any printable US-ASCII but "=" — extended by
 * RFC 6531 §3.3 with UTF8-non-ascii (each parameter then decides whether it allows it).
 */
export const ESMTP_VALUE = new RegExp(`^[\\x21-\\x3c\\x3e-\\x7e${UTF8_NON_ASCII}]+$`, 'u');

/**
 * RFC 3461 §4:
 *   xtext   = *( xchar / hexchar )
 *   xchar   = any ASCII CHAR between "!" (33) and "~" (126) inclusive, except for "+" and "="
 *   hexchar = ASCII "+" immediately followed by two upper case hexadecimal digits
 * Lower-case hex digits are accepted too (liberal); the encoder always writes upper case.
 */
export const XTEXT = /^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-Fa-f]{2})*$/;

/**
 * RFC 6533 §3 (ORCPT with addr-type "utf-8"):
 *   utf-8-addr-xtext   = 1*(QCHAR / EmbeddedUnicodeChar)
 *   utf-8-addr-unitext = 1*(QUCHAR / EmbeddedUnicodeChar)
 *   QCHAR  = %x21-2a / %x2c-3c / %x3e-5b / %x5d-7e   ; no "+", "=", "\"
 *   QUCHAR = QCHAR / UTF8-non-ascii
 *   EmbeddedUnicodeChar = %x5C.78 "{" HEXPOINT "}"   ; "\x{" HEXPOINT "}"
 * HEXPOINT is taken liberally as 1 to 6 hex digits (the value is checked when decoding).
 */
export const UTF8_ADDR_TEXT = new RegExp(
  `^(?:[\\x21-\\x2a\\x2c-\\x3c\\x3e-\\x5b\\x5d-\\x7e${UTF8_NON_ASCII}]|\\\\x\\{[0-9A-Fa-f]{1,6}\\})+$`, 'u');

/** RFC 822 §3.3 `atom` (RFC 3461 §4.2 `addr-type = atom`): same characters as RFC 5322 atext. */
export const ADDR_TYPE = ATOM;

// ── Punycode (RFC 3492 §6.3), for the A-label length of U-labels ─────────────────────────────────

const BASE = 36;
const T_MIN = 1;
const T_MAX = 26;
const SKEW = 38;
const DAMP = 700;

/** RFC 3492 §6.1 bias adaptation. */
function adapt(delta: number, numPoints: number, first: boolean): number {
  let d = first ? Math.floor(delta / DAMP) : delta >> 1;
  d += Math.floor(d / numPoints);
  let k = 0;
  while (d > ((BASE - T_MIN) * T_MAX) >> 1) {
    d = Math.floor(d / (BASE - T_MIN));
    k += BASE;
  }
  return k + Math.floor(((BASE - T_MIN + 1) * d) / (d + SKEW));
}

/** 0..25 → "a".."z", 26..35 → "0".."9" (RFC 3492 §5). */
function digitChar(d: number): string {
  return String.fromCharCode(d < 26 ? 0x61 + d : 0x30 + d - 26);
}

/**
 * RFC 3492 §6.3 Punycode encoding of one label (without the "xn--" prefix): "münchen" → "mnchen-3ya".
 * The caller maps case first when it wants the A-label.
 */
export function punycodeEncode(label: string): string {
  const cps = Array.from(label, (ch) => ch.codePointAt(0) as number);
  let out = '';
  for (const c of cps) if (c < 0x80) out += String.fromCharCode(c);
  const basic = out.length;
  let handled = basic;
  if (basic > 0) out += '-';
  let n = 0x80;
  let delta = 0;
  let bias = 72;
  while (handled < cps.length) {
    let m = Number.MAX_SAFE_INTEGER;
    for (const c of cps) if (c >= n && c < m) m = c;
    delta += (m - n) * (handled + 1);
    n = m;
    for (const c of cps) {
      if (c < n) delta++;
      if (c !== n) continue;
      let q = delta;
      for (let k = BASE; ; k += BASE) {
        const t = k <= bias ? T_MIN : k >= bias + T_MAX ? T_MAX : k - bias;
        if (q < t) break;
        out += digitChar(t + ((q - t) % (BASE - t)));
        q = Math.floor((q - t) / (BASE - t));
      }
      out += digitChar(q);
      bias = adapt(delta, handled + 1, handled === basic);
      delta = 0;
      handled++;
    }
    delta++;
    n++;
  }
  return out;
}
