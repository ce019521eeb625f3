/**
 * The RCPT stage over real sockets, against a DNS server on loopback: recipient access (local
 * users 550 5.1.1, postmaster, relay domains, relay denied 550 5.7.1, the block list 550 5.7.1,
 * a directory that fails 451 4.4.3), the relay-trick table, reverse DNS at RCPT (550 5.7.25 /
 * 450 4.7.25, a hang bounded by the DNS timeout), recipients per message (452 4.5.3 at the
 * 101st) and per hour per client IP and per sender (453 4.5.3 at the N+1st).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { LoopbackDnsServer } from '../support/loopback-dns-server.js';
import type { SmtpTestClient } from '../support/smtp-test-client.js';
import type { RecipientLookup } from '../../src/policy/facts.js';
import { reply } from '../../src/smtp/reply.js';
import {
  DNS_TIMEOUT_MS, engineFor, greeted, ManualClock, MAIL_DOMAINS, say, sendOn, startPolicyDns, withGateway,
} from '../policy/support/policy-fixtures.js';

let dns: LoopbackDnsServer;
before(async () => {
  dns = await startPolicyDns();
});
after(async () => {
  await dns.stop();
});

const GROUPS = `
${MAIL_DOMAINS}
sender_groups:
  - { name: RELAYLIST, match: [ip: 127.0.0.1], policy: RELAYED }
  - { name: ALL, match: [all], policy: ACCEPTED }
`;

async function inTransaction(port: number, from: string): Promise<SmtpTestClient> {
  const c = await greeted(port, from);
  assert.equal(await c.cmd('MAIL FROM:<sender@client.test>'), '250 2.1.0');
  return c;
}

test('recipient access for a client that may not relay', { timeout: 15_000 }, async () => {
  await withGateway(dns, GROUPS, async (gw) => {
    const c = await inTransaction(gw.port, '127.0.0.10');
    try {
      const cases: [string, string][] = [
        ['alice@example.test', '250 2.1.5 Recipient <alice@example.test> OK'],
        ['Bob@EXAMPLE.test', '250 2.1.5 Recipient <Bob@EXAMPLE.test> OK'],
        ['carol@example.test', '550 5.1.1 Recipient address rejected: User unknown'],
        ['postmaster@example.test', '250 2.1.5 Recipient <postmaster@example.test> OK'],
        ['PostMaster@Example.Test', '250 2.1.5 Recipient <PostMaster@Example.Test> OK'],
        ['Postmaster', '250 2.1.5 Recipient <Postmaster> OK'],
        ['anyone@partner.test', '250 2.1.5 Recipient <anyone@partner.test> OK'],
        ['someone@elsewhere.test', '550 5.7.1 Relay access denied'],
        ['blocked@example.test', '550 5.7.1 Recipient address rejected: Access denied'],
        ['x@blocked.test', '550 5.7.1 Recipient address rejected: Access denied'],
      ];
      for (const [rcpt, expected] of cases) assert.equal(await say(c, `RCPT TO:<${rcpt}>`), expected, rcpt);
    } finally {
      c.close();
    }
  });
});

test('a relaying client may send anywhere, but not to the block list', { timeout: 15_000 }, async () => {
  await withGateway(dns, GROUPS, async (gw) => {
    const c = await inTransaction(gw.port, '127.0.0.1');
    try {
      assert.equal(await c.cmd('RCPT TO:<someone@elsewhere.test>'), '250 2.1.5');
      assert.equal(await c.cmd('RCPT TO:<carol@example.test>'), '550 5.1.1', 'local users are validated for everyone');
      assert.equal(await say(c, 'RCPT TO:<x@blocked.test>'), '550 5.7.1 Recipient address rejected: Access denied');
    } finally {
      c.close();
    }
  });
});

/**
 * Addresses that some MTA could route to elsewhere.test: none is accepted from a client that
 * may not relay. Syntax the grammar refuses (user@a@b, trailing dots) gets 553 5.1.3.
 */
