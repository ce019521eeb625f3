/**
 * Finding the hosts for a domain (RFC 5321 §5.1): MX records in preference order, equal
 * preferences shuffled (§5.1: "randomized"), each host with its A and AAAA addresses; no MX
 * records → the domain itself as an implicit MX; a null MX (RFC 7505: one MX with "." as its
 * exchange) → the domain takes no mail; NXDOMAIN → it does not exist. Temporary DNS trouble is
 * soft, everything that says "no" is hard.
 */
import type { DeliveryFact } from '../bounce/delivery-fact.js';
import type { DnsAnswer, MxRecord } from '../dns/dns-resolver.js';

export interface MxLookups {
  mx(name: string): Promise<DnsAnswer<MxRecord>>;
  a(name: string): Promise<DnsAnswer<string>>;
  aaaa(name: string): Promise<DnsAnswer<string>>;
}

export interface MxHost {
  readonly name: string;
  readonly preference: number;
  /** IPv4 first, then IPv6. Empty when the lookup failed (see `lookupFailed`). */
  readonly addresses: readonly string[];
  /** The address lookup failed temporarily. */
  readonly lookupFailed: boolean;
}

export type MxResult =
  | { readonly ok: true; readonly hosts: readonly MxHost[]; readonly implicit: boolean }
  | { readonly ok: false; readonly fact: DeliveryFact };

/** Sorts by preference and shuffles runs of equal preference with `random` (Fisher–Yates). */
export function orderMx(records: readonly MxRecord[], random: () => number): MxRecord[] {
  const sorted = [...records].sort((a, b) => a.priority - b.priority);
  let start = 0;
  while (start < sorted.length) {
    let end = start;
    while (end < sorted.length && sorted[end].priority === sorted[start].priority) end++;
    for (let i = end - 1; i > start; i--) {
      const j = start + Math.floor(random() * (i - start + 1));
      [sorted[i], sorted[j]] = [sorted[j], sorted[i]];
    }
    start = end;
  }
  return sorted;
}

function isNullMx(r: MxRecord): boolean {
  return r.exchange === '' || r.exchange === '.';
}

/** A host's addresses: A then AAAA; temporary failure only when no address came back at all. */
export async function hostAddresses(dns: MxLookups, name: string): Promise<{ addresses: string[]; temporary: boolean; error: string }> {
  const [a, aaaa] = await Promise.all([dns.a(name), dns.aaaa(name)]);
  const addresses = [...(a.ok ? a.records : []), ...(aaaa.ok ? aaaa.records : [])];
  const temporary = addresses.length === 0 && ((!a.ok && a.kind === 'temporary') || (!aaaa.ok && aaaa.kind === 'temporary'));
  const error = !a.ok ? a.error : !aaaa.ok ? aaaa.error : '';
  return { addresses, temporary, error };
}

export async function lookupMx(domain: string, dns: MxLookups, random: () => number = Math.random): Promise<MxResult> {
  const mx = await dns.mx(domain);
  if (!mx.ok) {
    if (mx.kind === 'nxdomain') return { ok: false, fact: { kind: 'dns', failure: 'nxdomain', domain, detail: mx.error } };
    if (mx.kind === 'temporary') return { ok: false, fact: { kind: 'dns', failure: 'temporary', domain, detail: `type=MX: ${mx.error}` } };
    // NODATA: RFC 5321 §5.1 implicit MX — the domain itself, if it has addresses.
    const self = await hostAddresses(dns, domain);
    if (self.addresses.length > 0) {
      return { ok: true, implicit: true, hosts: [{ name: domain, preference: 0, addresses: self.addresses, lookupFailed: false }] };
    }
    if (self.temporary) return { ok: false, fact: { kind: 'dns', failure: 'temporary', domain, detail: `type=A: ${self.error}` } };
    return { ok: false, fact: { kind: 'dns', failure: 'no-address', domain, detail: '' } };
  }
  // RFC 7505 §3: a null MX is the only MX of its domain; one among others is ignored.
  const real = mx.records.filter((r) => !isNullMx(r));
  if (real.length === 0) return { ok: false, fact: { kind: 'dns', failure: 'null-mx', domain, detail: '' } };
  const ordered = orderMx(real, random);
  const resolved = await Promise.all(ordered.map(async (r) => {
    const name = r.exchange.replace(/\.$/, '').toLowerCase();
    const found = await hostAddresses(dns, name);
    return { name, preference: r.priority, addresses: found.addresses, lookupFailed: found.temporary };
  }));
  if (resolved.every((h) => h.addresses.length === 0)) {
    if (resolved.some((h) => h.lookupFailed)) {
      return { ok: false, fact: { kind: 'dns', failure: 'temporary', domain, detail: 'the MX hosts\' addresses could not be looked up' } };
    }
    return { ok: false, fact: { kind: 'dns', failure: 'mx-hosts-unresolvable', domain, detail: '' } };
  }
  return { ok: true, implicit: false, hosts: resolved };
}
