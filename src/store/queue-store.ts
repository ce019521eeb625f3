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
import type { Envelope, Lease, MessageFilter, QueueId, QueuedMessage } from './queue-types.js';

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
  commit(envelope: Envelope): Promise<void>;
  /** Drops everything written; safe to call at any time, also after a failed commit. */
  abort(): void;
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

  /** Flushes pending commits and closes. Further calls fail. */
  close(): Promise<void>;
}

export type { Envelope };
