/**
 * Tracking inside the SQLite queue: the `events` table (migration 3), written by the store in the
 * transactions of the changes the events describe, and the queries behind `postern track`, the
 * admin API and the dashboard. Attempts are not copied into `events`: the `attempts` table is
 * read back as 'attempt' events (one record of each fact).
 *
 * Session events (connection decision, RCPT replies) arrive before there is a queue id; they are
 * kept with their session id, and a message's timeline takes those of its session written after
 * the session's previous acceptance and before its own (event sequence numbers, not clocks, so
 * equal timestamps cannot mix two transactions of one session).
 */
import type Database from 'better-sqlite3';
import type { Envelope, MessageOrigin, QueueId } from '../queue-types.js';
import {
  replyCodeOf,
  type BounceSummary,
  type TrackingCount,
  type TrackingEvent,
  type TrackingEventInput,
  type TrackingKind,
  type TrackingSearch,
} from '../tracking-record.js';

interface EventRow {
  seq: number;
  at: number;
  kind: TrackingKind;
  queue_id: string | null;
  session_id: string | null;
  sender: string | null;
  recipient: string | null;
  next_hop: string | null;
  outcome: string | null;
  reply: string | null;
  code: number | null;
  detail: string;
}

const EVENT_COLUMNS = 'seq, at, kind, queue_id, session_id, sender, recipient, next_hop, outcome, reply, code, detail';

/** Attempt rows read as events (one per attempt; recipients joined by ", "). */
const ATTEMPT_EVENTS = `
  SELECT a.seq AS seq, a.at AS at, 'attempt' AS kind, a.message_id AS queue_id, m.session_id AS session_id,
         m.sender AS sender,
         (SELECT group_concat(r.address, ', ') FROM json_each(a.recipients) j
            JOIN recipients r ON r.message_id = a.message_id AND r.idx = j.value) AS recipient,
         a.next_hop AS next_hop, a.outcome AS outcome, a.reply AS reply,
         CASE WHEN a.reply GLOB '[2-5][0-9][0-9]*' THEN CAST(substr(a.reply, 1, 3) AS INTEGER) END AS code,
         json_object('status', a.status, 'recipients', json(a.recipients)) AS detail
  FROM attempts a JOIN messages m ON m.id = a.message_id`;

/** Order of events that share a millisecond: session, acceptance, admin, attempt, outcome, deletion. */
const RANK: Readonly<Record<TrackingKind, number>> = {
  connection: 0, rcpt: 0, accepted: 1, held: 2, released: 2, retry: 2, attempt: 3,
  deferred: 4, delivered: 4, bounced: 4, expired: 4, dsn: 5, deleted: 6,
};

/** How long session events may wait for a commit batch to ride in. */
const SESSION_EVENT_DELAY_MS = 50;

const MESSAGE_ID = /^message-id[ \t]*:[ \t]*((?:[^\r\n]|\r?\n[ \t])*)/im;

/** The Message-ID header of a message's first bytes, angle brackets kept, or null. */
export function messageIdHeader(head: Uint8Array): string | null {
  const text = Buffer.from(head.buffer, head.byteOffset, Math.min(head.length, 65536)).toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const headers = end < 0 ? text : text.slice(0, end);
  const m = MESSAGE_ID.exec(headers);
  if (!m) return null;
  const value = m[1].replace(/\r?\n[ \t]+/g, ' ').trim();
  const bracketed = /<[^<>\s]+>/.exec(value);
  return (bracketed ? bracketed[0] : value).slice(0, 998) || null;
}

/** "<a@b>" and "a@b" find the same message. */
function bracketed(messageId: string): string {
  const t = messageId.trim();
  return t.startsWith('<') ? t : `<${t}>`;
}

function toEvent(row: EventRow): TrackingEvent {
  return {
    kind: row.kind,
    at: row.at,
    queueId: row.queue_id,
    sessionId: row.session_id,
    sender: row.sender,
    recipient: row.recipient,
    nextHop: row.next_hop,
    outcome: row.outcome,
    reply: row.reply,
    code: row.code,
    detail: JSON.parse(row.detail) as Record<string, unknown>,
  };
}

