/**
 * The open-relay suite: the classic relay tricks against every listener type — plain, STARTTLS,
 * submission with AUTH (required, and optional with AUTH before TLS allowed), implicit TLS with
 * AUTH required and optional — unauthenticated (nothing is relayed, whatever the spelling) and
 * authenticated (relaying works, as the user only); and the AUTH games: an AUTH= parameter
 * without AUTH, failed and cancelled AUTH, an AUTH forgotten by STARTTLS, AUTH pipelined in
 * plaintext after STARTTLS, a foreign authzid, another user's sender address.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { SmtpTestClient } from '../support/smtp-test-client.js';
import { startTestGateway, type TestGateway } from '../support/test-gateway.js';
import { makeTestCertificate, tlsConfigLine, type TestCertificate } from '../support/test-certificate.js';
import type { Authenticator } from '../../src/server/authenticator.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const PLAIN_OK = `AUTH PLAIN ${b64('\0alice@example.test\0wonderland')}`;

const users: Authenticator = {
  async verify(username, password) {
    return username === 'alice@example.test' && password === 'wonderland' ? { kind: 'ok', user: username } : { kind: 'invalid' };
  },
  ownsAddress: (user, address) => user === address,
};

/**
 * Addresses that some MTA could route to elsewhere.test (or that name no local user): none may
 * be accepted from a client that may not relay. What the grammar refuses gets 553 5.1.3 or
 * 501 5.5.4; what the policy refuses 550 5.7.1.
 */
const RELAY_TRICKS: readonly string[] = [
  'user@elsewhere.test',
  'user@ELSEWHERE.TEST',
  'user%elsewhere.test@example.test',
  'user%elsewhere.test@EXAMPLE.TEST',
  'alice%elsewhere.test@example.test',
  '"user@elsewhere.test"@example.test',
  '"alice@elsewhere.test"@Example.Test',
  '"user%elsewhere.test"@example.test',
  '"user\\@elsewhere.test"@example.test',
  '@example.test:user@elsewhere.test',
  '@example.test,@partner.test:user@elsewhere.test',
  'user@elsewhere.test@example.test',
  'elsewhere.test!user@example.test',
  'elsewhere.test!alice@EXAMPLE.test',
  '"elsewhere.test!user"@example.test',
  'user%elsewhere.test@partner.test',
  '"user@elsewhere.test"@partner.test',
  'elsewhere.test!user@partner.test',
  'user@elsewhere.test.',
  'user@example.test.',
  'user@example.test..',
  'user@[192.0.2.1]',
  'user@[127.0.0.1]',
  'user@[IPv6:::1]',
  'user@[IPv6:2001:db8::1]',
  'user@localhost',
  'user@elsewhere',
  'postmaster@elsewhere.test',
  'user@.example.test',
  'user@example.test.elsewhere.test',
];
const REFUSED = new Set(['550 5.7.1', '553 5.1.3', '501 5.5.4']);

let cert: TestCertificate;
let gw: TestGateway;
before(async () => {
  cert = makeTestCertificate();
  gw = await startTestGateway([
    tlsConfigLine(cert),
    'auth: { failure_delay: 0, max_failures: 10, max_failures_per_ip: 1000 }',
    'limits: { max_errors: 1000 }',
    'domains: { local: [example.test], relay: { partner.test: "smtp://127.0.0.2:2526" } }',
    'recipients: { valid: [alice@example.test, bob@example.test] }',
    'sender_groups: [{ name: ALL, match: [all], policy: ACCEPTED }]',
    'listeners:',
    '  - { name: plain, listen: "127.0.0.1:0" }',
    '  - { name: starttls, listen: "127.0.0.1:0", tls: starttls }',
    '  - { name: submission, listen: "127.0.0.1:0", tls: starttls, auth: required }',
    '  - { name: optional, listen: "127.0.0.1:0", tls: starttls, auth: optional, auth_without_tls: true }',
    '  - { name: smtps, listen: "127.0.0.1:0", tls: implicit, auth: required }',
    '  - { name: smtps_optional, listen: "127.0.0.1:0", tls: implicit, auth: optional }',
  ].join('\n'), { authenticator: users });
});
after(async () => {
  await gw?.stop();
  rmSync(cert.dir, { recursive: true, force: true });
});

