/**
 * Recipient access: what Postern does with one RCPT address, as an ordered table (first decisive
 * row wins; anything not explicitly allowed is refused — the open-relay rule):
 *
 *   <Postmaster>, postmaster@<local domain>  accept (RFC 5321 §4.1.1.3, §4.5.1)
 *   on the recipient block list               550 5.7.1  rcpt.blocked
 *   routing tricks for a local/relay domain   550 5.7.1  rcpt.relay-denied   (unless the client may relay)
 *   local domain                              the directory: accept | 550 5.1.1 | 451 4.4.3, or its own
 *                                             answer (550 5.2.1, 450 4.2.1, 452 4.2.2, 251 2.1.5, …);
 *                                             a forward or alias to a blocked address: 550 5.7.1
 *   relay domain (domains.relay)              accept, from anyone
 *   anything else                             accept when the policy relays, else 550 5.7.1 relay denied
 *
 * Routing tricks are local parts that some MTA along the way may read as another address: the
 * percent hack (`user%other@local`), a quoted "@" (`"user@other"@local`), a UUCP bang path
 * (`other!user@local`). Source routes (`@local:user@other`) are dropped by the grammar (RFC 5321
 * §4.1.2), so the address is user@other and meets the last row. Domains compare in lower case,
 * without a trailing dot, and as A-labels.
 */
import { domainToASCII } from 'node:url';
import { parseMailbox, type Mailbox } from '../smtp/mailbox.js';
import type { ReplyId } from '../smtp/reply-catalogue.js';
import type { ReplyVars } from '../smtp/reply.js';
import type { RecipientAnswer, RecipientDirectory, RecipientLookup } from './facts.js';
import type { MaybeAsync } from './session-policy.js';

export type RecipientDecision =
  | { readonly kind: 'accept'; readonly route: 'postmaster' | 'local' | 'relay-domain' | 'relay'; readonly why: string }
  /** The directory's own answer for a local recipient (disabled, locked, over quota, forwarded…). */
  | { readonly kind: 'directory'; readonly accept: boolean; readonly reply: ReplyId; readonly vars: ReplyVars; readonly why: string }
  | {
    readonly kind: 'reject';
    readonly reply: 'rcpt.relay-denied' | 'rcpt.blocked' | 'rcpt.unknown-user' | 'rcpt.lookup-tempfail';
    readonly why: string;
  };

/** "user@domain" and "@domain" entries (lower case, as the config schema gives them). */
export class AddressList {
  private readonly entries: ReadonlySet<string>;

  constructor(entries: readonly string[]) {
    this.entries = new Set(entries.map((e) => e.toLowerCase()));
  }

  get size(): number {
    return this.entries.size;
  }

  /** The entry that matches, or null. `localPart` unquoted; `domain` normalized. */
  match(localPart: string, domain: string): string | null {
    const address = `${localPart}@${domain}`.toLowerCase();
    if (this.entries.has(address)) return address;
    const whole = `@${domain}`.toLowerCase();
    return this.entries.has(whole) ? whole : null;
  }
}

/** The recipients of `recipients.valid`: an address, or "@domain" for every address of it. */
export class ListRecipientDirectory implements RecipientDirectory {
  private readonly list: AddressList;

  constructor(valid: readonly string[]) {
    this.list = new AddressList(valid);
  }

  lookup(address: string): RecipientLookup {
    const at = address.lastIndexOf('@');
    return this.list.match(unquoteLocalPart(address.slice(0, at)), address.slice(at + 1)) === null ? 'unknown' : 'exists';
  }
}

/** Lower case, no trailing dot, A-labels for U-labels (RFC 5890); address literals kept as they are. */
export function normalizeDomain(domain: string): string {
  const d = domain.toLowerCase().replace(/\.+$/, '');
  if (d.startsWith('[') || /^[\x20-\x7e]*$/.test(d)) return d;
  return domainToASCII(d) || d;
}

/** The local part without its quotes and quoted-pair backslashes: `"a\"b"` → `a"b`. */
export function unquoteLocalPart(localPart: string): string {
  if (localPart.length >= 2 && localPart.startsWith('"') && localPart.endsWith('"')) {
    return localPart.slice(1, -1).replace(/\\(.)/g, '$1');
  }
  return localPart;
}

/** Characters that make a local part an address of its own somewhere: %, !, @. */
const ROUTING = /[%!@]/;

