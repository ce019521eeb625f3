/**
 * The DNS facts about one connecting client, looked up at most once per connection and only
 * when a sender group or a check needs them: its reverse DNS (PTR, then the forward lookup that
 * confirms it — FCrDNS, the "iprev" of RFC 8601 §2.7.3) and its DNSBL listings (RFC 5782).
 * Every lookup is bounded by the resolver's timeout; a hang surfaces as a temporary failure.
 */
import { safeLookup, type DnsAnswer, type PolicyDns } from './facts.js';
import { canonicalIp, dnsblQueryName, ipFamily, sameAddress } from './ip-address.js';
import { describeDnsAnswer, type DnsLookupRecord } from './policy-trace.js';

/** PTR names checked forward at most (Postfix and others stop after a handful too). */
const MAX_PTR_NAMES = 5;

export interface ReverseDnsFacts {
  /** found: at least one PTR name; none: NXDOMAIN or no PTR record; temporary: could not find out. */
  readonly ptr: 'found' | 'none' | 'temporary';
  /** PTR names, lower case, without the trailing dot. */
  readonly names: readonly string[];
  /** The first PTR name whose A/AAAA records include the client's address, or null. */
  readonly confirmed: string | null;
  /** Whether a forward lookup failed temporarily (so "not confirmed" may not be final). */
  readonly forwardTemporary: boolean;
  readonly dns: readonly DnsLookupRecord[];
}

export interface DnsblFacts {
  readonly zone: string;
  /** listed: an A record in 127.0.0.0/24; temporary: the lookup failed, treated as not listed. */
  readonly status: 'listed' | 'not-listed' | 'temporary';
  readonly answers: readonly string[];
  readonly dns: readonly DnsLookupRecord[];
}

function lowerName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** RFC 5782 §2.1: a listing is an A record in 127.0.0.0/8; the zones answer 127.0.0.x. */
function isListing(a: string): boolean {
  return /^127\.0\.0\.\d{1,3}$/.test(a);
}

export class ClientDnsFacts {
  private reverse: Promise<ReverseDnsFacts> | null = null;
  private readonly dnsbls = new Map<string, Promise<DnsblFacts>>();
  /** The confirmed rDNS name once known (for the Received header). */
  confirmedName: string | null = null;

  constructor(readonly ip: string, private readonly dns: PolicyDns) {}

  reverseDns(): Promise<ReverseDnsFacts> {
    this.reverse ??= this.lookupReverse().then((facts) => {
      this.confirmedName = facts.confirmed;
      return facts;
    });
    return this.reverse;
  }

  dnsbl(zone: string): Promise<DnsblFacts> {
    let p = this.dnsbls.get(zone);
    if (p === undefined) {
      p = this.lookupDnsbl(zone);
      this.dnsbls.set(zone, p);
    }
    return p;
  }

  private async lookupReverse(): Promise<ReverseDnsFacts> {
    const dns: DnsLookupRecord[] = [];
    const ptr = await safeLookup(() => this.dns.ptr(this.ip));
    dns.push({ query: `PTR ${this.ip}`, answer: describeDnsAnswer(ptr) });
    if (!ptr.ok) {
      return { ptr: ptr.kind === 'temporary' ? 'temporary' : 'none', names: [], confirmed: null, forwardTemporary: false, dns };
    }
    const names = [...new Set(ptr.records.map(lowerName))].filter((n) => n !== '').slice(0, MAX_PTR_NAMES);
    const six = ipFamily(this.ip) === 6;
    // The forward lookups run side by side: the whole check takes two round trips at most.
    const forward = await Promise.all(names.map(async (name): Promise<[string, DnsAnswer<string>]> => [name, await safeLookup(() => (six ? this.dns.aaaa(name) : this.dns.a(name)))]));
    let confirmed: string | null = null;
    let forwardTemporary = false;
    const ip = canonicalIp(this.ip);
    for (const [name, answer] of forward) {
      dns.push({ query: `${six ? 'AAAA' : 'A'} ${name}`, answer: describeDnsAnswer(answer) });
      if (answer.ok) {
        if (confirmed === null && answer.records.some((a) => sameAddress(a, ip))) confirmed = name;
      } else if (answer.kind === 'temporary') {
        forwardTemporary = true;
      }
    }
    return { ptr: names.length > 0 ? 'found' : 'none', names, confirmed, forwardTemporary, dns };
  }

  private async lookupDnsbl(zone: string): Promise<DnsblFacts> {
    const name = dnsblQueryName(this.ip, zone);
    const answer = await safeLookup(() => this.dns.a(name));
    const dns = [{ query: `A ${name}`, answer: describeDnsAnswer(answer) }];
    if (answer.ok) {
      const answers = [...answer.records];
      return { zone, status: answers.some(isListing) ? 'listed' : 'not-listed', answers, dns };
    }
    return { zone, status: answer.kind === 'temporary' ? 'temporary' : 'not-listed', answers: [], dns };
  }
}
