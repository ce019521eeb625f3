/**
 * Property tests of the sans-IO session with STARTTLS and AUTH on: random mixes of commands,
 * SASL exchanges (valid, wrong, cancelled, broken base64), random bytes, and TLS handshakes that
 * complete at random moments. Nothing throws, every reply comes from the catalogue, and the
 * security invariants hold whatever the client does:
 *   - between "220 Ready to start TLS" and the handshake nothing is answered (plaintext is dropped);
 *   - the session is authenticated only after an accepted AUTH, and never across a handshake;
 *   - MAIL reaches the policy only when authenticated (requireAuth) and under TLS (requireTls);
 *   - input held back is bounded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ServerSession } from '../../src/smtp/server/server-session.js';
import { NEED_DATA, PAUSED, type ServerEvent, type Verdict } from '../../src/smtp/server/server-events.js';
import { reply } from '../../src/smtp/reply.js';
import { REPLY_CATALOGUE } from '../../src/smtp/reply-catalogue.js';

const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64');
const KNOWN_CODES = new Set(Object.values(REPLY_CATALOGUE).map((e) => e.code));

type Step =
  | { readonly kind: 'line'; readonly text: string }
  | { readonly kind: 'bytes'; readonly data: Uint8Array }
  | { readonly kind: 'handshake' };

const LINES = [
  'EHLO c.test', 'HELO c.test', 'STARTTLS', 'RSET', 'NOOP', 'QUIT', 'HELP', 'DATA', 'Subject: x', '', '.', 'BDAT 4 LAST',
  'MAIL FROM:<alice@example.test>', 'MAIL FROM:<>', 'MAIL FROM:<alice@example.test> AUTH=alice@example.test',
  'RCPT TO:<bob@example.test>', 'RCPT TO:<user@elsewhere.test>',
  `AUTH PLAIN ${b64('\0alice\0pw')}`, `AUTH PLAIN ${b64('\0alice\0wrong')}`, `AUTH PLAIN ${b64('bob\0alice\0pw')}`,
  'AUTH PLAIN', 'AUTH LOGIN', `AUTH LOGIN ${b64('alice')}`, 'AUTH CRAM-MD5', 'AUTH', 'AUTH PLAIN =',
  b64('alice'), b64('pw'), b64('\0alice\0pw'), '*', '=', 'not base64!', '====', b64('x'.repeat(9000)),
];

const line = (text: string): Step => ({ kind: 'line', text });
const HANDSHAKE: Step = { kind: 'handshake' };

/** Fragments that make progress (a whole AUTH, a STARTTLS and its handshake, a transaction), mixed with noise. */
const fragmentArb: fc.Arbitrary<readonly Step[]> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...LINES.filter((l) => l !== 'QUIT')).map((t) => [line(t)]) },
  { weight: 3, arbitrary: fc.constant([line('EHLO c.test')]) },
  { weight: 2, arbitrary: fc.constantFrom(
    [line(`AUTH PLAIN ${b64('\0alice\0pw')}`)],
    [line('AUTH LOGIN'), line(b64('alice')), line(b64('pw'))],
    [line('AUTH PLAIN'), line(b64('\0alice\0pw'))],
    [line(`AUTH PLAIN ${b64('\0alice\0nope')}`)],
  ) },
  { weight: 3, arbitrary: fc.constantFrom(
    [line('STARTTLS'), HANDSHAKE],
    [line('STARTTLS'), line('RSET'), line(`AUTH PLAIN ${b64('\0alice\0pw')}`), line('MAIL FROM:<alice@example.test>'), HANDSHAKE],
    [line('STARTTLS')],
    [HANDSHAKE],
  ) },
  { weight: 2, arbitrary: fc.constant(['MAIL FROM:<alice@example.test>', 'RCPT TO:<user@elsewhere.test>', 'DATA', 'Subject: x', '', 'body', '.'].map(line)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((data): Step[] => [{ kind: 'bytes', data }]) },
  { weight: 1, arbitrary: fc.constant([line('QUIT')]) },
);
const stepsArb: fc.Arbitrary<Step[]> = fc.array(fragmentArb, { maxLength: 25 }).map((f) => f.flat());

const optionsArb = fc.record({
  requireAuth: fc.boolean(),
  requireTls: fc.boolean(),
  authRequiresTls: fc.boolean(),
  tlsActive: fc.boolean(),
  starttlsFails: fc.boolean(),
});

