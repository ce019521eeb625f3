/**
 * The MAIL stage and per-message limits over real sockets, against a DNS server on loopback:
 * the sender block list (550 5.7.1), sender-domain verification (553 5.1.8 / 451 4.1.8, a hang
 * bounded by the DNS timeout), the policy's message size (EHLO SIZE, 552 5.3.4 at MAIL and after
 * DATA, exact at the boundary), messages per hour (450 4.7.1 for the N+1st, free again an hour
 * later), messages per connection (421 4.7.0), and a broken counter store (451 4.3.0).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { LoopbackDnsServer } from '../support/loopback-dns-server.js';
import type { Counters } from '../../src/policy/facts.js';
import {
  DNS_TIMEOUT_MS, engineFor, fullReply, greeted, ManualClock, MAIL_DOMAINS, say, sendOn, startPolicyDns, withGateway,
} from '../policy/support/policy-fixtures.js';

let dns: LoopbackDnsServer;
before(async () => {
  dns = await startPolicyDns();
});
after(async () => {
  await dns.stop();
});

const ALL_STRICT = (policy: string) => `
${MAIL_DOMAINS}
senders: { blocked: [spammer@bad.test, "@spam.test"] }
sender_groups: [{ name: ALL, match: [all], policy: P }]
policies: { P: ${policy} }
`;

test('a sender on the block list gets 550 5.7.1, by address or by domain, in any case', { timeout: 15_000 }, async () => {
  await withGateway(dns, ALL_STRICT('{ action: accept }'), async (gw) => {
    const c = await greeted(gw.port, '127.0.0.10');
    try {
      assert.equal(await say(c, 'MAIL FROM:<spammer@bad.test>'), '550 5.7.1 Sender address rejected: Access denied');
      assert.equal(await c.cmd('MAIL FROM:<SPAMMER@Bad.Test>'), '550 5.7.1');
      assert.equal(await c.cmd('MAIL FROM:<anyone@spam.test>'), '550 5.7.1');
      assert.equal(await c.cmd('MAIL FROM:<friend@bad.test>'), '250 2.1.0');
    } finally {
      c.close();
    }
  });
});

test('sender-domain verification: MX or address records pass; NXDOMAIN, null MX and no records get 553 5.1.8; SERVFAIL 451 4.1.8', { timeout: 20_000 }, async () => {
  await withGateway(dns, ALL_STRICT('{ verify_sender_domain: true }'), async (gw) => {
    const c = await greeted(gw.port, '127.0.0.10');
    try {
      const cases: [string, string][] = [
        ['a@mx.test', '250 2.1.0'],
        ['a@AONLY.test', '250 2.1.0'],
        ['', '250 2.1.0'], // the null sender has no domain to verify
        ['a@[192.0.2.1]', '250 2.1.0'],
        ['a@nowhere.test', '553 5.1.8'],
        ['a@nullmx.test', '553 5.1.8'],
        ['a@txtonly.test', '553 5.1.8'],
        ['a@broken.test', '451 4.1.8'],
      ];
      for (const [sender, expected] of cases) {
        const r = await c.cmd(`MAIL FROM:<${sender}>`);
        assert.equal(r, expected, sender);
        if (r.startsWith('250')) assert.equal(await c.cmd('RSET'), '250 2.0.0');
      }
      assert.equal(await say(c, 'MAIL FROM:<a@nowhere.test>'), '553 5.1.8 Sender address rejected: Domain not found');
      assert.equal(await say(c, 'MAIL FROM:<a@broken.test>'), '451 4.1.8 Sender address rejected: Domain lookup failed temporarily');
    } finally {
      c.close();
    }
  });
});

test('a sender domain whose DNS hangs gets 451 4.1.8 within the DNS timeout', { timeout: 15_000 }, async () => {
  await withGateway(dns, ALL_STRICT('{ verify_sender_domain: true }'), async (gw) => {
    const c = await greeted(gw.port, '127.0.0.10');
    try {
      const t0 = Date.now();
      assert.equal(await c.cmd('MAIL FROM:<a@slowdomain.test>'), '451 4.1.8');
      const took = Date.now() - t0;
      assert.ok(took >= DNS_TIMEOUT_MS - 50 && took < DNS_TIMEOUT_MS + 1000, `took ${took} ms with a DNS timeout of ${DNS_TIMEOUT_MS} ms`);
      assert.equal(await c.cmd('NOOP'), '250 2.0.0', 'the session carries on');
    } finally {
      c.close();
    }
  });
});

test("the policy's message size: advertised in EHLO; SIZE and DATA above it get 552 5.3.4, exactly at it 250", { timeout: 20_000 }, async () => {
  await withGateway(dns, ALL_STRICT('{ max_message_size: 2000 }'), async (gw) => {
    const c = await greeted(gw.port, '127.0.0.10');
    try {
      c.write('EHLO client.test\r\n');
      assert.ok((await c.reply()).lines.includes('SIZE 2000'));
      assert.equal(await say(c, 'MAIL FROM:<a@client.test> SIZE=2001'), '552 5.3.4 Message size exceeds fixed maximum message size');
      assert.equal(await c.cmd('MAIL FROM:<a@client.test> SIZE=2000'), '250 2.1.0');
      assert.equal(await c.cmd('RSET'), '250 2.0.0');
      // 2000 bytes of body exactly: accepted; one more: refused after the end of data.
      const body = (n: number) => `${'x'.repeat(n - 2)}\r\n`;
      assert.match(await sendOn(c, 'a@client.test', ['alice@example.test'], body(2000)), /^250 2\.0\.0 Ok: queued as /);
      assert.equal(await sendOn(c, 'a@client.test', ['alice@example.test'], body(2001)), '552 5.3.4 Message size exceeds fixed maximum message size');
    } finally {
      c.close();
    }
  });
});

test('THROTTLED: 1 MB message size, advertised and enforced', { timeout: 15_000 }, async () => {
  await withGateway(dns, `${MAIL_DOMAINS}\nsender_groups: [{ name: ALL, match: [all], policy: THROTTLED }]`, async (gw) => {
    const c = await greeted(gw.port, '127.0.0.10');
    try {
      c.write('EHLO client.test\r\n');
      assert.ok((await c.reply()).lines.includes('SIZE 1048576'));
      assert.equal(await c.cmd(`MAIL FROM:<a@client.test> SIZE=${1024 ** 2 + 1}`), '552 5.3.4');
      assert.equal(await c.cmd(`MAIL FROM:<a@client.test> SIZE=${1024 ** 2}`), '250 2.1.0');
    } finally {
      c.close();
    }
  });
});

test('messages per hour per client IP: the N+1st MAIL of the hour gets 450 4.7.1; an hour later it is accepted', { timeout: 20_000 }, async () => {
  const yaml = ALL_STRICT('{ messages_per_hour: 3 }');
  const clock = new ManualClock();
  await withGateway(dns, yaml, async (gw) => {
    const c = await greeted(gw.port, '127.0.0.10');
    const other = await greeted(gw.port, '127.0.0.11');
    try {
      for (let i = 0; i < 3; i++) assert.match(await sendOn(c, 'a@client.test', ['alice@example.test']), /^250 2\.0\.0/);
      clock.advance(30 * 60_000);
      assert.equal(await say(c, 'MAIL FROM:<a@client.test>'), '450 4.7.1 Message rate limit exceeded, try again later');
      // A refused MAIL is not counted, and another client has its own count.
      assert.equal(await c.cmd('MAIL FROM:<a@client.test>'), '450 4.7.1');
      assert.equal(await other.cmd('MAIL FROM:<a@client.test>'), '250 2.1.0');
      clock.advance(30 * 60_000);
      assert.equal(await c.cmd('MAIL FROM:<a@client.test>'), '250 2.1.0');
    } finally {
      c.close();
      other.close();
    }
  }, { policy: engineFor(dns, yaml, { clock: clock.read }) });
});

test('messages per connection: the next MAIL gets 421 4.7.0 and the connection closes', { timeout: 15_000 }, async () => {
  await withGateway(dns, ALL_STRICT('{ max_messages_per_connection: 2 }'), async (gw) => {
    const c = await greeted(gw.port, '127.0.0.10');
    try {
      assert.match(await sendOn(c, 'a@client.test', ['alice@example.test']), /^250 2\.0\.0/);
      assert.match(await sendOn(c, 'a@client.test', ['alice@example.test']), /^250 2\.0\.0/);
      assert.equal(await say(c, 'MAIL FROM:<a@client.test>'), '421 4.7.0 mx.test Too many messages in one connection, closing transmission channel');
      await c.waitClosed();
    } finally {
      c.close();
    }
  });
});

test('THROTTLED: 10 messages per connection', { timeout: 20_000 }, async () => {
  await withGateway(dns, `${MAIL_DOMAINS}\nsender_groups: [{ name: ALL, match: [all], policy: THROTTLED }]`, async (gw) => {
    const c = await greeted(gw.port, '127.0.0.10');
    try {
      for (let i = 0; i < 10; i++) assert.match(await sendOn(c, 'a@client.test', ['alice@example.test']), /^250 2\.0\.0/);
      assert.equal(await c.cmd('MAIL FROM:<a@client.test>'), '421 4.7.0');
      await c.waitClosed();
    } finally {
      c.close();
    }
  });
});

test('counters that fail: 451 4.3.0, and the session carries on', { timeout: 15_000 }, async () => {
  const broken: Counters = { hit: () => Promise.reject(new Error('counter store unreachable')) };
  const yaml = ALL_STRICT('{ messages_per_hour: 100 }');
  await withGateway(dns, yaml, async (gw) => {
    const c = await greeted(gw.port, '127.0.0.10');
    try {
      assert.equal(await fullReply((c.write('MAIL FROM:<a@client.test>\r\n'), c)), '451 4.3.0 Local error in processing, try again later');
      assert.equal(await c.cmd('NOOP'), '250 2.0.0');
    } finally {
      c.close();
    }
  }, { policy: engineFor(dns, yaml, { counters: broken }) });
});
