/**
 * The embedded durable queue: a QueueStore in one SQLite database (`<directory>/queue.db`, WAL).
 *
 * How a message becomes durable with bounded memory and shared fsyncs:
 * - `write()` keeps at most 64 KiB of a body in memory; every full 64 KiB goes into a
 *   `body_chunks` row at once, in an ordinary transaction that is not fsync'd (synchronous=NORMAL
 *   in WAL mode appends to the WAL without syncing it).
 * - `commit()` hands the message to the group committer (group-commit.ts): the commits that
 *   arrive while the previous fdatasync runs are written in ONE transaction (last chunk, message
 *   row, recipient rows, the session's tracking events), then one fdatasync of the WAL makes
 *   them durable. The WAL is append-only, so that fsync also covers the messages' earlier,
 *   unsynced chunk frames: body and envelope become durable together, and one fsync serves the
 *   whole batch.
 * - A message exists once its `messages` row does. Chunk rows without one (aborted or crashed
 *   sessions) are deleted on abort and, for whatever is left, when the store is next opened.
 *
 * One process opens a store directory at a time: the cleanup at open treats every chunk without
 * a message row as abandoned. Leases are nevertheless claimed in SQL with expiry, as a shared
 * store must do them.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  StoreError,
  type CommitOptions,
  type IncomingMessage,
  type QueueStore,
  type StoreAdmission,
} from '../queue-store.js';
import type {
  AttemptRecord,
  ClientInfo,
  DeliveryRecordResult,
  DeliveryReport,
  Envelope,
  EnvelopeRecipient,
  GeneratedMessage,
  Lease,
  MessageFilter,
  MessageOrigin,
  MessageState,
  NotifyParam,
  OriginalRecipient,
  QueueId,
  QueuedMessage,
  QueuedRecipient,
  RecipientState,
  StoredAttempt,
} from '../queue-types.js';
import { FreeSpaceMonitor } from './free-space-monitor.js';
import { GroupCommitter } from './group-commit.js';
import { QueueIdGenerator } from './queue-id.js';
import { migrate } from './schema.js';
import { messageIdHeader, SqliteTracking } from './sqlite-tracking.js';
import type { AdminChange } from '../admin-change.js';
import type {
  BounceSummary, TrackingCount, TrackingEvent, TrackingEventInput, TrackingSearch,
} from '../tracking-record.js';

/** Body bytes kept in memory per message before they go to a chunk row. */
export const BODY_CHUNK_BYTES = 64 * 1024;
/** How long a delivery report waits for others to share its transaction (see recordDelivery). */
const REPORT_BATCH_MS = 5;
/** Reports written at once without waiting longer. */
const REPORT_BATCH_MAX = 64;
/** Bodies up to this size are read in one statement (see bodyChunks); larger ones chunk by chunk. */
const WHOLE_BODY_READ_BYTES = 256 * 1024;
/** The longest leasing goes without looking for expired leases (see claimDue). */
const EXPIRED_LEASE_SCAN_MS = 1000;

/** A lease to take in the same transaction as waiting delivery reports (see leaseDue). */
interface LeaseRequest {
  readonly owner: string;
  readonly now: number;
  readonly max: number;
  readonly leaseMs: number;
}

export interface SqliteQueueStoreOptions {
  /** Holds queue.db (and its -wal/-shm files); created if missing. */
  readonly directory: string;
  /** Bytes that must stay free on the directory's filesystem; admission fails below it. */
  readonly minFreeBytes: number;
  /**
   * Upper bound on the database size in bytes (SQLite max_page_count). Writes past it fail with
   * StoreError 'no-space', and admission counts it. Unlimited when absent.
   */
  readonly maxBytes?: number;
  /** Milliseconds since the epoch; used for queue ids and `olderThanMs`. Default Date.now. */
  readonly clock?: () => number;
}

export interface SqliteQueueStoreStats {
  /** Transactions written by the group committer (each one fsync). */
  readonly commitBatches: number;
  /** Messages made durable. */
  readonly committedMessages: number;
  /** Commits rejected because their batch failed. */
  readonly failedCommits: number;
  readonly largestBatch: number;
}

export function openSqliteQueueStore(options: SqliteQueueStoreOptions): SqliteQueueStore {
  return new SqliteQueueStore(options);
}

/** Maps an SQLite or file-system failure to the store's two kinds. */
export function toStoreError(error: unknown, doing: string): StoreError {
  if (error instanceof StoreError) return error;
  const code = error instanceof Error && 'code' in error ? String(error.code) : '';
  const full = code.startsWith('SQLITE_FULL') || code === 'ENOSPC' || code === 'EDQUOT';
  const detail = error instanceof Error ? error.message : String(error);
  return new StoreError(full ? 'no-space' : 'io', `${doing}: ${detail}`, { cause: error });
}

export interface SqliteStorageStats {
  /** Body chunk rows, of committed messages and of messages still being received. */
  readonly bodyChunks: number;
  readonly bodyBytes: number;
  /** Bytes of database pages in use (free pages not counted). */
  readonly databaseBytes: number;
}

interface PendingReport {
  readonly report: DeliveryReport;
  readonly resolve: (r: DeliveryRecordResult) => void;
  readonly reject: (e: unknown) => void;
}

type ReportOutcome = { readonly ok: true; readonly result: DeliveryRecordResult } | { readonly ok: false; readonly error: unknown };

interface PendingCommit {
  readonly message: SqliteIncomingMessage;
  readonly envelope: Envelope;
}

interface MessageRow {
  id: string;
  state: MessageState;
  sender: string;
  ret: 'FULL' | 'HDRS' | null;
  envid: string | null;
  body: '7BIT' | '8BITMIME' | null;
  smtputf8: number;
  client: string;
  session_id: string;
  received_at: number;
  size: number;
  next_attempt_at: number;
  attempts: number;
  origin: MessageOrigin;
  delay_warnings: number;
}

interface RecipientRow {
  address: string;
  notify: string | null;
  orcpt: string | null;
  state: RecipientState;
  attempts: number;
  last_reply: string | null;
  status: string | null;
  next_attempt_at: number;
}

interface AttemptRow {
  message_id: string;
  at: number;
  recipients: string;
  next_hop: string | null;
  reply: string;
  outcome: AttemptRecord['outcome'];
  status: string | null;
}

const MESSAGE_COLUMNS =
  'id, state, sender, ret, envid, body, smtputf8, client, session_id, received_at, size, next_attempt_at, attempts, origin, delay_warnings';

/** Lower-cased domain of an address (after the last '@'), or null for one without ("Postmaster"). */
function recipientDomain(address: string): string | null {
  const at = address.lastIndexOf('@');
  return at < 0 ? null : address.slice(at + 1).toLowerCase();
}