export class SqliteTracking {
  private readonly insertEvent: Database.Statement;
  /** Written in a transaction not yet reported to listeners. */
  private unannounced: TrackingEvent[] = [];
  /** Session events waiting for the next commit batch or their own flush (see queue). */
  private pending: TrackingEventInput[] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  private readonly listeners = new Set<(events: readonly TrackingEvent[]) => void>();

  constructor(private readonly db: Database.Database) {
    this.insertEvent = db.prepare(
      `INSERT INTO events (at, kind, queue_id, session_id, sender, recipient, next_hop, outcome, reply, code, detail)
       VALUES (@at, @kind, @queue_id, @session_id, @sender, @recipient, @next_hop, @outcome, @reply, @code, @detail)`,
    );
  }

  // ── writing (inside the caller's transaction) ─────────────────────────────────────────────

  /**
   * An attempt record written by the store itself (attempts table): not inserted again, only
   * announced to listeners with the rest of its transaction.
   */
  noteAttempt(e: TrackingEventInput): void {
    this.unannounced.push(this.build(e));
  }

  /** Inserts one event in the current transaction; listeners hear of it after announce(). */
  insert(e: TrackingEventInput): void {
    const event = this.build(e);
    this.insertEvent.run({
      at: event.at,
      kind: event.kind,
      queue_id: event.queueId,
      session_id: event.sessionId,
      sender: event.sender,
      recipient: event.recipient,
      next_hop: event.nextHop,
      outcome: event.outcome,
      reply: event.reply,
      code: event.code,
      detail: JSON.stringify(event.detail),
    });
    this.unannounced.push(event);
  }

  private build(e: TrackingEventInput): TrackingEvent {
    return {
      kind: e.kind,
      at: e.at,
      queueId: e.queueId ?? null,
      sessionId: e.sessionId ?? null,
      sender: e.sender ?? null,
      recipient: e.recipient ?? null,
      nextHop: e.nextHop ?? null,
      outcome: e.outcome ?? null,
      reply: e.reply ?? null,
      code: replyCodeOf(e.reply),
      detail: e.detail ?? {},
    };
  }

  /** The 'accepted' event of a message just inserted (received, or generated by Postern). */
  accepted(id: QueueId, envelope: Envelope, size: number, origin: MessageOrigin, messageId: string | null): void {
    this.insert({
      kind: 'accepted',
      at: envelope.receivedAt,
      queueId: id,
      sessionId: envelope.sessionId,
      sender: envelope.sender,
      outcome: origin === 'received' ? 'accepted' : 'generated',
      detail: {
        size,
        origin,
        messageId,
        recipients: envelope.recipients.map((r) => r.address),
        client: envelope.client.ip,
        helo: envelope.client.helo,
        listener: envelope.client.listener,
        senderGroup: envelope.client.senderGroup,
        policy: envelope.client.policy,
        tls: envelope.client.tls ?? null,
        authenticatedUser: envelope.client.authenticatedUser ?? null,
      },
    });
  }

  /**
   * Session events (connection decisions, RCPT replies), written with the next commit batch, or
   * in a transaction of their own after SESSION_EVENT_DELAY_MS when no message is committed
   * meanwhile: on a busy server they ride in the acceptances' transactions instead of costing a
   * WAL append per event-loop turn. Queries write them first (flushPending), so a search always
   * sees every event recorded so far.
   */
  queue(events: readonly TrackingEventInput[]): void {
    this.pending.push(...events);
    if (this.flushTimer === null) {
      this.flushTimer = setTimeout(() => this.flushPending(), SESSION_EVENT_DELAY_MS);
      this.flushTimer.unref(); // close() writes what is left
    }
  }

  /** Writes queued session events now, in a transaction of their own. */
  flushPending(): void {
    this.cancelFlush();
    if (this.pending.length === 0 || !this.db.open) return;
    try {
      this.db.transaction(() => this.writePending())();
      this.announce();
    } catch {
      // Tracking is best effort for session events; the mail flow does not depend on it.
      this.forget();
    }
  }

  private cancelFlush(): void {
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
  }

  /** Writes queued session events in the current transaction (before an acceptance that follows them). */
  writePending(): void {
    this.cancelFlush();
    const events = this.pending;
    this.pending = [];
    for (const e of events) this.insert(e);
  }

  /** Tells listeners about what the last transaction wrote. */
  announce(): void {
    const events = this.unannounced;
    this.unannounced = [];
    if (events.length === 0) return;
    for (const l of this.listeners) {
      try {
        l(events);
      } catch {
        // A listener's trouble is its own.
      }
    }
  }