type Mode = 'plain' | 'starttls' | 'implicit';

/** A session on `listener`, greeted, EHLO'd, under TLS when `mode` says so. */
async function open(listener: string, mode: Mode): Promise<SmtpTestClient> {
  const port = gw.ports[listener];
  const c = mode === 'implicit' ? await SmtpTestClient.connectTls(port) : await SmtpTestClient.connect(port);
  assert.equal(await c.code(), '220');
  assert.equal(await c.cmd('EHLO client.test'), '250');
  if (mode === 'starttls') {
    assert.equal(await c.cmd('STARTTLS'), '220 2.0.0');
    await c.startTls();
    assert.equal(await c.cmd('EHLO client.test'), '250');
  }
  return c;
}

/** Every trick in one transaction: none accepted; DATA then finds no valid recipient. */
async function assertNoRelay(c: SmtpTestClient, what: string): Promise<void> {
  for (const rcpt of RELAY_TRICKS) {
    const r = await c.cmd(`RCPT TO:<${rcpt}>`);
    assert.ok(REFUSED.has(r), `${what}: RCPT TO:<${rcpt}> got ${r}`);
  }
  assert.equal(await c.cmd('DATA'), '554 5.5.1', `${what}: no valid recipients`);
}

const UNAUTHENTICATED: readonly [string, Mode][] = [
  ['plain', 'plain'],
  ['starttls', 'plain'],
  ['starttls', 'starttls'],
  ['optional', 'plain'],
  ['optional', 'starttls'],
  ['smtps_optional', 'implicit'],
];

test('unauthenticated: no relay trick works on any listener that takes mail without AUTH', { timeout: 30_000 }, async () => {
  for (const [listener, mode] of UNAUTHENTICATED) {
    const c = await open(listener, mode);
    try {
      assert.equal(await c.cmd('MAIL FROM:<someone@outside.test>'), '250 2.1.0');
      await assertNoRelay(c, `${listener} (${mode})`);
      // Local delivery still works on every one of them.
      assert.equal(await c.cmd('RSET'), '250 2.0.0');
      assert.equal(await c.cmd('MAIL FROM:<someone@outside.test>'), '250 2.1.0');
      assert.equal(await c.cmd('RCPT TO:<alice@example.test>'), '250 2.1.5');
      assert.equal(await c.cmd('RCPT TO:<anyone@partner.test>'), '250 2.1.5', 'a relay domain is ours to take');
    } finally {
      c.close();
    }
  }
});

test('unauthenticated on listeners that require AUTH: 530 5.7.0 at MAIL, nothing further', { timeout: 20_000 }, async () => {
  for (const [listener, mode] of [['submission', 'starttls'], ['smtps', 'implicit']] as const) {
    const c = await open(listener, mode);
    try {
      assert.equal(await c.cmd('MAIL FROM:<alice@example.test>'), '530 5.7.0', listener);
      assert.equal(await c.cmd('RCPT TO:<user@elsewhere.test>'), '503 5.5.1', listener);
      assert.equal(await c.cmd('DATA'), '503 5.5.1', listener);
    } finally {
      c.close();
    }
  }
  // submission in plaintext: AUTH is not even offered before TLS.
  const c = await open('submission', 'plain');
  try {
    assert.equal(await c.cmd(PLAIN_OK), '538 5.7.11');
    assert.equal(await c.cmd('MAIL FROM:<alice@example.test>'), '530 5.7.0');
  } finally {
    c.close();
  }
});

