/**
 * A soak (issue 8): mixed load — accepted and delivered, soft-bounced then delivered, hard-bounced
 * with a DSN, refused at RCPT — in bounded time, against `postern start` in a child process whose
 * RSS and open descriptors are sampled from /proc. Everything is accounted for per kind, and
 * memory and descriptors stay flat. Long version: `npx tsx bench/faults/soak.ts --duration-s 600`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseSeed } from './fault-harness.js';
import { runSoak, soakFlatness } from './soak-scenario.js';

const CONCURRENCY = 4;

test('soak: mixed load in bounded time, everything accounted for, RSS and fds flat', { timeout: 90_000 }, async (t) => {
  const seed = chooseSeed();
  t.diagnostic(`seed ${seed}`);
  const r = await runSoak({ seed, durationMs: 20_000, concurrency: CONCURRENCY, pauseMs: 40, sampleEveryMs: 250, drainTimeoutMs: 20_000 });
  for (const line of r.summary().split('\n')) t.diagnostic(line);
  const a = r.accounting;
  assert.ok(a.sent >= 1000, `a real load (${a.sent} messages)`);
  for (const k of ['ok', 'soft', 'hard', 'blocked'] as const) assert.ok(r.kinds[k] > 10, `the mix has ${k} messages`);
  assert.deepEqual(a.lost, [], 'nothing that got 250 is lost');
  assert.deepEqual(a.phantoms, []);
  assert.deepEqual(r.problems, [], 'every message came to what its kind says');
  assert.equal(a.delivered + a.bounced, a.accepted);
  assert.equal(r.dsns, r.kinds.hard, 'one DSN per hard bounce');
  assert.equal(r.final.leased, 0);
  assert.equal(r.final.states.queued ?? 0, 0);
  assert.equal(r.final.integrity, 'ok');
  assert.deepEqual(soakFlatness(r, { concurrency: CONCURRENCY }), [], 'RSS and descriptors flat');
});
