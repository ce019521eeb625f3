/**
 * The next hop flaps (issue 8): drops connections and answers 421 at random (seeded). Everything
 * is delivered in the end, every retry comes no earlier than its soft bounce scheduled it (at the
 * bounce profile's interval), and no message is left in a lease. Long version:
 * `npx tsx bench/faults/flapping-next-hop.ts`. Replay with FAULT_SEED=<seed>.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseSeed } from './fault-harness.js';
import { runFlappingNextHop } from './flapping-scenario.js';

test('a flapping next hop: everything delivered, on the retry schedule, no lease left', { timeout: 90_000 }, async (t) => {
  const seed = chooseSeed();
  t.diagnostic(`seed ${seed}`);
  const r = await runFlappingNextHop({ seed, messages: 150, concurrency: 4, flapRate: 0.12, drainTimeoutMs: 45_000 });
  for (const line of r.summary().split('\n')) t.diagnostic(line);
  const a = r.accounting;
  assert.equal(a.sent, 150);
  assert.equal(a.accepted, 150, 'the gateway itself does not flap');
  assert.deepEqual(a.lost, [], 'no message lost');
  assert.deepEqual(a.phantoms, []);
  assert.equal(a.delivered, 150, 'every message delivered in the end (none bounced)');
  assert.ok(r.retry.retried >= 10, `the flapping forced retries (${r.retry.retried} messages retried)`);
  assert.deepEqual(r.retry.violations, [], 'every retry on its schedule');
  assert.equal(r.final.leased, 0, 'no message stuck in a lease');
  assert.deepEqual(r.final.states, { done: 150 });
  assert.equal(r.final.integrity, 'ok');
});
