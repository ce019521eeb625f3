/**
 * Authenticated submission over real sockets (RFC 4954, RFC 6409): an authenticated client may
 * relay, an unauthenticated one on the same listener may not (550 5.7.1); the sender must belong
 * to the authenticated user (553 5.7.1) unless the listener says `sender_login_match: false`;
 * AUTH failures from one IP count across sessions, slow down, and end in 421 4.7.0.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { SmtpTestClient } from '../support/smtp-test-client.js';
import { startTestGateway, type TestGateway } from '../support/test-gateway.js';
import { makeTestCertificate, tlsConfigLine, type TestCertificate } from '../support/test-certificate.js';
import type { Authenticator } from '../../src/server/authenticator.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const plain = (user: string, password: string): string => `AUTH PLAIN ${b64(`\0${user}\0${password}`)}`;

/** Two users; alice also owns an alias. Addresses compare in any case. */
const USERS: Record<string, { password: string; addresses: string[] }> = {
  'alice@example.test': { password: 'wonderland', addresses: ['alice@example.test', 'a.smith@example.test'] },
  'bob@example.test': { password: 'builder', addresses: ['bob@example.test'] },
};
const directory: Authenticator = {
  async verify(username, password) {
    const u = USERS[username.toLowerCase()];
    return u && u.password === password ? { kind: 'ok', user: username.toLowerCase() } : { kind: 'invalid' };
  },
  ownsAddress(user, address) {
    return USERS[user]?.addresses.includes(address.toLowerCase()) ?? false;
  },
};

const SUBMISSION_YAML = (cert: TestCertificate, extra = ''): string => [
  tlsConfigLine(cert),
  'domains: { local: [example.test] }',
  'recipients: { valid: [alice@example.test, bob@example.test] }',
  // Loopback is an ordinary client here (the default config lets it relay).
  'sender_groups: [{ name: ALL, match: [all], policy: ACCEPTED }]',
  'listeners:',
  '  - { name: inbound, listen: "127.0.0.1:0" }',
  '  - { name: submission, listen: "127.0.0.1:0", tls: starttls, auth: optional }',
  '  - { name: anysender, listen: "127.0.0.1:0", tls: starttls, auth: optional, sender_login_match: false }',
  extra,
].join('\n');

let cert: TestCertificate;
let gw: TestGateway;
before(async () => {
  cert = makeTestCertificate();
  gw = await startTestGateway(SUBMISSION_YAML(cert, 'auth: { failure_delay: 0 }'), { authenticator: directory });
});
after(async () => {
  await gw?.stop();
  rmSync(cert.dir, { recursive: true, force: true });
});

/** Connected from `from`, greeted, under TLS, EHLO answered. */
async function underTls(port: number, from = '127.0.0.1'): Promise<SmtpTestClient> {
  const c = await SmtpTestClient.connect(port, '127.0.0.1', from);
  assert.equal(await c.code(), '220');
  assert.equal(await c.cmd('EHLO client.test'), '250');
  assert.equal(await c.cmd('STARTTLS'), '220 2.0.0');
  await c.startTls();
  assert.equal(await c.cmd('EHLO client.test'), '250');
  return c;
}

async function lastLine(c: SmtpTestClient, line: string): Promise<string> {
  c.write(`${line}\r\n`);
  const r = await c.reply();
  return r.raw.trimEnd().split('\r\n').pop()!;
}

