// Command grammar: RFC 5321 §4.1.1, RFC 6531, RFC 1870, RFC 6152, RFC 3461, RFC 3030, RFC 4954.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeCommand, parseCommand, VERBS, type Command, type ParseResult } from '../../src/smtp/command.js';
import { NO_MAIL_PARAMS, NO_RCPT_PARAMS, type MailParams, type RcptParams } from '../../src/smtp/esmtp-params.js';
import type { Mailbox } from '../../src/smtp/mailbox.js';
import { REPLY_CATALOGUE, type ReplyId } from '../../src/smtp/reply-catalogue.js';

const enc = new TextEncoder();
const parse = (line: string | Uint8Array): ParseResult => parseCommand(typeof line === 'string' ? enc.encode(line) : line);
const bytes = (...parts: Array<string | number[]>): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...enc.encode(p)] : p)));

const mb = (localPart: string, domain: string, utf8 = false): Mailbox => ({ localPart, domain, utf8 });
const mail = (reversePath: Mailbox | null, p: Partial<MailParams> = {}): Command =>
  ({ verb: 'MAIL', reversePath, params: { ...NO_MAIL_PARAMS, ...p } });
const rcpt = (forwardPath: Mailbox, p: Partial<RcptParams> = {}): Command =>
  ({ verb: 'RCPT', forwardPath, params: { ...NO_RCPT_PARAMS, ...p } });

