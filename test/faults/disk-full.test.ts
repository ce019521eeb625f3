/**
 * The store's disk fills up (issue 8): on a small tmpfs (needs root; skipped otherwise) the
 * gateway answers 452 4.3.1, the queue is not corrupt (integrity_check, every 250'd message
 * whole), and when space returns it accepts with 250 again and delivers everything it accepted.
 * Long version: `npx tsx bench/faults/disk-full.ts`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runDiskFull } from './disk-full-scenario.js';

test('the disk fills up: 452 4.3.1, no corrupt queue; space returns: 250 again, everything delivered', { timeout: 90_000 }, async (t) => {
  const r = await runDiskFull({
    tmpfsSize: '16m', headroomBytes: 3 * 1024 ** 2, fillerBytes: 4 * 1024 ** 2, messageSize: 96 * 1024, concurrency: 3, cycles: 2, afterRecovery: 10,
    drainTimeoutMs: 30_000, log: (l) => t.diagnostic(l),
  });
  if (r === null) {
    t.skip('cannot mount a tmpfs here (needs root)');
    return;
  }
  for (const line of r.summary().split('\n')) t.diagnostic(line);
  for (const [i, c] of r.cycles.entries()) {
    assert.ok(c.acceptedBeforeFull > 0, `cycle ${i + 1}: some 250s before the disk was full`);
    const refusals = Object.keys(c.refusals);
    assert.ok(refusals.length > 0, `cycle ${i + 1}: the disk filled up`);
    for (const k of refusals) assert.match(k, / 452 4\.3\.1$/, `cycle ${i + 1}: a full disk is answered 452 4.3.1 (got ${k})`);
    assert.equal(c.integrityWhileFull, 'ok', `cycle ${i + 1}: integrity_check while full`);
    assert.deepEqual(c.damaged, [], `cycle ${i + 1}: every message that got 250 is in the queue, whole`);
    assert.equal(c.acceptedAfterRecovery, 10, `cycle ${i + 1}: 250 again once space returned (${c.refusedAfterRecovery.join('; ')})`);
  }
  const a = r.accounting;
  assert.equal(a.unknown + a.unsent, 0);
  assert.deepEqual(a.lost, [], 'nothing that got 250 is lost');
  assert.deepEqual(a.phantoms, []);
  assert.equal(a.delivered, a.accepted, 'everything accepted is delivered');
  assert.deepEqual(r.corruptDeliveries, [], 'delivered whole');
  assert.equal(r.final.integrity, 'ok');
  assert.equal(r.final.leased, 0);
  assert.equal(r.final.states.queued ?? 0, 0);
});
