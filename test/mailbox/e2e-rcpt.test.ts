/**
 * Local mailboxes at RCPT, over real sockets, with the config's own policy engine asking the
 * users file: each reply of the catalogue's RCPT table for local users exactly — 550 5.1.1
 * unknown, 550 5.2.1 disabled, 450 4.2.1 locked, 452 4.2.2 / 552 5.2.2 over quota (by the
 * Maildir's usage, and by a declared SIZE that cannot fit) with over_quota soft and hard,
 * 251 2.1.5 forward, 551 5.1.6 refer, an alias loop 451 4.3.0, a forward or alias to a blocked
 * address 550 5.7.1 — plus postmaster, policy overrides, reloading on SIGHUP, a users file that
 * never loaded (451 4.4.3), SMTP AUTH against the users file's passwords, and `postern policy
 * explain` asking the same users file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPolicyExplain } from '../../src/cli/policy-command.js';
import { parseConfigText } from '../../src/config/load-config.js';
import { hashPassword } from '../../src/mailbox/password-hash.js';
import { ehloed, say, startMailboxWorld, type MailboxWorld } from './fixtures/mailbox-world.js';

/** Loopback 127.0.0.1 may relay; every other client (127.0.0.10) may not. */
const GROUPS = `
sender_groups:
  - { name: RELAYLIST, match: [ip: 127.0.0.1], policy: RELAYED }
  - { name: ALL, match: [all], policy: ACCEPTED }
`;

const USERS = `
users:
  - { address: alice@example.test, quota: 10KB }
  - { address: full@example.test, quota: 1000 }
  - { address: off@example.test, status: disabled }
  - { address: busy@example.test, status: locked }
  - { address: roomy@example.test, quota: none }
aliases:
  team@example.test: [alice@example.test, friend@partner.test]
  badteam@example.test: [alice@example.test, someone@blocked.test]
  loop1@example.test: loop2@example.test
  loop2@example.test: [alice@example.test, loop1@example.test]
forwarding:
  moved@example.test: { mode: forward, to: alice@partner.test }
  gone@example.test: { mode: refer, to: gone@elsewhere.test }
  evil@example.test: { mode: forward, to: someone@blocked.test }
  sneaky@example.test: { mode: forward, to: blocked@example.test }
`;

/** full@example.test already holds 1000 bytes: its quota. */
function fillMailbox(world: MailboxWorld, local: string, bytes: number): void {
  const maildir = join(world.mailRoot, 'example.test', local);
  for (const sub of ['tmp', 'new', 'cur']) mkdirSync(join(maildir, sub), { recursive: true });
  writeFileSync(join(maildir, 'cur', `1700000000.M1P1Q1.old.test,S=${bytes}:2,S`), Buffer.alloc(bytes, 0x61));
}

async function withWorld(opts: Parameters<typeof startMailboxWorld>[0], fn: (w: MailboxWorld) => Promise<void>): Promise<void> {
  const world = await startMailboxWorld({ delivery: false, ...opts });
  try {
    await fn(world);
  } finally {
    await world.stop();
  }
}

