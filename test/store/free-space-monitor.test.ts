/**
 * The free-space reading behind 452 4.3.1: cached for ordinary admissions, but never the ground
 * for a refusal — a reading that says "full" is taken again before the gateway refuses, so mail
 * is accepted again the moment space returns (the disk-full fault test's recovery depends on it).
 */
import type fs from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FreeSpaceMonitor, type StatfsReader } from '../../src/store/sqlite/free-space-monitor.js';

/** A file system whose free bytes the test sets; counts the reads. */
class FakeStatfs implements StatfsReader {
  free = 0;
  syncReads = 0;
  asyncReads = 0;
  private stats(): fs.StatsFs {
    return { type: 0, bsize: 4096, blocks: 1 << 20, bfree: this.free / 4096, bavail: this.free / 4096, files: 0, ffree: 0 };
  }
  readSync(): fs.StatsFs {
    this.syncReads++;
    return this.stats();
  }
  read(_directory: string, done: (error: Error | null, stats: fs.StatsFs) => void): void {
    this.asyncReads++;
    const stats = this.stats();
    queueMicrotask(() => done(null, stats));
  }
}

test('free space: ordinary admissions use the cached reading; a refusal re-reads first', () => {
  const fsys = new FakeStatfs();
  fsys.free = 400 * 4096;
  let now = 0;
  const monitor = new FreeSpaceMonitor({ directory: '/q', minFreeBytes: 100 * 4096, refreshMs: 1000, monotonicNow: () => now, statfs: fsys });
  assert.equal(fsys.syncReads, 1, 'read once at open');
  assert.equal(monitor.available(4096), 300 * 4096);
  now = 500;
  fsys.free = 50 * 4096; // the disk fills; the cache does not know yet
  assert.equal(monitor.available(4096), 300 * 4096, 'within refreshMs and enough: the cached value, no statfs');
  assert.equal(fsys.syncReads + fsys.asyncReads, 1);
  // The cache now says "not enough" for a large message: read again before refusing.
  assert.equal(monitor.available(400 * 4096), -50 * 4096);
  assert.equal(fsys.syncReads, 2);
  // Space returns 10 ms later: the next admission must see it, although the cache is fresh.
  now = 510;
  fsys.free = 1000 * 4096;
  assert.equal(monitor.available(4096), 900 * 4096, 'a cached "full" is re-read, so service resumes at once');
  assert.equal(fsys.syncReads, 3);
});

test('free space: a reading older than refreshMs is refreshed in the background', async () => {
  const fsys = new FakeStatfs();
  fsys.free = 400 * 4096;
  let now = 0;
  const monitor = new FreeSpaceMonitor({ directory: '/q', minFreeBytes: 0, refreshMs: 1000, monotonicNow: () => now, statfs: fsys });
  fsys.free = 200 * 4096;
  now = 1000;
  assert.equal(monitor.available(1), 400 * 4096, 'the old value while the refresh runs');
  assert.equal(fsys.asyncReads, 1);
  assert.equal(monitor.available(1), 400 * 4096);
  assert.equal(fsys.asyncReads, 1, 'one refresh at a time');
  await new Promise<void>((resolve) => queueMicrotask(resolve));
  assert.equal(monitor.available(1), 200 * 4096);
});

test('free space: a statfs that fails means unknown, not full', () => {
  const failing: StatfsReader = {
    readSync: () => { throw new Error('EIO'); },
    read: (_d, done) => done(new Error('EIO'), undefined as unknown as fs.StatsFs),
  };
  const monitor = new FreeSpaceMonitor({ directory: '/q', minFreeBytes: 0, statfs: failing });
  assert.equal(monitor.available(1), null);
});
