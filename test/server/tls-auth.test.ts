/**
 * STARTTLS, implicit TLS and SMTP AUTH over real sockets, with a certificate the test makes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChildGateway } from '../support/child-gateway.js';
import { SmtpTestClient } from '../support/smtp-test-client.js';
import { startTestGateway, type TestGateway } from '../support/test-gateway.js';
import { makeTestCertificate, tlsConfigLine, type TestCertificate } from '../support/test-certificate.js';
import type { Authenticator } from '../../src/server/authenticator.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** Credentials the test knows; the users-file authenticator is tested with the mailbox layer. */
const users: Authenticator = {
  async verify(username, password) {
    return username === 'alice@example.test' && password === 'wonderland'
      ? { kind: 'ok', user: username } : { kind: 'invalid' };
  },
};

let cert: TestCertificate;
let gw: TestGateway;
before(async () => {
  cert = makeTestCertificate();
  gw = await startTestGateway([
    tlsConfigLine(cert),
    'auth: { failure_delay: 0 }',
    'listeners:',
    '  - { name: inbound, listen: "127.0.0.1:0", tls: starttls }',
    '  - { name: strict, listen: "127.0.0.1:0", tls: starttls, require_tls: true }',
    '  - { name: submission, listen: "127.0.0.1:0", tls: starttls, auth: required }',
    '  - { name: smtps, listen: "127.0.0.1:0", tls: implicit, auth: optional }',
  ].join('\n'), { authenticator: users });
});
after(async () => {
  await gw.stop();
  rmSync(cert.dir, { recursive: true, force: true });
});

async function greeted(port: number): Promise<SmtpTestClient> {
  const c = await SmtpTestClient.connect(port);
  assert.equal(await c.code(), '220');
  return c;
}

test('STARTTLS: handshake, state reset, no STARTTLS in the new EHLO; TLS recorded in Received', { timeout: 20_000 }, async () => {
  const c = await greeted(gw.ports.inbound);
  c.write('EHLO client.test\r\n');
  const ehlo = await c.reply();
  assert.ok(ehlo.lines.includes('STARTTLS'));
  assert.equal(await c.cmd('STARTTLS'), '220 2.0.0');
  const tls = await c.startTls();
  assert.match(tls.getProtocol() ?? '', /^TLSv1\.[23]$/);
  assert.equal(await c.cmd('MAIL FROM:<a@client.test>'), '503 5.5.1', 'the session starts over after TLS');
  c.write('EHLO client.test\r\n');
  const again = await c.reply();
  assert.equal(again.code, 250);
  assert.ok(!again.lines.includes('STARTTLS'));
  await c.cmd('MAIL FROM:<a@client.test>');
  await c.cmd('RCPT TO:<b@example.test>');
  assert.equal(await c.cmd('DATA'), '354');
  c.write('Subject: tls\r\n\r\nsecret\r\n.\r\n');
  const done = await c.reply();
  assert.equal(done.code, 250);
  const id = /queued as (\S+)/.exec(done.lines[0])![1];
  const body = gw.gateway.store.readBody(id).toString();
  assert.match(body, /with ESMTPS \(using TLSv1\.[23] with cipher [A-Z0-9_-]+\) id /);
  // … and in the envelope and the tracking event of the acceptance.
  const tlsInfo = gw.gateway.store.getMessage(id)!.envelope.client.tls;
  assert.match(tlsInfo?.version ?? '', /^TLSv1\.[23]$/);
  const accepted = gw.gateway.store.messageEvents(id).find((e) => e.kind === 'accepted');
  assert.deepEqual((accepted?.detail as { tls?: unknown }).tls, tlsInfo);
  c.close();
});

test('STARTTLS injection: commands pipelined in plaintext after STARTTLS are never answered', { timeout: 20_000 }, async () => {
  const c = await greeted(gw.ports.inbound);
  c.write('EHLO client.test\r\n');
  await c.reply();
  c.write('STARTTLS\r\nRSET\r\nMAIL FROM:<evil@attacker.test>\r\n');
  assert.equal(await c.code(), '220 2.0.0');
  await c.startTls();
  c.write('EHLO client.test\r\n');
  const first = await c.reply();
  assert.equal(first.code, 250);
  assert.ok(first.lines.includes('PIPELINING'), `the first reply under TLS answers EHLO, not RSET: ${first.raw}`);
  assert.equal(await c.cmd('NOOP'), '250 2.0.0');
  assert.equal(c.pendingReplies, 0);
  c.close();
});

