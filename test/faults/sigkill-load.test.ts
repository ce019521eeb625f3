/**
 * SIGKILL at random moments during a load, repeated (issue 8): every message that got 250 is
 * delivered to the sink or bounced; none lost; duplicates counted (at-least-once). The long
 * version: `npx tsx bench/faults/sigkill-load.ts`. Replay a run with FAULT_SEED=<seed>.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseSeed } from './fault-harness.js';
import { runSigkillLoad } from './sigkill-scenario.js';

test('SIGKILL under load, 4 times: every 250 is delivered or bounced, nothing lost', { timeout: 90_000 }, async (t) => {
  const seed = chooseSeed();
  t.diagnostic(`seed ${seed}`);
  const r = await runSigkillLoad({
    seed, messages: 2000, rounds: 4, concurrency: 8, killAfterMs: [200, 1000], drainTimeoutMs: 30_000,
    log: (l) => t.diagnostic(l),
  });
  for (const line of r.summary().split('\n')) t.diagnostic(line);
  const a = r.accounting;
  assert.equal(r.kills, 4);
  assert.equal(a.sent, 2000, 'every message has an outcome');
  assert.ok(a.accepted >= 100, `enough messages accepted to mean something (${a.accepted})`);
  assert.ok(r.acceptedAtKills.some((k) => k > 0 && k < a.accepted), `kills fell in the middle of the load (${r.acceptedAtKills.join(', ')})`);
  assert.deepEqual(a.lost, [], 'no message that got 250 is lost');
  assert.deepEqual(a.phantoms, [], 'nothing delivered that was not sent');
  assert.equal(a.delivered + a.bounced, a.accepted);
  assert.equal(r.final.integrity, 'ok');
  assert.equal(r.final.leased, 0, 'no lease left');
  assert.equal(r.final.states.queued ?? 0, 0, 'nothing left in the queue');
  assert.equal(r.exit, 0, 'the last gateway stops cleanly');
});