test('property: STARTTLS and AUTH under random input — no throw, catalogue replies, invariants hold', () => {
  fc.assert(fc.property(optionsArb, stepsArb, fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 4 }), (o, steps, splits) => {
    const s = new ServerSession({
      hostname: 'mx.test', banner: 'Postern', clientName: '[192.0.2.1]',
      tlsAvailable: true, tlsActive: o.tlsActive, requireTls: o.requireTls,
      authMechanisms: ['PLAIN', 'LOGIN'], authRequiresTls: o.authRequiresTls, requireAuth: o.requireAuth, maxAuthFailures: 3,
      limits: { maxErrors: 1000, maxCommandsWithoutTransaction: 10_000 },
    });
    let upgrading = false;
    let tls = o.tlsActive;
    /** An AUTH was accepted since the last handshake. */
    let authAccepted = false;
    const out: string[] = [];

    const decide = (e: ServerEvent): Verdict | null => {
      switch (e.type) {
        case 'auth':
          if (e.username === 'alice' && e.password === 'pw' && (e.authzid === '' || e.authzid === 'alice')) {
            authAccepted = true;
            return { kind: 'accept' };
          }
          return { kind: 'reject', reply: reply('auth.invalid-credentials') };
        case 'starttls':
          return o.starttlsFails ? { kind: 'reject', reply: reply('tls.unavailable') } : { kind: 'accept' };
        case 'mail':
          if (o.requireAuth) assert.ok(s.authenticatedUser !== null, 'MAIL reached the policy without AUTH');
          if (o.requireTls) assert.ok(tls, 'MAIL reached the policy before TLS');
          return { kind: 'accept' };
        case 'message-end':
          return { kind: 'accept', reply: reply('data.queued', { id: 'Q1' }) };
        case 'connect': case 'helo': case 'rcpt': case 'data-start': case 'status-request':
          return { kind: 'accept' };
        default:
          return null;
      }
    };

    const run = (): void => {
      for (;;) {
        const e = s.nextEvent();
        if (e === NEED_DATA || e === PAUSED) break;
        if (e.type === 'tls-upgrade') {
          assert.ok(!upgrading);
          upgrading = true;
        }
        if (e.type === 'auth' && o.requireTls) assert.ok(tls, 'AUTH checked before TLS on a TLS-only listener');
        const v = decide(e);
        if (v) s.answer(v);
      }
      const sent = s.dataToSend();
      if (sent) {
        const text = sent.toString('utf8');
        assert.ok(!upgrading || /^220 2\.0\.0 /.test(text.split('\r\n').filter((l) => l !== '').pop() ?? ''), `answered while the handshake was pending: ${text}`);
        out.push(text);
      }
      if (s.authenticatedUser !== null) assert.ok(authAccepted, 'authenticated without an accepted AUTH');
      assert.ok(s.bufferedInput <= 64 * 1024, `input held back: ${s.bufferedInput}`);
    };

    run();
    const fed = (data: Buffer): void => {
      const before = out.length;
      const wasUpgrading = upgrading;
      let i = 0;
      let k = 0;
      while (i < data.length) {
        const n = splits[k++ % splits.length];
        s.receiveData(data.subarray(i, i + n));
        run();
        i += n;
      }
      if (wasUpgrading) assert.equal(out.length, before, 'plaintext after STARTTLS was answered');
    };
    for (const step of steps) {
      if (s.isClosed) break;
      if (step.kind === 'handshake') {
        if (!upgrading) continue;
        upgrading = false;
        tls = true;
        authAccepted = false;
        s.tlsEstablished();
        assert.equal(s.authenticatedUser, null, 'AUTH survived the handshake');
        assert.equal(s.helo, null, 'HELO survived the handshake');
        run();
        continue;
      }
      fed(step.kind === 'line' ? Buffer.from(`${step.text}\r\n`, 'latin1') : Buffer.from(step.data));
    }
    for (const text of out) {
      for (const line of text.split('\r\n')) {
        if (line === '') continue;
        assert.match(line, /^\d{3}(?:[ -]|$)/, `not a reply line: ${JSON.stringify(line)}`);
        assert.ok(KNOWN_CODES.has(Number(line.slice(0, 3))), `not a catalogue code: ${line}`);
      }
    }
  }), { numRuns: 1500 });
});
