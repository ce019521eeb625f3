/** Retention: events and finished messages older than the period go; queued mail and newer events stay. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSqliteQueueStore } from '../../src/store/sqlite/sqlite-queue-store.js';
import { TrackingRetention } from '../../src/tracking/tracking-retention.js';
import { TrackingQuery } from '../../src/tracking/tracking-query.js';
import { storeMessage, withTempDirectory } from '../store/queue-store-contract.js';
import { sampleEnvelope } from '../store/fixtures/sample-message.js';

const DAY = 86_400_000;

test('tracking retention prunes old events and finished messages, never queued ones', { timeout: 30_000 }, async () => {
  await withTempDirectory(async (directory) => {
    let now = 1_700_000_000_000;
    const store = openSqliteQueueStore({ directory, minFreeBytes: 0, clock: () => now });
    try {
      const old = await storeMessage(store, Buffer.from('Subject: old\r\n\r\n'), sampleEnvelope({ receivedAt: now }));
      const waiting = await storeMessage(store, Buffer.from('Subject: waiting\r\n\r\n'), sampleEnvelope({ receivedAt: now }));
      const [lease] = store.leaseDue('W', now, 1, 60_000);
      assert.equal(lease.id, old);
      await store.recordDelivery({ lease, recipients: [{ index: 0, state: 'delivered', lastReply: '250 ok', status: '2.0.0' }], attempts: [], generated: [] });
      now += 31 * DAY;
      const fresh = await storeMessage(store, Buffer.from('Subject: fresh\r\n\r\n'), sampleEnvelope({ receivedAt: now }));
      const pruned: unknown[] = [];
      const retention = new TrackingRetention({ store, retentionMs: 30 * DAY, clock: () => now, onPruned: (p) => pruned.push(p) });
      retention.start();
      retention.stop();
      assert.deepEqual(pruned, [{ events: 3, messages: 1 }]);
      assert.equal(store.getMessage(old), null);
      assert.equal(store.getMessage(waiting)?.state, 'queued', 'queued mail is never pruned');
      const tracking = new TrackingQuery(store);
      assert.deepEqual(tracking.timeline(fresh)?.timeline.map((e) => e.kind), ['accepted']);
      assert.deepEqual(tracking.timeline(waiting)?.timeline, [], 'its old events are gone, the message stays');
    } finally {
      await store.close();
    }
  });
});