test('RCPT to local users: each code of the table, exactly (over_quota: soft)', { timeout: 30_000 }, async () => {
  await withWorld({ users: USERS, yaml: GROUPS }, async (world) => {
    fillMailbox(world, 'full', 1000);
    // A client that may not relay: local recipients do not need relaying, nor does our own forward.
    const c = await ehloed(world.gw.port, '127.0.0.10');
    try {
      assert.equal(await c.cmd('MAIL FROM:<sender@client.test>'), '250 2.1.0');
      const cases: [string, string][] = [
        ['alice@example.test', '250 2.1.5 Recipient <alice@example.test> OK'],
        ['ALICE@Example.TEST', '250 2.1.5 Recipient <ALICE@Example.TEST> OK'],
        ['"alice"@example.test', '250 2.1.5 Recipient <"alice"@example.test> OK'],
        ['nobody@example.test', '550 5.1.1 Recipient address rejected: User unknown'],
        ['off@example.test', '550 5.2.1 Recipient address rejected: Mailbox disabled'],
        ['busy@example.test', '450 4.2.1 Recipient address rejected: Mailbox temporarily unavailable'],
        ['full@example.test', '452 4.2.2 Recipient address rejected: Mailbox full'],
        ['roomy@example.test', '250 2.1.5 Recipient <roomy@example.test> OK'],
        ['moved@example.test', '251 2.1.5 User not local; will forward to <alice@partner.test>'],
        ['gone@example.test', '551 5.1.6 User not local; please try <gone@elsewhere.test>'],
        ['team@example.test', '250 2.1.5 Recipient <team@example.test> OK'],
        ['loop1@example.test', '451 4.3.0 Local error in processing, try again later'],
        ['evil@example.test', '550 5.7.1 Recipient address rejected: Access denied'],
        ['sneaky@example.test', '550 5.7.1 Recipient address rejected: Access denied'],
        ['badteam@example.test', '550 5.7.1 Recipient address rejected: Access denied'],
        // RFC 5321 §4.5.1: postmaster exists in every local domain without configuration.
        ['postmaster@example.test', '250 2.1.5 Recipient <postmaster@example.test> OK'],
        // Not ours, and this client may not relay.
        ['someone@partner.test', '550 5.7.1 Relay access denied'],
      ];
      for (const [rcpt, expected] of cases) assert.equal(await say(c, `RCPT TO:<${rcpt}>`), expected, rcpt);

      // A declared SIZE that cannot fit counts as over quota (alice: 10 KB, nothing used yet).
      assert.equal(await c.cmd('RSET'), '250 2.0.0');
      assert.equal(await c.cmd('MAIL FROM:<sender@client.test> SIZE=20000'), '250 2.1.0');
      assert.equal(await say(c, 'RCPT TO:<alice@example.test>'), '452 4.2.2 Recipient address rejected: Mailbox full');
      assert.equal(await c.cmd('RCPT TO:<roomy@example.test>'), '250 2.1.5', 'no quota: any size');
      assert.equal(await c.cmd('RCPT TO:<team@example.test>'), '250 2.1.5', 'an alias with a remote target takes it');
      assert.equal(await c.cmd('RSET'), '250 2.0.0');
      assert.equal(await c.cmd('MAIL FROM:<sender@client.test> SIZE=10240'), '250 2.1.0');
      assert.equal(await c.cmd('RCPT TO:<alice@example.test>'), '250 2.1.5', 'exactly the quota fits');
    } finally {
      c.close();
    }
  });
});

test('over_quota: hard answers 552 5.2.2, for a full mailbox and for a declared SIZE', { timeout: 30_000 }, async () => {
  await withWorld({ users: USERS, overQuota: 'hard' }, async (world) => {
    fillMailbox(world, 'full', 1000);
    const c = await ehloed(world.gw.port);
    try {
      assert.equal(await c.cmd('MAIL FROM:<sender@client.test>'), '250 2.1.0');
      assert.equal(await say(c, 'RCPT TO:<full@example.test>'), '552 5.2.2 Recipient address rejected: Mailbox full');
      assert.equal(await c.cmd('RCPT TO:<alice@example.test>'), '250 2.1.5');
      assert.equal(await c.cmd('RSET'), '250 2.0.0');
      assert.equal(await c.cmd('MAIL FROM:<sender@client.test> SIZE=10241'), '250 2.1.0');
      assert.equal(await say(c, 'RCPT TO:<alice@example.test>'), '552 5.2.2 Recipient address rejected: Mailbox full');
    } finally {
      c.close();
    }
  });
});

test('the directory’s replies take the policy’s overrides, like every other reply', { timeout: 30_000 }, async () => {
  const yaml = 'reply_overrides:\n  rcpt.mailbox-locked: { text: "Mailbox is being moved, try again in an hour" }\n  rcpt.over-quota-soft: { code: 452, text: "Mailbox full, try again later" }';
  await withWorld({ users: USERS, yaml }, async (world) => {
    fillMailbox(world, 'full', 1000);
    const c = await ehloed(world.gw.port);
    try {
      assert.equal(await c.cmd('MAIL FROM:<sender@client.test>'), '250 2.1.0');
      assert.equal(await say(c, 'RCPT TO:<busy@example.test>'), '450 4.2.1 Mailbox is being moved, try again in an hour');
      assert.equal(await say(c, 'RCPT TO:<full@example.test>'), '452 4.2.2 Mailbox full, try again later');
    } finally {
      c.close();
    }
  });
});

