/**
 * The scheduler and the connection pool: new mail is picked up at once (no polling), an idle
 * queue sets no timer and a deferred one exactly one, limits per destination hold, connections
 * are reused up to their message limit, and stopping drains runs in flight or leaves their
 * messages queued — never lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withWorld, T0 } from './harness.js';

const TIMEOUT = { timeout: 30_000 };

test('new mail is delivered at once, without the clock moving; an empty queue leaves no timer behind', TIMEOUT, async () => {
  await withWorld({ sinks: [{}] }, async (w) => {
    await w.settle();
    assert.equal(w.clock.nextTimerAt(), null, 'nothing queued: the scheduler sleeps without a timer (no polling)');
    const id = await w.send(['b@dst.test']);
    await w.settle();
    assert.equal(w.message(id).state, 'done');
    assert.equal(w.clock.now(), T0);
    assert.equal(w.clock.nextTimerAt(), null);
  });
});

test('a deferred message: exactly one wake-up, at its due time', TIMEOUT, async () => {
  let n = 0;
  await withWorld({ sinks: [{ rcpt: () => (n++ === 0 ? '450 4.2.1 busy' : undefined) }] }, async (w) => {
    const id = await w.send(['b@dst.test']);
    await w.settle();
    assert.equal(w.clock.nextTimerAt(), T0 + 60_000);
    await w.advance(60_000);
    assert.equal(w.message(id).state, 'done');
    assert.equal(w.clock.nextTimerAt(), null);
  });
});

test('per-destination limit: never more than max_connections_per_destination at once', TIMEOUT, async () => {
  const yaml = 'delivery: { smtp_port: $PORT, tls: none, concurrency: 10, max_connections_per_destination: 2, connection_idle_time: 0 }';
  await withWorld({ sinks: [{ endOfDataDelayMs: 50 }, { endOfDataDelayMs: 50 }], mx: { 'dst.test': [[10, 1]], 'other.test': [[10, 2]] }, yaml }, async (w) => {
    const ids = await Promise.all([
      ...Array.from({ length: 6 }, (_, i) => w.send([`r${i}@dst.test`])),
      ...Array.from({ length: 4 }, (_, i) => w.send([`o${i}@other.test`])),
    ]);
    await w.settle();
    for (const id of ids) assert.equal(w.message(id).state, 'done');
    assert.equal(w.sinks[0].messages.length, 6);
    assert.equal(w.sinks[0].maxOpen, 2, 'dst.test: two connections at most');
    assert.equal(w.sinks[1].maxOpen, 2, 'other.test has its own limit');
  });
});

test('max_messages_per_connection: a connection is used for that many messages, then closed', TIMEOUT, async () => {
  const yaml = 'delivery: { smtp_port: $PORT, tls: none, concurrency: 1, max_messages_per_connection: 2, connection_idle_time: 30s }';
  await withWorld({ sinks: [{}], yaml }, async (w) => {
    for (let i = 0; i < 5; i++) await w.send([`r${i}@dst.test`]);
    await w.settle();
    assert.equal(w.sinks[0].messages.length, 5);
    assert.deepEqual(w.sinks[0].sessions.map((s) => s.filter((c) => c.startsWith('MAIL')).length), [2, 2, 1]);
  });
});

test('stop drains a delivery in flight within the grace', TIMEOUT, async () => {
  await withWorld({ sinks: [{ endOfDataDelayMs: 300 }] }, async (w) => {
    const id = await w.send(['b@dst.test']);
    while (w.sinks[0].messages.length === 0) await new Promise((r) => setTimeout(r, 10));
    await w.gw.gateway.delivery!.stop(5000);
    assert.equal(w.message(id).state, 'done');
  });
});

test('stop past the grace cuts a run short: the message stays queued, untouched, its lease released', TIMEOUT, async () => {
  await withWorld({ sinks: [{ endOfData: () => ({ silent: true }) }] }, async (w) => {
    const id = await w.send(['b@dst.test']);
    while (w.sinks[0].messages.length === 0) await new Promise((r) => setTimeout(r, 10));
    const started = Date.now();
    await w.gw.gateway.delivery!.stop(200);
    assert.ok(Date.now() - started < 3000);
    const m = w.message(id);
    assert.equal(m.state, 'queued');
    assert.deepEqual([m.recipients[0].state, m.recipients[0].attempts, m.recipients[0].nextAttemptAt], ['queued', 0, T0]);
    assert.deepEqual(w.gw.gateway.store.leaseDue('someone-else', T0, 10, 1000).map((l) => l.id), [id], 'the lease was released');
  });
});