  /** The last transaction failed: what it wrote was rolled back. */
  forget(from = 0): void {
    this.unannounced.length = from;
  }

  get unannouncedCount(): number {
    return this.unannounced.length;
  }

  onTracked(listener: (events: readonly TrackingEvent[]) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  close(): void {
    this.flushPending();
    this.pending = [];
  }


  // ── reading ───────────────────────────────────────────────────────────────────────────────

  /** Everything that happened to one message, from its session's connection to now. */
  messageEvents(id: QueueId): TrackingEvent[] {
    this.flushPending();
    const accepted = this.db
      .prepare<[string], { seq: number; session_id: string | null }>(
        "SELECT seq, session_id FROM events WHERE queue_id = ? AND kind = 'accepted' ORDER BY seq LIMIT 1",
      )
      .get(id);
    const own = this.db.prepare<[string], EventRow>(`SELECT ${EVENT_COLUMNS} FROM events WHERE queue_id = ?`).all(id);
    const attempts = this.db.prepare<[string], EventRow>(`${ATTEMPT_EVENTS} WHERE a.message_id = ?`).all(id);
    let session: EventRow[] = [];
    if (accepted?.session_id) {
      session = this.db
        .prepare<{ session: string; seq: number }, EventRow>(
          `SELECT ${EVENT_COLUMNS} FROM events
           WHERE session_id = @session AND queue_id IS NULL AND seq < @seq
             AND seq > coalesce((SELECT max(seq) FROM events WHERE session_id = @session AND kind = 'accepted' AND seq < @seq), 0)`,
        )
        .all({ session: accepted.session_id, seq: accepted.seq });
    }
    const ordered = [
      ...session.map((r) => ({ r, src: 0 })),
      ...own.map((r) => ({ r, src: 1 })),
      ...attempts.map((r) => ({ r, src: 2 })),
    ];
    // Session events first (they precede the acceptance whatever the clocks say); then by time.
    ordered.sort((x, y) =>
      (x.src === 0 ? 0 : 1) - (y.src === 0 ? 0 : 1)
      || x.r.at - y.r.at
      || RANK[x.r.kind] - RANK[y.r.kind]
      || x.r.seq - y.r.seq);
    return ordered.map(({ r }) => toEvent(r));
  }

  /** Queue ids of messages matching every condition, newest first. */
  searchMessages(s: TrackingSearch): QueueId[] {
    this.flushPending();
    const where: string[] = [];
    const p: Record<string, string | number> = {};
    if (s.queueId !== undefined) {
      where.push('m.id = @queue_id');
      p.queue_id = s.queueId;
    }
    if (s.messageId !== undefined) {
      where.push('m.message_id_header = @message_id');
      p.message_id = bracketed(s.messageId);
    }
    if (s.sender !== undefined) {
      where.push('m.sender = @sender COLLATE NOCASE');
      p.sender = s.sender;
    }
    if (s.recipient !== undefined) {
      where.push('EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND r.address = @recipient COLLATE NOCASE)');
      p.recipient = s.recipient;
    }
    if (s.nextHop !== undefined) {
      where.push("EXISTS (SELECT 1 FROM attempts a WHERE a.message_id = m.id AND a.next_hop LIKE '%' || @next_hop || '%')");
      p.next_hop = s.nextHop;
    }
    if (s.outcome !== undefined) {
      if (s.outcome === 'held') where.push("m.state = 'held'");
      else if (s.outcome === 'deferred') {
        where.push("EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND r.state = 'queued' AND r.attempts > 0)");
      } else {
        where.push('EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND r.state = @outcome)');
        p.outcome = s.outcome;
      }
    }
    if (s.since !== undefined) {
      where.push('m.received_at >= @since');
      p.since = s.since;
    }
    if (s.until !== undefined) {
      where.push('m.received_at < @until');
      p.until = s.until;
    }
    p.limit = s.limit ?? 100;
    const sql = `SELECT m.id FROM messages m ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
                 ORDER BY m.received_at DESC, m.id DESC LIMIT @limit`;
    return this.db.prepare<Record<string, string | number>, string>(sql).pluck().all(p);
  }

  /** Refusals before a queue id existed (connection, RCPT) matching sender, recipient and time. */
  searchRefusals(s: TrackingSearch): TrackingEvent[] {
    this.flushPending();
    if (s.queueId !== undefined || s.messageId !== undefined || s.nextHop !== undefined) return [];
    if (s.outcome !== undefined && s.outcome !== 'bounced') return [];
    const where = ["queue_id IS NULL", "outcome = 'rejected'"];
    const p: Record<string, string | number> = {};
    if (s.sender !== undefined) {
      where.push('sender = @sender COLLATE NOCASE');
      p.sender = s.sender;
    }
    if (s.recipient !== undefined) {
      where.push('recipient = @recipient COLLATE NOCASE');
      p.recipient = s.recipient;
    }
    if (s.since !== undefined) {
      where.push('at >= @since');
      p.since = s.since;
    }
    if (s.until !== undefined) {
      where.push('at < @until');
      p.until = s.until;
    }
    p.limit = s.limit ?? 100;
    return this.db
      .prepare<Record<string, string | number>, EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE ${where.join(' AND ')} ORDER BY at DESC, seq DESC LIMIT @limit`,
      )
      .all(p)
      .map(toEvent);
  }

  /** Events per bucket since `since` (attempts included), for rates and charts. */
  counts(since: number, bucketMs: number): TrackingCount[] {
    this.flushPending();
    const rows = this.db
      .prepare<{ since: number; b: number }, { bucket: number; kind: TrackingKind; outcome: string | null; cc: number | null; n: number }>(
        `SELECT (at / @b) * @b AS bucket, kind, outcome, code / 100 AS cc, count(*) AS n
           FROM events WHERE at >= @since GROUP BY 1, 2, 3, 4
         UNION ALL
         SELECT (at / @b) * @b, 'attempt', outcome,
                CASE WHEN reply GLOB '[2-5][0-9][0-9]*' THEN CAST(substr(reply, 1, 1) AS INTEGER) END, count(*)
           FROM attempts WHERE at >= @since GROUP BY 1, 2, 3, 4
         ORDER BY 1`,
      )
      .all({ since, b: Math.max(1, Math.floor(bucketMs)) });
    return rows.map((r) => ({ bucket: r.bucket, kind: r.kind, outcome: r.outcome, codeClass: r.cc, count: r.n }));
  }

  /** Destination domains ranked by bounces since `since` (hard first, then soft), with their top replies. */
  bounceSummary(since: number, limit: number): BounceSummary[] {
    this.flushPending();
    const domainExpr = "lower(substr(recipient, instr(recipient, '@') + 1))";
    const base = `FROM events WHERE at >= @since AND recipient IS NOT NULL AND kind IN ('deferred', 'bounced', 'expired')`;
    const domains = this.db
      .prepare<{ since: number; limit: number }, { domain: string; soft: number; hard: number }>(
        `SELECT ${domainExpr} AS domain,
                sum(kind = 'deferred') AS soft, sum(kind IN ('bounced', 'expired')) AS hard
         ${base} GROUP BY 1 ORDER BY hard + soft DESC, hard DESC, domain LIMIT @limit`,
      )
      .all({ since, limit });
    const replies = this.db.prepare<{ since: number; domain: string }, { reply: string; outcome: 'soft' | 'hard'; n: number }>(
      `SELECT reply, CASE WHEN kind = 'deferred' THEN 'soft' ELSE 'hard' END AS outcome, count(*) AS n
       ${base} AND ${domainExpr} = @domain AND reply IS NOT NULL GROUP BY 1, 2 ORDER BY n DESC LIMIT 5`,
    );
    return domains.map((d) => ({
      domain: d.domain,
      soft: d.soft,
      hard: d.hard,
      replies: replies.all({ since, domain: d.domain }).map((r) => ({ reply: r.reply, outcome: r.outcome, count: r.n })),
    }));
  }

  /** Deletes events older than `before`, and finished messages received before it. */
  prune(before: number): { events: number; messages: number } {
    this.flushPending();
    return this.db.transaction(() => {
      const events = this.db.prepare('DELETE FROM events WHERE at < ?').run(before).changes;
      const messages = this.db.prepare("DELETE FROM messages WHERE state = 'done' AND received_at < ?").run(before).changes;
      return { events, messages };
    }).immediate();
  }
}
