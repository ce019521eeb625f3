/**
 * A delivery slot is held for the network work only: a run that has called `slotFree` (all that
 * is left is writing its report, which the store batches with others) no longer counts against
 * `delivery.concurrency`, so the next message starts at once — but the scheduler is not idle and
 * does not stop until that report is written, and the lease keeps the message from being taken
 * twice meanwhile.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeliveryScheduler } from '../../src/delivery/scheduler.js';
import { silentLogger } from '../../src/observability/logger.js';
import { openSqliteQueueStore } from '../../src/store/sqlite/sqlite-queue-store.js';
import type { Lease } from '../../src/store/queue-types.js';
import { storeMessage } from '../store/queue-store-contract.js';
import { sampleEnvelope } from '../store/fixtures/sample-message.js';
import { ManualClock } from './manual-clock.js';

const T0 = 1_700_000_000_000;

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
}

async function until(what: string, cond: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test('a run that freed its slot lets the next message start; idle and stop wait for its report', { timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-slots-'));
  const store = openSqliteQueueStore({ directory: dir, minFreeBytes: 0, clock: () => T0 });
  try {
    const a = await storeMessage(store, Buffer.from('a'), sampleEnvelope({ receivedAt: T0 - 2 }));
    const b = await storeMessage(store, Buffer.from('b'), sampleEnvelope({ receivedAt: T0 - 1 }));
    const started: string[] = [];
    const reportA = deferred();
    const networkB = deferred();
    const scheduler = new DeliveryScheduler({
      store,
      concurrency: 1,
      leaseMs: 60_000,
      clock: new ManualClock(T0),
      log: silentLogger(),
      deliver: async (lease: Lease, _signal, slotFree) => {
        started.push(lease.id);
        if (lease.id === a) {
          slotFree(); // A's network work is over; only its report is left
          await reportA.promise;
        } else {
          await networkB.promise; // B holds its slot
        }
        store.releaseLease(lease);
      },
    });
    scheduler.start();
    await until('A and B to start', () => started.length === 2);
    assert.deepEqual(started, [a, b], 'B started while A was still writing its report (concurrency 1)');
    assert.equal(scheduler.inFlightCount, 2);

    let idle = false;
    void scheduler.idle().then(() => { idle = true; });
    networkB.resolve();
    await until('B to finish', () => scheduler.inFlightCount === 1);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(idle, false, 'not idle while A\'s report is pending');

    let stopped = false;
    const stopping = scheduler.stop(10_000).then(() => { stopped = true; });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(stopped, false, 'stop waits for the pending report');
    reportA.resolve();
    await stopping;
    assert.equal(idle, true);
    assert.equal(scheduler.inFlightCount, 0);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a run that keeps its slot holds it: with concurrency 1 the next message waits', { timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-slots-'));
  const store = openSqliteQueueStore({ directory: dir, minFreeBytes: 0, clock: () => T0 });
  try {
    await storeMessage(store, Buffer.from('a'), sampleEnvelope({ receivedAt: T0 - 2 }));
    await storeMessage(store, Buffer.from('b'), sampleEnvelope({ receivedAt: T0 - 1 }));
    const started: string[] = [];
    const first = deferred();
    const scheduler = new DeliveryScheduler({
      store, concurrency: 1, leaseMs: 60_000, clock: new ManualClock(T0), log: silentLogger(),
      deliver: async (lease: Lease) => {
        started.push(lease.id);
        if (started.length === 1) await first.promise;
        store.releaseLease(lease);
        store.leaseMessage(lease.id, 'elsewhere', T0, 60_000); // taken out of the queue for this test
      },
    });
    scheduler.start();
    await until('the first to start', () => started.length === 1);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(started.length, 1, 'the slot is still taken');
    first.resolve();
    await until('the second to start', () => started.length === 2);
    await scheduler.stop(1000);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