function localDecision(found: RecipientLookup, domain: string, blocked: AddressList): RecipientDecision {
  if (typeof found === 'object') return answerDecision(found, blocked);
  switch (found) {
    case 'exists': return { kind: 'accept', route: 'local', why: `a user of the local domain ${domain}` };
    case 'unknown': return { kind: 'reject', reply: 'rcpt.unknown-user', why: `no such user in the local domain ${domain}` };
    case 'temporary': return { kind: 'reject', reply: 'rcpt.lookup-tempfail', why: 'the user directory failed temporarily' };
  }
}

/** A directory's own answer; an accepted one whose mail we would relay to a blocked address is refused. */
function answerDecision(found: RecipientAnswer, blocked: AddressList): RecipientDecision {
  if (found.accept) {
    for (const target of found.forwardTo ?? []) {
      const m = parseMailbox(target.trim().replace(/^<(.*)>$/, '$1'));
      const hit = m === null ? null : blocked.match(unquoteLocalPart(m.localPart), normalizeDomain(m.domain));
      if (hit !== null) {
        return { kind: 'reject', reply: 'rcpt.blocked', why: `${found.why}, but ${target} is on the recipient block list (${hit})` };
      }
    }
  }
  return { kind: 'directory', accept: found.accept, reply: found.reply, vars: found.vars ?? {}, why: found.why };
}

export interface RecipientAccessOptions {
  readonly localDomains: readonly string[];
  readonly relayDomains: readonly string[];
  /** `recipients.blocked`. */
  readonly blocked: readonly string[];
  /** Who exists in the local domains. */
  readonly directory: RecipientDirectory;
}

export class RecipientAccessTable {
  private readonly local: ReadonlySet<string>;
  private readonly relay: ReadonlySet<string>;
  private readonly blocked: AddressList;

  constructor(private readonly opts: RecipientAccessOptions) {
    this.local = new Set(opts.localDomains.map(normalizeDomain));
    this.relay = new Set(opts.relayDomains.map(normalizeDomain));
    this.blocked = new AddressList(opts.blocked);
  }

  isLocalDomain(domain: string): boolean {
    return this.local.has(normalizeDomain(domain));
  }

  /**
   * The decision for one recipient; `mayRelay` when the client's policy relays. Synchronous
   * unless the directory answers asynchronously.
   */
  decide(recipient: Mailbox, mayRelay: boolean, declaredSize: number | null = null): MaybeAsync<RecipientDecision> {
    const domain = normalizeDomain(recipient.domain);
    const localPart = unquoteLocalPart(recipient.localPart);
    // RFC 5321 §4.1.1.3: <Postmaster> without a domain is always accepted.
    if (domain === '') return { kind: 'accept', route: 'postmaster', why: '<Postmaster> is always accepted' };
    const isLocal = this.local.has(domain);
    const isRelayDomain = this.relay.has(domain);
    // RFC 5321 §4.5.1: postmaster of every domain we are the destination for.
    if (isLocal && localPart.toLowerCase() === 'postmaster') {
      return { kind: 'accept', route: 'postmaster', why: `postmaster of the local domain ${domain} is always accepted` };
    }
    const hit = this.blocked.match(localPart, domain);
    if (hit !== null) return { kind: 'reject', reply: 'rcpt.blocked', why: `on the recipient block list (${hit})` };
    if ((isLocal || isRelayDomain) && ROUTING.test(localPart) && !mayRelay) {
      return {
        kind: 'reject', reply: 'rcpt.relay-denied',
        why: `the local part "${localPart}" routes elsewhere (%, ! or @), and this client may not relay`,
      };
    }
    if (isLocal) {
      // The local part as on the wire (quotes kept: a directory that parses addresses needs them).
      const found = this.opts.directory.lookup(`${recipient.localPart}@${domain}`, declaredSize);
      return found instanceof Promise
        ? found.then((f) => localDecision(f, domain, this.blocked))
        : localDecision(found, domain, this.blocked);
    }
    if (isRelayDomain) return { kind: 'accept', route: 'relay-domain', why: `${domain} is a relay domain` };
    if (mayRelay) return { kind: 'accept', route: 'relay', why: `${domain} is not ours, and the policy relays` };
    return { kind: 'reject', reply: 'rcpt.relay-denied', why: `${domain} is neither a local nor a relay domain, and the policy does not relay` };
  }
}
