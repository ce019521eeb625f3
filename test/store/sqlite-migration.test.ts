/** A queue written by the receiving-only Postern (schema 1) opens in this one and can be delivered. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/store/sqlite/schema.js';
import { openSqliteQueueStore } from '../../src/store/sqlite/sqlite-queue-store.js';
import { withTempDirectory } from './queue-store-contract.js';
import { sampleClient } from './fixtures/sample-message.js';

test('sqlite: a schema-1 queue is migrated; its messages are due as before and can be delivered', { timeout: 30_000 }, async () => {
  await withTempDirectory(async (directory) => {
    const db = new Database(join(directory, 'queue.db'));
    db.pragma('journal_mode = WAL');
    db.exec(MIGRATIONS[0]);
    db.pragma('user_version = 1');
    db.prepare(`INSERT INTO messages (id, state, sender, ret, envid, body, smtputf8, client, session_id, received_at, size, next_attempt_at, attempts)
                VALUES ('old1', 'queued', 'a@src.test', NULL, NULL, NULL, 0, ?, 's1', 1000, 4, 5000, 2)`).run(JSON.stringify(sampleClient));
    db.prepare(`INSERT INTO recipients (message_id, idx, address, domain, notify, orcpt, state, attempts, last_reply)
                VALUES ('old1', 0, 'b@dst.test', 'dst.test', NULL, NULL, 'queued', 2, '450 busy')`).run();
    db.prepare(`INSERT INTO body_chunks (message_id, seq, data) VALUES ('old1', 0, ?)`).run(Buffer.from('body'));
    db.close();

    const store = openSqliteQueueStore({ directory, minFreeBytes: 0 });
    try {
      const m = store.getMessage('old1');
      assert.ok(m);
      assert.equal(m.origin, 'received');
      assert.equal(m.delayWarnings, 0);
      assert.deepEqual([m.recipients[0].nextAttemptAt, m.recipients[0].status, m.recipients[0].attempts], [5000, null, 2]);
      assert.equal(store.nextWakeAt(), 5000);
      const [lease] = store.leaseDue('w', 5000, 10, 1000);
      const r = await store.recordDelivery({ lease, recipients: [{ index: 0, state: 'delivered', lastReply: '250 ok', status: '2.0.0' }], attempts: [], generated: [] });
      assert.equal(r.finished, true);
    } finally {
      await store.close();
    }
    const check = new Database(join(directory, 'queue.db'), { readonly: true });
    assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    check.close();
  });
});