export class SqliteQueueStore implements QueueStore {
  readonly databasePath: string;
  private readonly db: Database.Database;
  private readonly clock: () => number;
  private readonly ids: QueueIdGenerator;
  private readonly freeSpace: FreeSpaceMonitor;
  private readonly committer: GroupCommitter<PendingCommit>;
  private walFd: number | null = null;
  private readonly maxBytes: number | null;
  private closing: Promise<void> | null = null;

  private readonly sql: ReturnType<typeof prepareStatements>;
  private readonly tracking: SqliteTracking;
  private readonly writeCommitBatch: (batch: readonly PendingCommit[]) => void;
  private readonly claimDue: (owner: string, now: number, max: number, leaseMs: number) => Lease[];
  private readonly applyReports: (batch: readonly PendingReport[]) => ReportOutcome[];
  private readonly applyReportsTogether: (
    batch: readonly PendingReport[], lease: LeaseRequest | undefined,
  ) => { outcomes: ReportOutcome[]; leases: Lease[] | undefined };
  /**
   * No leased message becomes claimable again (lease expired and due) before this time: a lower
   * bound, lowered by every lease this process takes and recomputed at each search for expired
   * leases (see claimDue). Renewals only move expiries later, so it stays a lower bound.
   */
  private noLeaseClaimableBefore = -Infinity;
  private expiredLeasesScannedAt = -Infinity;
  /** Delivery reports waiting to be written together, in one transaction (see recordDelivery). */
  private pendingReports: PendingReport[] = [];
  private reportFlush: NodeJS.Timeout | null = null;
  private readonly enqueuedListeners = new Set<(ids: readonly QueueId[]) => void>();
  private readonly messageSink: MessageSink = {
    insertChunk: (id, seq, data) => this.insertChunk(id, seq, data),
    discardChunks: (id) => this.discardChunks(id),
    submitCommit: (message, envelope) => this.submitCommit(message, envelope),
    prependToFirstChunk: (id, data) => this.prependToFirstChunk(id, data),
  };

