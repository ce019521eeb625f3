/**
 * The host access table: the ordered sender groups of the config, compiled once into matchers;
 * the first group with a matcher that fits the client wins (as Postfix's access tables and
 * commercial gateways' HAT do). Matchers: IP address / CIDR block, forward-confirmed reverse-DNS
 * name (exact, `.suffix`, /regex/), DNSBL zone, `all`.
 *
 * Cheap before dear: within the walk, IP matchers cost nothing; the first time a group needs DNS,
 * every DNS fact the remaining groups could need is asked at once, so the walk waits for one
 * round of lookups (each bounded by the resolver's timeout), not for one after another.
 */
import { BlockList } from 'node:net';
import type { SenderGroupConfig, SenderGroupMatcher } from '../config/policy-schema.js';
import type { ClientDnsFacts } from './client-dns-facts.js';
import { ipFamily } from './ip-address.js';
import type { DnsLookupRecord } from './policy-trace.js';

type CompiledMatcher =
  | { readonly kind: 'all'; readonly label: string }
  | { readonly kind: 'ip'; readonly label: string; readonly list: BlockList }
  | { readonly kind: 'rdns'; readonly label: string; readonly test: (name: string) => boolean }
  | { readonly kind: 'dnsbl'; readonly label: string; readonly zones: readonly string[] };

export interface CompiledSenderGroup {
  readonly name: string;
  readonly policy: string;
  /** Position in the config, for explanations ("sender_groups[2]"). */
  readonly index: number;
  readonly matchers: readonly CompiledMatcher[];
}

/** One matcher tried, for explanations. */
export interface MatcherTrial {
  readonly group: string;
  readonly matcher: string;
  readonly outcome: string;
  readonly matched: boolean;
  readonly dns: readonly DnsLookupRecord[];
}

export interface SenderGroupMatch {
  /** null: no group matched. */
  readonly group: CompiledSenderGroup | null;
  readonly trials: readonly MatcherTrial[];
}

/** "mail.example.test" exact, ".example.test" any name below it, "/re/" a case-insensitive regex. */
export function rdnsPatternTest(pattern: string): (name: string) => boolean {
  if (pattern.length > 2 && pattern.startsWith('/') && pattern.endsWith('/')) {
    const re = new RegExp(pattern.slice(1, -1), 'i');
    return (name) => re.test(name);
  }
  const p = pattern.toLowerCase();
  if (p.startsWith('.')) return (name) => name.toLowerCase().endsWith(p);
  return (name) => name.toLowerCase() === p;
}

function ipBlockList(ranges: readonly string[]): BlockList {
  const list = new BlockList();
  for (const range of ranges) {
    const [address, bits] = range.split('/');
    const type = ipFamily(address) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return list;
}

function compileMatcher(m: SenderGroupMatcher): CompiledMatcher {
  switch (m.kind) {
    case 'all': return { kind: 'all', label: 'all' };
    case 'ip': return { kind: 'ip', label: `ip ${m.ranges.join(', ')}`, list: ipBlockList(m.ranges) };
    case 'rdns': {
      const tests = m.patterns.map(rdnsPatternTest);
      return { kind: 'rdns', label: `rdns ${m.patterns.join(', ')}`, test: (name) => tests.some((t) => t(name)) };
    }
    case 'dnsbl': return { kind: 'dnsbl', label: `dnsbl ${m.zones.join(', ')}`, zones: m.zones };
  }
}

export function compileSenderGroups(groups: readonly SenderGroupConfig[]): CompiledSenderGroup[] {
  return groups.map((g, index) => ({ name: g.name, policy: g.policy, index, matchers: g.match.map(compileMatcher) }));
}

/** Starts every DNS lookup the matchers from `from` on could need (memoized in `facts`). */
function prefetch(groups: readonly CompiledSenderGroup[], from: number, facts: ClientDnsFacts): void {
  for (const g of groups.slice(from)) {
    for (const m of g.matchers) {
      if (m.kind === 'rdns') void facts.reverseDns();
      if (m.kind === 'dnsbl') for (const zone of m.zones) void facts.dnsbl(zone);
    }
  }
}

async function tryMatcher(m: CompiledMatcher, ip: string, facts: ClientDnsFacts): Promise<Omit<MatcherTrial, 'group'>> {
  switch (m.kind) {
    case 'all':
      return { matcher: m.label, outcome: 'match', matched: true, dns: [] };
    case 'ip': {
      const family = ipFamily(ip);
      const matched = family !== 0 && m.list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
      return { matcher: m.label, outcome: matched ? 'match' : 'no match', matched, dns: [] };
    }
    case 'rdns': {
      const r = await facts.reverseDns();
      if (r.confirmed === null) {
        const why = r.ptr === 'temporary' || r.forwardTemporary
          ? 'no match (DNS failed temporarily)'
          : r.ptr === 'none' ? 'no match (no PTR record)' : 'no match (no forward-confirmed name)';
        return { matcher: m.label, outcome: why, matched: false, dns: r.dns };
      }
      const matched = m.test(r.confirmed);
      return { matcher: m.label, outcome: `${matched ? 'match' : 'no match'} (confirmed name ${r.confirmed})`, matched, dns: r.dns };
    }
    case 'dnsbl': {
      const dns: DnsLookupRecord[] = [];
      const outcomes: string[] = [];
      let matched = false;
      for (const zone of m.zones) {
        const f = await facts.dnsbl(zone);
        dns.push(...f.dns);
        outcomes.push(f.status === 'listed' ? `listed in ${zone}` : f.status === 'temporary' ? `${zone} failed temporarily, taken as not listed` : `not listed in ${zone}`);
        if (f.status === 'listed') {
          matched = true;
          break;
        }
      }
      return { matcher: m.label, outcome: `${matched ? 'match' : 'no match'} (${outcomes.join('; ')})`, matched, dns };
    }
  }
}

/** The first group whose matchers fit the client, and every matcher tried on the way. */
export async function matchSenderGroup(groups: readonly CompiledSenderGroup[], ip: string, facts: ClientDnsFacts): Promise<SenderGroupMatch> {
  const trials: MatcherTrial[] = [];
  let prefetched = false;
  for (const [i, g] of groups.entries()) {
    for (const m of g.matchers) {
      if (!prefetched && (m.kind === 'rdns' || m.kind === 'dnsbl')) {
        prefetch(groups, i, facts);
        prefetched = true;
      }
      const t = await tryMatcher(m, ip, facts);
      trials.push({ group: g.name, ...t });
      if (t.matched) return { group: g, trials };
    }
  }
  return { group: null, trials };
}
