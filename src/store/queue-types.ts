/**
 * The durable queue's vocabulary: envelopes as received (RFC 5321 envelope plus the RFC 3461
 * DSN parameters), per-recipient state, leases. Shared by every QueueStore implementation.
 */

export type QueueId = string;

import type { NotifyParam, OriginalRecipient } from '../smtp/dsn-params.js';

export type { NotifyParam, OriginalRecipient };

export interface EnvelopeRecipient {
  /** The forward-path as an address string ("user@example.test", or "Postmaster"). */
  readonly address: string;
  readonly notify: NotifyParam | null;
  readonly orcpt: OriginalRecipient | null;
}

export interface ClientInfo {
  readonly ip: string;
  readonly port: number;
  /** The HELO/EHLO argument as given. */
  readonly helo: string;
  readonly listener: string;
  readonly senderGroup: string | null;
  readonly policy: string | null;
  /** Reverse DNS name, when known (forward-confirmed or not). */
  readonly rdns: string | null;
}

export interface Envelope {
  /** The reverse-path; "" is the null sender <>. */
  readonly sender: string;
  readonly recipients: readonly EnvelopeRecipient[];
  /** RFC 3461 §4.3 RET. */
  readonly ret: 'FULL' | 'HDRS' | null;
  /** RFC 3461 §4.4 ENVID, xtext-decoded. */
  readonly envid: string | null;
  /** RFC 6152 BODY. */
  readonly body: '7BIT' | '8BITMIME' | null;
  /** RFC 6531 SMTPUTF8 was given on MAIL. */
  readonly smtputf8: boolean;
  readonly client: ClientInfo;
  readonly sessionId: string;
  /** Milliseconds since the epoch at which the end of data was received. */
  readonly receivedAt: number;
}

export type RecipientState = 'queued' | 'delivered' | 'bounced' | 'expired' | 'deleted';

export type MessageState = 'queued' | 'held' | 'done';

export interface QueuedRecipient extends EnvelopeRecipient {
  readonly state: RecipientState;
  readonly attempts: number;
  /** The last reply or failure for this recipient, as text ("450 4.2.1 Mailbox busy"). */
  readonly lastReply: string | null;
}

export interface QueuedMessage {
  readonly id: QueueId;
  readonly state: MessageState;
  readonly envelope: Envelope;
  readonly recipients: readonly QueuedRecipient[];
  /** Bytes of the stored body (trace header included). */
  readonly size: number;
  /** Milliseconds since the epoch: when the next delivery attempt is due. */
  readonly nextAttemptAt: number;
  readonly attempts: number;
}

export interface MessageFilter {
  readonly state?: MessageState;
  /** Recipient domain (case-insensitive). */
  readonly domain?: string;
  /** Only messages received at least this many milliseconds ago. */
  readonly olderThanMs?: number;
  readonly limit?: number;
}

/** A worker's time-limited claim on a message. Expired leases may be taken by anyone. */
export interface Lease {
  readonly id: QueueId;
  readonly owner: string;
  /** Milliseconds since the epoch. */
  readonly expiresAt: number;
}
