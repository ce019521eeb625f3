/**
 * A worker killed mid-delivery: `postern start` in a child process has the message leased and
 * its data sent, waiting for the reply; it is SIGKILLed. The lease expires and another worker —
 * a second gateway on the same store — delivers the message: at least once, never lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChildGateway, writeTestConfig } from '../support/child-gateway.js';
import { startSinks } from '../support/sink-listener.js';
import { LoopbackDnsServer } from '../support/loopback-dns-server.js';
import { startTestGateway } from '../support/test-gateway.js';
import { AcceptAllPolicyEngine } from '../../src/policy/session-policy.js';
import { ManualClock } from './manual-clock.js';
import { submit, DEFAULT_MESSAGE } from './harness.js';

async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a worker killed mid-delivery: its lease expires and another worker delivers the message', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-lease-'));
  let answer = false;
  const [sink] = await startSinks([{ endOfData: () => (answer ? '250 2.0.0 Ok: queued' : { silent: true }) }]);
  const dns = await new LoopbackDnsServer({ records: [
    { name: 'dst.test', type: 'MX', value: 'mx1.dst.test', priority: 10 },
    { name: 'mx1.dst.test', type: 'A', value: sink.host },
  ] }).start();
  const delivery = `delivery: { smtp_port: ${sink.port}, tls: none, lease_time: 2s, timeouts: { data_term: 5m } }`;
  const common = [`dns: { servers: ["${dns.address}"], cache_ttl: 0 }`, 'domains: { local: [src.test] }'];
  try {
    const child = await startChildGateway(writeTestConfig(dir, [...common, delivery].join('\n')));
    let killedAt = 0;
    try {
      const id = await submit(child.port, 'a@src.test', ['b@dst.test'], DEFAULT_MESSAGE);
      // The child delivers at once; the sink takes the data and never answers.
      await until('the first delivery attempt to reach the end of data', () => sink.messages.length === 1);
      child.child.kill('SIGKILL');
      assert.equal(await child.exited, 'SIGKILL');
      killedAt = Date.now();

      // Another worker on the same store, its clock past the dead worker's lease.
      answer = true;
      const clock = new ManualClock(killedAt + 500);
      const gw = await startTestGateway([...common, `delivery: { smtp_port: ${sink.port}, tls: none, lease_time: 2s }`].join('\n'), {
        dir, policy: new AcceptAllPolicyEngine(), delivery: { clock, worker: 'rescuer' },
      });
      try {
        const scheduler = gw.gateway.delivery!.scheduler;
        await scheduler.idle();
        assert.equal(sink.messages.length, 1, 'the lease still holds: nobody else touches the message');
        assert.equal(gw.gateway.store.getMessage(id)?.state, 'queued');
        clock.advance(2000);
        await until('the second worker to deliver', () => gw.gateway.store.getMessage(id)?.state === 'done');
        assert.equal(sink.messages.length, 2, 'delivered again: at least once');
        assert.deepEqual(sink.messages[1].body, sink.messages[0].body, 'the same message, whole');
        const m = gw.gateway.store.getMessage(id)!;
        assert.deepEqual([m.recipients[0].state, m.recipients[0].lastReply], ['delivered', '250 2.0.0 Ok: queued']);
      } finally {
        await gw.stop();
      }
    } finally {
      if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGKILL');
    }
  } finally {
    await sink.stop();
    await dns.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
