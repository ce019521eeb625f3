/**
 * The embedded SQLite queue: the QueueStore contract, plus what only this implementation can show
 * — group commit (one transaction and one fsync per event-loop turn), survival of a SIGKILL right
 * after "committed", bounded memory for big bodies, a real SQLITE_FULL turned into 'no-space',
 * and its queue ids.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StoreError } from '../../src/store/queue-store.js';
import { QueueIdGenerator, QUEUE_ID_PATTERN } from '../../src/store/sqlite/queue-id.js';
import {
  BODY_CHUNK_BYTES,
  openSqliteQueueStore,
  type SqliteQueueStore,
  type SqliteQueueStoreOptions,
} from '../../src/store/sqlite/sqlite-queue-store.js';
import { runQueueStoreContract, storeMessage, withTempDirectory } from './queue-store-contract.js';
import { sampleBody, sampleEnvelope } from './fixtures/sample-message.js';

const TEST_TIMEOUT_MS = 60_000;
const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

runQueueStoreContract('sqlite', (directory, options) => openSqliteQueueStore({ directory, ...options }));

async function withSqliteStore(
  body: (store: SqliteQueueStore, directory: string) => Promise<void>,
  options: Partial<SqliteQueueStoreOptions> = {},
): Promise<void> {
  await withTempDirectory(async (directory) => {
    const store = openSqliteQueueStore({ directory, minFreeBytes: 0, ...options });
    try {
      await body(store, directory);
    } finally {
      await store.close();
    }
  });
}

function noSpace(error: unknown): boolean {
  return error instanceof StoreError && error.kind === 'no-space';
}

test('sqlite: the database lives at <directory>/queue.db in WAL mode; the directory is created', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withTempDirectory(async (parent) => {
    const directory = path.join(parent, 'var', 'queue');
    const store = openSqliteQueueStore({ directory, minFreeBytes: 0 });
    try {
      await storeMessage(store, Buffer.from('x'));
      assert.equal(store.databasePath, path.join(directory, 'queue.db'));
      assert.ok(fs.existsSync(path.join(directory, 'queue.db')));
      assert.ok(fs.existsSync(path.join(directory, 'queue.db-wal')));
    } finally {
      await store.close();
    }
  });
});

test('sqlite: commits of one event-loop turn share one transaction', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withSqliteStore(async (store) => {
    await Promise.all(Array.from({ length: 50 }, (_, i) => storeMessage(store, sampleBody(3000, i))));
    const stats = store.stats();
    assert.equal(stats.committedMessages, 50);
    assert.equal(stats.commitBatches, 1);
    assert.equal(stats.largestBatch, 50);

    // One after the other, each commit is its own batch.
    await storeMessage(store, Buffer.from('a'));
    await storeMessage(store, Buffer.from('b'));
    assert.equal(store.stats().commitBatches, 3);

    // 200 sessions finishing DATA at nearly the same time: far fewer batches than commits.
    const before = store.stats().commitBatches;
    await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        await new Promise((resolve) => setTimeout(resolve, i % 7));
        await storeMessage(store, sampleBody(5000, i));
      }),
    );
    const batches = store.stats().commitBatches - before;
    assert.ok(batches < 200, `${batches} batches for 200 commits`);
  });
});

function straceWorks(): boolean {
  const probe = spawnSync('strace', ['-f', '-o', '/dev/null', 'true']);
  return probe.status === 0;
}

test(
  'sqlite: a batch costs exactly one fsync, and body chunk writes none',
  { timeout: TEST_TIMEOUT_MS, skip: straceWorks() ? false : 'strace is not available here' },
  async () => {
    await withTempDirectory(async (directory) => {
      const trace = path.join(directory, 'trace.txt');
      const run = spawnSync(
        'strace',
        ['-f', '-e', 'trace=fsync,fdatasync,write', '-e', 'signal=none', '-o', trace,
          process.execPath, '--import', 'tsx', path.join(fixtures, 'fsync-count.ts'), path.join(directory, 'store')],
        { encoding: 'utf8' },
      );
      assert.equal(run.status, 0, run.stderr);
      const lines = fs.readFileSync(trace, 'utf8').split('\n');
      const between = (start: string, end: string): string[] => {
        const from = lines.findIndex((line) => line.includes(start));
        const to = lines.findIndex((line) => line.includes(end));
        assert.ok(from >= 0 && to > from, `markers ${start} / ${end} in the trace`);
        return lines.slice(from + 1, to).filter((line) => /\b(fsync|fdatasync)\(/.test(line));
      };
      assert.equal(between('MARK-WRITES', 'MARK-COMMIT').length, 0, '2 MB of chunk rows written without fsync');
      assert.equal(between('MARK-COMMIT', 'MARK-DONE').length, 1, 'twenty commits, one fsync');
    });
  },
);

test('sqlite: a message reported committed survives SIGKILL right after', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withTempDirectory(async (directory) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(fixtures, 'commit-and-wait.ts'), directory], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));

    const reported: { id: string; seed: number; size: number }[] = [];
    for await (const line of readline.createInterface({ input: child.stdout })) {
      const [word, id, seed, size] = line.split(' ');
      assert.equal(word, 'committed', line);
      reported.push({ id, seed: Number(seed), size: Number(size) });
      if (reported.length === 40) {
        child.kill('SIGKILL');
        break;
      }
    }
    assert.equal(await exited, 'SIGKILL', `child ended on its own: ${stderr}`);
    assert.equal(reported.length, 40, stderr);

    const store = openSqliteQueueStore({ directory, minFreeBytes: 0 });
    try {
      for (const { id, seed, size } of reported) {
        const message = store.getMessage(id);
        assert.ok(message, `message ${id} reported committed is in the queue`);
        assert.equal(message.envelope.sessionId, `crash-${seed}`);
        assert.ok(store.readBody(id).equals(sampleBody(size, seed)), `body of ${id}`);
      }
      // Messages in flight at the kill left no body behind.
      const stored = store.listMessages();
      const committedBytes = stored.reduce((sum, message) => sum + message.size, 0);
      assert.equal(store.storageStats().bodyBytes, committedBytes);
    } finally {
      await store.close();
    }
  });
});

/** A garbage collector to call: `global.gc` when exposed, else one enabled at run time. */
function collector(): () => void {
  if (typeof global.gc === 'function') return global.gc;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

for (const pieceSize of [BODY_CHUNK_BYTES, 60_000]) {
  test(`sqlite: a 50 MB body written in ${pieceSize}-byte pieces streams through with bounded memory`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSqliteStore(async (store) => {
      const gc = collector();
      const used = (): number => {
        const usage = process.memoryUsage();
        return usage.heapUsed + usage.arrayBuffers;
      };
      const piece = Buffer.alloc(pieceSize);
      const total = 50 * 1024 * 1024;
      gc();
      const baseline = used();
      let peak = 0;

      const message = store.beginMessage();
      for (let offset = 0, n = 0; offset < total; offset += piece.length, n++) {
        const length = Math.min(piece.length, total - offset);
        piece.fill(n & 0xff);
        message.write(piece.subarray(0, length));
        if (n % 64 === 0) peak = Math.max(peak, used() - baseline);
      }
      await message.commit(sampleEnvelope());
      peak = Math.max(peak, used() - baseline);

      assert.equal(store.getMessage(message.id)?.size, total);
      assert.equal(store.storageStats().bodyBytes, total);
      // No collection during the write: this bounds garbage as well as what is kept.
      assert.ok(peak < 10 * 1024 * 1024, `memory grew by ${(peak / 1048576).toFixed(1)} MB`);
    });
  });
}

