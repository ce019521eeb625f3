/**
 * Receiving over real loopback sockets: every situation of the receiving core answered with
 * its exact code and enhanced code, bodies stored byte-exact, smuggling refused, the server
 * serving others while one client sends junk.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { SmtpTestClient, sendMessage } from '../support/smtp-test-client.js';
import { startTestGateway, type TestGateway } from '../support/test-gateway.js';
import type { PolicyEngine, SessionPolicy } from '../../src/policy/session-policy.js';
import { reply } from '../../src/smtp/reply.js';
import { formatMailbox } from '../../src/smtp/mailbox.js';

/** Rejects recipients whose local part is "unknown" (550 5.1.1); everything else is accepted. */
const rejectUnknown: PolicyEngine = {
  openSession(): SessionPolicy {
    return {
      senderGroup: 'TEST', policyName: 'ACCEPTED', limits: {}, rdns: null,
      connect: () => ({ kind: 'accept' }),
      helo: () => ({ kind: 'accept' }),
      mail: () => ({ kind: 'accept' }),
      rcpt: (f) => (formatMailbox(f.forwardPath).startsWith('unknown@')
        ? { kind: 'reject', reply: reply('rcpt.unknown-user') } : { kind: 'accept' }),
    };
  },
};

let gw: TestGateway;
before(async () => {
  gw = await startTestGateway('limits: { max_message_size: 10MB, max_header_lines: 50 }', { policy: rejectUnknown });
});
after(async () => {
  await gw.stop();
});

async function session(): Promise<SmtpTestClient> {
  const c = await SmtpTestClient.connect(gw.port);
  assert.equal(await c.code(), '220');
  return c;
}

/** Strips the Received: header the gateway prepends (it is the first header and ends at the date line). */
function withoutTrace(body: Buffer): Buffer {
  const text = body.toString('latin1');
  assert.match(text, /^Received: from client\.test \(\[127\.0\.0\.1\]\)\r\n\tby mx\.test \(Postern\) with ESMTP id \w+\r\n/);
  const end = text.indexOf(' +0000\r\n') + ' +0000\r\n'.length;
  return body.subarray(end);
}

test('greeting and EHLO over a socket', { timeout: 10_000 }, async () => {
  const c = await SmtpTestClient.connect(gw.port);
  const greeting = await c.reply();
  assert.equal(greeting.raw, '220 mx.test ESMTP Postern\r\n');
  c.write('EHLO client.test\r\n');
  const ehlo = await c.reply();
  assert.equal(ehlo.code, 250);
  assert.deepEqual(ehlo.lines.slice(1), ['PIPELINING', 'SIZE 10485760', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'DSN', 'CHUNKING', 'HELP']);
  assert.equal(await c.cmd('QUIT'), '221 2.0.0');
  await c.waitClosed();
});

test('a message with dot-stuffed lines, 8-bit bytes and long lines is stored byte-exact', { timeout: 20_000 }, async () => {
  const original = Buffer.concat([
    Buffer.from('From: a@client.test\r\nTo: b@example.test\r\nSubject: bytes\r\n\r\n'),
    Buffer.from('.starts with a dot\r\n..two dots\r\n.\r\n'),
    Buffer.from([0xe2, 0x82, 0xac, 0xff, 0xfe, 0x80, 0x20, 0x0d, 0x0a]),
    Buffer.from(`${'L'.repeat(20_000)}\r\n`),
    Buffer.from('last line\r\n'),
  ]);
  // Dot-stuff as a client must (RFC 5321 §4.5.2).
  const stuffed = Buffer.from(original.toString('latin1').replace(/(^|\r\n)\./g, '$1..'), 'latin1');
  const id = await sendMessage(gw.port, { from: 'a@client.test', to: ['b@example.test'], data: stuffed });
  const msg = gw.gateway.store.getMessage(id);
  assert.ok(msg, 'message is in the queue');
  assert.equal(msg.envelope.sender, 'a@client.test');
  assert.deepEqual(msg.recipients.map((r) => r.address), ['b@example.test']);
  const stored = gw.gateway.store.readBody(id);
  assert.deepEqual(withoutTrace(stored), original);
  assert.match(stored.toString('latin1'), /^Received: [^]*\r\n\tfor <b@example\.test>;\r\n\t\w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r\n/);
});

