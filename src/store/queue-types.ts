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
  /** The TLS version and cipher the message came in under (STARTTLS or implicit TLS), or null/absent. */
  readonly tls?: { readonly version: string; readonly cipher: string } | null;
  /** The SMTP AUTH identity the client used, or null/absent. */
  readonly authenticatedUser?: string | null;
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
  /** RFC 3463 status of the last outcome ("4.2.1"), or null before the first attempt. */
  readonly status: string | null;
  /** Milliseconds since the epoch: when this recipient is due next (while it is queued). */
  readonly nextAttemptAt: number;
}

/**
 * Where a message came from. Generated messages are sent from the null sender; the origin tells
 * the outcome recorder what to do when one of them fails (a DSN that fails goes to the
 * postmaster; a notice to the postmaster that fails goes nowhere: never a loop).
 */
export type MessageOrigin = 'received' | 'dsn' | 'postmaster-notice';

export interface QueuedMessage {
  readonly id: QueueId;
  readonly state: MessageState;
  readonly envelope: Envelope;
  readonly recipients: readonly QueuedRecipient[];
  /** Bytes of the stored body (trace header included). */
  readonly size: number;
  /** Milliseconds since the epoch: when the next delivery attempt is due. */
  readonly nextAttemptAt: number;
  /** Delivery runs so far. */
  readonly attempts: number;
  readonly origin: MessageOrigin;
  /** Delay DSNs sent for this message so far. */
  readonly delayWarnings: number;
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

/** What became of a recipient in one delivery run. */
export interface RecipientUpdate {
  /** Position in the envelope. */
  readonly index: number;
  /** 'queued': a soft failure, due again at `nextAttemptAt`; anything else is final. */
  readonly state: Exclude<RecipientState, 'deleted'>;
  /** The reply or failure, as text: "550 5.1.1 User unknown". */
  readonly lastReply: string;
  /** RFC 3463 status. */
  readonly status: string | null;
  /** Required for 'queued'. */
  readonly nextAttemptAt?: number;
}

/** One attempt to deliver to one or more recipients, kept for tracking. */
export interface AttemptRecord {
  /** Milliseconds since the epoch. */
  readonly at: number;
  /** Envelope positions of the recipients this attempt was for. */
  readonly recipients: readonly number[];
  /** "smtp:mx.example.test[192.0.2.1]:25", "lmtp:127.0.0.1:24", "maildir", "dns" … */
  readonly nextHop: string | null;
  /** The full reply or failure. */
  readonly reply: string;
  readonly outcome: 'delivered' | 'soft' | 'hard' | 'expired' | 'retry-now';
  readonly status: string | null;
}

/** A body part of a generated message: bytes, or the stored body of a queued message. */
export type GeneratedBodyPart = Uint8Array | { readonly copyOf: QueueId };

/**
 * A message Postern writes itself, queued in the same transaction as the outcome behind it: a
 * DSN or a notice to the postmaster, or the copy of a received message that an alias or a
 * forwarding entry sends on. That copy keeps the original's origin ('received' for a received
 * message: it is still the sender's mail, with their envelope sender, NOTIFY and DSNs); its
 * envelope's client names the listener 'postern-forward' and its session id is
 * `fwd-<original queue id>`.
 */
export interface GeneratedMessage {
  readonly envelope: Envelope;
  readonly origin: MessageOrigin;
  /** Concatenated in order; `copyOf` parts are copied inside the store (memory stays bounded). */
  readonly body: readonly GeneratedBodyPart[];
}

/** The record of one delivery run of a leased message. */
export interface DeliveryReport {
  readonly lease: Lease;
  readonly recipients: readonly RecipientUpdate[];
  readonly attempts: readonly AttemptRecord[];
  readonly generated: readonly GeneratedMessage[];
  /** The message's new count of delay DSNs sent, when it changed. */
  readonly delayWarnings?: number;
  /**
   * The message as the run read it under this lease, if at hand: its tracking events are
   * written from it instead of reading the message again (a leased message does not change).
   */
  readonly message?: QueuedMessage;
}

export interface DeliveryRecordResult {
  /** False when the lease had passed to another worker: nothing was written. */
  readonly applied: boolean;
  /** Queue ids of the generated messages. */
  readonly generated: readonly QueueId[];
  /** Every recipient has a final outcome: the message is done. */
  readonly finished: boolean;
}

export interface StoredAttempt extends AttemptRecord {
  readonly messageId: QueueId;
}
