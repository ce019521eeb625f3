/**
 * Sender groups and the connection stage over real sockets, against a DNS server on loopback:
 * REJECT (554 5.7.1, then only QUIT), TCPREFUSE, connections per IP (421 4.7.0), the policy's
 * banner, reverse DNS at the greeting (554 5.7.25 / 421 4.7.25), IP / rDNS / DNSBL matchers,
 * the group and policy kept with the message, and HELP STATUS for trusted groups only.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { LoopbackDnsServer } from '../support/loopback-dns-server.js';
import { sendMessage, SmtpTestClient } from '../support/smtp-test-client.js';
import { connectFrom, DNS_TIMEOUT_MS, greeted, fullReply, say, sendOn, startPolicyDns, withGateway } from '../policy/support/policy-fixtures.js';

let dns: LoopbackDnsServer;
before(async () => {
  dns = await startPolicyDns();
});
after(async () => {
  await dns.stop();
});

const GROUPS = `
sender_groups:
  - { name: BLOCKLIST, match: [ip: 127.0.0.2, dnsbl: [bl.test, bl2.test]], policy: BLOCKED }
  - { name: REFUSED, match: [ip: 127.0.0.3/32], policy: NOPE }
  - { name: FEW, match: [ip: 127.0.0.4], policy: FEW }
  - { name: BANNER, match: [ip: 127.0.0.5], policy: BANNER }
  - { name: SLOW, match: [rdns: .throttle.test], policy: THROTTLED }
  - { name: REGEX, match: [rdns: "/^mx\\\\d+\\\\.regex\\\\.test$/"], policy: TRUSTED }
  - { name: RELAYLIST, match: [ip: 127.0.0.1], policy: RELAYED }
  - { name: ALL, match: [all], policy: ACCEPTED }
policies:
  NOPE: { action: tcprefuse }
  FEW: { max_connections_per_ip: 2 }
  BANNER: { banner: "Welcome, partner" }
`;

test('a REJECT group gets 554 5.7.1 at the greeting, then 503 5.5.1 to anything but QUIT', { timeout: 15_000 }, async () => {
  await withGateway(dns, GROUPS, async (gw) => {
    const c = await connectFrom(gw.port, '127.0.0.2');
    try {
      assert.equal(await fullReply(c), '554 5.7.1 mx.test Access denied');
      assert.equal(await say(c, 'EHLO client.test'), '503 5.5.1 Error: access denied, only QUIT is accepted');
      assert.equal(await c.cmd('MAIL FROM:<a@b.test>'), '503 5.5.1');
      assert.equal(await c.cmd('QUIT'), '221 2.0.0');
      await c.waitClosed();
    } finally {
      c.close();
    }
  });
});

test('DNSBL matchers: a listing in any zone of the list puts the client in the group; an answer outside 127.0.0.x is no listing', { timeout: 15_000 }, async () => {
  await withGateway(dns, GROUPS, async (gw) => {
    for (const [from, expected] of [['127.0.0.20', '554 5.7.1'], ['127.0.0.21', '554 5.7.1'], ['127.0.0.22', '220'], ['127.0.0.10', '220']] as const) {
      const c = await connectFrom(gw.port, from);
      try {
        assert.equal(await c.code(), expected, from);
      } finally {
        c.close();
      }
    }
  });
});

test('TCPREFUSE: the connection is closed without a greeting', { timeout: 15_000 }, async () => {
  await withGateway(dns, GROUPS, async (gw) => {
    const c = await connectFrom(gw.port, '127.0.0.3');
    try {
      await c.waitClosed(5000);
      assert.equal(c.pendingReplies, 0);
    } finally {
      c.close();
    }
  });
});

test('connections per IP: the one past the limit gets 421 4.7.0 and is closed; a freed slot is usable again', { timeout: 15_000 }, async () => {
  await withGateway(dns, GROUPS, async (gw) => {
    const first = await connectFrom(gw.port, '127.0.0.4');
    const second = await connectFrom(gw.port, '127.0.0.4');
    const other = await connectFrom(gw.port, '127.0.0.6');
    try {
      assert.equal(await first.code(), '220');
      assert.equal(await second.code(), '220');
      assert.equal(await other.code(), '220', 'another IP is not counted with them');
      const third = await connectFrom(gw.port, '127.0.0.4');
      try {
        assert.equal(await fullReply(third), '421 4.7.0 mx.test Too many connections, try again later');
        await third.waitClosed();
      } finally {
        third.close();
      }
      assert.equal(await first.cmd('QUIT'), '221 2.0.0');
      await first.waitClosed();
      // The listener counts the slot free once the socket is gone.
      let again = '';
      for (let i = 0; i < 50 && again !== '220'; i++) {
        const c = await connectFrom(gw.port, '127.0.0.4');
        again = await c.code();
        c.close();
        if (again !== '220') await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(again, '220');
    } finally {
      first.close();
      second.close();
      other.close();
    }
  });
});

test("the policy's banner is the greeting", { timeout: 15_000 }, async () => {
  await withGateway(dns, GROUPS, async (gw) => {
    const c = await connectFrom(gw.port, '127.0.0.5');
    try {
      assert.equal((await c.reply()).raw, '220 mx.test ESMTP Welcome, partner\r\n');
    } finally {
      c.close();
    }
  });
});

test('rDNS matchers: only forward-confirmed names count; suffix and regular expression', { timeout: 15_000 }, async () => {
  await withGateway(dns, GROUPS, async (gw) => {
    // mx1.throttle.test → THROTTLED: 1 MB advertised.
    const slow = await greeted(gw.port, '127.0.0.30');
    try {
      slow.write('EHLO client.test\r\n');
      assert.ok((await slow.reply()).lines.includes('SIZE 1048576'));
    } finally {
      slow.close();
    }
    // mx7.regex.test → TRUSTED: HELP STATUS in full.
    const regex = await greeted(gw.port, '127.0.0.31');
    try {
      regex.write('HELP STATUS\r\n');
      assert.equal((await regex.reply()).lines.length, 3);
    } finally {
      regex.close();
    }
    // liar.example.test does not lead back: not a name to match; the client lands in ALL.
    const liar = await greeted(gw.port, '127.0.0.11');
    try {
      liar.write('EHLO client.test\r\n');
      assert.ok((await liar.reply()).lines.includes('SIZE 104857600'));
    } finally {
      liar.close();
    }
  });
});

test('reverse DNS at the greeting (reject_at: connect): 554 5.7.25 then only QUIT; 421 4.7.25 when DNS fails, then close', { timeout: 20_000 }, async () => {
  const yaml = `
sender_groups: [{ name: ALL, match: [all], policy: STRICT }]
policies: { STRICT: { reverse_dns: require_fcrdns, reject_at: connect } }
`;
  await withGateway(dns, yaml, async (gw) => {
    const liar = await connectFrom(gw.port, '127.0.0.11');
    try {
      assert.equal(await fullReply(liar), '554 5.7.25 Client host rejected: reverse DNS check failed for [127.0.0.11]');
      assert.equal(await liar.cmd('HELO client.test'), '503 5.5.1');
      assert.equal(await liar.cmd('QUIT'), '221 2.0.0');
    } finally {
      liar.close();
    }
    const none = await connectFrom(gw.port, '127.0.0.12');
    try {
      assert.equal(await none.code(), '554 5.7.25');
    } finally {
      none.close();
    }
    const broken = await connectFrom(gw.port, '127.0.0.13');
    try {
      assert.equal(await fullReply(broken), '421 4.7.25 Client host rejected: reverse DNS check could not complete for [127.0.0.13]');
      await broken.waitClosed();
    } finally {
      broken.close();
    }
    const t0 = Date.now();
    const hanging = await connectFrom(gw.port, '127.0.0.14');
    try {
      assert.equal(await hanging.code(), '421 4.7.25');
      const took = Date.now() - t0;
      assert.ok(took < DNS_TIMEOUT_MS + 1000, `the greeting took ${took} ms with a DNS timeout of ${DNS_TIMEOUT_MS} ms`);
    } finally {
      hanging.close();
    }
    const good = await connectFrom(gw.port, '127.0.0.10');
    try {
      assert.equal(await good.code(), '220');
    } finally {
      good.close();
    }
  });
});

test('a DNSBL zone that hangs or fails does not hold the greeting beyond the DNS timeout, and lists nobody', { timeout: 20_000 }, async () => {
  const yaml = `
sender_groups:
  - { name: BLOCKLIST, match: [dnsbl: [bl-slow.test, bl-broken.test]], policy: BLOCKED }
  - { name: ALL, match: [all], policy: ACCEPTED }
`;
  await withGateway(dns, yaml, async (gw) => {
    const t0 = Date.now();
    const c = await connectFrom(gw.port, '127.0.0.20');
    try {
      assert.equal(await c.code(), '220');
      const took = Date.now() - t0;
      assert.ok(took < DNS_TIMEOUT_MS + 1000, `the greeting took ${took} ms with a DNS timeout of ${DNS_TIMEOUT_MS} ms`);
    } finally {
      c.close();
    }
  });
});

test('the sender group and policy are logged with the message in the queue', { timeout: 15_000 }, async () => {
  await withGateway(dns, `${GROUPS}\ndomains: { local: [example.test] }\nrecipients: { valid: [alice@example.test] }`, async (gw) => {
    const c = await greeted(gw.port, '127.0.0.30');
    try {
      const r = await sendOn(c, 'a@client.test', ['alice@example.test']);
      const id = /queued as (\S+)/.exec(r)?.[1];
      assert.ok(id, r);
      const msg = gw.gateway.store.getMessage(id);
      assert.equal(msg?.envelope.client.senderGroup, 'SLOW');
      assert.equal(msg?.envelope.client.policy, 'THROTTLED');
      assert.equal(msg?.envelope.client.rdns, 'mx1.throttle.test');
      // Our trace fields lead: Authentication-Results (sender_auth), then Received with the confirmed name.
      assert.match(gw.gateway.store.readBody(id).toString('latin1'), /^(?:Authentication-Results: .*\r\n(?:[ \t].*\r\n)*)?Received: from client\.test \(mx1\.throttle\.test \[127\.0\.0\.30\]\)/);
    } finally {
      c.close();
    }
  });
});

test('HELP STATUS: queue depth and connections only for trusted groups', { timeout: 15_000 }, async () => {
  await withGateway(dns, GROUPS, async (gw) => {
    await sendMessage(gw.port, { from: 'a@client.test', to: ['x@elsewhere.test'], data: 'Subject: q\r\n\r\nq\r\n' });
    const trusted = await greeted(gw.port, '127.0.0.1');
    const plain = await greeted(gw.port, '127.0.0.10');
    try {
      trusted.write('HELP STATUS\r\n');
      const full = await trusted.reply();
      assert.equal(full.code, 211);
      assert.equal(full.enhanced, '2.0.0');
      assert.match(full.lines[0], /^2\.0\.0 mx\.test Postern \S+: accepting mail$/);
      assert.match(full.lines[1], /^2\.0\.0 queue: \d+ queued, \d+ held$/);
      assert.equal(full.lines[2], '2.0.0 connections: 2 on listener inbound');
      plain.write('HELP STATUS\r\n');
      const brief = await plain.reply();
      assert.equal(brief.code, 211);
      assert.equal(brief.lines.length, 1);
      assert.match(brief.lines[0], /accepting mail$/);
    } finally {
      trusted.close();
      plain.close();
    }
  });
});

test('the embedded default: loopback is RELAYLIST → RELAYED and may send anywhere', { timeout: 15_000 }, async () => {
  await withGateway(dns, '', async (gw) => {
    for (const from of ['127.0.0.1', '127.0.0.77']) {
      const c = await greeted(gw.port, from);
      try {
        assert.equal(await c.cmd('MAIL FROM:<a@client.test>'), '250 2.1.0');
        assert.equal(await c.cmd('RCPT TO:<someone@elsewhere.test>'), '250 2.1.5');
      } finally {
        c.close();
      }
    }
  });
});

test('a client that matches no group is refused like BLOCKED', { timeout: 15_000 }, async () => {
  await withGateway(dns, 'sender_groups: [{ name: ONLY, match: [ip: 127.0.0.10], policy: ACCEPTED }]', async (gw) => {
    const known = await connectFrom(gw.port, '127.0.0.10');
    const stranger = await connectFrom(gw.port, '127.0.0.11');
    try {
      assert.equal(await known.code(), '220');
      assert.equal(await stranger.code(), '554 5.7.1');
    } finally {
      known.close();
      stranger.close();
    }
  });
});

test('IPv6: an ip matcher and a forward-confirmed name under ip6.arpa', { timeout: 15_000 }, async () => {
  const yaml = `
listeners: [{ name: six, listen: "[::1]:0" }]
sender_groups:
  - { name: NAMED, match: [rdns: six.example.test], policy: STRICT }
  - { name: ALL, match: [all], policy: BLOCKED }
policies: { STRICT: { trusted: true, reverse_dns: require_fcrdns, reject_at: connect } }
`;
  await withGateway(dns, yaml, async (gw) => {
    const c = await SmtpTestClient.connect(gw.port, '::1');
    try {
      assert.equal(await c.code(), '220');
      assert.equal(await c.cmd('EHLO client.test'), '250');
      c.write('HELP STATUS\r\n');
      assert.equal((await c.reply()).lines.length, 3, 'the NAMED group is trusted');
    } finally {
      c.close();
    }
  });
  await withGateway(dns, 'listeners: [{ name: six, listen: "[::1]:0" }]\nsender_groups: [{ name: SIX, match: [ip: "::1/128"], policy: BLOCKED }]', async (gw) => {
    const c = await SmtpTestClient.connect(gw.port, '::1');
    try {
      assert.equal(await c.code(), '554 5.7.1');
    } finally {
      c.close();
    }
  });
});