const VALID: ReadonlyArray<readonly [string, Command]> = [
  // HELO / EHLO (RFC 5321 §4.1.1.1)
  ['HELO mail.example.com', { verb: 'HELO', domain: 'mail.example.com' }],
  ['helo localhost', { verb: 'HELO', domain: 'localhost' }],
  [`EHLO ${Array(64).fill('abc').join('.')}`, { verb: 'EHLO', domain: Array(64).fill('abc').join('.') }],
  ['EHLO Mail.Example.COM', { verb: 'EHLO', domain: 'Mail.Example.COM' }],
  ['ehlo [192.0.2.1]', { verb: 'EHLO', domain: '[192.0.2.1]' }],
  ['EHLO [IPv6:2001:db8::1]', { verb: 'EHLO', domain: '[IPv6:2001:db8::1]' }],
  ['HELO [192.0.2.1]', { verb: 'HELO', domain: '[192.0.2.1]' }],
  ['EHLO   example.com  ', { verb: 'EHLO', domain: 'example.com' }],
  ['EHLO example.com\t', { verb: 'EHLO', domain: 'example.com' }],
  // MAIL (RFC 5321 §4.1.1.2)
  ['MAIL FROM:<user@example.com>', mail(mb('user', 'example.com'))],
  ['mail from:<user@example.com>', mail(mb('user', 'example.com'))],
  ['MAIL FROM: <user@example.com>', mail(mb('user', 'example.com'))],
  ['MAIL FROM:<>', mail(null)],
  ['MAIL FROM:<> ', mail(null)],
  ['MAIL FROM:<"john doe"@example.com>', mail(mb('"john doe"', 'example.com'))],
  ['MAIL FROM:<"a\\"b"@example.com>', mail(mb('"a\\"b"', 'example.com'))],
  ['MAIL FROM:<user@[192.0.2.1]>', mail(mb('user', '[192.0.2.1]'))],
  ['MAIL FROM:<@a.example,@b.example:user@c.example>', mail(mb('user', 'c.example'))],
  ['MAIL FROM:<user@example.com> SIZE=1000 BODY=8BITMIME',
    mail(mb('user', 'example.com'), { size: 1000, body: '8BITMIME' })],
  ['MAIL FROM:<user@example.com>  size=10   smtputf8 ', mail(mb('user', 'example.com'), { size: 10, smtputf8: true })],
  ['MAIL FROM:<> RET=HDRS ENVID=QQ+2B1 AUTH=<>', mail(null, { ret: 'HDRS', envid: 'QQ+1', auth: '<>' })],
  ['MAIL FROM:<jöhn@bücher.example> SMTPUTF8', mail(mb('jöhn', 'bücher.example', true), { smtputf8: true })],
  // The caller decides whether UTF-8 needs SMTPUTF8: the grammar only flags it.
  ['MAIL FROM:<jöhn@example.com>', mail(mb('jöhn', 'example.com', true))],
  // RCPT (RFC 5321 §4.1.1.3)
  ['RCPT TO:<user@example.com>', rcpt(mb('user', 'example.com'))],
  ['rcpt to: <user@example.com>', rcpt(mb('user', 'example.com'))],
  ['RCPT TO:<Postmaster>', rcpt(mb('Postmaster', ''))],
  ['RCPT TO:<postmaster>', rcpt(mb('Postmaster', ''))],
  ['RCPT TO:<postmaster@example.com>', rcpt(mb('postmaster', 'example.com'))],
  ['RCPT TO:<user@[IPv6:2001:db8::1]> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;user+2Bx@example.com',
    rcpt(mb('user', '[IPv6:2001:db8::1]'), { notify: ['SUCCESS', 'FAILURE'], orcpt: { addrType: 'rfc822', address: 'user+x@example.com' } })],
  ['RCPT TO:<用户@例子.广告>', rcpt(mb('用户', '例子.广告', true))],
  // No-argument commands; trailing white space is tolerated.
  ['DATA', { verb: 'DATA' }],
  ['data', { verb: 'DATA' }],
  ['RSET', { verb: 'RSET' }],
  ['QUIT', { verb: 'QUIT' }],
  ['QUIT ', { verb: 'QUIT' }],
  ['StartTLS', { verb: 'STARTTLS' }],
  // RFC 5321 §4.1.1.9: NOOP's argument is ignored.
  ['NOOP', { verb: 'NOOP' }],
  ['NOOP anything at all', { verb: 'NOOP' }],
  // BDAT (RFC 3030 §3)
  ['BDAT 0', { verb: 'BDAT', size: 0, last: false }],
  ['BDAT 1000', { verb: 'BDAT', size: 1000, last: false }],
  ['BDAT 1000 LAST', { verb: 'BDAT', size: 1000, last: true }],
  ['bdat 42 last', { verb: 'BDAT', size: 42, last: true }],
  ['BDAT 999999999999999 LAST', { verb: 'BDAT', size: 999999999999999, last: true }],
  // HELP, VRFY, EXPN (RFC 5321 §4.1.1.6-8)
  ['HELP', { verb: 'HELP', topic: null }],
  ['HELP MAIL', { verb: 'HELP', topic: 'MAIL' }],
  ['HELP status', { verb: 'HELP', topic: 'status' }],
  ['VRFY postmaster', { verb: 'VRFY', argument: 'postmaster' }],
  ['VRFY Smith <smith@example.com>', { verb: 'VRFY', argument: 'Smith <smith@example.com>' }],
  ['EXPN list', { verb: 'EXPN', argument: 'list' }],
  // AUTH (RFC 4954 §4)
  ['AUTH PLAIN', { verb: 'AUTH', mechanism: 'PLAIN', initialResponse: null }],
  ['auth login', { verb: 'AUTH', mechanism: 'LOGIN', initialResponse: null }],
  ['AUTH PLAIN AGZvbwBiYXI=', { verb: 'AUTH', mechanism: 'PLAIN', initialResponse: 'AGZvbwBiYXI=' }],
  ['AUTH PLAIN =', { verb: 'AUTH', mechanism: 'PLAIN', initialResponse: '=' }],
  ['AUTH SCRAM-SHA-256 biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdM',
    { verb: 'AUTH', mechanism: 'SCRAM-SHA-256', initialResponse: 'biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdM' }],
  ['AUTH X_OAUTH2', { verb: 'AUTH', mechanism: 'X_OAUTH2', initialResponse: null }],
  // Recognised, not implemented: the session answers 502.
  ['TURN', { verb: 'TURN', argument: '' }],
  ['ETRN example.com', { verb: 'ETRN', argument: 'example.com' }],
  ['ATRN a.example,b.example', { verb: 'ATRN', argument: 'a.example,b.example' }],
  ['SEND FROM:<a@b>', { verb: 'SEND', argument: 'FROM:<a@b>' }],
  ['SOML FROM:<a@b>', { verb: 'SOML', argument: 'FROM:<a@b>' }],
  ['SAML FROM:<a@b>', { verb: 'SAML', argument: 'FROM:<a@b>' }],
];

