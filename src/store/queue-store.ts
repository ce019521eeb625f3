/**
 * QueueStore: the one interface every durable queue implements (SQLite today, a shared
 * PostgreSQL store later). Nothing outside src/store/<implementation>/ sees SQL or files.
 *
 * Durability contract (DESIGN.md rule 2): `IncomingMessage.commit()` resolves only after the
 * body and the envelope are on stable storage (fsync'd). The server sends "250 queued" after it
 * resolves and never before. Commits of concurrent sessions may share one fsync (group commit).
 *
 * No single-process assumptions: claims on messages are leases with an expiry, so several
 * workers or nodes can share one store and a dead worker's messages come back.
 */
import type {
  DeliveryRecordResult, DeliveryReport, Envelope, Lease, MessageFilter, QueueId, QueuedMessage, StoredAttempt,
} from './queue-types.js';
import type { AdminChange } from './admin-change.js';
import type {
  BounceSummary, TrackingCount, TrackingEvent, TrackingEventInput, TrackingSearch,
} from './tracking-record.js';

export type StoreErrorKind =
  /** Storage is full or below the configured reserve: 452 4.3.1. */
  | 'no-space'
  /** A write, fsync or query failed: 451 4.3.0. */
  | 'io';

export class StoreError extends Error {
  constructor(
    readonly kind: StoreErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StoreError';
  }
}

/** A message being received: body bytes stream in, then one commit makes it durable. */
export interface IncomingMessage {
  readonly id: QueueId;
  /** Appends body bytes (already dot-unstuffed). Buffers a little and writes through; may throw StoreError. */
  write(chunk: Uint8Array): void;
  /** Bytes written so far. */
  readonly size: number;
  /** Makes body and envelope durable. Resolves after fsync; rejects with StoreError. */
  commit(envelope: Envelope, options?: CommitOptions): Promise<void>;
  /** Drops everything written; safe to call at any time, also after a failed commit. */
  abort(): void;
}

/** What a commit may add to a message received in a stream. */
export interface CommitOptions {
  /**
   * Bytes that go before everything written (e.g. an Authentication-Results header, known only
   * at the end of data); counted in the message's size.
   */
  readonly prepend?: Uint8Array;
  /** Stored as held (quarantine): kept durably, never delivered until an administrator releases it. */
  readonly hold?: boolean;
}

export interface StoreAdmission {
  readonly ok: boolean;
  /** Free bytes on the store's filesystem minus the reserve, or null when unknown. */
  readonly available: number | null;
}

export interface QueueStore {
  /** Starts receiving a message; allocates its queue id. */
  beginMessage(): IncomingMessage;
  /**
   * Can the store take a message of `size` bytes (or of unknown size, when null) now?
   * Cheap: answers from a cached free-space reading refreshed in the background.
   */
  admission(size: number | null): StoreAdmission;

  /** Messages in the queue, oldest first. */
  listMessages(filter?: MessageFilter): QueuedMessage[];
  getMessage(id: QueueId): QueuedMessage | null;
  /** The stored body, as committed. */
  readBody(id: QueueId): Buffer;

  /**
   * Leases up to `max` messages that are due at `now` and not leased by anyone (or whose lease
   * expired), for `leaseMs` milliseconds.
   */
  leaseDue(owner: string, now: number, max: number, leaseMs: number): Lease[];
  renewLease(lease: Lease, now: number, leaseMs: number): Lease | null;
  releaseLease(lease: Lease): void;

  /** Number of messages per state. */
  counts(): Record<'queued' | 'held' | 'done', number>;

  // ── delivery ─────────────────────────────────────────────────────────────────────────────

  /**
   * The stored body in chunks, as committed; memory stays bounded whatever its size. Throws
   * StoreError when the message is gone or its body does not add up to its size (it was finished
   * by another worker meanwhile): a body that is not whole must never be sent.
   */
  bodyChunks(id: QueueId): AsyncIterable<Buffer>;
  /**
   * When the scheduler should look again: the earliest time a queued message is due or a lease on
   * one expires; null when nothing is queued.
   */
  nextWakeAt(): number | null;
  /**
   * Records a delivery run in one transaction: per-recipient outcomes, attempt records, generated
   * messages (DSNs) queued durably with them; releases the lease. When no recipient is left
   * queued the message is done (its body dropped, envelope and attempts kept). Applies nothing
   * when the lease has passed to another worker.
   */
  recordDelivery(report: DeliveryReport): Promise<DeliveryRecordResult>;
  /** The attempts recorded for a message, oldest first. */
  listAttempts(id: QueueId): StoredAttempt[];

  // ── tracking (tracking-record.ts) ──────────────────────────────────────────────────────────
  // Acceptance, outcomes, DSNs and admin changes are recorded by the store in the transaction of
  // the change; attempts are read back from the attempt records as 'attempt' events.

  /** Session events without a queue id yet (connection decision, RCPT replies); batched, not fsync'd. */
  recordEvents(events: readonly TrackingEventInput[]): void;
  /** A message's timeline: its session's events, acceptance, attempts, outcomes, DSNs, admin actions. */
  messageEvents(id: QueueId): TrackingEvent[];
  /** Queue ids of messages matching every condition of the search, newest first. */
  searchMessages(search: TrackingSearch): QueueId[];
  /** Refusals before a queue id existed (connection or RCPT rejected) matching the search. */
  searchRefusals(search: TrackingSearch): TrackingEvent[];
  /** Event counts per time bucket since `since` (attempts included). */
  trackingCounts(since: number, bucketMs: number): TrackingCount[];
  /** Destination domains ranked by soft and hard bounces since `since`, with their replies. */
  bounceSummary(since: number, limit: number): BounceSummary[];
  /** Removes events older than `before` and finished messages received before it. */
  pruneTracking(before: number): { events: number; messages: number };
  /** Called with the events of each transaction after it is written. Returns an unsubscribe. */
  onTracked(listener: (events: readonly TrackingEvent[]) => void): () => void;

  // ── administration ───────────────────────────────────────────────────────────────────────

  /** Leases one queued message now, due or not (an administrator's bounce); null when busy or not queued. */
  leaseMessage(id: QueueId, owner: string, now: number, leaseMs: number): Lease | null;
  /** Queued → held: never delivered until released. */
  holdMessage(id: QueueId, now: number): AdminChange;
  /** Held → queued, due at once. */
  releaseMessage(id: QueueId, now: number): AdminChange;
  /** A queued message's waiting recipients become due at `now`. */
  retryMessage(id: QueueId, now: number): AdminChange;
  /** Queued or held → done; waiting recipients become 'deleted', the body is dropped. */
  deleteMessage(id: QueueId, now: number): AdminChange;
  /**
   * Called after messages became durable (received, or generated by a delivery run), so a
   * scheduler can wake at once. Returns a function that removes the listener.
   */
  onEnqueued(listener: (ids: readonly QueueId[]) => void): () => void;

  /** Flushes pending commits and closes. Further calls fail. */
  close(): Promise<void>;
}

export type { Envelope };
