/**
 * The SQLite queue's schema, as an ordered list of migrations. `PRAGMA user_version` records how
 * many have been applied; opening a store applies the missing ones, each in its own transaction,
 * and refuses a database written by a newer Postern (more migrations than this build knows).
 *
 * Bodies live in `body_chunks` rather than in files so that one WAL fsync makes body and envelope
 * durable together: a message exists exactly when its `messages` row does, and chunk rows without
 * one are leftovers of sessions that never committed.
 */
import type Database from 'better-sqlite3';

export const MIGRATIONS: readonly string[] = [
  // 1: messages, recipients, body chunks.
  `
  CREATE TABLE messages (
    id               TEXT PRIMARY KEY,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'held', 'done')),
    sender           TEXT NOT NULL,
    ret              TEXT CHECK (ret IN ('FULL', 'HDRS')),
    envid            TEXT,
    body             TEXT CHECK (body IN ('7BIT', '8BITMIME')),
    smtputf8         INTEGER NOT NULL,
    client           TEXT NOT NULL,            -- ClientInfo as JSON
    session_id       TEXT NOT NULL,
    received_at      INTEGER NOT NULL,         -- ms since the epoch
    size             INTEGER NOT NULL,         -- body bytes
    next_attempt_at  INTEGER NOT NULL,         -- ms since the epoch
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at INTEGER                   -- ms since the epoch; expired when <= now
  );
  CREATE INDEX messages_due ON messages (state, next_attempt_at);
  CREATE INDEX messages_received ON messages (received_at, id);

  CREATE TABLE recipients (
    message_id  TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,              -- position in the envelope
    address     TEXT NOT NULL,
    domain      TEXT,                          -- lower-cased part after the last '@'; NULL for "Postmaster"
    notify      TEXT,                          -- NotifyParam as JSON, or NULL
    orcpt       TEXT,                          -- OriginalRecipient as JSON, or NULL
    state       TEXT NOT NULL CHECK (state IN ('queued', 'delivered', 'bounced', 'expired', 'deleted')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_reply  TEXT,
    PRIMARY KEY (message_id, idx)
  );
  CREATE INDEX recipients_domain ON recipients (domain);

  CREATE TABLE body_chunks (
    message_id  TEXT NOT NULL,                 -- no foreign key: chunks are written before the message row
    seq         INTEGER NOT NULL,
    data        BLOB NOT NULL,
    PRIMARY KEY (message_id, seq)
  );
  `,
  // 2: delivery — per-recipient schedule and status, message origin and delay warnings, attempts.
  `
  ALTER TABLE recipients ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;  -- ms since the epoch
  ALTER TABLE recipients ADD COLUMN status TEXT;                                 -- RFC 3463 status of the last outcome
  UPDATE recipients SET next_attempt_at = (SELECT m.next_attempt_at FROM messages m WHERE m.id = recipients.message_id);
  ALTER TABLE messages ADD COLUMN origin TEXT NOT NULL DEFAULT 'received'
    CHECK (origin IN ('received', 'dsn', 'postmaster-notice'));
  ALTER TABLE messages ADD COLUMN delay_warnings INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX messages_lease ON messages (lease_expires_at) WHERE lease_owner IS NOT NULL;
  -- leaseDue takes the oldest due first (ORDER BY next_attempt_at, id): with id in the index that
  -- is a walk from its start, not a sort of everything due.
  DROP INDEX messages_due;
  CREATE INDEX messages_due ON messages (state, next_attempt_at, id);

  CREATE TABLE attempts (
    message_id  TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    at          INTEGER NOT NULL,              -- ms since the epoch
    recipients  TEXT NOT NULL,                 -- envelope positions as a JSON array
    next_hop    TEXT,
    reply       TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('delivered', 'soft', 'hard', 'expired', 'retry-now')),
    status      TEXT,
    PRIMARY KEY (message_id, seq)
  );
  `,
  // 3: tracking — events (see sqlite-tracking.ts; attempts stay in `attempts`), the Message-ID
  // header for searches, indexes for searches by sender and recipient.
  `
  CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,           -- write order (ties of equal timestamps)
    at          INTEGER NOT NULL,              -- ms since the epoch
    kind        TEXT NOT NULL,
    queue_id    TEXT,                          -- no foreign key: events outlive deleted messages until pruned
    session_id  TEXT,
    sender      TEXT,
    recipient   TEXT,
    next_hop    TEXT,
    outcome     TEXT,
    reply       TEXT,
    code        INTEGER,
    detail      TEXT NOT NULL DEFAULT '{}'     -- JSON
  );
  CREATE INDEX events_queue ON events (queue_id) WHERE queue_id IS NOT NULL;
  CREATE INDEX events_session ON events (session_id, seq) WHERE session_id IS NOT NULL;
  CREATE INDEX events_at ON events (at);
  ALTER TABLE messages ADD COLUMN message_id_header TEXT;
  CREATE INDEX messages_message_id ON messages (message_id_header) WHERE message_id_header IS NOT NULL;
  CREATE INDEX messages_sender ON messages (sender COLLATE NOCASE);
  CREATE INDEX recipients_address ON recipients (address COLLATE NOCASE);
  `,
  // 4: leasing walks only the messages free to lease. On messages_due it skipped the leased ones
  // (every delivery in flight, the oldest due) row by row, each a table lookup: ~0.2 ms per lease
  // transaction in the relay benchmark, a tenth of the main thread.
  `
  CREATE INDEX messages_ready ON messages (next_attempt_at, id) WHERE state = 'queued' AND lease_owner IS NULL;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the database up to SCHEMA_VERSION. */
export function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true });
  if (typeof current !== 'number') throw new Error('cannot read the queue schema version');
  if (current > SCHEMA_VERSION) {
    throw new Error(
      `queue database has schema version ${current}, newer than this Postern knows (${SCHEMA_VERSION})`,
    );
  }
  for (let version = current; version < SCHEMA_VERSION; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]);
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
}