test('parseCommand accepts valid commands', () => {
  for (const [line, command] of VALID) assert.deepEqual(parse(line), { ok: true, command }, line);
});

test('encodeCommand writes the canonical line, and it parses back', () => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    ['helo localhost', 'HELO localhost'],
    ['mail from: <user@example.com>  size=10   smtputf8 ', 'MAIL FROM:<user@example.com> SIZE=10 SMTPUTF8'],
    ['MAIL FROM:<@a.example:user@c.example>', 'MAIL FROM:<user@c.example>'],
    ['MAIL FROM:<>', 'MAIL FROM:<>'],
    ['RCPT TO:<postmaster>', 'RCPT TO:<Postmaster>'],
    ['RCPT TO:<a@b> notify=delay,success orcpt=rfc822;a+2Bb@c', 'RCPT TO:<a@b> NOTIFY=DELAY,SUCCESS ORCPT=rfc822;a+2Bb@c'],
    ['bdat 7 last', 'BDAT 7 LAST'],
    ['noop hello', 'NOOP'],
    ['help', 'HELP'],
    ['auth plain =', 'AUTH PLAIN ='],
    ['turn', 'TURN'],
  ];
  for (const [line, wire] of cases) {
    const r = parse(line);
    assert.ok(r.ok, line);
    assert.equal(encodeCommand(r.command), wire);
    assert.deepEqual(parse(encodeCommand(r.command)), r);
  }
});

test('encodeCommand refuses CR, LF and NUL in any field', () => {
  assert.throws(() => encodeCommand({ verb: 'HELO', domain: 'a\r\nRSET' }), RangeError);
  assert.throws(() => encodeCommand({ verb: 'VRFY', argument: 'a\nb' }), RangeError);
  assert.throws(() => encodeCommand(mail(mb('"a\rb"', 'c'))), RangeError);
  assert.throws(() => encodeCommand({ verb: 'HELP', topic: 'a\0' }), RangeError);
});

type Bad = readonly [string | Uint8Array, string | null, ReplyId, Record<string, string> | undefined];