test('an authenticated client relays on the submission listener; the message is queued', { timeout: 20_000 }, async () => {
  const c = await underTls(gw.ports.submission);
  try {
    assert.equal(await c.cmd(plain('alice@example.test', 'wonderland')), '235 2.7.0');
    assert.equal(await c.cmd('MAIL FROM:<alice@example.test>'), '250 2.1.0');
    assert.equal(await c.cmd('RCPT TO:<someone@elsewhere.test>'), '250 2.1.5');
    assert.equal(await c.cmd('RCPT TO:<bob@example.test>'), '250 2.1.5');
    assert.equal(await c.cmd('RCPT TO:<nobody@example.test>'), '550 5.1.1', 'local users are still validated');
    assert.equal(await c.cmd('DATA'), '354');
    c.write('From: alice@example.test\r\nSubject: out\r\n\r\nhello\r\n.\r\n');
    const done = await c.reply();
    assert.equal(done.code, 250);
    const id = /queued as (\S+)/.exec(done.lines[0])![1];
    const m = gw.gateway.store.getMessage(id)!;
    assert.deepEqual(m.envelope.recipients.map((r) => r.address), ['someone@elsewhere.test', 'bob@example.test']);
    assert.match(gw.gateway.store.readBody(id).toString(), /with ESMTPSA /, 'Received says authenticated (RFC 3848)');
  } finally {
    c.close();
  }
});

test('an unauthenticated client cannot relay, on the submission listener or the plain one: 550 5.7.1', { timeout: 20_000 }, async () => {
  const sub = await underTls(gw.ports.submission);
  try {
    assert.equal(await sub.cmd('MAIL FROM:<alice@example.test>'), '250 2.1.0');
    assert.equal(await lastLine(sub, 'RCPT TO:<someone@elsewhere.test>'), '550 5.7.1 Relay access denied');
    assert.equal(await sub.cmd('RCPT TO:<bob@example.test>'), '250 2.1.5', 'local delivery needs no AUTH');
  } finally {
    sub.close();
  }
  const inbound = await SmtpTestClient.connect(gw.ports.inbound);
  try {
    assert.equal(await inbound.code(), '220');
    await inbound.cmd('EHLO client.test');
    assert.equal(await inbound.cmd(plain('alice@example.test', 'wonderland')), '502 5.5.1', 'no AUTH on a listener without auth:');
    assert.equal(await inbound.cmd('MAIL FROM:<alice@example.test>'), '250 2.1.0');
    assert.equal(await inbound.cmd('RCPT TO:<someone@elsewhere.test>'), '550 5.7.1');
  } finally {
    inbound.close();
  }
});

test('a user sending as another user is refused: 553 5.7.1; own address, alias, any case and <> pass', { timeout: 20_000 }, async () => {
  const c = await underTls(gw.ports.submission);
  try {
    assert.equal(await c.cmd(plain('alice@example.test', 'wonderland')), '235 2.7.0');
    assert.equal(await lastLine(c, 'MAIL FROM:<bob@example.test>'), '553 5.7.1 Sender address rejected: not owned by user alice@example.test');
    assert.equal(await c.cmd('MAIL FROM:<someone@elsewhere.test>'), '553 5.7.1');
    for (const own of ['alice@example.test', 'Alice@EXAMPLE.test', '"alice"@example.test', 'a.smith@example.test', '']) {
      assert.equal(await c.cmd(`MAIL FROM:<${own}>`), '250 2.1.0', own);
      assert.equal(await c.cmd('RSET'), '250 2.0.0');
    }
  } finally {
    c.close();
  }
  // After STARTTLS the AUTH is forgotten; a new AUTH as bob sends as bob only.
  const b = await underTls(gw.ports.submission);
  try {
    assert.equal(await b.cmd(plain('bob@example.test', 'builder')), '235 2.7.0');
    assert.equal(await b.cmd('MAIL FROM:<alice@example.test>'), '553 5.7.1');
    assert.equal(await b.cmd('MAIL FROM:<bob@example.test>'), '250 2.1.0');
  } finally {
    b.close();
  }
});

test('sender_login_match: false lets an authenticated user send as anyone (and still relay)', { timeout: 20_000 }, async () => {
  const c = await underTls(gw.ports.anysender);
  try {
    assert.equal(await c.cmd(plain('alice@example.test', 'wonderland')), '235 2.7.0');
    assert.equal(await c.cmd('MAIL FROM:<bob@example.test>'), '250 2.1.0');
    assert.equal(await c.cmd('RCPT TO:<someone@elsewhere.test>'), '250 2.1.5');
  } finally {
    c.close();
  }
});