test('authenticated: relaying works on every AUTH listener, as the user only', { timeout: 30_000 }, async () => {
  for (const [listener, mode] of [['submission', 'starttls'], ['optional', 'starttls'], ['optional', 'plain'], ['smtps', 'implicit'], ['smtps_optional', 'implicit']] as const) {
    const c = await open(listener, mode);
    try {
      assert.equal(await c.cmd(PLAIN_OK), '235 2.7.0', `${listener} (${mode})`);
      assert.equal(await c.cmd('MAIL FROM:<bob@example.test>'), '553 5.7.1', `${listener}: not as another user`);
      assert.equal(await c.cmd('MAIL FROM:<alice@example.test>'), '250 2.1.0');
      assert.equal(await c.cmd('RCPT TO:<user@elsewhere.test>'), '250 2.1.5', `${listener} (${mode}): relays`);
      assert.equal(await c.cmd('RCPT TO:<user@[192.0.2.1]>'), '250 2.1.5');
      assert.equal(await c.cmd('DATA'), '354');
      c.write('From: alice@example.test\r\nSubject: out\r\n\r\nhi\r\n.\r\n');
      assert.match(await c.code(), /^250 2\.0\.0$/);
    } finally {
      c.close();
    }
  }
});

test('AUTH games: an AUTH= parameter, failed, cancelled and foreign-authzid AUTH grant nothing', { timeout: 30_000 }, async () => {
  const c = await open('smtps_optional', 'implicit');
  try {
    // RFC 4954 §5: AUTH= on MAIL is a claim, not an authentication.
    assert.equal(await c.cmd('MAIL FROM:<alice@example.test> AUTH=alice@example.test'), '250 2.1.0');
    assert.equal(await c.cmd('RCPT TO:<user@elsewhere.test>'), '550 5.7.1');
    assert.equal(await c.cmd('RSET'), '250 2.0.0');
    assert.equal(await c.cmd(`AUTH PLAIN ${b64('\0alice@example.test\0guess')}`), '535 5.7.8');
    assert.equal(await c.cmd('AUTH LOGIN'), '334');
    assert.equal(await c.cmd('*'), '501 5.7.0');
    assert.equal(await c.cmd(`AUTH PLAIN ${b64('bob@example.test\0alice@example.test\0wonderland')}`), '535 5.7.8', 'authzid of another user');
    assert.equal(await c.cmd('AUTH PLAIN'), '334');
    assert.equal(await c.cmd('not base64!'), '501 5.5.2');
    assert.equal(await c.cmd('MAIL FROM:<alice@example.test>'), '250 2.1.0');
    await assertNoRelay(c, 'after failed AUTH');
  } finally {
    c.close();
  }
});

test('AUTH games: an AUTH before STARTTLS is forgotten; AUTH pipelined in plaintext after STARTTLS is never seen', { timeout: 30_000 }, async () => {
  const before = await open('optional', 'plain');
  try {
    assert.equal(await before.cmd(PLAIN_OK), '235 2.7.0');
    assert.equal(await before.cmd('STARTTLS'), '220 2.0.0');
    await before.startTls();
    assert.equal(await before.cmd('EHLO client.test'), '250');
    assert.equal(await before.cmd('MAIL FROM:<alice@example.test>'), '250 2.1.0');
    assert.equal(await before.cmd('RCPT TO:<user@elsewhere.test>'), '550 5.7.1', 'RFC 3207 §4.2: the AUTH is gone');
  } finally {
    before.close();
  }
  const injected = await open('optional', 'plain');
  try {
    injected.write(`STARTTLS\r\n${PLAIN_OK}\r\nMAIL FROM:<alice@example.test>\r\nRCPT TO:<user@elsewhere.test>\r\n`);
    assert.equal(await injected.code(), '220 2.0.0');
    await injected.startTls();
    assert.equal(await injected.cmd('EHLO client.test'), '250');
    assert.equal(injected.pendingReplies, 0, 'nothing pipelined in plaintext was answered');
    assert.equal(await injected.cmd('MAIL FROM:<alice@example.test>'), '250 2.1.0');
    assert.equal(await injected.cmd('RCPT TO:<user@elsewhere.test>'), '550 5.7.1');
  } finally {
    injected.close();
  }
});