const INVALID: readonly Bad[] = [
  // Unknown verbs (500 5.5.2)
  ['', null, 'command.unrecognized', undefined],
  ['   ', null, 'command.unrecognized', undefined],
  ['FOO', null, 'command.unrecognized', undefined],
  ['HEL', null, 'command.unrecognized', undefined],
  ['HELOO example.com', null, 'command.unrecognized', undefined],
  ['MAIL:FROM:<a@b>', null, 'command.unrecognized', undefined],
  [' HELO example.com', null, 'command.unrecognized', undefined],
  ['HELO\texample.com', null, 'command.unrecognized', undefined],
  ['GET / HTTP/1.1', null, 'command.unrecognized', undefined],
  ['XCLIENT ADDR=1.2.3.4', null, 'command.unrecognized', undefined],
  [bytes([0x48, 0x45, 0x00, 0x4f]), null, 'command.unrecognized', undefined],
  [bytes('HÉLO example.com'), null, 'command.unrecognized', undefined],
  // NUL anywhere, non-ASCII outside MAIL/RCPT (500 5.5.2), verb kept when known
  [bytes('HELO exa', [0], 'mple.com'), 'HELO', 'command.unrecognized', undefined],
  [bytes('NOOP ', [0]), 'NOOP', 'command.unrecognized', undefined],
  [bytes('MAIL FROM:<a@b>', [0]), 'MAIL', 'command.unrecognized', undefined],
  [bytes('RCPT TO:<a', [0], '@b>'), 'RCPT', 'command.unrecognized', undefined],
  [bytes('DATA ', [0]), 'DATA', 'command.unrecognized', undefined],
  ['EHLO bücher.example', 'EHLO', 'command.unrecognized', undefined],
  ['VRFY jöhn', 'VRFY', 'command.unrecognized', undefined],
  ['NOOP ü', 'NOOP', 'command.unrecognized', undefined],
  [bytes('HELP ', [0xff]), 'HELP', 'command.unrecognized', undefined],
  // HELO / EHLO (501 5.5.4)
  ['HELO', 'HELO', 'helo.syntax', { verb: 'HELO' }],
  ['EHLO', 'EHLO', 'helo.syntax', { verb: 'EHLO' }],
  ['EHLO ', 'EHLO', 'helo.syntax', { verb: 'EHLO' }],
  ['HELO foo bar', 'HELO', 'helo.syntax', { verb: 'HELO' }],
  ['EHLO example.com extra', 'EHLO', 'helo.syntax', { verb: 'EHLO' }],
  ['EHLO my_host', 'EHLO', 'helo.syntax', { verb: 'EHLO' }],
  ['EHLO example.com.', 'EHLO', 'helo.syntax', { verb: 'EHLO' }],
  ['EHLO -example.com', 'EHLO', 'helo.syntax', { verb: 'EHLO' }],
  ['EHLO [300.1.1.1]', 'EHLO', 'helo.syntax', { verb: 'EHLO' }],
  ['EHLO [IPv6:1::2::3]', 'EHLO', 'helo.syntax', { verb: 'EHLO' }],
  ['EHLO 192.0.2.1]', 'EHLO', 'helo.syntax', { verb: 'EHLO' }],
  ['EHLO <example.com>', 'EHLO', 'helo.syntax', { verb: 'EHLO' }],
  [`EHLO ${'a'.repeat(64)}.example`, 'EHLO', 'helo.syntax', { verb: 'EHLO' }],
  [`EHLO ${Array(65).fill('abc').join('.')}`, 'EHLO', 'helo.syntax', { verb: 'EHLO' }],
  // MAIL syntax (501 5.5.4)
  ['MAIL', 'MAIL', 'mail.syntax', undefined],
  ['MAIL <a@b>', 'MAIL', 'mail.syntax', undefined],
  ['MAIL FROM', 'MAIL', 'mail.syntax', undefined],
  ['MAIL FROM:', 'MAIL', 'mail.syntax', undefined],
  ['MAIL FROM a@b', 'MAIL', 'mail.syntax', undefined],
  ['MAIL FROM:a@b', 'MAIL', 'mail.syntax', undefined],
  ['MAIL FROM:  <a@b>', 'MAIL', 'mail.syntax', undefined],
  ['MAIL FROM :<a@b>', 'MAIL', 'mail.syntax', undefined],
  ['MAIL TO:<a@b>', 'MAIL', 'mail.syntax', undefined],
  ['MAIL FROM:<a@b', 'MAIL', 'mail.syntax', undefined],
  ['MAIL FROM:<a@b>SIZE=10', 'MAIL', 'mail.syntax', undefined],
  ['MAIL FROM:<a@b>>', 'MAIL', 'mail.syntax', undefined],
  ['MAIL FROM:<a@b> =10', 'MAIL', 'mail.syntax', undefined],
  ['MAIL FROM:<<a@b>>', 'MAIL', 'mail.syntax', undefined],
  // MAIL: the path parses, the mailbox is unacceptable (553 5.1.7)
  ['MAIL FROM:<a..b@example.com>', 'MAIL', 'mail.bad-sender', undefined],
  ['MAIL FROM:<.a@example.com>', 'MAIL', 'mail.bad-sender', undefined],
  ['MAIL FROM:<user@example.com.>', 'MAIL', 'mail.bad-sender', undefined],
  ['MAIL FROM:<user@[300.1.1.1]>', 'MAIL', 'mail.bad-sender', undefined],
  ['MAIL FROM:<user>', 'MAIL', 'mail.bad-sender', undefined],
  ['MAIL FROM:<Postmaster>', 'MAIL', 'mail.bad-sender', undefined],
  ['MAIL FROM:<a b@example.com>', 'MAIL', 'mail.bad-sender', undefined],
  ['MAIL FROM:<"unterminated@example.com>', 'MAIL', 'mail.bad-sender', undefined],
  [`MAIL FROM:<${'a'.repeat(65)}@example.com>`, 'MAIL', 'mail.bad-sender', undefined],
  [`MAIL FROM:<user@${'a'.repeat(64)}.example>`, 'MAIL', 'mail.bad-sender', undefined],
  // Invalid UTF-8 in the path is the path's error (553), not 500.
  [bytes('MAIL FROM:<', [0xff], '@example.com>'), 'MAIL', 'mail.bad-sender', undefined],
  [bytes('MAIL FROM:<a@ex', [0xc3], 'ample.com>'), 'MAIL', 'mail.bad-sender', undefined],
  [bytes('MAIL FROM:<a', [0xed, 0xa0, 0x80], '@example.com>'), 'MAIL', 'mail.bad-sender', undefined],
  // MAIL parameters
  ['MAIL FROM:<a@b> SIZE=abc', 'MAIL', 'param.syntax', { param: 'SIZE' }],
  ['MAIL FROM:<a@b> SIZE=1 SIZE=2', 'MAIL', 'param.syntax', { param: 'SIZE' }],
  ['MAIL FROM:<a@b> BODY=9BIT', 'MAIL', 'param.syntax', { param: 'BODY' }],
  ['MAIL FROM:<a@b> BODY=BINARYMIME', 'MAIL', 'param.not-implemented', { param: 'BODY=BINARYMIME' }],
  ['MAIL FROM:<a@b> SMTPUTF8=1', 'MAIL', 'param.syntax', { param: 'SMTPUTF8' }],
  ['MAIL FROM:<a@b> RET=SOME', 'MAIL', 'param.syntax', { param: 'RET' }],
  ['MAIL FROM:<a@b> ENVID=a+', 'MAIL', 'param.syntax', { param: 'ENVID' }],
  ['MAIL FROM:<a@b> AUTH=a b', 'MAIL', 'param.unknown', { param: 'B' }],
  ['MAIL FROM:<a@b> AUTH', 'MAIL', 'param.syntax', { param: 'AUTH' }],
  ['MAIL FROM:<a@b> X-UNKNOWN=1', 'MAIL', 'param.unknown', { param: 'X-UNKNOWN' }],
  ['MAIL FROM:<a@b> NOTIFY=NEVER', 'MAIL', 'param.unknown', { param: 'NOTIFY' }],
  [bytes('MAIL FROM:<a@b> ENVID=', [0xff]), 'MAIL', 'param.syntax', { param: 'ENVID' }],
  // RCPT syntax (501 5.5.4) and unacceptable mailbox (553 5.1.3)
  ['RCPT', 'RCPT', 'rcpt.syntax', undefined],
  ['RCPT TO', 'RCPT', 'rcpt.syntax', undefined],
  ['RCPT TO:', 'RCPT', 'rcpt.syntax', undefined],
  ['RCPT FROM:<a@b>', 'RCPT', 'rcpt.syntax', undefined],
  ['RCPT TO:a@b', 'RCPT', 'rcpt.syntax', undefined],
  ['RCPT TO:<a@b', 'RCPT', 'rcpt.syntax', undefined],
  ['RCPT TO:<a@b>NOTIFY=NEVER', 'RCPT', 'rcpt.syntax', undefined],
  ['RCPT TO:<postmaster>x', 'RCPT', 'rcpt.syntax', undefined],
  ['RCPT TO:<>', 'RCPT', 'rcpt.bad-recipient', undefined],
  ['RCPT TO:<a..b@example.com>', 'RCPT', 'rcpt.bad-recipient', undefined],
  ['RCPT TO:<user@[IPv6:2001:db8::g]>', 'RCPT', 'rcpt.bad-recipient', undefined],
  ['RCPT TO:<user@ex_ample.com>', 'RCPT', 'rcpt.bad-recipient', undefined],
  ['RCPT TO:<postmaster@>', 'RCPT', 'rcpt.bad-recipient', undefined],
  [bytes('RCPT TO:<', [0xc0, 0x80], '@example.com>'), 'RCPT', 'rcpt.bad-recipient', undefined],
  // RCPT parameters
  ['RCPT TO:<a@b> NOTIFY=NEVER,DELAY', 'RCPT', 'param.syntax', { param: 'NOTIFY' }],
  ['RCPT TO:<a@b> NOTIFY=SOMETIMES', 'RCPT', 'param.syntax', { param: 'NOTIFY' }],
  ['RCPT TO:<a@b> ORCPT=a@b', 'RCPT', 'param.syntax', { param: 'ORCPT' }],
  ['RCPT TO:<a@b> SIZE=10', 'RCPT', 'param.unknown', { param: 'SIZE' }],
  ['RCPT TO:<a@b> X=1', 'RCPT', 'param.unknown', { param: 'X' }],
  ['RCPT TO:<a@b> =1', 'RCPT', 'rcpt.syntax', undefined],
  // No-argument commands (501 5.5.4)
  ['DATA x', 'DATA', 'command.syntax', { syntax: 'DATA' }],
  ['RSET now', 'RSET', 'command.syntax', { syntax: 'RSET' }],
  ['QUIT bye', 'QUIT', 'command.syntax', { syntax: 'QUIT' }],
  ['STARTTLS please', 'STARTTLS', 'command.syntax', { syntax: 'STARTTLS' }],
  // BDAT
  ['BDAT', 'BDAT', 'command.syntax', { syntax: 'BDAT size [LAST]' }],
  ['BDAT x', 'BDAT', 'command.syntax', { syntax: 'BDAT size [LAST]' }],
  ['BDAT -1', 'BDAT', 'command.syntax', { syntax: 'BDAT size [LAST]' }],
  ['BDAT 1.5', 'BDAT', 'command.syntax', { syntax: 'BDAT size [LAST]' }],
  ['BDAT 10 FIRST', 'BDAT', 'command.syntax', { syntax: 'BDAT size [LAST]' }],
  ['BDAT 10 LAST x', 'BDAT', 'command.syntax', { syntax: 'BDAT size [LAST]' }],
  ['BDAT LAST', 'BDAT', 'command.syntax', { syntax: 'BDAT size [LAST]' }],
  ['BDAT 1234567890123456', 'BDAT', 'command.syntax', { syntax: 'BDAT size [LAST]' }],
  // VRFY / EXPN need an argument; no control characters in free-form arguments
  ['VRFY', 'VRFY', 'command.syntax', { syntax: 'VRFY address' }],
  ['EXPN', 'EXPN', 'command.syntax', { syntax: 'EXPN mailing-list' }],
  ['VRFY a\rb', 'VRFY', 'command.syntax', { syntax: 'VRFY address' }],
  ['HELP a\x1bb', 'HELP', 'command.syntax', { syntax: 'HELP [topic]' }],
  ['ETRN a\nb', 'ETRN', 'command.syntax', { syntax: 'ETRN' }],
  // AUTH (RFC 4954 §4)
  ['AUTH', 'AUTH', 'command.syntax', { syntax: 'AUTH mechanism [initial-response]' }],
  ['AUTH PL@IN', 'AUTH', 'command.syntax', { syntax: 'AUTH mechanism [initial-response]' }],
  ['AUTH ABCDEFGHIJKLMNOPQRSTU', 'AUTH', 'command.syntax', { syntax: 'AUTH mechanism [initial-response]' }],
  ['AUTH PLAIN abc', 'AUTH', 'auth.bad-base64', undefined],
  ['AUTH PLAIN ab!d', 'AUTH', 'auth.bad-base64', undefined],
  ['AUTH PLAIN AGZv bwBi', 'AUTH', 'command.syntax', { syntax: 'AUTH mechanism [initial-response]' }],
];