test('AUTH failures from one IP count across sessions: the delay grows, the limit ends in 421 4.7.0, then AUTH is refused unchecked', { timeout: 30_000 }, async () => {
  const delay = 40;
  const own = await startTestGateway(
    SUBMISSION_YAML(cert, `auth: { failure_delay: ${delay}ms, max_failures: 3, max_failures_per_ip: 5, failure_window: 1h }`),
    { authenticator: directory },
  );
  try {
    const attacker = '127.0.0.51';
    // Session 1: three failures, each answered later than the one before; the third ends the session.
    const first = await underTls(own.ports.submission, attacker);
    const took: number[] = [];
    for (let i = 1; i <= 3; i++) {
      const t0 = Date.now();
      assert.equal(await first.cmd(plain('alice@example.test', `guess${i}`)), '535 5.7.8', `failure ${i}`);
      took.push(Date.now() - t0);
      if (i === 3) assert.equal(await first.code(), '421 4.7.0', 'per-session limit');
    }
    await first.waitClosed();
    for (let i = 0; i < 3; i++) assert.ok(took[i] >= delay * (i + 1) - 5, `failure ${i + 1} waited ${took[i]} ms`);

    // Session 2: the IP's failures go on counting (4th waits 4 × delay); the 5th reaches the limit.
    const second = await underTls(own.ports.submission, attacker);
    const t0 = Date.now();
    assert.equal(await second.cmd(plain('alice@example.test', 'guess4')), '535 5.7.8');
    assert.ok(Date.now() - t0 >= delay * 4 - 5, `the 4th failure waited ${Date.now() - t0} ms`);
    assert.equal(
      await lastLine(second, plain('alice@example.test', 'guess5')),
      '421 4.7.0 mx.test Too many failed authentication attempts, closing transmission channel',
    );
    await second.waitClosed();

    // Session 3: even the right password is not checked now.
    const third = await underTls(own.ports.submission, attacker);
    assert.equal(await third.cmd(plain('alice@example.test', 'wonderland')), '421 4.7.0');
    await third.waitClosed();

    // Another client is not affected; the attacker may still send without AUTH (a shared NAT is not locked out of port 25).
    const other = await underTls(own.ports.submission, '127.0.0.52');
    assert.equal(await other.cmd(plain('alice@example.test', 'wonderland')), '235 2.7.0');
    other.close();
    const plainMail = await SmtpTestClient.connect(own.ports.inbound, '127.0.0.1', attacker);
    assert.equal(await plainMail.code(), '220');
    await plainMail.cmd('EHLO client.test');
    assert.equal(await plainMail.cmd('MAIL FROM:<x@client.test>'), '250 2.1.0');
    plainMail.close();
  } finally {
    await own.stop();
  }
});

test('AUTH guesses in parallel sessions from one IP: no more are checked than the limit allows', { timeout: 30_000 }, async () => {
  let checked = 0;
  const counting: Authenticator = {
    async verify(username, password) {
      checked++;
      return directory.verify(username, password);
    },
  };
  const own = await startTestGateway(SUBMISSION_YAML(cert, 'auth: { failure_delay: 0, max_failures_per_ip: 5 }'), { authenticator: counting });
  try {
    const sessions = await Promise.all(Array.from({ length: 20 }, () => underTls(own.ports.submission, '127.0.0.53')));
    const replies = await Promise.all(sessions.map((c) => c.cmd(plain('alice@example.test', 'guess'))));
    for (const c of sessions) c.close();
    assert.ok(checked <= 5, `${checked} guesses were checked`);
    assert.equal(replies.filter((r) => r === '535 5.7.8' || r === '421 4.7.0').length, 20, replies.join(', '));
    assert.ok(replies.filter((r) => r === '421 4.7.0').length >= 15);
  } finally {
    await own.stop();
  }
});
