/**
 * Sender-domain verification at MAIL (Postfix: reject_unknown_sender_domain): the domain of the
 * reverse-path must be able to receive a bounce — it has MX records (not a null MX, RFC 7505
 * §4), or, without MX, an A or AAAA record (the implicit MX of RFC 5321 §5.1).
 * NXDOMAIN, null MX, or no MX/A/AAAA → 553 5.1.8; a lookup that could not complete → 451 4.1.8.
 */
import { safeLookup, type PolicyDns } from './facts.js';
import { describeDnsAnswer, type DnsLookupRecord } from './policy-trace.js';

export interface SenderDomainVerdict {
  readonly result: 'exists' | 'missing' | 'temporary';
  readonly why: string;
  readonly dns: readonly DnsLookupRecord[];
}

/** `domain` as given in MAIL FROM (case and a trailing dot do not matter). */
export async function verifySenderDomain(dns: PolicyDns, domain: string): Promise<SenderDomainVerdict> {
  const name = domain.toLowerCase().replace(/\.$/, '');
  if (name.startsWith('[')) return { result: 'exists', why: 'an address literal (nothing to look up)', dns: [] };
  const lookups: DnsLookupRecord[] = [];
  const mx = await safeLookup(() => dns.mx(name));
  lookups.push({ query: `MX ${name}`, answer: describeDnsAnswer(mx) });
  if (mx.ok) {
    const nullMx = mx.records.every((r) => r.exchange === '' || r.exchange === '.');
    return nullMx
      ? { result: 'missing', why: 'null MX: the domain accepts no mail (RFC 7505)', dns: lookups }
      : { result: 'exists', why: 'MX records', dns: lookups };
  }
  if (mx.kind === 'temporary') return { result: 'temporary', why: 'the MX lookup failed temporarily', dns: lookups };
  if (mx.kind === 'nxdomain') return { result: 'missing', why: 'NXDOMAIN', dns: lookups };
  const [a, aaaa] = await Promise.all([safeLookup(() => dns.a(name)), safeLookup(() => dns.aaaa(name))]);
  lookups.push({ query: `A ${name}`, answer: describeDnsAnswer(a) }, { query: `AAAA ${name}`, answer: describeDnsAnswer(aaaa) });
  if (a.ok || aaaa.ok) return { result: 'exists', why: 'no MX, but address records (implicit MX)', dns: lookups };
  if ((!a.ok && a.kind === 'temporary') || (!aaaa.ok && aaaa.kind === 'temporary')) {
    return { result: 'temporary', why: 'an address lookup failed temporarily', dns: lookups };
  }
  return { result: 'missing', why: 'no MX, A or AAAA records', dns: lookups };
}
