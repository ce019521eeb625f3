/**
 * What happened to one recipient in one attempt, before anybody judged it: a reply from the next
 * hop (with the command it answered), a session failure (connection, timeout, TLS, protocol), the
 * client's own refusal to send (RFC 6531, 6152, 1870), a DNS answer that ends routing, or the
 * result of a local (mailbox) delivery. `classifyFact()` turns it into delivered / soft / hard.
 */
import type { ClientCommand, SessionFailure, TransactionRefusal } from '../smtp/client/client-events.js';
import type { ServerReply } from '../smtp/reply-parser.js';

/** Routing failures found in DNS (RFC 5321 §5.1, RFC 7505). */
export type DnsFailureKind =
  /** The domain does not exist (NXDOMAIN). */
  | 'nxdomain'
  /** The domain publishes a null MX: it accepts no mail (RFC 7505). */
  | 'null-mx'
  /** Neither MX nor A/AAAA records (RFC 5321 §5.1: no implicit MX either). */
  | 'no-address'
  /** MX records whose hosts have no address records. */
  | 'mx-hosts-unresolvable'
  /** SERVFAIL, timeout, refused: try again later. */
  | 'temporary';

export type ConnectFailureKind = 'refused' | 'timeout' | 'unreachable' | 'reset' | 'other';

/** Local mailbox delivery results (until the mailboxes layer brings its own). */
export type LocalFailureKind = 'mailbox-full' | 'no-space' | 'io' | 'bad-address';

export type DeliveryFact =
  | { readonly kind: 'reply'; readonly command: ClientCommand; readonly reply: ServerReply; readonly host?: string }
  | { readonly kind: 'session'; readonly failure: SessionFailure; readonly host?: string }
  | { readonly kind: 'refusal'; readonly refusal: TransactionRefusal; readonly host?: string }
  | { readonly kind: 'connect'; readonly failure: ConnectFailureKind; readonly host: string; readonly detail: string }
  | { readonly kind: 'dns'; readonly failure: DnsFailureKind; readonly domain: string; readonly detail: string }
  | { readonly kind: 'local-delivered'; readonly detail: string }
  | { readonly kind: 'local-failure'; readonly failure: LocalFailureKind; readonly detail: string }
  /** The next hop is this gateway itself (RFC 5321 §5.1: a loop). */
  | { readonly kind: 'loop'; readonly host: string };
