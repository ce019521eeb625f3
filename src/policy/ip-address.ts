/**
 * Client addresses as the policy compares and looks them up: canonical forms, equality across
 * IPv6 spellings, and the reversed names DNSBLs are queried with (RFC 5782 §2.1 for IPv4,
 * §2.4 for IPv6 nibbles).
 */
import { isIP } from 'node:net';

/** 4 for IPv4, 6 for IPv6, 0 for anything else. An IPv4-mapped IPv6 address counts as IPv4. */
export function ipFamily(ip: string): 0 | 4 | 6 {
  const v = isIP(ip);
  if (v === 6 && v4Mapped(ip) !== null) return 4;
  return v as 0 | 4 | 6;
}

/** "::ffff:192.0.2.1" → "192.0.2.1"; null when `ip` is not an IPv4-mapped IPv6 address. */
function v4Mapped(ip: string): string | null {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  return m ? m[1] : null;
}

/** The eight 16-bit groups of an IPv6 address, each as four lower-case hex digits. */
export function expandIPv6(ip: string): string[] {
  let text = ip.toLowerCase();
  // An embedded IPv4 tail (::ffff:192.0.2.1, 64:ff9b::192.0.2.1) becomes two groups.
  const v4 = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array.from({ length: 8 - h.length - t.length }, () => '0');
  return [...h, ...fill, ...t].map((g) => g.padStart(4, '0'));
}

/**
 * One spelling per address, for comparisons and counter keys: IPv4 as dotted quad (also when it
 * came IPv4-mapped), IPv6 fully expanded in lower case. Anything else is returned unchanged.
 */
export function canonicalIp(ip: string): string {
  const mapped = v4Mapped(ip);
  if (mapped !== null) return mapped;
  if (isIP(ip) === 6) return expandIPv6(ip).join(':');
  return ip;
}

/** Whether two spellings name the same address ("::1" and "0:0:0:0:0:0:0:1"). */
export function sameAddress(a: string, b: string): boolean {
  return canonicalIp(a) === canonicalIp(b);
}

/**
 * The name to look up in a DNSBL zone: IPv4 octets reversed (RFC 5782 §2.1,
 * 192.0.2.99 → 99.2.0.192.zone), IPv6 as 32 reversed nibbles (RFC 5782 §2.4).
 */
export function dnsblQueryName(ip: string, zone: string): string {
  const c = canonicalIp(ip);
  if (isIP(c) === 4) return `${c.split('.').reverse().join('.')}.${zone}`;
  return `${c.replace(/:/g, '').split('').reverse().join('.')}.${zone}`;
}
