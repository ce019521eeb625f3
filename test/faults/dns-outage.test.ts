/**
 * DNS goes away mid-run (issue 8): deliveries that need an MX lookup are soft-bounced (deferred
 * with 4.4.3, never bounced, no DSN) while the loopback DNS server is gone, and everything is
 * delivered once it is back on the same port. Long version: `npx tsx bench/faults/dns-outage.ts`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runDnsOutage } from './dns-outage-scenario.js';

test('DNS goes away mid-run: soft bounces, no DSN; back on the same port: everything delivered', { timeout: 90_000 }, async (t) => {
  const r = await runDnsOutage({ messages: 120, concurrency: 2, pauseMs: 20, stopAt: 0.25, outageMs: 2500, minDeferred: 10, drainTimeoutMs: 30_000 });
  for (const line of r.summary().split('\n')) t.diagnostic(line);
  const a = r.accounting;
  assert.equal(a.sent, 120);
  assert.equal(a.accepted, 120, 'receiving needs no DNS here (a relaying loopback client)');
  assert.deepEqual(a.lost, []);
  assert.deepEqual(a.phantoms, []);
  assert.equal(a.delivered, 120, 'every message delivered after the DNS came back');
  assert.ok(r.deferredMessages >= 10, `deliveries were soft-bounced during the outage (${r.deferredMessages})`);
  for (const k of Object.keys(r.deferrals)) assert.match(k, /^4\.4\.3 /, 'deferred for DNS, with 4.4.3');
  assert.equal(r.hardDuringOutage, 0, 'nothing bounced while the DNS was away');
  assert.equal(r.dsnsDuringOutage, 0, 'no DSN while the DNS was away');
  assert.equal(r.final.dsns, 0, 'no DSN at all');
  assert.equal(r.final.leased, 0);
  assert.deepEqual(r.final.states, { done: 120 });
  assert.equal(r.final.integrity, 'ok');
});