  constructor(options: SqliteQueueStoreOptions) {
    this.clock = options.clock ?? Date.now;
    this.ids = new QueueIdGenerator(this.clock);
    this.maxBytes = options.maxBytes ?? null;
    fs.mkdirSync(options.directory, { recursive: true });
    this.databasePath = path.join(options.directory, 'queue.db');
    this.freeSpace = new FreeSpaceMonitor({ directory: options.directory, minFreeBytes: options.minFreeBytes });

    const db = new Database(this.databasePath, { timeout: 5000 });
    try {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new Error(`cannot put ${this.databasePath} in WAL mode (got ${String(mode)})`);
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      // A big body passes through the WAL; give the space back after the next checkpoint.
      db.pragma('journal_size_limit = 67108864');
      // SQLite's default page cache is 2 MiB: once the bodies outgrow it, the index pages every
      // commit touches are read from the file again. 32 MiB (bounded) keeps them (bench/accept:
      // about 5–10% less server CPU per message with a queue of a few hundred MB).
      db.pragma('cache_size = -32768');
      if (this.maxBytes !== null) {
        const pageSize = Number(db.pragma('page_size', { simple: true }));
        db.pragma(`max_page_count = ${Math.max(1, Math.floor(this.maxBytes / pageSize))}`);
      }
      migrate(db);
      // Bodies of sessions that never committed (abort failed, or the process died).
      db.prepare('DELETE FROM body_chunks WHERE message_id NOT IN (SELECT id FROM messages)').run();
    } catch (error) {
      db.close();
      throw error;
    }
    this.db = db;
    this.sql = prepareStatements(db);
    this.tracking = new SqliteTracking(db);
    const tracking = this.tracking;

    const sql = this.sql;
    const insertEnvelope = (id: QueueId, envelope: Envelope, size: number, origin: MessageOrigin, head: Uint8Array | null = null): void => {
      const messageId = head === null ? null : messageIdHeader(head);
      sql.insertMessage.run({
        id,
        sender: envelope.sender,
        ret: envelope.ret,
        envid: envelope.envid,
        body: envelope.body,
        smtputf8: envelope.smtputf8 ? 1 : 0,
        client: JSON.stringify(envelope.client),
        session_id: envelope.sessionId,
        received_at: envelope.receivedAt,
        size,
        next_attempt_at: envelope.receivedAt,
        origin,
        message_id_header: messageId,
      });
      envelope.recipients.forEach((recipient, idx) => {
        sql.insertRecipient.run({
          message_id: id,
          idx,
          address: recipient.address,
          domain: recipientDomain(recipient.address),
          notify: recipient.notify === null ? null : JSON.stringify(recipient.notify),
          orcpt: recipient.orcpt === null ? null : JSON.stringify(recipient.orcpt),
          next_attempt_at: envelope.receivedAt,
        });
      });
      tracking.accepted(id, envelope, size, origin, messageId);
    };
    /** A message committed with `hold` (quarantine) is stored held: leaseDue never takes it. */
    const markHeld = db.prepare<[string]>("UPDATE messages SET state = 'held' WHERE id = ?");
    const insertBatch = db.transaction((batch: readonly PendingCommit[]) => {
      // Session events (connection, RCPT) of this turn go first: they precede these acceptances.
      tracking.writePending();
      for (const { message, envelope } of batch) {
        const tail = message.takeBufferedTail();
        if (tail !== null) sql.insertChunk.run(message.id, tail.seq, tail.data);
        // The header is in the first chunk (the Message-ID for tracking searches).
        const head = tail !== null && tail.seq === 0 ? tail.data : (sql.selectChunkAfter.get(message.id, -1)?.data ?? null);
        insertEnvelope(message.id, envelope, message.size, 'received', head);
        if (message.holdOnCommit) markHeld.run(message.id);
      }
    });
    this.writeCommitBatch = (batch) => {
      // synchronous=NORMAL: this COMMIT appends to the WAL without an fsync; the group committer
      // then fdatasyncs the WAL once for every transaction written before it (see group-commit.ts).
      try {
        insertBatch.immediate(batch);
      } catch (error) {
        tracking.forget();
        throw error;
      }
      tracking.announce();
    };

    /** A generated message: its body parts as chunk rows (copies made inside SQLite), then its envelope. */
    const insertGenerated = (generated: GeneratedMessage): QueueId => {
      const id = this.ids.next();
      let seq = 0;
      let size = 0;
      for (const part of generated.body) {
        if (part instanceof Uint8Array) {
          for (let offset = 0; offset < part.length; offset += BODY_CHUNK_BYTES) {
            const piece = part.subarray(offset, Math.min(part.length, offset + BODY_CHUNK_BYTES));
            sql.insertChunk.run(id, seq++, piece);
            size += piece.length;
          }
          continue;
        }
        const extent = sql.chunkExtent.get(part.copyOf);
        if (extent === undefined || extent.chunks === 0) continue;
        sql.copyChunks.run({ target: id, offset: seq, source: part.copyOf });
        seq += extent.last_seq + 1;
        size += extent.bytes;
      }
      insertEnvelope(id, generated.envelope, size, generated.origin, sql.selectChunkAfter.get(id, -1)?.data ?? null);
      return id;
    };

    /** Outcome and DSN events of a delivery report, in its transaction. */
    const trackReport = (report: DeliveryReport, generated: readonly QueueId[]): void => {
      const id = report.lease.id;
      const read = report.message;
      const m = read !== undefined
        ? { session_id: read.envelope.sessionId, sender: read.envelope.sender, received_at: read.envelope.receivedAt, origin: read.origin }
        : sql.selectMessage.get(id);
      if (m === undefined) return;
      const addresses = (read?.recipients ?? sql.selectRecipients.all(id)).map((r) => r.address);
      const at = report.attempts.length > 0 ? Math.max(...report.attempts.map((a) => a.at)) : this.clock();
      for (const a of report.attempts) {
        tracking.noteAttempt({
          kind: 'attempt', at: a.at, queueId: id, sessionId: m.session_id, sender: m.sender,
          recipient: a.recipients.map((i) => addresses[i]).join(', '), nextHop: a.nextHop, outcome: a.outcome, reply: a.reply,
          detail: { status: a.status, recipients: a.recipients },
        });
      }
      const hopOf = (index: number): string | null =>
        [...report.attempts].reverse().find((a) => a.recipients.includes(index))?.nextHop ?? null;
      for (const u of report.recipients) {
        const kind = u.state === 'queued' ? 'deferred' : u.state;
        tracking.insert({
          kind,
          at,
          queueId: id,
          sessionId: m.session_id,
          sender: m.sender,
          recipient: addresses[u.index] ?? null,
          nextHop: hopOf(u.index),
          outcome: u.state === 'queued' ? 'soft' : u.state === 'bounced' ? 'hard' : u.state,
          reply: u.lastReply,
          detail: {
            status: u.status,
            receivedAt: m.received_at,
            origin: m.origin,
            ...(u.nextAttemptAt !== undefined ? { nextAttemptAt: u.nextAttemptAt } : {}),
          },
        });
      }
      report.generated.forEach((g, i) => {
        tracking.insert({
          kind: 'dsn', at, queueId: id, sessionId: m.session_id, sender: m.sender,
          recipient: g.envelope.recipients[0]?.address ?? null,
          detail: { dsnId: generated[i], origin: g.origin },
        });
      });
    };

    const applyReportBody = (report: DeliveryReport): DeliveryRecordResult => {
      const { lease } = report;
      const owner = sql.selectLeaseOwner.get(lease.id);
      if (owner === undefined || owner.state !== 'queued' || owner.lease_owner !== lease.owner) {
        return { applied: false, generated: [], finished: false };
      }
      for (const u of report.recipients) {
        if (u.state === 'queued' && u.nextAttemptAt === undefined) {
          throw new StoreError('io', `recipient ${u.index} of ${lease.id} stays queued without a next attempt time`);
        }
        sql.updateRecipient.run({
          message_id: lease.id,
          idx: u.index,
          state: u.state,
          last_reply: u.lastReply,
          status: u.status,
          next_attempt_at: u.nextAttemptAt ?? null,
        });
      }
      let seq = sql.nextAttemptSeq.get(lease.id)?.next ?? 0;
      for (const a of report.attempts) {
        sql.insertAttempt.run({
          message_id: lease.id,
          seq: seq++,
          at: a.at,
          recipients: JSON.stringify(a.recipients),
          next_hop: a.nextHop,
          reply: a.reply,
          outcome: a.outcome,
          status: a.status,
        });
      }
      const generated = report.generated.map(insertGenerated);
      trackReport(report, generated);
      const open = sql.queuedRecipientSummary.get(lease.id);
      const finished = open === undefined || open.open === 0;
      if (finished) {
        sql.finishMessage.run(lease.id);
        sql.deleteChunks.run(lease.id);
      } else {
        sql.rescheduleMessage.run({
          id: lease.id,
          next_attempt_at: open.next_attempt_at,
          delay_warnings: report.delayWarnings ?? null,
        });
      }
      return { applied: true, generated, finished };
    };
    const applyReport = db.transaction(applyReportBody);
    // One transaction for the batch; each report in a savepoint of its own (a nested
    // better-sqlite3 transaction), so one that fails leaves the others written.
    this.applyReports = db.transaction((batch: readonly PendingReport[]): ReportOutcome[] => batch.map(({ report }) => {
      const written = tracking.unannouncedCount;
      try {
        return { ok: true, result: applyReport(report) };
      } catch (error) {
        tracking.forget(written);
        return { ok: false, error };
      }
    })).immediate;

    // The WAL, opened once for fdatasync: the WAL is appended in order, so one fdatasync makes
    // every transaction written before it durable (what synchronous=FULL does at each COMMIT),
    // without blocking the event loop. Checkpoints still sync WAL and database themselves
    // (synchronous=NORMAL), so frames are only overwritten once they are in the synced database.
    const walFd = fs.openSync(`${this.databasePath}-wal`, 'r');
    this.walFd = walFd;
    this.committer = new GroupCommitter<PendingCommit>({
      writeBatch: (batch) => this.writeCommitBatch(batch),
      failBatch: (batch, error) => {
        for (const { message } of batch) message.commitFailed();
        return toStoreError(error, 'cannot commit message');
      },
      sync: () => new Promise<void>((resolve, reject) => fs.fdatasync(walFd, (err) => (err ? reject(err) : resolve()))),
      syncNow: () => fs.fdatasyncSync(walFd),
      onDurable: (batch) => this.notifyEnqueued(batch.map((b) => b.message.id)),
    });

    const claimBody = (owner: string, now: number, max: number, leaseMs: number): Lease[] => {
      const expiresAt = now + leaseMs;
      // Select, then update by id: `UPDATE … WHERE id IN (SELECT … LIMIT n)` cost ~0.2 ms even
      // when it found nothing (bench: the relay benchmark). Messages whose worker died (lease
      // expired) first: they have waited longest. That search cost more than the rest of the
      // lease, and almost always finds nothing, so it runs only once a lease can have expired
      // (or at least every EXPIRED_LEASE_SCAN_MS: a lease taken by another process, the CLI).
      let ids: string[] = [];
      if (now >= this.noLeaseClaimableBefore || now - this.expiredLeasesScannedAt >= EXPIRED_LEASE_SCAN_MS) {
        ids = sql.selectExpiredLeases.all(now, now, max);
        this.expiredLeasesScannedAt = now;
        this.noLeaseClaimableBefore = sql.nextLeaseExpiry.get()?.t ?? Infinity;
      }
      if (ids.length < max) ids.push(...sql.selectReady.all(now, max - ids.length));
      for (const id of ids) sql.takeLease.run(owner, expiresAt, id);
      if (ids.length > 0) this.noteLeaseExpiry(expiresAt);
      return ids.map((id) => ({ id, owner, expiresAt }));
    };
    this.claimDue = db.transaction(claimBody).immediate;
    // First try: the batch in one transaction, reports one after the other (with a savepoint
    // each, a report cost ~120 µs, without ~77, batches of 64), and the lease they ride in, if
    // any (see leaseDue). Should anything fail, all is rolled back and the batch written again
    // the careful way (applyReports, see flushReports).
    this.applyReportsTogether = db
      .transaction((batch: readonly PendingReport[], lease: LeaseRequest | undefined) => ({
        outcomes: batch.map(({ report }): ReportOutcome => ({ ok: true, result: applyReportBody(report) })),
        leases: lease === undefined ? undefined : claimBody(lease.owner, lease.now, lease.max, lease.leaseMs),
      }))
      .immediate;
  }