const RELAY_TRICKS: readonly [string, string][] = [
  ['user%elsewhere.test@example.test', '550 5.7.1'],
  ['user%elsewhere.test@EXAMPLE.TEST', '550 5.7.1'],
  ['alice%elsewhere.test@example.test', '550 5.7.1'],
  ['"user@elsewhere.test"@example.test', '550 5.7.1'],
  ['"alice@elsewhere.test"@Example.Test', '550 5.7.1'],
  ['"user%elsewhere.test"@example.test', '550 5.7.1'],
  ['@example.test:user@elsewhere.test', '550 5.7.1'],
  ['@example.test,@partner.test:user@elsewhere.test', '550 5.7.1'],
  ['user@elsewhere.test@example.test', '553 5.1.3'],
  ['elsewhere.test!user@example.test', '550 5.7.1'],
  ['elsewhere.test!alice@EXAMPLE.test', '550 5.7.1'],
  ['user%elsewhere.test@partner.test', '550 5.7.1'],
  ['"user@elsewhere.test"@partner.test', '550 5.7.1'],
  ['elsewhere.test!user@partner.test', '550 5.7.1'],
  ['user@ELSEWHERE.TEST', '550 5.7.1'],
  ['user@elsewhere.test.', '553 5.1.3'],
  ['user@example.test.', '553 5.1.3'],
  ['user@[192.0.2.1]', '550 5.7.1'],
  ['user@[127.0.0.1]', '550 5.7.1'],
];

test('relay tricks: none is accepted for an outside domain from a client that may not relay', { timeout: 20_000 }, async () => {
  await withGateway(dns, GROUPS, async (gw) => {
    const c = await inTransaction(gw.port, '127.0.0.10');
    try {
      for (const [rcpt, expected] of RELAY_TRICKS) {
        const r = await c.cmd(`RCPT TO:<${rcpt}>`);
        assert.equal(r, expected, rcpt);
      }
      // The session ends the transaction without a single recipient.
      assert.equal(await c.cmd('DATA'), '554 5.5.1');
    } finally {
      c.close();
    }
  });
});

test('reverse DNS at RCPT: require_fcrdns and require_ptr', { timeout: 20_000 }, async () => {
  const yaml = `
${MAIL_DOMAINS}
sender_groups:
  - { name: PTR, match: [ip: [127.0.0.11/32, 127.0.0.12]], policy: PTR }
  - { name: ALL, match: [all], policy: FCRDNS }
policies:
  FCRDNS: { reverse_dns: require_fcrdns }
  PTR: { reverse_dns: require_ptr }
`;
  await withGateway(dns, yaml, async (gw) => {
    const cases: [string, string][] = [
      ['127.0.0.10', '250 2.1.5'], // good.example.test leads back
      ['127.0.0.18', '550 5.7.25'], // liar.example.test does not
      ['127.0.0.15', '450 4.7.25'], // the forward lookup fails
      ['127.0.0.13', '450 4.7.25'], // the PTR lookup fails
      ['127.0.0.16', '550 5.7.25'], // no PTR
      ['127.0.0.11', '250 2.1.5'], // require_ptr: a PTR, even one that does not lead back
      ['127.0.0.12', '550 5.7.25'], // require_ptr: none
    ];
    for (const [from, expected] of cases) {
      const c = await inTransaction(gw.port, from);
      try {
        assert.equal(await c.cmd('RCPT TO:<alice@example.test>'), expected, from);
        // The same answer for every recipient, from one lookup.
        assert.equal(await c.cmd('RCPT TO:<bob@example.test>'), expected, from);
      } finally {
        c.close();
      }
    }
    const none = await inTransaction(gw.port, '127.0.0.17');
    try {
      assert.equal(await say(none, 'RCPT TO:<alice@example.test>'), '550 5.7.25 Client host rejected: reverse DNS check failed for [127.0.0.17]');
    } finally {
      none.close();
    }
    const broken = await inTransaction(gw.port, '127.0.0.13');
    try {
      assert.equal(await say(broken, 'RCPT TO:<alice@example.test>'), '450 4.7.25 Client host rejected: reverse DNS check could not complete for [127.0.0.13]');
    } finally {
      broken.close();
    }
  });
});

