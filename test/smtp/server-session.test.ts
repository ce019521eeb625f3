/**
 * The server session as a pure state machine: bytes in, exact replies out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SessionDriver, replyCodes } from '../support/session-driver.js';
import { reply } from '../../src/smtp/reply.js';
import { REPLY_CATALOGUE } from '../../src/smtp/reply-catalogue.js';
import { ServerSession } from '../../src/smtp/server/server-session.js';
import { PAUSED, type ServerEvent } from '../../src/smtp/server/server-events.js';

const HELLO = 'EHLO client.test\r\n';
const ENVELOPE = 'MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.test>\r\n';

function greeted(opts = {}): SessionDriver {
  const d = new SessionDriver(opts);
  d.take();
  return d;
}

test('greeting, EHLO extensions and HELO', () => {
  const d = new SessionDriver({ limits: { maxMessageSize: 1234 } });
  assert.equal(d.take(), '220 mx.test ESMTP Postern\r\n');
  d.feed(HELLO);
  assert.equal(
    d.take(),
    '250-mx.test Hello [127.0.0.1]\r\n250-PIPELINING\r\n250-SIZE 1234\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n'
      + '250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250-CHUNKING\r\n250 HELP\r\n',
  );
  d.feed('HELO client.test\r\n');
  assert.equal(d.take(), '250 mx.test Hello [127.0.0.1]\r\n');
  d.feed('EHLO\r\n');
  assert.deepEqual(d.takeCodes(), ['501 5.5.4']);
});

test('sequence errors are 503 5.5.1; all recipients rejected gives 554 5.5.1 at DATA', () => {
  const d = greeted();
  d.feed('MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n');
  assert.deepEqual(d.takeCodes(), ['503 5.5.1', '503 5.5.1', '503 5.5.1']);
  const d2 = greeted({ limits: { maxErrors: 100 } });
  d2.feed(HELLO).take();
  d2.feed('RCPT TO:<c@d.test>\r\nDATA\r\nMAIL FROM:<a@b.test>\r\nMAIL FROM:<a@b.test>\r\nDATA\r\n');
  assert.deepEqual(d2.takeCodes(), ['503 5.5.1', '503 5.5.1', '250 2.1.0', '503 5.5.1', '503 5.5.1']);
  d2.setDecider((e) => (e.type === 'rcpt' ? { kind: 'reject', reply: reply('rcpt.unknown-user') } : undefined));
  d2.feed('RCPT TO:<x@example.test>\r\nDATA\r\n');
  assert.deepEqual(d2.takeCodes(), ['550 5.1.1', '554 5.5.1']);
});

test('PIPELINING: MAIL/RCPT/RCPT/DATA in one write get four replies in order; bytes after 354 are data', () => {
  const d = greeted();
  d.feed(HELLO).take();
  d.feed('MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\nRSET\r\nQUIT\r\n.\r\n');
  assert.deepEqual(d.takeCodes(), ['250 2.1.0', '250 2.1.5', '250 2.1.5', '354', '250 2.0.0']);
  assert.equal(d.body().toString(), 'RSET\r\nQUIT\r\n');
  assert.equal(d.closed, false);
});

test('replies wait for decisions: later pipelined commands stay unread until the answer', () => {
  const s = new ServerSession({ hostname: 'mx.test', banner: 'Postern', clientName: '[127.0.0.1]' });
  assert.equal((s.nextEvent() as ServerEvent).type, 'connect');
  s.answer({ kind: 'accept' });
  s.receiveData(Buffer.from(`${HELLO}${ENVELOPE}NOOP\r\n`));
  const seen: string[] = [];
  for (;;) {
    const e = s.nextEvent();
    assert.equal(typeof e, 'object');
    const ev = e as ServerEvent;
    if (ev.type === 'replied') continue;
    seen.push(ev.type);
    if (ev.type === 'rcpt') break;
    s.answer({ kind: 'accept' });
  }
  assert.deepEqual(seen, ['helo', 'mail', 'rcpt']);
  assert.equal(s.nextEvent(), PAUSED);
  assert.equal(s.nextEvent(), PAUSED);
  assert.ok(s.bufferedInput > 0, 'NOOP is still unread');
  s.answer({ kind: 'accept' });
  while (typeof s.nextEvent() !== 'symbol');
  assert.deepEqual(replyCodes(s.dataToSend()!.toString()), ['220', '250', '250 2.1.0', '250 2.1.5', '250 2.0.0']);
});

test('DATA: dot-unstuffing, 8-bit bytes and long lines are kept byte-exact', () => {
  const d = greeted();
  d.feed(HELLO + ENVELOPE + 'DATA\r\n').take();
  const long = 'x'.repeat(5000);
  const raw = Buffer.concat([
    Buffer.from('Subject: t\r\n\r\n..leading dot\r\n.\r\n'.replace('.\r\n', '..\r\n'), 'latin1'),
    Buffer.from([0xc3, 0xa4, 0xff, 0x80, 0x0d, 0x0a]),
    Buffer.from(`${long}\r\n...\r\n`),
  ]);
  // Feed in small irregular pieces to cross every boundary.
  for (let i = 0; i < raw.length; i += 7) d.feed(raw.subarray(i, i + 7));
  d.feed('.\r\n');
  assert.deepEqual(d.takeCodes(), ['250 2.0.0']);
  const expected = Buffer.concat([
    Buffer.from('Subject: t\r\n\r\n.leading dot\r\n.\r\n', 'latin1'),
    Buffer.from([0xc3, 0xa4, 0xff, 0x80, 0x0d, 0x0a]),
    Buffer.from(`${long}\r\n..\r\n`),
  ]);
  assert.deepEqual(d.body(), expected);
});

for (const seq of ['\n.\n', '\n.\r\n', '\r.\r\n', '\r\n.\n']) {
  test(`smuggling: ${JSON.stringify(seq)} never ends the data and never runs what follows`, () => {
    const d = greeted();
    d.feed(HELLO + ENVELOPE + 'DATA\r\n').take();
    d.feed(`Subject: x\r\n\r\nhello${seq}MAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\n`);
    assert.deepEqual(d.takeCodes(), [], 'nothing may be answered inside the data');
    assert.equal(d.events.filter((e) => e.type === 'mail').length, 1);
    d.feed('.\r\n');
    assert.deepEqual(d.takeCodes(), ['554 5.5.2']);
    assert.ok(d.events.some((e) => e.type === 'message-aborted' && e.reason === 'bare-line-ending'));
    assert.equal(d.events.filter((e) => e.type === 'message-end').length, 0);
    // The session goes on normally.
    d.feed('NOOP\r\n');
    assert.deepEqual(d.takeCodes(), ['250 2.0.0']);
  });
}

test('bare line endings may be normalised for trusted clients; still only CRLF.CRLF ends the data', () => {
  const d = greeted({ bareLineEndings: 'normalize' });
  d.feed(HELLO + ENVELOPE + 'DATA\r\n').take();
  d.feed('a\nb\rc\n.\nd\r\n.\r\n');
  assert.deepEqual(d.takeCodes(), ['250 2.0.0']);
  assert.equal(d.body().toString(), 'a\r\nb\r\nc\r\n\r\nd\r\n');
});

test('command lines: 512 octets max (500 5.5.6), a 1 MB line without CRLF is not buffered', () => {
  const d = greeted({ limits: { maxErrors: 100 } });
  d.feed(`NOOP ${'x'.repeat(505)}\r\n`); // 512 octets with CRLF: fine
  assert.deepEqual(d.takeCodes(), ['250 2.0.0']);
  d.feed(`NOOP ${'x'.repeat(506)}\r\n`);
  assert.deepEqual(d.takeCodes(), ['500 5.5.6']);
  for (let i = 0; i < 16; i++) {
    d.feed('y'.repeat(64 * 1024));
    assert.ok(d.session.bufferedInput <= 512, `buffered ${d.session.bufferedInput}`);
  }
  assert.deepEqual(d.takeCodes(), ['500 5.5.6']);
  d.feed('\r\nNOOP\r\n');
  assert.deepEqual(d.takeCodes(), ['250 2.0.0']);
});

test('NUL bytes, binary junk, bare LF and unknown verbs get 500 5.5.2', () => {
  const d = greeted({ limits: { maxErrors: 100 } });
  d.feed('NO\0OP\r\n\x01\x02\xff\r\nNOOP\nFOO bar\r\n');
  assert.deepEqual(d.takeCodes(), ['500 5.5.2', '500 5.5.2', '500 5.5.2', '500 5.5.2']);
});

test('VRFY 252, EXPN and RFC 821 verbs 502, HELP 214 / topic 504 / STATUS 211', () => {
  const d = greeted({ limits: { maxErrors: 100 } });
  d.feed('VRFY someone\r\nEXPN list\r\nTURN\r\nSEND FROM:<a@b>\r\nSOML FROM:<a@b>\r\nSAML FROM:<a@b>\r\nHELP\r\nHELP MAIL\r\nHELP nonsense\r\n');
  assert.deepEqual(d.takeCodes(), ['252 2.5.0', '502 5.5.1', '502 5.5.1', '502 5.5.1', '502 5.5.1', '502 5.5.1', '214 2.0.0', '214 2.0.0', '504 5.5.4']);
  d.setDecider((e) => (e.type === 'status-request'
    ? { kind: 'accept', reply: reply('help.status', { status: 'mx.test accepting' }, ['queue 0']) } : undefined));
  d.feed('HELP STATUS\r\n');
  assert.equal(d.take(), '211-2.0.0 mx.test accepting\r\n211 2.0.0 queue 0\r\n');
  d.feed('QUIT\r\n');
  assert.equal(d.take(), '221 2.0.0 mx.test closing connection\r\n');
  assert.ok(d.closed);
});

test('too many errors: 421 4.7.0 after the fourth bad command, then close', () => {
  const d = greeted();
  d.feed('FOO\r\nBAR\r\nBAZ\r\n');
  assert.deepEqual(d.takeCodes(), ['500 5.5.2', '500 5.5.2', '500 5.5.2']);
  assert.equal(d.closed, false);
  d.feed('QUX\r\nNOOP\r\n');
  assert.deepEqual(d.takeCodes(), ['500 5.5.2', '421 4.7.0']);
  assert.ok(d.closed);
});

test('too many commands without a transaction: 421 4.7.0', () => {
  const d = greeted({ limits: { maxCommandsWithoutTransaction: 3 } });
  d.feed('NOOP\r\nNOOP\r\nRSET\r\nNOOP\r\n');
  assert.deepEqual(d.takeCodes(), ['250 2.0.0', '250 2.0.0', '250 2.0.0', '421 4.7.0']);
  assert.ok(d.closed);
});

test('messages per connection: the next MAIL gets 421 4.7.0', () => {
  const d = greeted({ limits: { maxMessagesPerConnection: 1 } });
  d.feed(HELLO + ENVELOPE + 'DATA\r\nx\r\n.\r\n').take();
  d.feed('MAIL FROM:<a@client.test>\r\n');
  assert.deepEqual(d.takeCodes(), ['421 4.7.0']);
  assert.ok(d.closed);
});

test('recipients per message: the limit+1st gets 452 4.5.3', () => {
  const d = greeted({ limits: { maxRecipients: 100 } });
  d.feed(HELLO + 'MAIL FROM:<a@client.test>\r\n').take();
  let cmds = '';
  for (let i = 1; i <= 101; i++) cmds += `RCPT TO:<u${i}@example.test>\r\n`;
  d.feed(cmds);
  const codes = d.takeCodes();
  assert.equal(codes.length, 101);
  assert.deepEqual(codes[99], '250 2.1.5');
  assert.deepEqual(codes[100], '452 4.5.3');
  assert.equal(d.session.transaction?.recipients.length, 100);
});

test('SIZE above the maximum: 552 5.3.4 at MAIL; a message that grows too big: 552 5.3.4 after the data', () => {
  const d = greeted({ limits: { maxMessageSize: 100 } });
  d.feed(HELLO).take();
  d.feed('MAIL FROM:<a@client.test> SIZE=101\r\n');
  assert.deepEqual(d.takeCodes(), ['552 5.3.4']);
  d.feed(ENVELOPE + 'DATA\r\n').take();
  d.feed(`${'z'.repeat(150)}\r\n.\r\n`);
  assert.deepEqual(d.takeCodes(), ['552 5.3.4']);
  assert.ok(d.events.some((e) => e.type === 'message-aborted' && e.reason === 'too-big'));
  assert.equal(d.closed, false);
  d.feed(ENVELOPE + 'DATA\r\n').take();
  d.feed('z'.repeat(250));
  assert.deepEqual(d.takeCodes(), ['552 5.3.4'], 'past twice the limit the connection closes');
  assert.ok(d.closed);
});

test('header over the line limit: 552 5.3.4', () => {
  const d = greeted({ limits: { maxHeaderLines: 3 } });
  d.feed(HELLO + ENVELOPE + 'DATA\r\n').take();
  d.feed('A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\nbody\r\n.\r\n');
  assert.deepEqual(d.takeCodes(), ['552 5.3.4']);
  d.feed(ENVELOPE + 'DATA\r\n').take();
  d.feed('A: 1\r\nB: 2\r\nC: 3\r\n\r\nD: 4\r\nE: 5\r\n.\r\n');
  assert.deepEqual(d.takeCodes(), ['250 2.0.0']);
});

test('REJECT policy: 554 5.7.1 greeting, then 503 5.5.1 to everything but QUIT', () => {
  const d = new SessionDriver({}, (e) => (e.type === 'connect'
    ? { kind: 'reject', reply: reply('connect.rejected', { hostname: 'mx.test' }) } : undefined));
  assert.deepEqual(d.takeCodes(), ['554 5.7.1']);
  d.feed('EHLO x.test\r\nMAIL FROM:<a@b.test>\r\n');
  assert.deepEqual(d.takeCodes(), ['503 5.5.1', '503 5.5.1']);
  d.feed('QUIT\r\n');
  assert.deepEqual(d.takeCodes(), ['221 2.0.0']);
  assert.ok(d.closed);
});

test('TCPREFUSE closes without a greeting; 421 at connect closes', () => {
  const d = new SessionDriver({}, (e) => (e.type === 'connect' ? { kind: 'refuse' } : undefined));
  assert.equal(d.take(), '');
  assert.ok(d.closed);
  const d2 = new SessionDriver({}, (e) => (e.type === 'connect'
    ? { kind: 'reject', reply: reply('connect.limit', { hostname: 'mx.test' }), disconnect: true } : undefined));
  assert.deepEqual(d2.takeCodes(), ['421 4.7.0']);
  assert.ok(d2.closed);
});

test('timeouts and shutdown: 421 4.4.2 and 421 4.3.2', () => {
  const d = greeted();
  d.session.timeout('idle');
  d.run();
  assert.deepEqual(d.takeCodes(), ['421 4.4.2']);
  assert.ok(d.closed);
  const d2 = greeted();
  d2.session.shutdown();
  d2.feed('NOOP\r\n');
  assert.deepEqual(d2.takeCodes(), ['421 4.3.2']);
  assert.ok(d2.closed);
});

test('BDAT: chunks are raw (no dot-unstuffing), 250 per chunk, LAST queues', () => {
  const d = greeted();
  d.feed(HELLO + ENVELOPE).take();
  d.feed('BDAT 8\r\n..x\r\n.\r\nBDAT 5 LAST\r\nabc\r\n');
  assert.deepEqual(d.takeCodes(), ['250 2.0.0', '250 2.0.0']);
  assert.equal(d.body().toString(), '..x\r\n.\r\nabc\r\n');
  assert.ok(d.take() === '');
  // BDAT without a transaction: the chunk is still read, then 503.
  d.feed('BDAT 6\r\nNOOP\r\nNOOP\r\n');
  assert.deepEqual(d.takeCodes(), ['503 5.5.1', '250 2.0.0']);
});

test('BDAT 0 LAST and a bare LF inside BDAT data', () => {
  const d = greeted();
  d.feed(HELLO + ENVELOPE).take();
  d.feed('BDAT 4\r\nab\r\nBDAT 0 LAST\r\n');
  assert.deepEqual(d.takeCodes(), ['250 2.0.0', '250 2.0.0']);
  d.feed(ENVELOPE + 'BDAT 3 LAST\r\na\nb').take();
  assert.ok(d.events.some((e) => e.type === 'message-aborted' && e.reason === 'bare-line-ending'));
});

test('UTF-8 addresses need SMTPUTF8 (553 5.1.7 / 5.1.3)', () => {
  const d = greeted({ limits: { maxErrors: 100 } });
  d.feed(HELLO).take();
  d.feed(Buffer.from('MAIL FROM:<jörg@example.test>\r\n', 'utf8'));
  assert.deepEqual(d.takeCodes(), ['553 5.1.7']);
  d.feed(Buffer.from('MAIL FROM:<a@example.test>\r\nRCPT TO:<jörg@example.test>\r\nRSET\r\n', 'utf8'));
  assert.deepEqual(d.takeCodes(), ['250 2.1.0', '553 5.1.3', '250 2.0.0']);
  d.feed(Buffer.from('MAIL FROM:<jörg@example.test> SMTPUTF8\r\nRCPT TO:<jörg@exämple.test>\r\n', 'utf8'));
  assert.deepEqual(d.takeCodes(), ['250 2.1.0', '250 2.1.5']);
});

test('parameters: unknown 555 5.5.4, unimplemented value 504 5.5.4, DSN parameters kept', () => {
  const d = greeted({ limits: { maxErrors: 100 } });
  d.feed(HELLO).take();
  d.feed('MAIL FROM:<a@b.test> FOO=bar\r\nMAIL FROM:<a@b.test> BODY=BINARYMIME\r\n');
  assert.deepEqual(d.takeCodes(), ['555 5.5.4', '504 5.5.4']);
  d.feed('MAIL FROM:<a@b.test> RET=HDRS ENVID=abc+2Bd\r\nRCPT TO:<c@d.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c@d.test\r\n');
  assert.deepEqual(d.takeCodes(), ['250 2.1.0', '250 2.1.5']);
  const tx = d.session.transaction!;
  assert.equal(tx.params.ret, 'HDRS');
  assert.equal(tx.params.envid, 'abc+d');
  assert.deepEqual(tx.recipients[0].params.notify, ['SUCCESS', 'FAILURE']);
  assert.deepEqual(tx.recipients[0].params.orcpt, { addrType: 'rfc822', address: 'c@d.test' });
});

const COMMANDS = ['EHLO a.test', 'HELO a.test', 'MAIL FROM:<a@b.test>', 'RCPT TO:<c@d.test>', 'DATA', 'RSET', 'NOOP',
  'QUIT', 'BDAT 3', 'BDAT 2 LAST', 'VRFY x', 'HELP', 'HELP STATUS', '.', 'x\r\n.', 'MAIL FROM:<>', 'EXPN x', 'STARTTLS', 'AUTH PLAIN'];
const KNOWN_CODES = new Set(Object.values(REPLY_CATALOGUE).map((e) => `${e.code}`));

function assertCatalogueReplies(text: string): void {
  for (const line of text.split('\r\n')) {
    if (line === '') continue;
    assert.match(line, /^\d{3}[ -]/, `not a reply line: ${JSON.stringify(line)}`);
    assert.ok(KNOWN_CODES.has(line.slice(0, 3)), `reply code not in the catalogue: ${line}`);
  }
}

test('property: random bytes never throw, every reply comes from the catalogue', () => {
  fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 600 }), { maxLength: 20 }), (chunks) => {
    const d = greeted({ limits: { maxErrors: 1000, maxCommandsWithoutTransaction: 10000 } });
    for (const c of chunks) d.feed(Buffer.from(c));
    assertCatalogueReplies(d.take());
  }), { numRuns: 300 });
});

test('property: random command sequences never throw, every reply comes from the catalogue', () => {
  fc.assert(fc.property(
    fc.array(fc.constantFrom(...COMMANDS), { maxLength: 40 }),
    fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 5 }),
    fc.boolean(),
    (cmds, splits, rejectSome) => {
      const d = greeted({ limits: { maxErrors: 1000 } });
      let n = 0;
      d.setDecider((e) => (rejectSome && e.type === 'rcpt' && ++n % 2 === 0
        ? { kind: 'reject', reply: reply('rcpt.unknown-user') } : undefined));
      const all = Buffer.from(cmds.map((c) => `${c}\r\n`).join(''));
      let i = 0;
      let k = 0;
      while (i < all.length) {
        const len = splits[k++ % splits.length];
        d.feed(all.subarray(i, i + len));
        i += len;
      }
      assertCatalogueReplies(d.take());
    },
  ), { numRuns: 500 });
});