  // ---- receiving ----

  beginMessage(): IncomingMessage {
    this.assertOpen();
    return new SqliteIncomingMessage(this.ids.next(), this.messageSink);
  }

  admission(size: number | null): StoreAdmission {
    let available = this.freeSpace.available(Math.max(size ?? 0, 1));
    if (this.maxBytes !== null && this.db.open) {
      const roomInDatabase = this.maxBytes - this.usedDatabaseBytes();
      available = available === null ? roomInDatabase : Math.min(available, roomInDatabase);
    }
    if (available === null) return { ok: true, available: null };
    return { ok: available > 0 && (size ?? 0) <= available, available };
  }

  private insertChunk(id: QueueId, seq: number, data: Uint8Array): void {
    this.assertOpen();
    try {
      this.sql.insertChunk.run(id, seq, data);
    } catch (error) {
      throw toStoreError(error, 'cannot store message body');
    }
  }

  /** Puts `data` before the first stored chunk of a message still being received (not fsync'd). */
  private prependToFirstChunk(id: QueueId, data: Uint8Array): void {
    this.assertOpen();
    try {
      const first = this.sql.selectChunkAfter.get(id, -1);
      if (first === undefined || first.seq !== 0) throw new Error(`message ${id} has no first chunk`);
      this.db.prepare('UPDATE body_chunks SET data = ? WHERE message_id = ? AND seq = 0').run(Buffer.concat([data, first.data]), id);
    } catch (error) {
      throw toStoreError(error, 'cannot store message body');
    }
  }

  /** Never throws: leftovers are removed at the next open. */
  private discardChunks(id: QueueId): void {
    if (!this.db.open) return;
    try {
      this.sql.deleteChunks.run(id);
    } catch {
      // Best-effort: the orphaned chunks are removed when the store is next opened.
    }
  }

  private submitCommit(message: SqliteIncomingMessage, envelope: Envelope): Promise<void> {
    if (this.closing !== null) {
      return Promise.reject(new StoreError('io', 'queue store is closed'));
    }
    return this.committer.submit({ message, envelope });
  }

  // ---- reading ----

  listMessages(filter: MessageFilter = {}): QueuedMessage[] {
    return this.guard('cannot list messages', () => this.selectMessages(filter));
  }

  private selectMessages(filter: MessageFilter): QueuedMessage[] {
    const conditions: string[] = [];
    const params: Record<string, string | number> = {};
    if (filter.state !== undefined) {
      conditions.push('state = @state');
      params.state = filter.state;
    }
    if (filter.domain !== undefined) {
      conditions.push('EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = messages.id AND r.domain = @domain)');
      params.domain = filter.domain.toLowerCase();
    }
    if (filter.olderThanMs !== undefined) {
      conditions.push('received_at <= @received_before');
      params.received_before = this.clock() - filter.olderThanMs;
    }
    params.limit = filter.limit ?? -1;
    const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
    const rows = this.db
      .prepare<Record<string, string | number>, MessageRow>(
        `SELECT ${MESSAGE_COLUMNS} FROM messages ${where} ORDER BY received_at, id LIMIT @limit`,
      )
      .all(params);
    return rows.map((row) => this.toQueuedMessage(row));
  }

  getMessage(id: QueueId): QueuedMessage | null {
    return this.guard(`cannot read message ${id}`, () => {
      const row = this.sql.selectMessage.get(id);
      return row === undefined ? null : this.toQueuedMessage(row);
    });
  }

  /** The whole body in memory; throws StoreError 'io' when there is no such message. */
  readBody(id: QueueId): Buffer {
    return this.guard(`cannot read the body of ${id}`, () => {
      if (this.sql.selectMessage.get(id) === undefined) {
        throw new StoreError('io', `no message ${id} in the queue`);
      }
      return Buffer.concat(this.sql.selectChunks.all(id));
    });
  }

  counts(): Record<MessageState, number> {
    return this.guard('cannot count messages', () => {
      const counts: Record<MessageState, number> = { queued: 0, held: 0, done: 0 };
      for (const row of this.sql.countByState.all()) counts[row.state] = row.count;
      return counts;
    });
  }

  // ---- delivery ----

  async *bodyChunks(id: QueueId): AsyncGenerator<Buffer> {
    const size = this.guard(`cannot read the body of ${id}`, () => this.sql.selectSize.get(id));
    if (size === undefined) throw new StoreError('io', `no message ${id} in the queue`);
    const incomplete = (total: number): StoreError =>
      new StoreError('io', `the body of ${id} is incomplete (${total} of ${size} bytes): finished elsewhere meanwhile?`);
    if (size <= WHOLE_BODY_READ_BYTES) {
      // Most mail: the whole body in one statement instead of one per chunk and one more.
      const chunks = this.guard(`cannot read the body of ${id}`, () => this.sql.selectChunks.all(id));
      const total = chunks.reduce((n, c) => n + c.length, 0);
      if (total !== size) throw incomplete(total);
      yield* chunks;
      return;
    }
    let seq = -1;
    let total = 0;
    for (;;) {
      const chunk = this.guard(`cannot read the body of ${id}`, () => this.sql.selectChunkAfter.get(id, seq));
      if (chunk === undefined) break;
      seq = chunk.seq;
      total += chunk.data.length;
      yield chunk.data;
    }
    if (total !== size) throw incomplete(total);
  }

  nextWakeAt(): number | null {
    return this.guard('cannot read the queue schedule', () => {
      const due = this.sql.nextUnleasedDue.get()?.t ?? null;
      const expiry = this.sql.nextLeaseExpiry.get()?.t ?? null;
      if (due === null) return expiry;
      return expiry === null ? due : Math.min(due, expiry);
    });
  }