test('a reverse-DNS lookup that hangs never holds the session beyond the DNS timeout', { timeout: 20_000 }, async () => {
  const yaml = `${MAIL_DOMAINS}\nsender_groups: [{ name: ALL, match: [all], policy: FCRDNS }]\npolicies: { FCRDNS: { reverse_dns: require_fcrdns } }`;
  await withGateway(dns, yaml, async (gw) => {
    const c = await inTransaction(gw.port, '127.0.0.14');
    try {
      const t0 = Date.now();
      assert.equal(await c.cmd('RCPT TO:<alice@example.test>'), '450 4.7.25');
      const took = Date.now() - t0;
      assert.ok(took >= DNS_TIMEOUT_MS - 50 && took < DNS_TIMEOUT_MS + 1000, `took ${took} ms with a DNS timeout of ${DNS_TIMEOUT_MS} ms`);
      assert.equal(await c.cmd('QUIT'), '221 2.0.0');
    } finally {
      c.close();
    }
  });
});

test('recipients per message: with a limit of 100 the 100th is accepted and the 101st gets 452 4.5.3', { timeout: 20_000 }, async () => {
  const yaml = `
domains: { local: [example.test] }
recipients: { valid: ["@example.test"] }
sender_groups: [{ name: ALL, match: [all], policy: P }]
policies: { P: { max_recipients_per_message: 100 } }
`;
  await withGateway(dns, yaml, async (gw) => {
    const c = await inTransaction(gw.port, '127.0.0.10');
    try {
      for (let i = 1; i <= 100; i++) assert.equal(await c.cmd(`RCPT TO:<user${i}@example.test>`), '250 2.1.5', `recipient ${i}`);
      assert.equal(await say(c, 'RCPT TO:<user101@example.test>'), '452 4.5.3 Too many recipients');
      assert.equal(await c.cmd('DATA'), '354');
      c.write('Subject: many\r\n\r\nx\r\n.\r\n');
      assert.match(await c.code(), /^250 2\.0\.0$/);
    } finally {
      c.close();
    }
  });
});

test('recipients per hour per client IP: the N+1st gets 453 4.5.3, across messages and connections; an hour later it is accepted', { timeout: 20_000 }, async () => {
  const yaml = `${MAIL_DOMAINS}\nsender_groups: [{ name: ALL, match: [all], policy: P }]\npolicies: { P: { recipients_per_hour: 3 } }`;
  const clock = new ManualClock();
  await withGateway(dns, yaml, async (gw) => {
    const c = await greeted(gw.port, '127.0.0.10');
    try {
      assert.match(await sendOn(c, 'a@client.test', ['alice@example.test', 'bob@example.test']), /^250 2\.0\.0/);
    } finally {
      c.close();
    }
    const d = await inTransaction(gw.port, '127.0.0.10');
    try {
      // A refused recipient is not counted.
      assert.equal(await d.cmd('RCPT TO:<nobody@example.test>'), '550 5.1.1');
      assert.equal(await d.cmd('RCPT TO:<alice@example.test>'), '250 2.1.5');
      assert.equal(await say(d, 'RCPT TO:<bob@example.test>'), '453 4.5.3 Too many recipients this hour, try again later');
      clock.advance(60 * 60_000);
      assert.equal(await d.cmd('RCPT TO:<bob@example.test>'), '250 2.1.5');
    } finally {
      d.close();
    }
  }, { policy: engineFor(dns, yaml, { clock: clock.read }) });
});

test('recipients per hour per sender address: counted per sender, whichever client sends', { timeout: 20_000 }, async () => {
  const yaml = `${MAIL_DOMAINS}\nsender_groups: [{ name: ALL, match: [all], policy: P }]\npolicies: { P: { recipients_per_hour_per_sender: 2 } }`;
  await withGateway(dns, yaml, async (gw) => {
    const c = await greeted(gw.port, '127.0.0.10');
    const d = await greeted(gw.port, '127.0.0.11');
    try {
      assert.equal(await c.cmd('MAIL FROM:<news@client.test>'), '250 2.1.0');
      assert.equal(await c.cmd('RCPT TO:<alice@example.test>'), '250 2.1.5');
      assert.equal(await d.cmd('MAIL FROM:<NEWS@client.test>'), '250 2.1.0');
      assert.equal(await d.cmd('RCPT TO:<bob@example.test>'), '250 2.1.5');
      assert.equal(await d.cmd('RCPT TO:<alice@example.test>'), '453 4.5.3');
      assert.equal(await c.cmd('RCPT TO:<bob@example.test>'), '453 4.5.3');
      assert.equal(await c.cmd('RSET'), '250 2.0.0');
      assert.equal(await c.cmd('MAIL FROM:<other@client.test>'), '250 2.1.0');
      assert.equal(await c.cmd('RCPT TO:<bob@example.test>'), '250 2.1.5');
    } finally {
      c.close();
      d.close();
    }
  });
});