test('PIPELINING: MAIL/RCPT/RCPT/DATA in one write get four replies, in order', { timeout: 10_000 }, async () => {
  const c = await session();
  await c.cmd('EHLO client.test');
  c.write('MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.test>\r\nRCPT TO:<unknown@example.test>\r\nDATA\r\n');
  assert.deepEqual([await c.code(), await c.code(), await c.code(), await c.code()], ['250 2.1.0', '250 2.1.5', '550 5.1.1', '354']);
  c.write('Subject: p\r\n\r\nbody\r\n.\r\nQUIT\r\n');
  assert.equal(await c.code(), '250 2.0.0');
  assert.equal(await c.code(), '221 2.0.0');
  assert.equal(c.pendingReplies, 0);
  await c.waitClosed();
});

test('every situation of the receiving core gets its exact reply', { timeout: 20_000 }, async () => {
  const c = await session();
  // Before HELO.
  assert.equal(await c.cmd('MAIL FROM:<a@client.test>'), '503 5.5.1');
  assert.equal(await c.cmd('EHLO'), '501 5.5.4');
  assert.equal(await c.cmd('EHLO client.test'), '250');
  // Sequence: RCPT and DATA without MAIL.
  assert.equal(await c.cmd('RCPT TO:<b@example.test>'), '503 5.5.1');
  c.close();

  const d = await session();
  await d.cmd('EHLO client.test');
  assert.equal(await d.cmd('MAIL FROM:a@client.test'), '501 5.5.4');
  assert.equal(await d.cmd('MAIL FROM:<a@client.test> FOO=1'), '555 5.5.4');
  assert.equal(await d.cmd('MAIL FROM:<a@client.test> BODY=BINARYMIME'), '504 5.5.4');
  d.close();

  const e = await session();
  await e.cmd('EHLO client.test');
  assert.equal(await e.cmd('MAIL FROM:<a..b@client.test>'), '553 5.1.7');
  assert.equal(await e.cmd('MAIL FROM:<a@client.test> SIZE=20000000'), '552 5.3.4');
  assert.equal(await e.cmd('MAIL FROM:<a@client.test> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=x1'), '250 2.1.0');
  assert.equal(await e.cmd('MAIL FROM:<a@client.test>'), '503 5.5.1');
  assert.equal(await e.cmd('RCPT TO:<b@@example.test>'), '553 5.1.3');
  e.close();

  const f = await session();
  await f.cmd('EHLO client.test');
  await f.cmd('MAIL FROM:<>');
  assert.equal(await f.cmd('RCPT TO:b@example.test'), '501 5.5.4');
  assert.equal(await f.cmd('DATA'), '554 5.5.1', 'an RCPT was given but none accepted');
  assert.equal(await f.cmd('RSET'), '250 2.0.0');
  assert.equal(await f.cmd('MAIL FROM:<>'), '250 2.1.0');
  assert.equal(await f.cmd('DATA'), '503 5.5.1', 'no RCPT at all');
  assert.equal(await f.cmd('RCPT TO:<Postmaster> NOTIFY=FAILURE ORCPT=rfc822;postmaster@example.test'), '250 2.1.5');
  f.close();

  const g = await session();
  assert.equal(await g.cmd('NOOP'), '250 2.0.0');
  assert.equal(await g.cmd('VRFY user'), '252 2.5.0');
  assert.equal(await g.cmd('HELP'), '214 2.0.0');
  assert.equal(await g.cmd('HELP STATUS'), '211 2.0.0');
  assert.equal(await g.cmd('HELP FOO'), '504 5.5.4');
  assert.equal(await g.cmd('EXPN list'), '502 5.5.1');
  assert.equal(await g.cmd('TURN'), '502 5.5.1');
  g.close();

  const h = await session();
  assert.equal(await h.cmd('SEND FROM:<a@b.test>'), '502 5.5.1');
  assert.equal(await h.cmd('SOML FROM:<a@b.test>'), '502 5.5.1');
  assert.equal(await h.cmd('SAML FROM:<a@b.test>'), '502 5.5.1');
  assert.equal(await h.cmd('XYZZY'), '500 5.5.2');
  assert.equal(await h.cmd('QUIT'), '421 4.7.0', 'four bad commands: the next one gets 421');
  await h.waitClosed();

  const i = await session();
  assert.equal(await i.cmd(`NOOP ${'x'.repeat(600)}`), '500 5.5.6');
  assert.equal(await i.cmd('QUIT'), '221 2.0.0');
  await i.waitClosed();
});

test('too many errors: 421 4.7.0 and the connection closes', { timeout: 10_000 }, async () => {
  const c = await session();
  for (let n = 0; n < 4; n++) assert.equal(await c.cmd('BOGUS'), '500 5.5.2');
  assert.equal(await c.code(), '421 4.7.0');
  await c.waitClosed();
});

