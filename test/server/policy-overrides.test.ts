/**
 * Code/text overrides per condition, over real sockets: every policy reply can be given another
 * text and (within its class, or across it with allow_class_change) another code; a policy's
 * override wins over the global one, the global one over the catalogue. At the greeting a
 * refusal stays 554 / 421 whatever the override says (RFC 5321 §3.1, §4.3.2).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { LoopbackDnsServer } from '../support/loopback-dns-server.js';
import { connectFrom, fullReply, greeted, say, startPolicyDns, withGateway } from '../policy/support/policy-fixtures.js';

let dns: LoopbackDnsServer;
before(async () => {
  dns = await startPolicyDns();
});
after(async () => {
  await dns.stop();
});

const DOMAINS = `
domains: { local: [example.test, small.test] }
recipients: { valid: ["@example.test", only@small.test], blocked: [blocked@example.test] }
senders: { blocked: ["@spam.test"] }
reply_overrides:
  rcpt.unknown-user: { text: "No such user (global)" }
  rcpt.blocked: { text: "Blocked (global)" }
  mail.rate-limited: { code: 451 }
`;

test('overrides at the greeting: REJECT, connections per IP, reverse DNS', { timeout: 20_000 }, async () => {
  const yaml = `${DOMAINS}
sender_groups:
  - { name: BLOCK, match: [ip: 127.0.0.2], policy: BLOCKED }
  - { name: FEW, match: [ip: 127.0.0.4], policy: FEW }
  - { name: RDNS, match: [ip: [127.0.0.11, 127.0.0.13]], policy: RDNS }
  - { name: ALL, match: [all], policy: ACCEPTED }
policies:
  BLOCKED: { reply_overrides: { connect.rejected: { text: "{hostname} You are on our block list" } } }
  FEW:
    max_connections_per_ip: 1
    reply_overrides: { connect.limit: { text: "{hostname} One at a time, please" } }
  RDNS:
    reverse_dns: require_fcrdns
    reject_at: connect
    reply_overrides:
      rcpt.rdns-failed: { code: 550, enhanced: 5.7.1, text: "Fix the PTR of {client}" }
      rcpt.rdns-tempfail: { code: 451, text: "Your PTR could not be checked" }
`;
  await withGateway(dns, yaml, async (gw) => {
    const blocked = await connectFrom(gw.port, '127.0.0.2');
    const first = await connectFrom(gw.port, '127.0.0.4');
    try {
      assert.equal(await fullReply(blocked), '554 5.7.1 mx.test You are on our block list');
      assert.equal(await first.code(), '220');
      const second = await connectFrom(gw.port, '127.0.0.4');
      try {
        assert.equal(await fullReply(second), '421 4.7.0 mx.test One at a time, please');
      } finally {
        second.close();
      }
    } finally {
      blocked.close();
      first.close();
    }
    const liar = await connectFrom(gw.port, '127.0.0.11');
    try {
      assert.equal(await fullReply(liar), '554 5.7.1 Fix the PTR of [127.0.0.11]');
      assert.equal(await liar.cmd('EHLO client.test'), '503 5.5.1');
    } finally {
      liar.close();
    }
    const broken = await connectFrom(gw.port, '127.0.0.13');
    try {
      assert.equal(await fullReply(broken), '421 4.7.25 Your PTR could not be checked');
      await broken.waitClosed();
    } finally {
      broken.close();
    }
  });
});

test('overrides at MAIL and DATA: sender block list, sender domain, message size, messages per hour', { timeout: 20_000 }, async () => {
  const yaml = `${DOMAINS}
sender_groups: [{ name: ALL, match: [all], policy: LOUD }]
policies:
  LOUD:
    verify_sender_domain: true
    max_message_size: 2000
    messages_per_hour: 2
    reply_overrides:
      mail.sender-blocked: { code: 554, text: "Senders from there are refused" }
      mail.sender-domain-unknown: { code: 550, text: "Your domain does not exist" }
      mail.sender-domain-tempfail: { code: 450, text: "Your domain could not be checked" }
      mail.size-exceeded: { text: "At most 2000 bytes here" }
      data.size-exceeded: { text: "That was more than 2000 bytes" }
      mail.rate-limited: { text: "Slow down" }
      mail.ok: { text: "Go ahead, <{address}>" }
`;
  await withGateway(dns, yaml, async (gw) => {
    const c = await greeted(gw.port, '127.0.0.10');
    try {
      assert.equal(await say(c, 'MAIL FROM:<a@mx.test> SIZE=2001'), '552 5.3.4 At most 2000 bytes here');
      assert.equal(await say(c, 'MAIL FROM:<x@spam.test>'), '554 5.7.1 Senders from there are refused');
      assert.equal(await say(c, 'MAIL FROM:<a@nowhere.test>'), '550 5.1.8 Your domain does not exist');
      assert.equal(await say(c, 'MAIL FROM:<a@broken.test>'), '450 4.1.8 Your domain could not be checked');
      assert.equal(await say(c, 'MAIL FROM:<a@mx.test>'), '250 2.1.0 Go ahead, <a@mx.test>');
      assert.equal(await c.cmd('RCPT TO:<alice@example.test>'), '250 2.1.5');
      assert.equal(await c.cmd('DATA'), '354');
      c.write(`${'x'.repeat(2100)}\r\n.\r\n`);
      assert.equal(await fullReply(c), '552 5.3.4 That was more than 2000 bytes');
      assert.equal(await c.cmd('MAIL FROM:<a@mx.test>'), '250 2.1.0');
      assert.equal(await c.cmd('RSET'), '250 2.0.0');
      // The policy's override replaces the global one (code 451) as a whole.
      assert.equal(await say(c, 'MAIL FROM:<a@mx.test>'), '450 4.7.1 Slow down');
    } finally {
      c.close();
    }
  });
});

test('overrides at RCPT: relay denied, block list (global), reverse DNS, too many, rate limit, messages per connection, unknown user (policy over global)', { timeout: 30_000 }, async () => {
  const yaml = `${DOMAINS}
sender_groups: [{ name: ALL, match: [all], policy: LOUD }]
policies:
  LOUD:
    reverse_dns: require_fcrdns
    max_recipients_per_message: 100
    recipients_per_hour: 103
    max_messages_per_connection: 1
    reply_overrides:
      rcpt.relay-denied: { code: 554, text: "We are not an open relay" }
      rcpt.unknown-user: { text: "No such user (policy)" }
      rcpt.rdns-failed: { text: "No PTR for {client}" }
      rcpt.rdns-tempfail: { code: 451 }
      rcpt.too-many: { code: 552, allow_class_change: true }
      rcpt.rate-limited: { code: 452 }
      rcpt.ok: { text: "Fine: <{address}>" }
      session.max-messages: { text: "{hostname} One message per connection" }
`;
  await withGateway(dns, yaml, async (gw) => {
    const none = await greeted(gw.port, '127.0.0.12');
    const broken = await greeted(gw.port, '127.0.0.13');
    try {
      assert.equal(await none.cmd('MAIL FROM:<a@client.test>'), '250 2.1.0');
      assert.equal(await say(none, 'RCPT TO:<alice@example.test>'), '550 5.7.25 No PTR for [127.0.0.12]');
      assert.equal(await broken.cmd('MAIL FROM:<a@client.test>'), '250 2.1.0');
      assert.equal(await say(broken, 'RCPT TO:<alice@example.test>'), '451 4.7.25 Client host rejected: reverse DNS check could not complete for [127.0.0.13]');
    } finally {
      none.close();
      broken.close();
    }
    const c = await greeted(gw.port, '127.0.0.10');
    try {
      assert.equal(await c.cmd('MAIL FROM:<a@client.test>'), '250 2.1.0');
      assert.equal(await say(c, 'RCPT TO:<x@elsewhere.test>'), '554 5.7.1 We are not an open relay');
      assert.equal(await say(c, 'RCPT TO:<blocked@example.test>'), '550 5.7.1 Blocked (global)');
      assert.equal(await say(c, 'RCPT TO:<user1@example.test>'), '250 2.1.5 Fine: <user1@example.test>');
      for (let i = 2; i <= 100; i++) assert.equal(await c.cmd(`RCPT TO:<user${i}@example.test>`), '250 2.1.5');
      assert.equal(await say(c, 'RCPT TO:<user101@example.test>'), '552 5.5.3 Too many recipients');
      assert.equal(await c.cmd('RSET'), '250 2.0.0');
      assert.equal(await c.cmd('MAIL FROM:<a@client.test>'), '250 2.1.0');
      for (let i = 101; i <= 103; i++) assert.equal(await c.cmd(`RCPT TO:<user${i}@example.test>`), '250 2.1.5');
      assert.equal(await say(c, 'RCPT TO:<user104@example.test>'), '452 4.5.3 Too many recipients this hour, try again later');
      assert.equal(await c.cmd('DATA'), '354');
      c.write('Subject: x\r\n\r\nx\r\n.\r\n');
      assert.equal(await c.code(), '250 2.0.0');
      assert.equal(await say(c, 'MAIL FROM:<a@client.test>'), '421 4.7.0 mx.test One message per connection');
      await c.waitClosed();
    } finally {
      c.close();
    }
    const d = await greeted(gw.port, '127.0.0.10');
    try {
      // The policy's override of rcpt.unknown-user wins over the global one; unknown users are
      // refused before the hourly limit (which the first client has used up) is looked at.
      assert.equal(await d.cmd('MAIL FROM:<a@client.test>'), '250 2.1.0');
      assert.equal(await say(d, 'RCPT TO:<nobody@small.test>'), '550 5.1.1 No such user (policy)');
      assert.equal(await say(d, 'RCPT TO:<only@small.test>'), '452 4.5.3 Too many recipients this hour, try again later');
    } finally {
      d.close();
    }
  });
});

test('a policy without overrides: the global override, else the catalogue', { timeout: 15_000 }, async () => {
  const yaml = `${DOMAINS}
sender_groups: [{ name: ALL, match: [all], policy: ACCEPTED }]
`;
  await withGateway(dns, yaml, async (gw) => {
    const c = await greeted(gw.port, '127.0.0.10');
    try {
      assert.equal(await c.cmd('MAIL FROM:<a@client.test>'), '250 2.1.0');
      assert.equal(await say(c, 'RCPT TO:<carol@small.test>'), '550 5.1.1 No such user (global)');
      assert.equal(await say(c, 'RCPT TO:<x@elsewhere.test>'), '550 5.7.1 Relay access denied');
    } finally {
      c.close();
    }
  });
});