test('a listener that requires TLS: 530 5.7.0 before STARTTLS', { timeout: 20_000 }, async () => {
  const c = await greeted(gw.ports.strict);
  await c.cmd('EHLO client.test');
  assert.equal(await c.cmd('MAIL FROM:<a@client.test>'), '530 5.7.0');
  assert.equal(await c.cmd('STARTTLS'), '220 2.0.0');
  await c.startTls();
  await c.cmd('EHLO client.test');
  assert.equal(await c.cmd('MAIL FROM:<a@client.test>'), '250 2.1.0');
  c.close();
});

test('implicit TLS on its own listener: greeting under TLS, no STARTTLS offered, AUTH offered', { timeout: 20_000 }, async () => {
  const c = await SmtpTestClient.connectTls(gw.ports.smtps);
  assert.equal(await c.code(), '220');
  c.write('EHLO client.test\r\n');
  const ehlo = await c.reply();
  assert.ok(!ehlo.lines.includes('STARTTLS'));
  assert.ok(ehlo.lines.includes('AUTH PLAIN LOGIN'));
  assert.equal(await c.cmd(`AUTH PLAIN ${b64('\0alice@example.test\0wonderland')}`), '235 2.7.0');
  c.close();
});

test('submission: 538 before TLS, 530 without AUTH, 535 on bad credentials, 235 then MAIL accepted', { timeout: 20_000 }, async () => {
  const c = await greeted(gw.ports.submission);
  c.write('EHLO client.test\r\n');
  const ehlo = await c.reply();
  assert.ok(!ehlo.lines.some((l) => l.startsWith('AUTH')), 'no AUTH in plaintext');
  assert.equal(await c.cmd(`AUTH PLAIN ${b64('\0alice@example.test\0wonderland')}`), '538 5.7.11');
  await c.cmd('STARTTLS');
  await c.startTls();
  await c.cmd('EHLO client.test');
  assert.equal(await c.cmd('MAIL FROM:<alice@example.test>'), '530 5.7.0');
  assert.equal(await c.cmd(`AUTH PLAIN ${b64('\0alice@example.test\0wrong')}`), '535 5.7.8');
  assert.equal(await c.cmd('AUTH LOGIN'), '334');
  assert.equal(await c.cmd(b64('alice@example.test')), '334');
  assert.equal(await c.cmd(b64('wonderland')), '235 2.7.0');
  assert.equal(await c.cmd('MAIL FROM:<alice@example.test>'), '250 2.1.0');
  c.close();
});

test('SIGHUP reloads the certificate without a restart', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-sighup-'));
  const first = makeTestCertificate('first.test');
  const second = makeTestCertificate('second.test');
  try {
    copyFileSync(first.cert, join(dir, 'cert.pem'));
    copyFileSync(first.key, join(dir, 'key.pem'));
    const cfg = join(dir, 'postern.yaml');
    writeFileSync(cfg, [
      'hostname: mx.test',
      'store: { path: ./queue, min_free_space: 0 }',
      'listeners: [ { name: inbound, listen: "127.0.0.1:0", tls: starttls } ]',
      'tls: { cert: ./cert.pem, key: ./key.pem }',
      'delivery: { enabled: false }',
      'dns: { servers: ["127.0.0.1:9"] }',
      'logging: { level: warn }',
    ].join('\n'));
    const gw = await startChildGateway(cfg);
    const peerCn = async (): Promise<string> => {
      const c = await greeted(gw.port);
      await c.cmd('EHLO client.test');
      assert.equal(await c.cmd('STARTTLS'), '220 2.0.0');
      const s = await c.startTls();
      const cn = String(s.getPeerCertificate().subject.CN);
      c.close();
      return cn;
    };
    try {
      assert.equal(await peerCn(), 'first.test');
      copyFileSync(second.cert, join(dir, 'cert.pem'));
      copyFileSync(second.key, join(dir, 'key.pem'));
      gw.child.kill('SIGHUP');
      let cn = '';
      for (let i = 0; i < 50 && cn !== 'second.test'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        cn = await peerCn();
      }
      assert.equal(cn, 'second.test');
    } finally {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
  } finally {
    for (const d of [dir, first.dir, second.dir]) rmSync(d, { recursive: true, force: true });
  }
});
