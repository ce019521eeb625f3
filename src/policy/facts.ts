/**
 * The facts the policy engine decides on arrive through these small interfaces, so the policy
 * layer never imports I/O (DESIGN.md: policy → smtp, config only). The composition root
 * (src/gateway.ts) passes the real DnsResolver, the counters and the clock.
 *
 * `PolicyDns` has the same shapes as `DnsLookups` in src/dns/dns-resolver.ts (structural typing:
 * the resolver fits without either side importing the other). Its answers keep apart what the
 * RFCs keep apart: a hard "does not exist" (nxdomain, nodata) and a soft "could not find out now"
 * (temporary: SERVFAIL, timeout) — the difference between a 5xx and a 4xx everywhere below.
 */

import type { ReplyId } from '../smtp/reply-catalogue.js';
import type { ReplyVars } from '../smtp/reply.js';
import type { MaybeAsync } from './session-policy.js';

export type DnsFailureKind = 'nxdomain' | 'nodata' | 'temporary';

export type DnsAnswer<T> =
  | { readonly ok: true; readonly records: readonly T[] }
  | { readonly ok: false; readonly kind: DnsFailureKind; readonly error: string };

export interface MxRecord {
  readonly exchange: string;
  readonly priority: number;
}

/** A lookup that throws (a resolver bug, not a DNS answer) counts as a temporary failure. */
export async function safeLookup<T>(lookup: () => Promise<DnsAnswer<T>>): Promise<DnsAnswer<T>> {
  try {
    return await lookup();
  } catch (err) {
    return { ok: false, kind: 'temporary', error: err instanceof Error ? err.message : String(err) };
  }
}

/** The lookups the policy asks (rDNS, FCrDNS, DNSBL, sender domain). Each is bounded by the resolver's timeout. */
export interface PolicyDns {
  a(name: string): Promise<DnsAnswer<string>>;
  aaaa(name: string): Promise<DnsAnswer<string>>;
  mx(name: string): Promise<DnsAnswer<MxRecord>>;
  /** PTR names of an IPv4 or IPv6 address. */
  ptr(ip: string): Promise<DnsAnswer<string>>;
  /** TXT records, each one's character-strings joined (SPF, DKIM keys, DMARC). */
  txt(name: string): Promise<DnsAnswer<string>>;
}

/**
 * Rate counters over sliding windows, keyed by strings ("rcpt/ip/192.0.2.1"). Async and free of
 * single-process assumptions: an in-process implementation serves one node today
 * (sliding-window-counters.ts); a Redis one (INCRBY on time buckets, or a sorted set) serves a
 * cluster later. `now` is passed in, so tests and every node agree on the clock they were given.
 */
export interface Counters {
  /**
   * Adds `amount` (may be negative, to give back) at time `now` and returns the total of the
   * window `(now - windowMs, now]` after adding. `amount` 0 reads the total.
   */
  hit(key: string, windowMs: number, now: number, amount: number): Promise<number>;
}

/** Milliseconds since the epoch. */
export type Clock = () => number;

/**
 * What a recipient directory says about an address of a local domain: exists (250 2.1.5),
 * unknown (550 5.1.1), temporary (451 4.4.3) — or an answer of its own, for directories that
 * know more (a disabled mailbox 550 5.2.1, a locked one 450 4.2.1, over quota 452 4.2.2 /
 * 552 5.2.2, a forward 251 2.1.5, a referral 551 5.1.6, an alias loop 451 4.3.0), named by its
 * catalogue id: the policy renders it with its reply overrides, like every other reply.
 */
export type RecipientLookup = 'exists' | 'unknown' | 'temporary' | RecipientAnswer;

export interface RecipientAnswer {
  /** true: the recipient is taken (with `reply`, e.g. 251); false: refused with `reply`. */
  readonly accept: boolean;
  /** The catalogue entry of the answer: rcpt.ok, rcpt.forward, rcpt.mailbox-disabled, … */
  readonly reply: ReplyId;
  /** Its text's variables: `{address}` of rcpt.ok / rcpt.forward (the new address) / rcpt.refer. */
  readonly vars?: ReplyVars;
  /**
   * Addresses outside the local mailboxes that Postern itself will send this recipient's mail to
   * (a forward's new address, an alias's remote targets). Each must pass the recipient block
   * list (`recipients.blocked`): one that is on it refuses the recipient, 550 5.7.1. Our own
   * forward needs no relay permission of the client.
   */
  readonly forwardTo?: readonly string[];
  /** For explanations: "mailbox disabled". */
  readonly why: string;
}

/**
 * The users of the local domains: a plain list from the config (`recipients.valid`), or the
 * local-mailbox users file (with status, quota, aliases and forwards; wired in src/gateway.ts).
 */
export interface RecipientDirectory {
  /**
   * `address` is `local@domain`: the local part as on the wire (quotes kept: `"a b"@example.test`),
   * the domain in lower case, without a trailing dot, as A-labels; `declaredSize` is MAIL FROM's
   * SIZE= (for quota checks), or null.
   */
  lookup(address: string, declaredSize: number | null): MaybeAsync<RecipientLookup>;
}