test('parseCommand rejects with the exact reply and verb', () => {
  for (const [line, verb, replyId, vars] of INVALID) {
    const error = vars === undefined ? { replyId } : { replyId, vars };
    assert.deepEqual(parse(line), { ok: false, verb, error }, typeof line === 'string' ? JSON.stringify(line) : String(line));
  }
});

test('every verb is recognised in any case', () => {
  for (const verb of VERBS) {
    for (const spelled of [verb, verb.toLowerCase(), verb[0] + verb.slice(1).toLowerCase()]) {
      const r = parse(spelled);
      assert.ok(r.ok ? r.command.verb === verb : r.verb === verb, spelled);
    }
  }
});

// ── Properties ──────────────────────────────────────────────────────────────────────────────────

function assertReplyKnown(r: ParseResult): void {
  if (r.ok) return;
  assert.ok(Object.hasOwn(REPLY_CATALOGUE, r.error.replyId), r.error.replyId);
  assert.ok(r.verb === null || (VERBS as readonly string[]).includes(r.verb));
}

function assertRoundTrip(r: ParseResult): void {
  if (!r.ok) return;
  assert.deepEqual(parse(encodeCommand(r.command)), r);
}

const verbPrefix = fc.constantFrom(...VERBS, 'MAIL FROM:<', 'RCPT TO:<', 'MAIL FROM:<a@b> ', 'RCPT TO:<a@b> ')
  .chain((v) => fc.constantFrom(v, v.toLowerCase()));

