/**
 * The decisions the receiving server asks for, one method per SMTP stage. The policy engine
 * (sender groups, mail-flow policies, recipient access) implements it; the server only asks.
 * Each answer is a Verdict whose reply comes from the catalogue (or a validated override).
 */
import type { Mailbox } from '../smtp/mailbox.js';
import type { ReplyId } from '../smtp/reply-catalogue.js';
import type { Reply, ReplyVars } from '../smtp/reply.js';
import type { MailParams, RcptParams } from '../smtp/esmtp-params.js';
import type { Verdict } from '../smtp/server/server-events.js';
import type { SessionLimits } from '../smtp/server/session-limits.js';

export interface ClientFacts {
  readonly ip: string;
  readonly port: number;
  readonly listener: string;
  /** Connections from this IP open on this listener now, this one included. */
  readonly connectionsFromIp: number;
}

export interface MailFacts {
  readonly helo: string | null;
  readonly reversePath: Mailbox | null;
  readonly params: MailParams;
  /**
   * The identity the client authenticated as with SMTP AUTH (RFC 4954), or null/absent. Only
   * listeners with `auth:` set offer AUTH, so a value here means an authenticated submission:
   * such a client may relay.
   */
  readonly authenticatedUser?: string | null;
}

export interface RcptFacts extends MailFacts {
  readonly forwardPath: Mailbox;
  readonly rcptParams: RcptParams;
  /** Recipients accepted so far in this transaction. */
  readonly accepted: number;
}

export type MaybeAsync<T> = T | Promise<T>;

/** One connection's view of the policy; created when the connection arrives. */
export interface SessionPolicy {
  /** Name of the sender group that matched, for logs and the stored envelope. */
  readonly senderGroup: string | null;
  /** Name of the mail-flow policy in force. */
  readonly policyName: string | null;
  /** Limits of the policy in force (message size, recipients, messages per connection…). */
  readonly limits: Partial<SessionLimits>;
  /** Reverse DNS name of the client when known. */
  readonly rdns: string | null;
  /** A trusted client: HELP STATUS shows it queue depth and connection counts. */
  readonly trusted?: boolean;
  /**
   * Builds the replies the session gives by itself (552 5.3.4 size, 452 4.5.3 recipients per
   * message, 421 4.7.0 messages per connection, the greeting, the 250s…) with the overrides of
   * the policy in force. Absent: the catalogue's own.
   */
  reply?(id: ReplyId, vars?: ReplyVars, extraLines?: readonly string[]): Reply;
  connect(): MaybeAsync<Verdict>;
  helo(verb: 'HELO' | 'EHLO', domain: string): MaybeAsync<Verdict>;
  mail(facts: MailFacts): MaybeAsync<Verdict>;
  rcpt(facts: RcptFacts): MaybeAsync<Verdict>;
  /** A message was accepted (for rate counters). */
  messageAccepted?(recipients: number): void;
  /**
   * AUTH from this client, before its credentials are checked: accept lets the check run; a
   * reject (421 4.7.0 and close, when its IP failed too often lately) refuses it unchecked.
   * Absent: always allowed.
   */
  authStart?(): MaybeAsync<Verdict>;
  /** The AUTH that `authStart` let through did not fail (it succeeded, or could not be checked now). */
  authCleared?(): void;
  /**
   * AUTH from this client failed (bad credentials; `authStart` counted it). Per client IP across sessions: how
   * long to wait before answering (growing with the failures), and the answer — 535 5.7.8, or
   * 421 4.7.0 and close once the IP is over its limit. Absent: the server's per-session delay.
   */
  authFailed?(): MaybeAsync<AuthFailureVerdict>;
  /**
   * DATA/BDAT accepted: the checks of this message, fed as it arrives; null when none apply
   * (sender authentication off for this policy, or a relaying/authenticated client). Absent: none.
   */
  messageCheck?(facts: MailFacts): MessageCheck | null;
}

/**
 * The content checks of one message while it arrives (sender authentication: SPF, DKIM, DMARC,
 * ARC). Body bytes go in as they are received — nothing is buffered beyond the header section —
 * and the end of data gives the verdict.
 */
export interface MessageCheck {
  /** Body bytes as received (dot-unstuffed), in order. A slice valid only during the call. */
  write(chunk: Buffer): void;
  /** End of data: the verdict, whether to hold the message, and header fields to add. */
  finish(): Promise<MessageCheckResult>;
  /** The message was abandoned (rejected, reset, connection lost). */
  abort(): void;
  /** More bytes wait to be checked than the check holds: the server stops reading until `drained`. */
  readonly backlogged?: boolean;
  /** Resolves when the waiting bytes were checked (at once when none wait, or after abort). */
  drained?(): Promise<void>;
}

export interface MessageCheckResult {
  /** accept, or reject with the reply (550 5.7.23, 451 4.7.24, 554 5.7.1, 451 4.7.1…). */
  readonly verdict: Verdict;
  /** Quarantine: store it held, to be released (or deleted) by an administrator. */
  readonly hold: boolean;
  /** Header fields for the top of the stored message (Authentication-Results), CRLF-terminated; "" for none. */
  readonly header: string;
}

export interface AuthFailureVerdict {
  readonly delayMs: number;
  readonly verdict: Verdict;
}

export interface PolicyEngine {
  openSession(client: ClientFacts): MaybeAsync<SessionPolicy>;
}

/**
 * Accepts every client, sender and recipient: for tests of the protocol core and the server
 * that want no policy at all. The gateway runs the config-driven engine (policy-engine.ts).
 */
export class AcceptAllPolicyEngine implements PolicyEngine {
  openSession(): SessionPolicy {
    const accept: Verdict = { kind: 'accept' };
    return {
      senderGroup: null,
      policyName: null,
      limits: {},
      rdns: null,
      connect: () => accept,
      helo: () => accept,
      mail: () => accept,
      rcpt: () => accept,
    };
  }
}
