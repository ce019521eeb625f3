/**
 * STARTTLS (RFC 3207) and AUTH (RFC 4954) in the pure server session.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionDriver } from '../support/session-driver.js';
import { reply } from '../../src/smtp/reply.js';
import type { ServerEvent } from '../../src/smtp/server/server-events.js';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

function tlsSession(extra: Record<string, unknown> = {}): SessionDriver {
  const d = new SessionDriver({ tlsAvailable: true, authMechanisms: ['PLAIN', 'LOGIN'], limits: { maxErrors: 100 }, ...extra });
  d.take();
  return d;
}

function upgrade(d: SessionDriver): void {
  assert.ok(d.events.some((e) => e.type === 'tls-upgrade'));
  d.session.tlsEstablished();
  d.run();
}

test('STARTTLS: offered before TLS, 220 2.0.0, state reset after the handshake, not offered again', () => {
  const d = tlsSession();
  d.feed('EHLO c.test\r\n');
  const ehlo = d.take();
  assert.match(ehlo, /250[- ]STARTTLS\r\n/);
  assert.doesNotMatch(ehlo, /AUTH/, 'AUTH only under TLS');
  d.feed('MAIL FROM:<a@c.test>\r\nSTARTTLS\r\n');
  assert.deepEqual(d.takeCodes(), ['250 2.1.0', '503 5.5.1'], 'no STARTTLS inside a transaction');
  d.feed('RSET\r\nSTARTTLS\r\n');
  assert.deepEqual(d.takeCodes(), ['250 2.0.0', '220 2.0.0']);
  upgrade(d);
  assert.equal(d.session.isTlsActive, true);
  d.feed('MAIL FROM:<a@c.test>\r\n');
  assert.deepEqual(d.takeCodes(), ['503 5.5.1'], 'HELO knowledge discarded (RFC 3207 §4.2)');
  d.feed('EHLO c.test\r\n');
  const again = d.take();
  assert.doesNotMatch(again, /STARTTLS/);
  assert.match(again, /250[- ]AUTH PLAIN LOGIN\r\n/);
  d.feed('STARTTLS\r\n');
  assert.deepEqual(d.takeCodes(), ['503 5.5.1']);
});

test('STARTTLS injection: plaintext pipelined after STARTTLS is never answered', () => {
  const d = tlsSession();
  d.feed('EHLO c.test\r\n').take();
  d.feed('STARTTLS\r\nRSET\r\nMAIL FROM:<evil@x.test>\r\n');
  assert.deepEqual(d.takeCodes(), ['220 2.0.0']);
  d.feed('NOOP\r\n'); // still plaintext before the handshake: ignored
  assert.deepEqual(d.takeCodes(), []);
  upgrade(d);
  assert.deepEqual(d.takeCodes(), []);
  assert.equal(d.events.filter((e) => e.type === 'mail').length, 0);
  d.feed('EHLO c.test\r\n');
  assert.deepEqual(d.takeCodes(), ['250']);
});

test('STARTTLS when TLS cannot start now: 454 4.7.0; not configured: 502', () => {
  const d = tlsSession();
  d.setDecider((e) => (e.type === 'starttls' ? { kind: 'reject', reply: reply('tls.unavailable') } : undefined));
  d.feed('EHLO c.test\r\nSTARTTLS\r\n');
  assert.deepEqual(d.takeCodes(), ['250', '454 4.7.0']);
  const plain = new SessionDriver({ limits: { maxErrors: 100 } });
  plain.take();
  plain.feed('STARTTLS\r\n');
  assert.deepEqual(plain.takeCodes(), ['502 5.5.1']);
});

test('TLS required: 530 5.7.0 for MAIL before STARTTLS', () => {
  const d = tlsSession({ requireTls: true });
  d.feed('EHLO c.test\r\nMAIL FROM:<a@c.test>\r\nNOOP\r\nVRFY x\r\n');
  assert.deepEqual(d.takeCodes(), ['250', '530 5.7.0', '250 2.0.0', '530 5.7.0']);
  d.feed('STARTTLS\r\n').take();
  upgrade(d);
  d.feed('EHLO c.test\r\nMAIL FROM:<a@c.test>\r\n');
  assert.deepEqual(d.takeCodes(), ['250', '250 2.1.0']);
});

test('AUTH before TLS: 538 5.7.11; without mechanisms: 502', () => {
  const d = tlsSession();
  d.feed('EHLO c.test\r\nAUTH PLAIN\r\n');
  assert.deepEqual(d.takeCodes(), ['250', '538 5.7.11']);
});

function authed(decide: (e: ServerEvent) => boolean, extra: Record<string, unknown> = {}): SessionDriver {
  const d = tlsSession({ tlsActive: true, ...extra });
  d.setDecider((e) => (e.type === 'auth'
    ? (decide(e) ? { kind: 'accept' } : { kind: 'reject', reply: reply('auth.invalid-credentials') })
    : undefined));
  d.feed('EHLO c.test\r\n').take();
  return d;
}

test('AUTH PLAIN with an initial response: 235 2.7.0; again: 503 5.5.1', () => {
  let seen: ServerEvent | null = null;
  const d = authed((e) => {
    seen = e;
    return e.type === 'auth' && e.username === 'alice' && e.password === 'secret';
  });
  d.feed(`AUTH PLAIN ${b64('\0alice\0secret')}\r\n`);
  assert.deepEqual(d.takeCodes(), ['235 2.7.0']);
  assert.deepEqual(seen, { type: 'auth', mechanism: 'PLAIN', authzid: '', username: 'alice', password: 'secret' });
  assert.equal(d.session.authenticatedUser, 'alice');
  d.feed(`AUTH PLAIN ${b64('\0alice\0secret')}\r\n`);
  assert.deepEqual(d.takeCodes(), ['503 5.5.1']);
});

test('AUTH PLAIN without initial response, AUTH LOGIN: 334 challenges', () => {
  const d = authed((e) => e.type === 'auth' && e.password === 'pw');
  d.feed('AUTH PLAIN\r\n');
  assert.equal(d.take(), '334 \r\n'.trimEnd() + '\r\n');
  d.feed(`${b64('\0bob\0pw')}\r\n`);
  assert.deepEqual(d.takeCodes(), ['235 2.7.0']);
  const e = authed((ev) => ev.type === 'auth' && ev.username === 'carol' && ev.password === 'pw');
  e.feed('AUTH LOGIN\r\n');
  assert.equal(e.take(), `334 ${b64('Username:')}\r\n`);
  e.feed(`${b64('carol')}\r\n`);
  assert.equal(e.take(), `334 ${b64('Password:')}\r\n`);
  e.feed(`${b64('pw')}\r\n`);
  assert.deepEqual(e.takeCodes(), ['235 2.7.0']);
});

test('AUTH errors: 504 5.5.4 unknown mechanism, 501 5.5.2 broken base64, 501 cancel, 535 5.7.8, 421 after 3 failures', () => {
  const d = authed(() => false);
  d.feed('AUTH CRAM-MD5\r\nAUTH PLAIN !!!notbase64\r\nAUTH LOGIN\r\n*\r\n');
  assert.deepEqual(d.takeCodes(), ['504 5.5.4', '501 5.5.2', '334', '501 5.7.0']);
  d.feed(`AUTH PLAIN ${b64('\0x\0bad')}\r\nAUTH PLAIN ${b64('\0x\0bad')}\r\n`);
  assert.deepEqual(d.takeCodes(), ['535 5.7.8', '535 5.7.8']);
  d.feed(`AUTH PLAIN ${b64('\0x\0bad')}\r\n`);
  assert.deepEqual(d.takeCodes(), ['535 5.7.8', '421 4.7.0']);
  assert.ok(d.closed);
});

test('AUTH required: MAIL gets 530 5.7.0 until AUTH succeeded; AUTH inside a transaction: 503', () => {
  const d = authed(() => true, { requireAuth: true });
  d.feed('MAIL FROM:<a@c.test>\r\n');
  assert.deepEqual(d.takeCodes(), ['530 5.7.0']);
  d.feed(`AUTH PLAIN ${b64('\0a\0b')}\r\nMAIL FROM:<a@c.test>\r\nAUTH PLAIN ${b64('\0a\0b')}\r\n`);
  assert.deepEqual(d.takeCodes(), ['235 2.7.0', '250 2.1.0', '503 5.5.1']);
});
