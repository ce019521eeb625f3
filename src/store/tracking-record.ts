/**
 * Tracking records: what happened to a message (or a session that never produced one), when, and
 * with which reply. A closed set of kinds; the store writes each in the transaction of the state
 * change it describes (acceptance with the commit, outcomes and DSNs with the delivery report,
 * admin actions with the change they make). Delivery attempts are the store's attempt records,
 * read back as 'attempt' events: they are not written twice.
 *
 * Session events before a queue id exists (the connection decision, each RCPT reply) carry the
 * session id; a message's timeline joins them through its envelope's session id.
 */
import type { QueueId } from './queue-types.js';

export const TRACKING_KINDS = [
  /** The connection decision: accepted or refused at the greeting (reply, sender group, policy). */
  'connection',
  /** One RCPT and the reply it got. */
  'rcpt',
  /** Queued: queue id, size, sender group, policy, message-id header. */
  'accepted',
  /** A delivery attempt with its next hop and full reply (the store's attempt records). */
  'attempt',
  /** Soft bounce: kept, next retry at detail.nextAttemptAt. */
  'deferred',
  'delivered',
  /** Hard bounce, with the reply that caused it. */
  'bounced',
  /** Soft turned hard: retries or time in queue exhausted (5.4.7). */
  'expired',
  /** A DSN about this message was queued (detail.dsnId, detail.kind). */
  'dsn',
  /** Administrator actions. */
  'held',
  'released',
  'retry',
  'deleted',
] as const;

export type TrackingKind = (typeof TRACKING_KINDS)[number];

/** An event as recorded. */
export interface TrackingEventInput {
  readonly kind: TrackingKind;
  /** Milliseconds since the epoch. */
  readonly at: number;
  readonly queueId?: QueueId | null;
  readonly sessionId?: string | null;
  readonly sender?: string | null;
  /** The recipient the event is about (one address), when it is about one. */
  readonly recipient?: string | null;
  readonly nextHop?: string | null;
  /** delivered | soft | hard | expired | accepted | rejected | retry-now … */
  readonly outcome?: string | null;
  /** The full reply or failure text ("550 5.1.1 No such user"). */
  readonly reply?: string | null;
  /** Kind-specific facts (client ip, sender group, policy, size, nextAttemptAt, dsnId, by …). */
  readonly detail?: Readonly<Record<string, unknown>>;
}

export interface TrackingEvent extends TrackingEventInput {
  readonly queueId: QueueId | null;
  readonly sessionId: string | null;
  readonly sender: string | null;
  readonly recipient: string | null;
  readonly nextHop: string | null;
  readonly outcome: string | null;
  readonly reply: string | null;
  /** The reply's code (250, 451, 550), when the event has a reply. */
  readonly code: number | null;
  readonly detail: Readonly<Record<string, unknown>>;
}

/**
 * Outcomes a message search can ask for: a recipient in this final or current state
 * ('deferred': still queued after at least one attempt).
 */
export const SEARCH_OUTCOMES = ['queued', 'deferred', 'delivered', 'bounced', 'expired', 'deleted', 'held'] as const;
export type SearchOutcome = (typeof SEARCH_OUTCOMES)[number];

/** All given conditions must hold. Addresses compare case-insensitively. */
export interface TrackingSearch {
  readonly queueId?: QueueId;
  /** The Message-ID header, with or without angle brackets. */
  readonly messageId?: string;
  readonly sender?: string;
  readonly recipient?: string;
  /** Substring of an attempt's next hop ("mx1.dst.test", "127.0.0.2"). */
  readonly nextHop?: string;
  readonly outcome?: SearchOutcome;
  /** Received at or after (ms since the epoch). */
  readonly since?: number;
  /** Received before (ms since the epoch). */
  readonly until?: number;
  readonly limit?: number;
}

/** Events per time bucket for charts and rates: one row per (bucket, kind, outcome, code class). */
export interface TrackingCount {
  /** Start of the bucket, ms since the epoch. */
  readonly bucket: number;
  readonly kind: TrackingKind;
  readonly outcome: string | null;
  /** 2, 4 or 5 (the reply's class), or null without a reply. */
  readonly codeClass: number | null;
  readonly count: number;
}

/** One destination domain's bounces over a period. */
export interface BounceSummary {
  readonly domain: string;
  readonly soft: number;
  readonly hard: number;
  /** The most frequent replies, most frequent first. */
  readonly replies: readonly { readonly reply: string; readonly outcome: 'soft' | 'hard'; readonly count: number }[];
}

/** The reply code at the start of a reply text, or null. */
export function replyCodeOf(reply: string | null | undefined): number | null {
  if (!reply) return null;
  const m = /^([2-5]\d\d)[ -]/.exec(reply);
  return m ? Number(m[1]) : null;
}