test('sqlite: a full database (SQLITE_FULL) rejects the commit with no-space and keeps nothing of it', { timeout: TEST_TIMEOUT_MS }, async () => {
  const maxBytes = 2 * 1024 * 1024;
  await withTempDirectory(async (directory) => {
    let store = openSqliteQueueStore({ directory, minFreeBytes: 0, maxBytes });
    try {
      // A whole batch that does not fit fails together: none of it is kept.
      const batch = Array.from({ length: 40 }, (_, i) => {
        const message = store.beginMessage();
        message.write(sampleBody(60_000, i)); // below 64 KiB: stays in memory until commit
        return { message, outcome: message.commit(sampleEnvelope()) };
      });
      for (const { outcome } of batch) await assert.rejects(outcome, noSpace);
      for (const { message } of batch) message.abort();
      assert.deepEqual(store.listMessages(), []);
      assert.equal(store.storageStats().bodyBytes, 0);

      // One at a time until the database is full: the one that does not fit is refused, the
      // others stay intact.
      const kept: { id: string; seed: number }[] = [];
      for (let seed = 100; ; seed++) {
        const message = store.beginMessage();
        message.write(sampleBody(60_000, seed));
        try {
          await message.commit(sampleEnvelope({ sessionId: `full-${seed}` }));
          kept.push({ id: message.id, seed });
        } catch (error) {
          assert.ok(noSpace(error), String(error));
          message.abort();
          assert.equal(store.getMessage(message.id), null);
          break;
        }
        assert.ok(kept.length < 100, 'the database never filled up');
      }
      assert.ok(kept.length > 10, `only ${kept.length} messages fit`);
      assert.equal(store.admission(60_000).ok, false, 'admission sees the full database');

      // Writing a big body fails on a chunk row: write throws no-space and the message is finished.
      const big = store.beginMessage();
      assert.throws(() => {
        for (let i = 0; i < 40; i++) big.write(sampleBody(BODY_CHUNK_BYTES, 500 + i));
      }, noSpace);
      await assert.rejects(big.commit(sampleEnvelope()), StoreError);
      big.abort();

      const check = (): void => {
        assert.deepEqual(store.listMessages().map((m) => m.id), kept.map((k) => k.id));
        for (const { id, seed } of kept) assert.ok(store.readBody(id).equals(sampleBody(60_000, seed)));
        assert.equal(store.storageStats().bodyBytes, kept.length * 60_000);
      };
      check();
      await store.close();
      store = openSqliteQueueStore({ directory, minFreeBytes: 0, maxBytes });
      check();
    } finally {
      await store.close();
    }
  });
});