test('the users file is reloaded on SIGHUP (Gateway.reload) and on change; one that never loaded answers 451 4.4.3', { timeout: 30_000 }, async () => {
  await withWorld({ users: 'users: [ { address: x } ]\n' }, async (world) => {
    const rcpt = async (address: string): Promise<string> => {
      const c = await ehloed(world.gw.port);
      try {
        assert.equal(await c.cmd('MAIL FROM:<sender@client.test>'), '250 2.1.0');
        return await say(c, `RCPT TO:<${address}>`);
      } finally {
        c.close();
      }
    };
    // Invalid since startup: nobody can be told "unknown"; the sender retries.
    assert.equal(await rcpt('alice@example.test'), '451 4.4.3 Recipient address rejected: lookup failed temporarily');
    assert.equal(await rcpt('postmaster@example.test'), '250 2.1.5 Recipient <postmaster@example.test> OK');

    writeFileSync(world.usersFile, USERS);
    world.gw.gateway.reload(); // what SIGHUP does
    const deadline = Date.now() + 5000;
    while (world.gw.gateway.mailboxes?.users?.status().state !== 'loaded' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await rcpt('alice@example.test'), '250 2.1.5 Recipient <alice@example.test> OK');
    assert.equal(await rcpt('busy@example.test'), '450 4.2.1 Recipient address rejected: Mailbox temporarily unavailable');

    // A change is picked up by itself (the directory watches the file).
    writeFileSync(world.usersFile, USERS.replace('status: locked', 'status: active'));
    const until = Date.now() + 5000;
    let answer = '';
    while (Date.now() < until) {
      answer = await rcpt('busy@example.test');
      if (answer.startsWith('250')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(answer, '250 2.1.5 Recipient <busy@example.test> OK');
  });
});

test('SMTP AUTH checks the users file: 235 for the right password, 535 otherwise; a disabled user cannot log in', { timeout: 60_000 }, async () => {
  const fast = { N: 1024, r: 8, p: 1 };
  const users = [
    'users:',
    `  - { address: alice@example.test, password: "${await hashPassword('wonderland', fast)}" }`,
    `  - { address: off@example.test, status: disabled, password: "${await hashPassword('secret', fast)}" }`,
    '  - { address: nopass@example.test }',
    '',
  ].join('\n');
  const yaml = [
    'listeners: [ { name: inbound, listen: "127.0.0.1:0", auth: optional, auth_without_tls: true } ]',
    'auth: { failure_delay: 0 }',
  ].join('\n');
  const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
  await withWorld({ users, yaml }, async (world) => {
    const c = await ehloed(world.gw.port);
    try {
      assert.equal(await c.cmd(`AUTH PLAIN ${b64('\0alice@example.test\0wrong')}`), '535 5.7.8');
      assert.equal(await c.cmd(`AUTH PLAIN ${b64('\0off@example.test\0secret')}`), '535 5.7.8');
      assert.equal(await c.cmd(`AUTH PLAIN ${b64('\0nopass@example.test\0')}`), '535 5.7.8');
    } finally {
      c.close();
    }
    const d = await ehloed(world.gw.port);
    try {
      assert.equal(await d.cmd(`AUTH PLAIN ${b64('\0Alice@Example.Test\0wonderland')}`), '235 2.7.0');
      assert.equal(await d.cmd('MAIL FROM:<alice@example.test>'), '250 2.1.0');
      assert.equal(await d.cmd('RCPT TO:<friend@elsewhere.test>'), '250 2.1.5', 'an authenticated client may relay');
    } finally {
      d.close();
    }
  });
});

test('`postern policy explain` answers local recipients from the users file, with the reason', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-explain-'));
  try {
    writeFileSync(join(dir, 'users.yaml'), USERS);
    const config = parseConfigText(
      `hostname: mx.test\ndns: { servers: ["127.0.0.1:9"] }\ndomains: { local: [example.test] }\nmailboxes: { users_file: users.yaml }\n${GROUPS}`,
      join(dir, 'postern.yaml'),
    );
    const out = await runPolicyExplain(config, { ip: '127.0.0.10', from: 'sender@client.test', to: ['off@example.test', 'moved@example.test', 'loop1@example.test'] });
    assert.match(out, /550 5\.2\.1 Recipient address rejected: Mailbox disabled/);
    assert.match(out, /the mailbox off@example\.test is disabled/);
    assert.match(out, /251 2\.1\.5 User not local; will forward to <alice@partner\.test>/);
    assert.match(out, /alias or forwarding loop: loop1@example\.test → loop2@example\.test → loop1@example\.test/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