  /**
   * Reports arriving within REPORT_BATCH_MS share one transaction (as commits do): deliveries
   * finishing close together cost one WAL append and one BEGIN/COMMIT, not one each. The wait
   * costs no throughput: a run frees its delivery slot before it records (DeliveryScheduler's
   * slotFree), and its lease keeps the message from being taken again meanwhile. Not fsync'd by
   * itself: outcome and DSNs are atomic, so a power loss can only undo both, and the message is
   * delivered again (at least once); the next commit's fsync or checkpoint makes it durable.
   */
  recordDelivery(report: DeliveryReport): Promise<DeliveryRecordResult> {
    if (this.closing !== null || !this.db.open) return Promise.reject(new StoreError('io', 'queue store is closed'));
    return new Promise((resolve, reject) => {
      this.pendingReports.push({ report, resolve, reject });
      if (this.pendingReports.length >= REPORT_BATCH_MAX) this.flushReports();
      else this.reportFlush ??= setTimeout(() => this.flushReports(), REPORT_BATCH_MS);
    });
  }

  /**
   * Writes the waiting reports. With `lease`, a lease is taken in the same transaction and
   * returned (undefined when there was no report, or when something failed: then the reports
   * were written the careful way, and the caller leases on its own).
   */
  private flushReports(lease?: LeaseRequest): Lease[] | undefined {
    if (this.reportFlush !== null) clearTimeout(this.reportFlush);
    this.reportFlush = null;
    const batch = this.pendingReports;
    this.pendingReports = [];
    if (batch.length === 0) return undefined;
    let outcomes: ReportOutcome[];
    let leases: Lease[] | undefined;
    try {
      outcomes = this.guard('cannot record deliveries', () => {
        try {
          const together = this.applyReportsTogether(batch, lease);
          leases = together.leases;
          return together.outcomes;
        } catch {
          this.tracking.forget();
          return this.applyReports(batch);
        }
      });
    } catch (error) {
      this.tracking.forget();
      for (const p of batch) p.reject(error);
      return undefined;
    }
    this.settleReports(batch, outcomes);
    return leases;
  }

  private settleReports(batch: readonly PendingReport[], outcomes: readonly ReportOutcome[]): void {
    this.tracking.announce();
    const generated: QueueId[] = [];
    outcomes.forEach((o, i) => {
      if (o.ok) {
        generated.push(...o.result.generated);
        batch[i].resolve(o.result);
      } else {
        batch[i].reject(toStoreError(o.error, `cannot record the delivery of ${batch[i].report.lease.id}`));
      }
    });
    if (generated.length > 0) this.notifyEnqueued(generated);
  }

  listAttempts(id: QueueId): StoredAttempt[] {
    return this.guard(`cannot read the attempts of ${id}`, () =>
      this.sql.selectAttempts.all(id).map((row) => ({
        messageId: row.message_id,
        at: row.at,
        recipients: JSON.parse(row.recipients) as number[],
        nextHop: row.next_hop,
        reply: row.reply,
        outcome: row.outcome,
        status: row.status,
      })));
  }

  onEnqueued(listener: (ids: readonly QueueId[]) => void): () => void {
    this.enqueuedListeners.add(listener);
    return () => {
      this.enqueuedListeners.delete(listener);
    };
  }

  // ---- tracking (sqlite-tracking.ts) ----

  recordEvents(events: readonly TrackingEventInput[]): void {
    if (this.closing !== null || !this.db.open || events.length === 0) return;
    this.tracking.queue(events);
  }

  messageEvents(id: QueueId): TrackingEvent[] {
    return this.guard(`cannot read the events of ${id}`, () => this.tracking.messageEvents(id));
  }

  searchMessages(search: TrackingSearch): QueueId[] {
    return this.guard('cannot search messages', () => this.tracking.searchMessages(search));
  }

  searchRefusals(search: TrackingSearch): TrackingEvent[] {
    return this.guard('cannot search refusals', () => this.tracking.searchRefusals(search));
  }

  trackingCounts(since: number, bucketMs: number): TrackingCount[] {
    return this.guard('cannot count events', () => this.tracking.counts(since, bucketMs));
  }

  bounceSummary(since: number, limit: number): BounceSummary[] {
    return this.guard('cannot summarise bounces', () => this.tracking.bounceSummary(since, limit));
  }

  pruneTracking(before: number): { events: number; messages: number } {
    return this.guard('cannot prune tracking', () => this.tracking.prune(before));
  }

  onTracked(listener: (events: readonly TrackingEvent[]) => void): () => void {
    return this.tracking.onTracked(listener);
  }

  // ---- administration ----

  leaseMessage(id: QueueId, owner: string, now: number, leaseMs: number): Lease | null {
    return this.guard(`cannot lease ${id}`, () => {
      const row = this.db
        .prepare<{ id: string; owner: string; now: number; expires_at: number }, { id: string }>(
          `UPDATE messages SET lease_owner = @owner, lease_expires_at = @expires_at
           WHERE id = @id AND state = 'queued' AND (lease_owner IS NULL OR lease_expires_at <= @now) RETURNING id`,
        )
        .get({ id, owner, now, expires_at: now + leaseMs });
      if (row === undefined) return null;
      this.noteLeaseExpiry(now + leaseMs);
      return { id, owner, expiresAt: now + leaseMs };
    });
  }

  holdMessage(id: QueueId, now: number): AdminChange {
    return this.adminChange(id, now, ['queued'], 'held', () => {
      this.db.prepare("UPDATE messages SET state = 'held' WHERE id = ?").run(id);
    });
  }

  releaseMessage(id: QueueId, now: number): AdminChange {
    const r = this.adminChange(id, now, ['held'], 'released', () => {
      this.db.prepare("UPDATE recipients SET next_attempt_at = @now WHERE message_id = @id AND state = 'queued'").run({ id, now });
      this.db.prepare("UPDATE messages SET state = 'queued', next_attempt_at = @now WHERE id = @id").run({ id, now });
    });
    if (r === 'changed') this.notifyEnqueued([id]);
    return r;
  }

  retryMessage(id: QueueId, now: number): AdminChange {
    const r = this.adminChange(id, now, ['queued'], 'retry', () => {
      this.db.prepare("UPDATE recipients SET next_attempt_at = @now WHERE message_id = @id AND state = 'queued'").run({ id, now });
      this.db.prepare('UPDATE messages SET next_attempt_at = @now WHERE id = @id').run({ id, now });
    });
    if (r === 'changed') this.notifyEnqueued([id]);
    return r;
  }

  deleteMessage(id: QueueId, now: number): AdminChange {
    return this.adminChange(id, now, ['queued', 'held'], 'deleted', () => {
      this.db.prepare("UPDATE recipients SET state = 'deleted' WHERE message_id = ? AND state = 'queued'").run(id);
      this.db.prepare("UPDATE messages SET state = 'done', lease_owner = NULL, lease_expires_at = NULL WHERE id = ?").run(id);
      this.sql.deleteChunks.run(id);
    });
  }

