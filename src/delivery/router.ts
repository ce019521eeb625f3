/**
 * The router: where each recipient goes. Local domains → the local mailbox transport; relay
 * domains (static routes) → their configured next hop (`smtp://host:port` or `lmtp://host:port`,
 * with the route's TLS mode); an address literal → that address (RFC 5321 §4.1.3); everything
 * else → the domain's MX hosts (RFC 5321 §5.1). `<Postmaster>` without a domain (RFC 5321
 * §4.1.1.3) is our postmaster.
 */
import type { NextHop } from '../config/domains-schema.js';

export type Route =
  | { readonly kind: 'local'; readonly domain: string }
  | { readonly kind: 'relay'; readonly domain: string; readonly nextHop: NextHop }
  | { readonly kind: 'mx'; readonly domain: string }
  | { readonly kind: 'literal'; readonly domain: string; readonly ip: string }
  | { readonly kind: 'invalid'; readonly domain: string; readonly reason: string };

export interface RoutedRecipient {
  /** The address delivery uses (Postmaster is rewritten to the configured postmaster). */
  readonly address: string;
  readonly route: Route;
  /** Recipients with equal keys travel together (one transaction, one connection). */
  readonly key: string;
}

export interface RouterConfig {
  readonly localDomains: readonly string[];
  readonly relay: Readonly<Record<string, NextHop>>;
  /** The postmaster's address, for `<Postmaster>`. */
  readonly postmaster: string;
  /** Our own host name: mail to an address at it is local (Postfix's myhostname in mydestination). */
  readonly hostname?: string;
  /**
   * With `mailboxes.transport: lmtp`: local recipients go to this mail store over LMTP
   * (RFC 2033), which then owns mailboxes and quota.
   */
  readonly localNextHop?: NextHop;
}

const IPV4_LITERAL = /^\[(\d{1,3}(?:\.\d{1,3}){3})\]$/;
const IPV6_LITERAL = /^\[IPv6:([0-9A-Fa-f:.]+)\]$/i;

export class Router {
  private readonly local: ReadonlySet<string>;

  constructor(private readonly config: RouterConfig) {
    this.local = new Set([...config.localDomains, ...(config.hostname ? [config.hostname] : [])].map((d) => d.toLowerCase()));
  }

  isLocalDomain(domain: string): boolean {
    return this.local.has(domain.toLowerCase());
  }

  route(address: string): RoutedRecipient {
    const at = address.lastIndexOf('@');
    if (at < 0) {
      // RFC 5321 §4.1.1.3: "<Postmaster>" is the postmaster of this host.
      if (address.toLowerCase() === 'postmaster' && this.config.postmaster.toLowerCase() !== 'postmaster') {
        return this.route(this.config.postmaster);
      }
      return { address, route: { kind: 'invalid', domain: '', reason: 'no domain' }, key: 'invalid' };
    }
    const domain = address.slice(at + 1);
    const lower = domain.toLowerCase();
    const literal = IPV4_LITERAL.exec(domain) ?? IPV6_LITERAL.exec(domain);
    if (literal) return { address, route: { kind: 'literal', domain: lower, ip: literal[1] }, key: `literal:${literal[1]}` };
    if (this.local.has(lower)) {
      const store = this.config.localNextHop;
      if (store) return { address, route: { kind: 'relay', domain: lower, nextHop: store }, key: `local-lmtp:${store.url}` };
      return { address, route: { kind: 'local', domain: lower }, key: 'local' };
    }
    const hop = this.config.relay[lower];
    if (hop) return { address, route: { kind: 'relay', domain: lower, nextHop: hop }, key: `relay:${hop.url}:${hop.tls}` };
    return { address, route: { kind: 'mx', domain: lower }, key: `mx:${lower}` };
  }
}