for (const seq of ['\n.\n', '\n.\r\n', '\r.\r\n', '\r\n.\n']) {
  test(`SMTP smuggling ${JSON.stringify(seq)}: no end of data, no smuggled commands, 554 5.5.2`, { timeout: 10_000 }, async () => {
    const before = gw.gateway.store.counts().queued;
    const c = await session();
    await c.cmd('EHLO client.test');
    await c.cmd('MAIL FROM:<a@client.test>');
    await c.cmd('RCPT TO:<b@example.test>');
    assert.equal(await c.cmd('DATA'), '354');
    c.write(`Subject: one\r\n\r\nfirst${seq}MAIL FROM:<admin@example.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n`);
    // The only reply: the whole message refused after the real CRLF.CRLF.
    assert.equal(await c.code(), '554 5.5.2');
    assert.equal(await c.cmd('NOOP'), '250 2.0.0');
    assert.equal(c.pendingReplies, 0, 'no reply to a smuggled command');
    assert.equal(gw.gateway.store.counts().queued, before, 'nothing queued');
    c.close();
  });
}

test('junk does not stop the server: 1 MB line, NUL bytes and binary garbage get 500 or a clean close', { timeout: 20_000 }, async () => {
  const junk = await session();
  junk.write('x'.repeat(1024 * 1024));
  assert.equal(await junk.code(), '500 5.5.6');
  const nul = await session();
  assert.equal(await nul.cmd('MAIL\0 FROM:<a@b.test>'), '500 5.5.2');
  const bin = await session();
  const garbage = Buffer.alloc(4096);
  for (let k = 0; k < garbage.length; k++) garbage[k] = (k * 131 + 7) & 0xff;
  bin.write(garbage);
  // Meanwhile a normal client is served.
  const id = await sendMessage(gw.port, { from: 'a@client.test', to: ['b@example.test'], data: 'Subject: fine\r\n\r\nok\r\n' });
  assert.ok(gw.gateway.store.getMessage(id));
  const r = await bin.reply().then((x) => x.code, () => 'closed');
  assert.ok(r === 500 || r === 421 || r === 'closed', String(r));
  junk.close();
  nul.close();
  bin.close();
});

test('BDAT: chunks over a socket are stored raw (no dot-unstuffing)', { timeout: 10_000 }, async () => {
  const c = await session();
  await c.cmd('EHLO client.test');
  await c.cmd('MAIL FROM:<a@client.test>');
  await c.cmd('RCPT TO:<b@example.test>');
  c.write('BDAT 14\r\nSubject: b\r\n\r\nBDAT 7 LAST\r\n.x\r\n.\r\n');
  assert.equal(await c.code(), '250 2.0.0');
  const last = await c.reply();
  assert.equal(last.code, 250);
  const id = /queued as (\S+)/.exec(last.lines[0])![1];
  assert.equal(withoutTrace(gw.gateway.store.readBody(id)).toString(), 'Subject: b\r\n\r\n.x\r\n.\r\n');
  c.write('MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.test>\r\nBDAT 7 LAST\r\nab\rcd\r\n');
  assert.deepEqual([await c.code(), await c.code(), await c.code()], ['250 2.1.0', '250 2.1.5', '554 5.5.2']);
  c.close();
});

test('size and header limits over a socket: 552 5.3.4 after the data, and a close past twice the limit', { timeout: 20_000 }, async () => {
  const small = await startTestGateway('limits: { max_message_size: 2KB, max_header_lines: 5 }');
  try {
    const c = await SmtpTestClient.connect(small.port);
    await c.code();
    await c.cmd('EHLO client.test');
    const envelope = async (): Promise<void> => {
      assert.equal(await c.cmd('MAIL FROM:<a@client.test>'), '250 2.1.0');
      assert.equal(await c.cmd('RCPT TO:<b@example.test>'), '250 2.1.5');
      assert.equal(await c.cmd('DATA'), '354');
    };
    await envelope();
    c.write(`Subject: big\r\n\r\n${`${'b'.repeat(98)}\r\n`.repeat(30)}.\r\n`); // 3 KB
    assert.equal(await c.code(), '552 5.3.4');
    await envelope();
    c.write(`${Array.from({ length: 6 }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\n\r\nbody\r\n.\r\n`);
    assert.equal(await c.code(), '552 5.3.4', 'six header lines, limit five');
    assert.equal(small.gateway.store.counts().queued, 0);
    await envelope();
    c.write(`${'c'.repeat(998)}\r\n`.repeat(5)); // 5 KB, more than twice 2 KB
    assert.equal(await c.code(), '552 5.3.4');
    await c.waitClosed();
  } finally {
    await small.stop();
  }
});