  /** One admin change in a transaction with its event; refused while a live lease is held. */
  private adminChange(
    id: QueueId,
    now: number,
    from: readonly MessageState[],
    kind: 'held' | 'released' | 'retry' | 'deleted',
    change: () => void,
  ): AdminChange {
    return this.guard(`cannot change ${id}`, () => {
      let result: AdminChange = 'changed';
      try {
        this.db.transaction(() => {
          const row = this.db
            .prepare<[string], { state: MessageState; lease_owner: string | null; lease_expires_at: number | null; sender: string; session_id: string }>(
              'SELECT state, lease_owner, lease_expires_at, sender, session_id FROM messages WHERE id = ?',
            )
            .get(id);
          if (row === undefined) return void (result = 'not-found');
          if (!from.includes(row.state)) return void (result = 'wrong-state');
          if (row.lease_owner !== null && (row.lease_expires_at ?? 0) > now) return void (result = 'busy');
          change();
          const waiting = this.sql.selectRecipients.all(id).filter((r) => r.state === (kind === 'deleted' ? 'deleted' : 'queued'));
          this.tracking.insert({
            kind, at: now, queueId: id, sessionId: row.session_id, sender: row.sender, outcome: kind,
            detail: { by: 'admin', recipients: waiting.map((r) => r.address) },
          });
        }).immediate();
      } catch (error) {
        this.tracking.forget();
        throw error;
      }
      this.tracking.announce();
      return result;
    });
  }

  private notifyEnqueued(ids: readonly QueueId[]): void {
    for (const listener of this.enqueuedListeners) {
      try {
        listener(ids);
      } catch {
        // A listener's trouble is its own; the messages are durable either way.
      }
    }
  }

  // ---- leases ----

  leaseDue(owner: string, now: number, max: number, leaseMs: number): Lease[] {
    if (max <= 0) return [];
    // Delivery reports waiting for their batch go in this transaction: one COMMIT for both, and
    // the pages they share (the messages' rows and lease index) written once.
    if (this.pendingReports.length > 0 && this.closing === null) {
      const leases = this.flushReports({ owner, now, max, leaseMs });
      if (leases !== undefined) return leases;
    }
    return this.guard('cannot lease due messages', () => this.claimDue(owner, now, max, leaseMs));
  }

  /** A lease this process took: no lease becomes claimable before its expiry (see claimDue). */
  private noteLeaseExpiry(expiresAt: number): void {
    this.noLeaseClaimableBefore = Math.min(this.noLeaseClaimableBefore, expiresAt);
  }

  /** Extends a lease its owner still holds (not expired at `now`); null when it was lost. */
  renewLease(lease: Lease, now: number, leaseMs: number): Lease | null {
    return this.guard(`cannot renew the lease on ${lease.id}`, () => {
      const expiresAt = now + leaseMs;
      const { changes } = this.sql.renewLease.run({ id: lease.id, owner: lease.owner, now, expires_at: expiresAt });
      return changes === 1 ? { id: lease.id, owner: lease.owner, expiresAt } : null;
    });
  }

  /** Gives a message back at once; does nothing when the lease has passed to someone else. */
  releaseLease(lease: Lease): void {
    this.guard(`cannot release the lease on ${lease.id}`, () => {
      this.sql.releaseLease.run({ id: lease.id, owner: lease.owner });
    });
  }

  // ---- lifecycle ----

  stats(): SqliteQueueStoreStats {
    const commits = this.committer.stats();
    return {
      commitBatches: commits.batches,
      committedMessages: commits.committed,
      failedCommits: commits.failed,
      largestBatch: commits.largestBatch,
    };
  }

  /** What the database holds: body chunk rows (committed or in flight) and the file's used size. */
  storageStats(): SqliteStorageStats {
    this.assertOpen();
    const chunks = this.sql.chunkTotals.get();
    return {
      bodyChunks: chunks?.chunks ?? 0,
      bodyBytes: chunks?.bytes ?? 0,
      databaseBytes: this.usedDatabaseBytes(),
    };
  }

  /** Bytes of pages in use; pages on the free list are reused before the file grows. */
  private usedDatabaseBytes(): number {
    const pageSize = Number(this.db.pragma('page_size', { simple: true }));
    const pages = Number(this.db.pragma('page_count', { simple: true }));
    const freePages = Number(this.db.pragma('freelist_count', { simple: true }));
    return (pages - freePages) * pageSize;
  }

  close(): Promise<void> {
    // Delivery reports waiting for their batch are written now, while the store still takes them.
    if (this.closing === null && this.reportFlush !== null) this.flushReports();
    this.closing ??= new Promise<void>((resolve, reject) => {
      // Let commits submitted in this turn join a last batch, then close.
      setImmediate(() => {
        void this.committer.drain().then(() => {
          try {
            this.committer.flush();
            this.tracking.close();
            this.db.close();
            if (this.walFd !== null) fs.closeSync(this.walFd);
            this.walFd = null;
            resolve();
          } catch (error) {
            reject(toStoreError(error, 'cannot close the queue store'));
          }
        });
      });
    });
    return this.closing;
  }

  private assertOpen(): void {
    if (!this.db.open || this.closing !== null) throw new StoreError('io', 'queue store is closed');
  }

  /** Runs a query on the open store; any failure comes out as a StoreError. */
  private guard<T>(doing: string, query: () => T): T {
    this.assertOpen();
    try {
      return query();
    } catch (error) {
      throw toStoreError(error, doing);
    }
  }

  private toQueuedMessage(row: MessageRow): QueuedMessage {
    const recipientRows = this.sql.selectRecipients.all(row.id);
    const envelopeRecipients: EnvelopeRecipient[] = recipientRows.map((r) => ({
      address: r.address,
      notify: r.notify === null ? null : (JSON.parse(r.notify) as NotifyParam),
      orcpt: r.orcpt === null ? null : (JSON.parse(r.orcpt) as OriginalRecipient),
    }));
    const recipients: QueuedRecipient[] = recipientRows.map((r, i) => ({
      ...envelopeRecipients[i],
      state: r.state,
      attempts: r.attempts,
      lastReply: r.last_reply,
      status: r.status,
      nextAttemptAt: r.next_attempt_at,
    }));
    const envelope: Envelope = {
      sender: row.sender,
      recipients: envelopeRecipients,
      ret: row.ret,
      envid: row.envid,
      body: row.body,
      smtputf8: row.smtputf8 === 1,
      client: JSON.parse(row.client) as ClientInfo,
      sessionId: row.session_id,
      receivedAt: row.received_at,
    };
    return {
      id: row.id,
      state: row.state,
      envelope,
      recipients,
      size: row.size,
      nextAttemptAt: row.next_attempt_at,
      attempts: row.attempts,
      origin: row.origin,
      delayWarnings: row.delay_warnings,
    };
  }
}

