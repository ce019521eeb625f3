/** Reading replies as a client: multi-line, enhanced status codes, bounds, and junk. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplyParser, encodeServerReply, formatServerReply, replyFromLines } from '../../src/smtp/reply-parser.js';
import { encodeReply, reply } from '../../src/smtp/reply.js';
import { parseEhloExtensions } from '../../src/smtp/client/ehlo-extensions.js';
import { REPLY_CATALOGUE, REPLY_IDS } from '../../src/smtp/reply-catalogue.js';

function parseAll(text: string, limits = {}): unknown[] {
  const p = new ReplyParser(limits);
  p.receiveData(Buffer.from(text, 'latin1'));
  const out: unknown[] = [];
  for (;;) {
    const r = p.next();
    if (r.kind === 'need-data') return out;
    out.push(r.kind === 'reply' ? r.reply : r);
    if (r.kind === 'error') return out;
  }
}

test('single and multi-line replies, with and without enhanced status codes', () => {
  assert.deepEqual(parseAll('220 mx.test ESMTP\r\n250 2.1.0 Ok\r\n354\r\n'), [
    { code: 220, enhanced: null, lines: ['mx.test ESMTP'] },
    { code: 250, enhanced: '2.1.0', lines: ['Ok'] },
    { code: 354, enhanced: null, lines: [''] },
  ]);
  assert.deepEqual(parseAll('550-5.1.1 The email account that you tried to reach\r\n550-5.1.1 does not exist.\r\n550 5.1.1 Try again.\r\n'), [
    { code: 550, enhanced: '5.1.1', lines: ['The email account that you tried to reach', 'does not exist.', 'Try again.'] },
  ]);
  // A status whose class does not match the code is text, not a status (RFC 2034 §4).
  assert.deepEqual(parseAll('450 5.1.1 confused\r\n'), [{ code: 450, enhanced: null, lines: ['5.1.1 confused'] }]);
  // Bare LF line ends are read too (robustness: replies carry nothing to smuggle).
  assert.deepEqual(parseAll('250-a\n250 b\n'), [{ code: 250, enhanced: null, lines: ['a', 'b'] }]);
});

test('replies split anywhere arrive whole, once', () => {
  const text = '250-mx.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n';
  for (let cut = 0; cut <= text.length; cut++) {
    const p = new ReplyParser();
    p.receiveData(Buffer.from(text.slice(0, cut)));
    const first = p.next();
    p.receiveData(Buffer.from(text.slice(cut)));
    const r = first.kind === 'reply' ? first : p.next();
    assert.equal(r.kind, 'reply', `cut at ${cut}`);
    assert.equal(p.next().kind, 'need-data');
  }
});

test('bounded: an endless line or an endless reply is an error, not a growing buffer', () => {
  const long = parseAll(`250 ${'x'.repeat(5000)}`, { maxLineLength: 4096 });
  assert.equal((long[0] as { kind: string }).kind, 'error');
  const many = parseAll('250-x\r\n'.repeat(20), { maxLines: 10 });
  assert.equal((many[0] as { kind: string }).kind, 'error');
  assert.equal((parseAll('hello\r\n')[0] as { kind: string }).kind, 'error');
  assert.equal((parseAll('600 no such class\r\n')[0] as { kind: string }).kind, 'error');
});

test('every catalogue reply the server sends reads back as sent', () => {
  for (const id of REPLY_IDS) {
    const r = reply(id, { hostname: 'mx.test', banner: 'Postern', address: 'a@b.test' }, id === 'helo.ok' ? ['PIPELINING', 'SIZE 1'] : []);
    const [parsed] = parseAll(encodeReply(r)) as { code: number; enhanced: string | null; lines: string[] }[];
    assert.equal(parsed.code, REPLY_CATALOGUE[id].code, id);
    assert.equal(parsed.enhanced, REPLY_CATALOGUE[id].enhanced, id);
    assert.deepEqual(parsed.lines, r.lines.map((l) => l.trimEnd()), id);
  }
});

test('formatting for diagnostics and the wire', () => {
  const r = replyFromLines(550, ['5.1.1 <x@y.test>: Recipient address rejected:', '5.1.1 User unknown']);
  assert.equal(formatServerReply(r), '550 5.1.1 <x@y.test>: Recipient address rejected: User unknown');
  assert.equal(encodeServerReply(r), '550-5.1.1 <x@y.test>: Recipient address rejected:\r\n550 5.1.1 User unknown\r\n');
  assert.equal(formatServerReply(replyFromLines(421, [''])), '421');
});

test('EHLO extensions', () => {
  const [r] = parseAll('250-mx.test Hello\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-8bitmime\r\n250-AUTH PLAIN login\r\n250-AUTH=LOGIN\r\n250-STARTTLS\r\n250 DSN\r\n') as Parameters<typeof parseEhloExtensions>[0][];
  const e = parseEhloExtensions(r);
  assert.equal(e.pipelining, true);
  assert.equal(e.size, 52428800);
  assert.equal(e.eightBitMime, true);
  assert.equal(e.starttls, true);
  assert.equal(e.dsn, true);
  assert.equal(e.smtputf8, false);
  assert.deepEqual(e.auth, ['PLAIN', 'LOGIN']);
  const [bare] = parseAll('250-x\r\n250 SIZE\r\n') as Parameters<typeof parseEhloExtensions>[0][];
  assert.equal(parseEhloExtensions(bare).size, 0, 'SIZE without a number: no fixed maximum');
});