test('sqlite: opening the store deletes the body chunks of messages never committed', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withTempDirectory(async (directory) => {
    let store = openSqliteQueueStore({ directory, minFreeBytes: 0 });
    try {
      await storeMessage(store, sampleBody(70_000, 1));
      const unfinished = store.beginMessage();
      unfinished.write(sampleBody(500_000, 2));
      assert.ok(store.storageStats().bodyBytes > 70_000 + 400_000);
      await store.close();
      store = openSqliteQueueStore({ directory, minFreeBytes: 0 });
      assert.equal(store.storageStats().bodyBytes, 70_000);
    } finally {
      await store.close();
    }
  });
});

test('sqlite: abort deletes the chunk rows at once', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withSqliteStore(async (store) => {
    const message = store.beginMessage();
    message.write(sampleBody(1_000_000, 1));
    assert.ok(store.storageStats().bodyBytes >= 1_000_000 - BODY_CHUNK_BYTES);
    message.abort();
    assert.equal(store.storageStats().bodyBytes, 0);
  });
});

test('sqlite: queue ids are 15 base62 characters, sortable by time, unique', { timeout: TEST_TIMEOUT_MS }, () => {
  let now = 1_700_000_000_000;
  const ids = new QueueIdGenerator(() => now);
  const made: string[] = [];
  for (let i = 0; i < 10_000; i++) {
    if (i % 100 === 0) now += 1;
    if (i === 5000) now -= 50; // the clock steps back: ids keep increasing
    made.push(ids.next());
  }
  for (const id of made) assert.match(id, QUEUE_ID_PATTERN);
  assert.equal(new Set(made).size, made.length);
  assert.deepEqual([...made].sort(), made, 'string order is creation order');

  const early = new QueueIdGenerator(() => 1_000).next();
  const late = new QueueIdGenerator(() => 1_800_000_000_000).next();
  assert.ok(early < late);
  assert.ok(made[0] < late && made[0] > early);
});