function prepareStatements(db: Database.Database) {
  return {
    insertChunk: db.prepare<[string, number, Uint8Array]>(
      'INSERT INTO body_chunks (message_id, seq, data) VALUES (?, ?, ?)',
    ),
    deleteChunks: db.prepare<[string]>('DELETE FROM body_chunks WHERE message_id = ?'),
    selectChunks: db.prepare<[string], Buffer>('SELECT data FROM body_chunks WHERE message_id = ? ORDER BY seq').pluck(),
    selectSize: db.prepare<[string], number>('SELECT size FROM messages WHERE id = ?').pluck(),
    insertMessage: db.prepare<{
      id: string;
      sender: string;
      ret: string | null;
      envid: string | null;
      body: string | null;
      smtputf8: number;
      client: string;
      session_id: string;
      received_at: number;
      size: number;
      next_attempt_at: number;
      origin: MessageOrigin;
      message_id_header: string | null;
    }>(
      `INSERT INTO messages (id, state, sender, ret, envid, body, smtputf8, client, session_id, received_at, size, next_attempt_at, origin, message_id_header)
       VALUES (@id, 'queued', @sender, @ret, @envid, @body, @smtputf8, @client, @session_id, @received_at, @size, @next_attempt_at, @origin, @message_id_header)`,
    ),
    insertRecipient: db.prepare<{
      message_id: string;
      idx: number;
      address: string;
      domain: string | null;
      notify: string | null;
      orcpt: string | null;
      next_attempt_at: number;
    }>(
      `INSERT INTO recipients (message_id, idx, address, domain, notify, orcpt, state, next_attempt_at)
       VALUES (@message_id, @idx, @address, @domain, @notify, @orcpt, 'queued', @next_attempt_at)`,
    ),
    selectMessage: db.prepare<[string], MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE id = ?`),
    selectRecipients: db.prepare<[string], RecipientRow>(
      'SELECT address, notify, orcpt, state, attempts, last_reply, status, next_attempt_at FROM recipients WHERE message_id = ? ORDER BY idx',
    ),
    selectChunkAfter: db.prepare<[string, number], { seq: number; data: Buffer }>(
      'SELECT seq, data FROM body_chunks WHERE message_id = ? AND seq > ? ORDER BY seq LIMIT 1',
    ),
    chunkExtent: db.prepare<[string], { chunks: number; bytes: number; last_seq: number }>(
      'SELECT count(*) AS chunks, coalesce(sum(length(data)), 0) AS bytes, coalesce(max(seq), -1) AS last_seq FROM body_chunks WHERE message_id = ?',
    ),
    copyChunks: db.prepare<{ target: string; offset: number; source: string }>(
      `INSERT INTO body_chunks (message_id, seq, data)
       SELECT @target, @offset + seq, data FROM body_chunks WHERE message_id = @source`,
    ),
    nextUnleasedDue: db.prepare<[], { t: number | null }>(
      "SELECT min(next_attempt_at) AS t FROM messages INDEXED BY messages_ready WHERE state = 'queued' AND lease_owner IS NULL",
    ),
    nextLeaseExpiry: db.prepare<[], { t: number | null }>(
      // An expired lease on a message not due yet wakes nobody before the message is due.
      // Only leased rows are looked at (the partial index): without it SQLite walked every queued
      // message on messages_due, at each scheduler tick (a tenth of the relay benchmark's time).
      "SELECT min(max(lease_expires_at, next_attempt_at)) AS t FROM messages INDEXED BY messages_lease WHERE lease_owner IS NOT NULL AND state = 'queued'",
    ),
    selectLeaseOwner: db.prepare<[string], { state: MessageState; lease_owner: string | null }>(
      'SELECT state, lease_owner FROM messages WHERE id = ?',
    ),
    updateRecipient: db.prepare<{
      message_id: string;
      idx: number;
      state: string;
      last_reply: string;
      status: string | null;
      next_attempt_at: number | null;
    }>(
      `UPDATE recipients SET state = @state, attempts = attempts + 1, last_reply = @last_reply, status = @status,
         next_attempt_at = coalesce(@next_attempt_at, next_attempt_at)
       WHERE message_id = @message_id AND idx = @idx AND state = 'queued'`,
    ),
    nextAttemptSeq: db.prepare<[string], { next: number }>(
      'SELECT coalesce(max(seq), -1) + 1 AS next FROM attempts WHERE message_id = ?',
    ),
    insertAttempt: db.prepare<{
      message_id: string;
      seq: number;
      at: number;
      recipients: string;
      next_hop: string | null;
      reply: string;
      outcome: string;
      status: string | null;
    }>(
      `INSERT INTO attempts (message_id, seq, at, recipients, next_hop, reply, outcome, status)
       VALUES (@message_id, @seq, @at, @recipients, @next_hop, @reply, @outcome, @status)`,
    ),
    selectAttempts: db.prepare<[string], AttemptRow>(
      'SELECT message_id, at, recipients, next_hop, reply, outcome, status FROM attempts WHERE message_id = ? ORDER BY seq',
    ),
    queuedRecipientSummary: db.prepare<[string], { open: number; next_attempt_at: number | null }>(
      "SELECT count(*) AS open, min(next_attempt_at) AS next_attempt_at FROM recipients WHERE message_id = ? AND state = 'queued'",
    ),
    finishMessage: db.prepare<[string]>(
      `UPDATE messages SET state = 'done', attempts = attempts + 1, lease_owner = NULL, lease_expires_at = NULL
       WHERE id = ?`,
    ),
    rescheduleMessage: db.prepare<{ id: string; next_attempt_at: number | null; delay_warnings: number | null }>(
      `UPDATE messages SET next_attempt_at = coalesce(@next_attempt_at, next_attempt_at), attempts = attempts + 1,
         delay_warnings = coalesce(@delay_warnings, delay_warnings), lease_owner = NULL, lease_expires_at = NULL
       WHERE id = @id`,
    ),
    chunkTotals: db.prepare<[], { chunks: number; bytes: number }>(
      'SELECT count(*) AS chunks, coalesce(sum(length(data)), 0) AS bytes FROM body_chunks',
    ),
    countByState: db.prepare<[], { state: MessageState; count: number }>(
      'SELECT state, count(*) AS count FROM messages GROUP BY state',
    ),
    // Both walk a partial index holding only the candidates, oldest due first (see schema 4).
    selectReady: db.prepare<[number, number], string>(
      `SELECT id FROM messages INDEXED BY messages_ready
       WHERE state = 'queued' AND lease_owner IS NULL AND next_attempt_at <= ?
       ORDER BY next_attempt_at, id LIMIT ?`,
    ).pluck(),
    selectExpiredLeases: db.prepare<[number, number, number], string>(
      `SELECT id FROM messages INDEXED BY messages_lease
       WHERE lease_owner IS NOT NULL AND lease_expires_at <= ? AND state = 'queued' AND next_attempt_at <= ?
       ORDER BY next_attempt_at, id LIMIT ?`,
    ).pluck(),
    takeLease: db.prepare<[string, number, string]>('UPDATE messages SET lease_owner = ?, lease_expires_at = ? WHERE id = ?'),
    renewLease: db.prepare<{ id: string; owner: string; now: number; expires_at: number }>(
      `UPDATE messages SET lease_expires_at = @expires_at
       WHERE id = @id AND lease_owner = @owner AND lease_expires_at > @now`,
    ),
    releaseLease: db.prepare<{ id: string; owner: string }>(
      `UPDATE messages SET lease_owner = NULL, lease_expires_at = NULL
       WHERE id = @id AND lease_owner = @owner`,
    ),
  };
}

/** What an incoming message needs from its store. */
interface MessageSink {
  /** Stores one body chunk row (not fsync'd); throws StoreError. */
  insertChunk(id: QueueId, seq: number, data: Uint8Array): void;
  /** Deletes the message's chunk rows; never throws. */
  discardChunks(id: QueueId): void;
  /** Queues the message for the next group commit. */
  submitCommit(message: SqliteIncomingMessage, envelope: Envelope): Promise<void>;
  /** Rewrites chunk 0 with `data` in front (not fsync'd); throws StoreError. */
  prependToFirstChunk(id: QueueId, data: Uint8Array): void;
}

type MessageProgress = 'receiving' | 'committing' | 'committed' | 'failed' | 'aborted';

/** Smallest staging buffer; it doubles as a body grows, up to BODY_CHUNK_BYTES. */
const INITIAL_STAGING_BYTES = 4096;

/**
 * One message being received into a SqliteQueueStore. Body bytes are copied into a staging
 * buffer (the caller may reuse its own after write() returns) that grows to at most 64 KiB and
 * is then reused for every further chunk: a large body costs no garbage per chunk, a small one
 * no 64 KiB allocation.
 */
class SqliteIncomingMessage implements IncomingMessage {
  private written = 0;
  private nextSeq = 0;
  private staging: Buffer | null = null;
  private stagedBytes = 0;
  private progress: MessageProgress = 'receiving';

  constructor(
    readonly id: QueueId,
    private readonly store: MessageSink,
  ) {}

  get size(): number {
    return this.written;
  }

  write(chunk: Uint8Array): void {
    if (this.progress !== 'receiving') {
      throw new StoreError('io', `message ${this.id} is ${this.progress}; it takes no more body bytes`);
    }
    try {
      this.append(chunk);
    } catch (error) {
      // A body with a hole must never be committed: the message is finished.
      this.commitFailed();
      throw error;
    }
  }

  /** Stored as held (CommitOptions.hold): the commit batch marks it so. */
  holdOnCommit = false;

  commit(envelope: Envelope, options: CommitOptions = {}): Promise<void> {
    if (this.progress !== 'receiving') {
      return Promise.reject(new StoreError('io', `message ${this.id} is ${this.progress}; cannot commit it`));
    }
    if (options.prepend !== undefined && options.prepend.length > 0) {
      try {
        this.prepend(options.prepend);
      } catch (error) {
        this.commitFailed();
        return Promise.reject(error);
      }
    }
    this.holdOnCommit = options.hold === true;
    this.progress = 'committing';
    return this.store.submitCommit(this, envelope).then(
      () => {
        this.progress = 'committed';
      },
      (error: unknown) => {
        this.commitFailed();
        throw error;
      },
    );
  }

  /**
   * Drops the body. After commit() was called this does nothing: the message is (or is about to
   * be) accepted, and a committed message is only removed by delivery. Never throws.
   */
  abort(): void {
    if (this.progress === 'committing' || this.progress === 'committed' || this.progress === 'aborted') return;
    this.progress = 'aborted';
    this.dropStaging();
    this.store.discardChunks(this.id);
  }

  /**
   * @internal The bytes still staged, as the last chunk row; used once, by the commit batch,
   * which inserts them at once (SQLite copies them).
   */
  takeBufferedTail(): { seq: number; data: Uint8Array } | null {
    if (this.staging === null || this.stagedBytes === 0) return null;
    const tail = { seq: this.nextSeq, data: this.staging.subarray(0, this.stagedBytes) };
    this.nextSeq += 1;
    this.dropStaging();
    return tail;
  }

  /** @internal A write or the commit's batch failed: drop whatever of the body was stored. */
  commitFailed(): void {
    if (this.progress === 'failed') return;
    this.progress = 'failed';
    this.dropStaging();
    this.store.discardChunks(this.id);
  }

  /**
   * Puts `bytes` before the body: into the staging buffer while no chunk row exists yet (the
   * usual case, a body under 64 KiB), else into chunk 0, rewritten once. Chunk 0 stays the
   * message's start, so it still holds the header section.
   */
  private prepend(bytes: Uint8Array): void {
    if (this.nextSeq === 0) {
      const staged = this.staging === null ? Buffer.alloc(0) : this.staging.subarray(0, this.stagedBytes);
      this.staging = Buffer.concat([bytes, staged]);
      this.stagedBytes = this.staging.length;
    } else {
      this.store.prependToFirstChunk(this.id, bytes);
    }
    this.written += bytes.length;
  }

  private append(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(BODY_CHUNK_BYTES - this.stagedBytes, chunk.length - offset);
      const piece = chunk.subarray(offset, offset + take);
      if (this.stagedBytes === 0 && take === BODY_CHUNK_BYTES) {
        // A whole chunk straight from the caller's bytes (SQLite copies them).
        this.store.insertChunk(this.id, this.nextSeq, piece);
        this.nextSeq += 1;
      } else {
        const staging = this.stagingFor(this.stagedBytes + take);
        staging.set(piece, this.stagedBytes);
        this.stagedBytes += take;
        if (this.stagedBytes === BODY_CHUNK_BYTES) {
          this.store.insertChunk(this.id, this.nextSeq, staging);
          this.nextSeq += 1;
          this.stagedBytes = 0;
        }
      }
      offset += take;
      this.written += take;
    }
  }

  /** The staging buffer, grown (by doubling, up to BODY_CHUNK_BYTES) to hold `bytes`. */
  private stagingFor(bytes: number): Buffer {
    if (this.staging !== null && this.staging.length >= bytes) return this.staging;
    let capacity = Math.max(this.staging?.length ?? 0, INITIAL_STAGING_BYTES);
    while (capacity < bytes) capacity *= 2;
    const grown = Buffer.allocUnsafe(Math.min(capacity, BODY_CHUNK_BYTES));
    if (this.staging !== null) this.staging.copy(grown, 0, 0, this.stagedBytes);
    this.staging = grown;
    return grown;
  }

  private dropStaging(): void {
    this.staging = null;
    this.stagedBytes = 0;
  }
}
