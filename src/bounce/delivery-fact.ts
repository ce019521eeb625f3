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

/** Local write failures (any local transport); the mailbox layer's own verdicts are `local-refused`. */
export type LocalFailureKind = 'mailbox-full' | 'no-space' | 'io' | 'bad-address';

export type DeliveryFact =
  | { readonly kind: 'reply'; readonly command: ClientCommand; readonly reply: ServerReply; readonly host?: string }
  | { readonly kind: 'session'; readonly failure: SessionFailure; readonly host?: string }
  | { readonly kind: 'refusal'; readonly refusal: TransactionRefusal; readonly host?: string }
  | { readonly kind: 'connect'; readonly failure: ConnectFailureKind; readonly host: string; readonly detail: string }
  | { readonly kind: 'dns'; readonly failure: DnsFailureKind; readonly domain: string; readonly detail: string }
  | { readonly kind: 'local-delivered'; readonly detail: string }
  | { readonly kind: 'local-failure'; readonly failure: LocalFailureKind; readonly detail: string }
  /**
   * A local mailbox said no (disabled, locked, over quota, unknown, referred, a lookup failure or
   * an alias loop): the mailbox layer decided soft or hard itself, from the catalogue and the
   * `over_quota` setting, and classification takes it as given — a local 552 5.2.2 stays hard,
   * unlike a remote server's 552 to RCPT (RFC 5321 §4.5.3.1.10). `text` is the catalogue reply.
   */
  | { readonly kind: 'local-refused'; readonly outcome: 'soft' | 'hard'; readonly status: string; readonly text: string; readonly detail?: string }
  /**
   * An alias or a forwarding entry (mode forward): the recipient is done here, and a copy of the
   * message goes to `targets` (each with its own retries and DSNs). RFC 3464 §2.3.3: an alias is
   * "expanded", a forward "relayed".
   */
  | { readonly kind: 'local-expanded'; readonly mode: 'alias' | 'forward'; readonly targets: readonly string[]; readonly detail: string }
  /** The next hop is this gateway itself (RFC 5321 §5.1: a loop). */
  | { readonly kind: 'loop'; readonly host: string };