test('random bytes never throw and always map to a catalogue reply', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 510 }), (line) => {
    const r = parseCommand(line);
    assertReplyKnown(r);
    assertRoundTrip(r);
  }), { numRuns: 3000 });
  // A known verb in front of random bytes, to reach the argument grammars.
  fc.assert(fc.property(verbPrefix, fc.uint8Array({ maxLength: 120 }), (verb, tail) => {
    const r = parseCommand(bytes(verb, ' ', [...tail]));
    assertReplyKnown(r);
    assertRoundTrip(r);
  }), { numRuns: 5000 });
  // Printable text after a known verb (closer to what real clients get wrong).
  fc.assert(fc.property(verbPrefix, fc.string({ unit: 'grapheme', maxLength: 60 }), (verb, tail) => {
    const r = parse(`${verb}${tail}`);
    assertReplyKnown(r);
    assertRoundTrip(r);
  }), { numRuns: 5000 });
});

const atext = "A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~";
const dotString = fc.stringMatching(new RegExp(`^[${atext}]{1,12}(\\.[${atext}]{1,12}){0,3}$`));
const quotedString = fc.stringMatching(/^"([\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e]){0,20}"$/);
const utf8Local = fc.stringMatching(/^[a-z]{0,5}$/).chain((a) => fc.constantFrom('jöhn', '用户', 'ñ', 'δοκιμή', '😀').map((u) => a + u));
const label = fc.stringMatching(/^[A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?$/);
const domain = fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.'));
const uDomain = fc.tuple(fc.constantFrom('bücher', '例子', 'münchen', 'δοκιμή'), domain).map(([u, d]) => `${u}.${d}`);
const literal = fc.oneof(
  fc.ipV4().map((ip) => `[${ip}]`),
  fc.ipV6().map((ip) => `[IPv6:${ip}]`),
  fc.stringMatching(/^x-[a-z]{1,5}:[\x21-\x5a\x5e-\x7e]{1,10}$/).map((g) => `[${g}]`),
);
const asciiMailbox: fc.Arbitrary<Mailbox> = fc.record({
  localPart: fc.oneof(dotString, quotedString),
  domain: fc.oneof(domain, literal),
  utf8: fc.constant(false),
});
const utf8Mailbox: fc.Arbitrary<Mailbox> = fc.record({
  localPart: fc.oneof(utf8Local, dotString),
  domain: fc.oneof(uDomain, domain),
  utf8: fc.constant(true),
}).filter((m) => /[^\x00-\x7f]/.test(m.localPart + m.domain));
const mailboxArb = fc.oneof(asciiMailbox, utf8Mailbox);

const printable = fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 100 });
const noControls = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((s) => !/[\x00-\x1f\x7f-\x9f]/.test(s));
const mailParams: fc.Arbitrary<MailParams> = fc.record({
  size: fc.option(fc.maxSafeNat()),
  body: fc.constantFrom<MailParams['body']>(null, '7BIT', '8BITMIME'),
  smtputf8: fc.boolean(),
  ret: fc.constantFrom<MailParams['ret']>(null, 'FULL', 'HDRS'),
  envid: fc.option(printable),
  auth: fc.option(fc.oneof(fc.constant('<>'), noControls)),
});
const rcptParams: fc.Arbitrary<RcptParams> = fc.record({
  notify: fc.option(fc.oneof(
    fc.constant<'NEVER'>('NEVER'),
    fc.shuffledSubarray<'SUCCESS' | 'FAILURE' | 'DELAY'>(['SUCCESS', 'FAILURE', 'DELAY'], { minLength: 1 }),
  )),
  orcpt: fc.option(fc.record({ addrType: fc.constantFrom('rfc822', 'utf-8'), address: noControls })),
});

