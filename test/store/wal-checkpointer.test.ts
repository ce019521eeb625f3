/**
 * WAL checkpoints on a worker thread (src/store/sqlite/wal-checkpointer.ts): with the option the
 * worker copies the WAL into the database while the main connection keeps committing; without it
 * nothing runs in the background. Either way every committed message is there after a reopen.
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSqliteQueueStore, type SqliteQueueStore } from '../../src/store/sqlite/sqlite-queue-store.js';
import { CHECKPOINT_INTERVAL_MS } from '../../src/store/sqlite/wal-checkpointer.js';
import { storeMessage, withTempDirectory } from './queue-store-contract.js';
import { sampleBody } from './fixtures/sample-message.js';

const TIMEOUT = { timeout: 60_000 };

/** 300 messages of 20 KB: about 1,500 WAL pages, more than SQLite's own 1,000-page checkpoint. */
async function fill(store: SqliteQueueStore): Promise<void> {
  for (let batch = 0; batch < 10; batch++) {
    await Promise.all(Array.from({ length: 30 }, (_, i) => storeMessage(store, sampleBody(20_000, batch * 30 + i))));
  }
}

async function until(what: string, check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('background checkpoint: the worker copies the WAL into the database; a reopen finds every message', TIMEOUT, async () => {
  await withTempDirectory(async (directory) => {
    const store = openSqliteQueueStore({ directory, minFreeBytes: 0, checkpointInBackground: true });
    const dbFile = path.join(directory, 'queue.db');
    const sizeBefore = fs.statSync(dbFile).size;
    try {
      await fill(store);
      await until('a background checkpoint', () => store.stats().checkpoints > 0, 20 * CHECKPOINT_INTERVAL_MS + 5000);
      const stats = store.stats();
      assert.ok(stats.checkpointedPages >= 1000, `pages copied by the worker: ${stats.checkpointedPages}`);
      // The worker wrote the pages into the database file (the main connection's own threshold
      // is far above what 300 messages need).
      assert.ok(fs.statSync(dbFile).size > sizeBefore + 4_000_000, 'the database file grew with the copied pages');
    } finally {
      await store.close();
    }
    assert.equal(fs.existsSync(`${dbFile}-wal`), false, 'a clean close leaves no WAL behind');
    const again = openSqliteQueueStore({ directory, minFreeBytes: 0 });
    try {
      assert.equal(again.counts().queued, 300);
    } finally {
      await again.close();
    }
  });
});

test('background checkpoint: off by default (short-lived users such as the CLI start no worker)', TIMEOUT, async () => {
  await withTempDirectory(async (directory) => {
    const store = openSqliteQueueStore({ directory, minFreeBytes: 0 });
    try {
      await fill(store);
      await new Promise((r) => setTimeout(r, 3 * CHECKPOINT_INTERVAL_MS));
      assert.equal(store.stats().checkpoints, 0);
      assert.equal(store.counts().queued, 300);
    } finally {
      await store.close();
    }
  });
});
