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