test('THROTTLED: 20 recipients per hour, 100 per message', { timeout: 20_000 }, async () => {
  const yaml = `${MAIL_DOMAINS}\nsender_groups: [{ name: ALL, match: [all], policy: THROTTLED }]`;
  await withGateway(dns, yaml, async (gw) => {
    const c = await inTransaction(gw.port, '127.0.0.10');
    try {
      for (let i = 1; i <= 20; i++) assert.equal(await c.cmd(i % 2 ? 'RCPT TO:<alice@example.test>' : 'RCPT TO:<bob@example.test>'), '250 2.1.5', `recipient ${i}`);
      assert.equal(await c.cmd('RCPT TO:<alice@example.test>'), '453 4.5.3');
    } finally {
      c.close();
    }
  });
});

test('a user directory that fails temporarily: 451 4.4.3', { timeout: 15_000 }, async () => {
  const yaml = GROUPS;
  const directory = { lookup: (address: string) => (address.startsWith('alice@') ? 'temporary' as const : 'exists' as const) };
  await withGateway(dns, yaml, async (gw) => {
    const c = await inTransaction(gw.port, '127.0.0.10');
    try {
      assert.equal(await say(c, 'RCPT TO:<alice@example.test>'), '451 4.4.3 Recipient address rejected: lookup failed temporarily');
      assert.equal(await c.cmd('RCPT TO:<bob@example.test>'), '250 2.1.5');
    } finally {
      c.close();
    }
  }, { policy: engineFor(dns, yaml, { directory }) });
});

test("a directory that knows more answers with its own verdict: disabled 550 5.2.1, locked 450 4.2.1, forwarded 251 2.1.5, over quota by SIZE 452 4.2.2", { timeout: 15_000 }, async () => {
  const yaml = GROUPS;
  const directory = {
    lookup: (address: string, size: number | null): RecipientLookup => {
      if (address.startsWith('off@')) return { accept: false, reply: 'rcpt.mailbox-disabled', why: 'disabled' };
      if (address.startsWith('busy@')) return { accept: false, reply: 'rcpt.mailbox-locked', why: 'locked' };
      if (address.startsWith('moved@')) return { accept: true, reply: 'rcpt.forward', vars: { address: 'new@partner.test' }, forwardTo: ['new@partner.test'], why: 'forwarded' };
      if (size !== null && size > 1000) return { accept: false, reply: 'rcpt.over-quota-soft', why: 'over quota' };
      return 'exists';
    },
  };
  await withGateway(dns, yaml, async (gw) => {
    const c = await inTransaction(gw.port, '127.0.0.10');
    try {
      assert.equal(await c.cmd('RCPT TO:<off@example.test>'), '550 5.2.1');
      assert.equal(await c.cmd('RCPT TO:<busy@example.test>'), '450 4.2.1');
      assert.equal(await say(c, 'RCPT TO:<moved@example.test>'), '251 2.1.5 User not local; will forward to <new@partner.test>');
      assert.equal(await c.cmd('RCPT TO:<anyone@example.test>'), '250 2.1.5');
      assert.equal(await c.cmd('RSET'), '250 2.0.0');
      assert.equal(await c.cmd('MAIL FROM:<a@client.test> SIZE=5000'), '250 2.1.0');
      assert.equal(await c.cmd('RCPT TO:<anyone@example.test>'), '452 4.2.2');
    } finally {
      c.close();
    }
  }, { policy: engineFor(dns, yaml, { directory }) });
});
