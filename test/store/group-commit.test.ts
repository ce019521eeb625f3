/**
 * GroupCommitter on its own: when batches are written and when their submitters are told.
 * The sync is a promise the test settles by hand, so "an fsync in flight" lasts exactly as long
 * as the test wants.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { GroupCommitter } from '../../src/store/sqlite/group-commit.js';

interface Harness {
  readonly committer: GroupCommitter<number>;
  /** Every writeBatch call, in order. */
  readonly writes: number[][];
  /** Settles the oldest sync still running. */
  finishSync(error?: Error): void;
  readonly syncsStarted: () => number;
}

function harness(): Harness {
  const writes: number[][] = [];
  const running: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  let started = 0;
  const committer = new GroupCommitter<number>({
    writeBatch: (items) => {
      writes.push([...items]);
    },
    failBatch: (_items, error) => error,
    sync: () => new Promise<void>((resolve, reject) => {
      started++;
      running.push({ resolve, reject });
    }),
  });
  return {
    committer,
    writes,
    finishSync(error) {
      const s = running.shift();
      assert.ok(s, 'no sync is running');
      if (error) s.reject(error);
      else s.resolve();
    },
    syncsStarted: () => started,
  };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('group commit: commits made while an fsync runs are written as ONE transaction after it', { timeout: 10_000 }, async () => {
  const h = harness();
  const settled: number[] = [];
  const submit = (n: number): Promise<void> => h.committer.submit(n).then(() => {
    settled.push(n);
  });

  const first = submit(0);
  await turn();
  assert.deepEqual(h.writes, [[0]], 'a lone commit is written in the next check phase');
  assert.equal(h.syncsStarted(), 1);

  // Ten commits in ten different event-loop turns while that fsync is in flight.
  const later: Promise<void>[] = [];
  for (let i = 1; i <= 10; i++) {
    later.push(submit(i));
    await turn();
  }
  assert.deepEqual(h.writes, [[0]], 'nothing is written while the fsync runs');
  assert.deepEqual(settled, [], 'nobody is told before the fsync completes');

  h.finishSync();
  await first;
  await turn();
  assert.deepEqual(settled, [0]);
  assert.deepEqual(h.writes, [[0], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]], 'the ten are one batch');
  assert.equal(h.syncsStarted(), 2, 'and the next fsync started for them at once');

  h.finishSync();
  await Promise.all(later);
  assert.deepEqual(settled, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(h.committer.stats(), { batches: 2, committed: 11, failed: 0, largestBatch: 10 });
});

test('group commit: a failed fsync rejects its batch only; the queued batch still commits', { timeout: 10_000 }, async () => {
  const h = harness();
  const first = h.committer.submit(1);
  await turn();
  const second = h.committer.submit(2);
  await turn();
  const boom = new Error('EIO');
  h.finishSync(boom);
  await assert.rejects(first, (e) => e === boom);
  await turn();
  assert.deepEqual(h.writes, [[1], [2]]);
  h.finishSync();
  await second;
  assert.deepEqual(h.committer.stats(), { batches: 2, committed: 1, failed: 1, largestBatch: 1 });
});

test('group commit: flush() writes what waits behind a running fsync and syncs it at once', { timeout: 10_000 }, async () => {
  let syncedNow = 0;
  const writes: number[][] = [];
  let release: () => void = () => undefined;
  const committer = new GroupCommitter<number>({
    writeBatch: (items) => {
      writes.push([...items]);
    },
    failBatch: (_items, error) => error,
    sync: () => new Promise<void>((resolve) => {
      release = resolve;
    }),
    syncNow: () => {
      syncedNow++;
    },
  });
  const a = committer.submit(1);
  await turn();
  const b = committer.submit(2);
  committer.flush(); // close: write and sync synchronously
  await b;
  assert.deepEqual(writes, [[1], [2]]);
  assert.equal(syncedNow, 1);
  release();
  await a;
  await committer.drain();
  assert.equal(committer.pendingCount, 0);
});