test('sqlite: a body with a chunk gone is refused as incomplete, small (read whole) or large (read chunk by chunk)', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withSqliteStore(async (store, directory) => {
    const small = await storeMessage(store, sampleBody(10_000, 1));
    const large = await storeMessage(store, sampleBody(600_000, 2));
    const read = async (id: string): Promise<Buffer> => {
      const parts: Buffer[] = [];
      for await (const c of store.bodyChunks(id)) parts.push(c);
      return Buffer.concat(parts);
    };
    assert.equal((await read(small)).length, store.getMessage(small)!.size);
    assert.equal((await read(large)).length, store.getMessage(large)!.size);
    const { default: Database } = await import('better-sqlite3');
    const other = new Database(path.join(directory, 'queue.db'));
    try {
      other.prepare('DELETE FROM body_chunks WHERE message_id = ?').run(small);
      other.prepare('DELETE FROM body_chunks WHERE message_id = ? AND seq = 3').run(large);
    } finally {
      other.close();
    }
    await assert.rejects(read(small), (e: unknown) => e instanceof StoreError && /incomplete \(0 of \d+ bytes\)/.test(e.message));
    await assert.rejects(read(large), (e: unknown) => e instanceof StoreError && /incomplete \(\d+ of \d+ bytes\)/.test(e.message));
  });
});

test('sqlite: reports waiting for their batch are written by the next lease, in its transaction; a bad one cannot stop the lease', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withSqliteStore(async (store) => {
    const t0 = 1_700_000_000_000;
    const [a, b, c, d] = await Promise.all([1, 2, 3, 4].map((i) => storeMessage(store, Buffer.from(`m${i}`), sampleEnvelope({ receivedAt: t0 + i }))));
    const first = store.leaseDue('W', t0 + 10, 2, 60_000);
    assert.deepEqual(first.map((l) => l.id), [a, b]);
    const delivered = store.recordDelivery({ lease: first[0], recipients: [{ index: 0, state: 'delivered', lastReply: '250 ok', status: '2.0.0' }], attempts: [], generated: [] });
    assert.equal(store.getMessage(a)?.state, 'queued', 'the report waits for its batch');
    // The lease writes it: A is done as soon as leaseDue returns, before the batch timer.
    assert.deepEqual(store.leaseDue('W', t0 + 10, 1, 60_000).map((l) => l.id), [c]);
    assert.equal(store.getMessage(a)?.state, 'done');
    assert.deepEqual(await delivered, { applied: true, generated: [], finished: true });

    // A broken report (queued without a next attempt time) next to a good one: the lease is
    // still taken, the good report written, the broken one refused on its own.
    const good = store.recordDelivery({ lease: first[1], recipients: [{ index: 0, state: 'bounced', lastReply: '550 no', status: '5.0.0' }], attempts: [], generated: [] });
    const broken = store.recordDelivery({ lease: { id: c, owner: 'W', expiresAt: t0 + 60_010 }, recipients: [{ index: 0, state: 'queued', lastReply: '450 later', status: '4.0.0' }], attempts: [], generated: [] });
    assert.deepEqual(store.leaseDue('W', t0 + 10, 5, 60_000).map((l) => l.id), [d]);
    assert.equal((await good).finished, true);
    await assert.rejects(broken, StoreError);
    assert.equal(store.getMessage(b)?.recipients[0].state, 'bounced');
    assert.equal(store.getMessage(c)?.recipients[0].attempts, 0, 'the refused report left no trace');
  });
});
