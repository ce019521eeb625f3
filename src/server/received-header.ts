/**
 * The trace header a receiving SMTP server prepends (RFC 5321 §4.4, RFC 5322 §3.6.7):
 *
 *   Received: from helo.example (rdns.example [192.0.2.1])
 *           by mx.example.test (Postern) with ESMTP id 0Abc123
 *           for <user@example.test>; Sat, 28 Nov 2026 14:24:19 +0000
 *
 * "with" uses the RFC 3848 / RFC 6531 §3.7.3 protocol names (SMTP, ESMTP, ESMTPS, ESMTPA,
 * ESMTPSA, UTF8SMTP, UTF8SMTPS, UTF8SMTPA, UTF8SMTPSA).
 */
import { isIPv6 } from 'node:net';

export interface ReceivedFacts {
  readonly helo: string | null;
  readonly rdns: string | null;
  readonly ip: string;
  readonly hostname: string;
  readonly extended: boolean;
  readonly smtputf8: boolean;
  readonly tls: { readonly version: string; readonly cipher: string } | null;
  readonly authenticated: boolean;
  readonly queueId: string;
  /** "for" is written only when there is exactly one recipient (privacy of the others). */
  readonly recipients: readonly string[];
  readonly date: Date;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 §3.3 date-time, in UTC. */
export function rfc5322Date(d: Date): string {
  const p2 = (n: number): string => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} `
    + `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000`;
}

export function protocolName(f: Pick<ReceivedFacts, 'extended' | 'smtputf8' | 'tls' | 'authenticated'>): string {
  if (!f.extended) return 'SMTP';
  return `${f.smtputf8 ? 'UTF8SMTP' : 'ESMTP'}${f.tls ? 'S' : ''}${f.authenticated ? 'A' : ''}`;
}

export function receivedHeader(f: ReceivedFacts): string {
  const literal = isIPv6(f.ip) ? `IPv6:${f.ip}` : f.ip;
  const from = `from ${f.helo ?? 'unknown'} (${f.rdns ? `${f.rdns} ` : ''}[${literal}])`;
  const tls = f.tls ? ` (using ${f.tls.version} with cipher ${f.tls.cipher})` : '';
  const by = `by ${f.hostname} (Postern) with ${protocolName(f)}${tls} id ${f.queueId}`;
  const forClause = f.recipients.length === 1 ? `\r\n\tfor <${f.recipients[0]}>` : '';
  return `Received: ${from}\r\n\t${by}${forClause};\r\n\t${rfc5322Date(f.date)}\r\n`;
}