const word = fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,30}[\x21-\x7e])?$/);
const base64 = fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => Buffer.from(b).toString('base64'));

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ verb: fc.constantFrom<'HELO' | 'EHLO'>('HELO', 'EHLO'), domain: fc.oneof(domain, literal) }),
  fc.record({ verb: fc.constant<'MAIL'>('MAIL'), reversePath: fc.option(mailboxArb), params: mailParams }),
  fc.record({
    verb: fc.constant<'RCPT'>('RCPT'),
    forwardPath: fc.oneof(mailboxArb, fc.constant(mb('Postmaster', ''))),
    params: rcptParams,
  }),
  fc.record({ verb: fc.constantFrom<'DATA' | 'RSET' | 'NOOP' | 'QUIT' | 'STARTTLS'>('DATA', 'RSET', 'NOOP', 'QUIT', 'STARTTLS') }),
  fc.record({ verb: fc.constant<'BDAT'>('BDAT'), size: fc.integer({ min: 0, max: 999999999999999 }), last: fc.boolean() }),
  fc.record({ verb: fc.constant<'HELP'>('HELP'), topic: fc.option(word) }),
  fc.record({ verb: fc.constantFrom<'VRFY' | 'EXPN'>('VRFY', 'EXPN'), argument: word }),
  fc.record({
    verb: fc.constant<'AUTH'>('AUTH'),
    mechanism: fc.stringMatching(/^[A-Z0-9_-]{1,20}$/),
    initialResponse: fc.option(fc.oneof(fc.constant('='), base64)),
  }),
  fc.record({
    verb: fc.constantFrom<'TURN' | 'SEND' | 'SOML' | 'SAML' | 'ETRN' | 'ATRN'>('TURN', 'SEND', 'SOML', 'SAML', 'ETRN', 'ATRN'),
    argument: fc.oneof(fc.constant(''), word),
  }),
);

test('generated valid commands survive encode → parse unchanged', () => {
  fc.assert(fc.property(commandArb, (command) => {
    // structuredClone: fast-check's records have a null prototype, the parser's objects do not.
    assert.deepEqual(parse(encodeCommand(command)), { ok: true, command: structuredClone(command) });
  }), { numRuns: 5000 });
});
