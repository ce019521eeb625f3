/**
 * Fuzzing the TLS upgrade over real sockets: random bytes before STARTTLS, random bytes pipelined
 * after it, garbage instead of a TLS handshake, random bytes and random AUTH exchanges after a
 * real handshake, garbage to the implicit-TLS listener. The gateway runs in this process: a crash
 * would end the test. Afterwards a normal client still delivers on both listeners.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import fc from 'fast-check';
import { SmtpTestClient } from '../support/smtp-test-client.js';
import { startTestGateway, type TestGateway } from '../support/test-gateway.js';
import { makeTestCertificate, tlsConfigLine, type TestCertificate } from '../support/test-certificate.js';
import type { Authenticator } from '../../src/server/authenticator.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const users: Authenticator = {
  async verify(u, p) {
    return u === 'alice@example.test' && p === 'wonderland' ? { kind: 'ok', user: u } : { kind: 'invalid' };
  },
};

let cert: TestCertificate;
let gw: TestGateway;
const crashes: unknown[] = [];
/** Runs that got through a real handshake (the fuzz must reach the TLS side, not only the plaintext one). */
let handshakes = 0;
const onCrash = (err: unknown): void => {
  crashes.push(err);
};

before(async () => {
  process.on('uncaughtException', onCrash);
  cert = makeTestCertificate();
  gw = await startTestGateway([
    tlsConfigLine(cert),
    'auth: { failure_delay: 0, max_failures_per_ip: 100000 }',
    'listeners:',
    '  - { name: starttls, listen: "127.0.0.1:0", tls: starttls, auth: optional }',
    '  - { name: smtps, listen: "127.0.0.1:0", tls: implicit, auth: optional }',
  ].join('\n'), { authenticator: users });
});
after(async () => {
  process.off('uncaughtException', onCrash);
  await gw?.stop();
  rmSync(cert.dir, { recursive: true, force: true });
});

/** Collects what the server sends; resolves waits on a pattern or a deadline. */
class Wire {
  text = '';
  closed = false;
  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.text += d.toString('latin1');
    });
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => undefined);
  }

  async waitFor(pattern: RegExp, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (pattern.test(this.text)) return true;
      if (this.closed) return false;
      await new Promise((r) => setTimeout(r, 5));
    }
    return pattern.test(this.text);
  }
}

function raw(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.once('error', reject);
  });
}

/** The TLS handshake on `socket`, or null when the server does not complete it in time. */
function handshake(socket: Socket, ms: number): Promise<TLSSocket | null> {
  return new Promise((resolve) => {
    const t = tlsConnect({ socket, rejectUnauthorized: false });
    const timer = setTimeout(() => {
      t.destroy();
      resolve(null);
    }, ms);
    t.once('secureConnect', () => {
      clearTimeout(timer);
      resolve(t);
    });
    t.once('error', () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
}

const bytes = (max: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength: max }).map((u) => Buffer.from(u));
const authExchange = fc.constantFrom(
  `AUTH PLAIN ${b64('\0alice@example.test\0wonderland')}\r\n`,
  `AUTH PLAIN ${b64('\0alice@example.test\0nope')}\r\n`,
  'AUTH LOGIN\r\n', `${b64('alice@example.test')}\r\n`, `${b64('wonderland')}\r\n`, '*\r\n', 'AUTH PLAIN\r\n', '=\r\n',
  '!!!\r\n', 'AUTH XOAUTH2 abc\r\n', `AUTH PLAIN ${'A'.repeat(20_000)}\r\n`, 'MAIL FROM:<alice@example.test>\r\n', 'RCPT TO:<x@elsewhere.test>\r\n',
);

test('fuzz: random bytes around STARTTLS, garbage handshakes, random AUTH under TLS — the gateway keeps serving', { timeout: 90_000 }, async () => {
  await fc.assert(fc.asyncProperty(
    bytes(200), bytes(200), fc.boolean(), bytes(300), fc.array(authExchange, { maxLength: 8 }), bytes(200),
    async (beforeTls, pipelined, realHandshake, garbage, auth, afterTls) => {
      const s = await raw(gw.ports.starttls);
      const wire = new Wire(s);
      try {
        await wire.waitFor(/^220 /, 2000);
        s.write(Buffer.concat([Buffer.from('EHLO fuzz.test\r\n'), beforeTls, Buffer.from('\r\nRSET\r\nSTARTTLS\r\n'), pipelined]));
        const ready = await wire.waitFor(/\r\n220 2\.0\.0 /, 300);
        if (!ready || !realHandshake) {
          if (!s.destroyed) s.write(garbage);
          await wire.waitFor(/$^/, 50);
          return;
        }
        const t = await handshake(s, 2000);
        if (t === null) return;
        handshakes++;
        const under = new Wire(t);
        t.write('EHLO fuzz.test\r\n');
        for (const line of auth) t.write(line);
        t.write(afterTls);
        await under.waitFor(/$^/, 30);
        t.destroy();
      } finally {
        s.destroy();
      }
    },
  ), { numRuns: 40 });

  await fc.assert(fc.asyncProperty(bytes(600), async (junk) => {
    const s = await raw(gw.ports.smtps);
    const wire = new Wire(s);
    s.write(junk);
    await wire.waitFor(/$^/, 20);
    s.destroy();
  }), { numRuns: 20 });

  assert.deepEqual(crashes, []);
  assert.ok(handshakes >= 5, `only ${handshakes} runs reached TLS`);
  console.log(`# ${handshakes} of 40 runs completed a TLS handshake after the fuzzed plaintext`);
  // A normal client, on each listener.
  for (const [listener, implicit] of [['starttls', false], ['smtps', true]] as const) {
    const c = implicit ? await SmtpTestClient.connectTls(gw.ports[listener]) : await SmtpTestClient.connect(gw.ports[listener]);
    try {
      assert.equal(await c.code(), '220');
      assert.equal(await c.cmd('EHLO client.test'), '250');
      if (!implicit) {
        assert.equal(await c.cmd('STARTTLS'), '220 2.0.0');
        await c.startTls();
        assert.equal(await c.cmd('EHLO client.test'), '250');
      }
      assert.equal(await c.cmd(`AUTH PLAIN ${b64('\0alice@example.test\0wonderland')}`), '235 2.7.0');
      assert.equal(await c.cmd('MAIL FROM:<alice@example.test>'), '250 2.1.0');
      assert.equal(await c.cmd('RCPT TO:<bob@example.test>'), '250 2.1.5');
      assert.equal(await c.cmd('DATA'), '354');
      c.write('Subject: after the fuzz\r\n\r\nstill here\r\n.\r\n');
      assert.match(await c.code(), /^250 2\.0\.0$/);
    } finally {
      c.close();
    }
  }
});
