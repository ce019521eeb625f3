// MAIL and RCPT parameters: RFC 5321 §4.1.2, RFC 1870, RFC 6152, RFC 6531, RFC 3461, RFC 6533, RFC 4954.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeUtf8AddrXtext, decodeXtext, encodeMailParams, encodeRcptParams, encodeUtf8AddrXtext, encodeXtext,
  NO_MAIL_PARAMS, NO_RCPT_PARAMS, parseMailParams, parseRcptParams, type MailParams, type RcptParams,
} from '../../src/smtp/esmtp-params.js';
import type { ReplyId } from '../../src/smtp/reply-catalogue.js';

const mail = (p: Partial<MailParams>): MailParams => ({ ...NO_MAIL_PARAMS, ...p });
const rcpt = (p: Partial<RcptParams>): RcptParams => ({ ...NO_RCPT_PARAMS, ...p });

test('xtext (RFC 3461 §4): decode', () => {
  const cases: ReadonlyArray<readonly [string, string | null]> = [
    ['', ''],
    ['abc', 'abc'],
    ['a+2Bb', 'a+b'],
    ['a+3Db', 'a=b'],
    ['a+20b', 'a b'],
    ['+2b+3d', '+='], // lower-case hex accepted (liberal)
    ['+41', 'A'],
    ['<>', '<>'],
    ['+C3+BC', 'ü'],
    ['+E4+BE+8B', '例'],
    ['a+', null],
    ['a+2', null],
    ['a+ZZ', null],
    ['a=b', null],
    ['a b', null],
    ['a\tb', null],
    ['ü', null],
    ['+FF', null], // not UTF-8
    ['+C3', null], // truncated UTF-8
  ];
  for (const [input, expected] of cases) assert.equal(decodeXtext(input), expected, input);
});

test('xtext (RFC 3461 §4): encode', () => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    ['abc', 'abc'],
    ['a+b=c', 'a+2Bb+3Dc'],
    ['a b', 'a+20b'],
    ['\r\n', '+0D+0A'],
    ['\x7f', '+7F'],
    ['~!', '~!'],
    ['ü', '+C3+BC'],
    ['😀', '+F0+9F+98+80'],
  ];
  for (const [input, expected] of cases) assert.equal(encodeXtext(input), expected, input);
});

test('xtext round-trips any string', () => {
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (s) => {
    const x = encodeXtext(s);
    assert.match(x, /^[\x21-\x7e]*$/);
    assert.equal(decodeXtext(x), s);
  }), { numRuns: 2000 });
});

test('utf-8-addr-xtext (RFC 6533 §3) round-trips and decodes \\x{HEX}', () => {
  assert.equal(decodeUtf8AddrXtext('j\\x{F6}hn@example.com'), 'jöhn@example.com');
  assert.equal(decodeUtf8AddrXtext('jöhn@example.com'), 'jöhn@example.com');
  assert.equal(decodeUtf8AddrXtext('a\\x{2B}b@c'), 'a+b@c');
  assert.equal(decodeUtf8AddrXtext('a+b@c'), null);
  assert.equal(decodeUtf8AddrXtext('a\\b@c'), null);
  assert.equal(decodeUtf8AddrXtext('\\x{D800}'), null);
  assert.equal(decodeUtf8AddrXtext('\\x{110000}'), null);
  assert.equal(encodeUtf8AddrXtext('jöhn+x@example.com'), 'j\\x{F6}hn\\x{2B}x@example.com');
  fc.assert(fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }), (s) => {
    assert.equal(decodeUtf8AddrXtext(encodeUtf8AddrXtext(s)), s);
  }), { numRuns: 1000 });
});

test('parseMailParams accepts the known parameters', () => {
  const cases: ReadonlyArray<readonly [string, MailParams]> = [
    ['', NO_MAIL_PARAMS],
    ['   ', NO_MAIL_PARAMS],
    ['SIZE=0', mail({ size: 0 })],
    ['size=12345', mail({ size: 12345 })],
    ['SIZE=007', mail({ size: 7 })],
    [`SIZE=${'9'.repeat(20)}`, mail({ size: Number.MAX_SAFE_INTEGER })],
    ['BODY=7BIT', mail({ body: '7BIT' })],
    ['body=8bitmime', mail({ body: '8BITMIME' })],
    ['SMTPUTF8', mail({ smtputf8: true })],
    ['smtputf8', mail({ smtputf8: true })],
    ['RET=FULL', mail({ ret: 'FULL' })],
    ['ret=hdrs', mail({ ret: 'HDRS' })],
    ['ENVID=QQ314159', mail({ envid: 'QQ314159' })],
    ['ENVID=a+2Bb+20c', mail({ envid: 'a+b c' })],
    [`ENVID=${'x'.repeat(100)}`, mail({ envid: 'x'.repeat(100) })],
    [`ENVID=${'x'.repeat(98)}+2B+2B`, mail({ envid: `${'x'.repeat(98)}++` })],
    ['AUTH=<>', mail({ auth: '<>' })],
    ['AUTH=e+3Dmc2@example.com', mail({ auth: 'e=mc2@example.com' })],
    [' SIZE=10  BODY=8BITMIME   SMTPUTF8 RET=HDRS ENVID=x AUTH=<> ',
      { size: 10, body: '8BITMIME', smtputf8: true, ret: 'HDRS', envid: 'x', auth: '<>' }],
  ];
  for (const [input, params] of cases) assert.deepEqual(parseMailParams(input), { ok: true, params }, input);
});

type Err = readonly [string, ReplyId, Record<string, string> | undefined];

test('parseMailParams rejects with the exact reply', () => {
  const cases: readonly Err[] = [
    ['SIZE', 'param.syntax', { param: 'SIZE' }],
    ['SIZE=', 'param.syntax', { param: 'SIZE' }],
    ['SIZE=abc', 'param.syntax', { param: 'SIZE' }],
    ['SIZE=-1', 'param.syntax', { param: 'SIZE' }],
    ['SIZE=1.5', 'param.syntax', { param: 'SIZE' }],
    [`SIZE=${'1'.repeat(21)}`, 'param.syntax', { param: 'SIZE' }],
    ['SIZE=1 SIZE=2', 'param.syntax', { param: 'SIZE' }],
    ['size=1 SIZE=1', 'param.syntax', { param: 'SIZE' }],
    ['BODY', 'param.syntax', { param: 'BODY' }],
    ['BODY=8BIT', 'param.syntax', { param: 'BODY' }],
    ['BODY=BINARYMIME', 'param.not-implemented', { param: 'BODY=BINARYMIME' }],
    ['body=binarymime', 'param.not-implemented', { param: 'BODY=BINARYMIME' }],
    ['SMTPUTF8=yes', 'param.syntax', { param: 'SMTPUTF8' }],
    ['RET', 'param.syntax', { param: 'RET' }],
    ['RET=ALL', 'param.syntax', { param: 'RET' }],
    ['ENVID', 'param.syntax', { param: 'ENVID' }],
    ['ENVID=a+2', 'param.syntax', { param: 'ENVID' }],
    ['ENVID=a+0Ab', 'param.syntax', { param: 'ENVID' }], // decodes to a control character
    ['ENVID=+C3+BC', 'param.syntax', { param: 'ENVID' }], // ENVID is printable US-ASCII
    [`ENVID=${'x'.repeat(101)}`, 'param.syntax', { param: 'ENVID' }],
    ['ENVID=a=b', 'param.syntax', { param: 'ENVID' }],
    ['AUTH', 'param.syntax', { param: 'AUTH' }],
    ['AUTH=a+b', 'param.syntax', { param: 'AUTH' }],
    ['AUTH=+0D+0A', 'param.syntax', { param: 'AUTH' }],
    ['X-FOO=bar', 'param.unknown', { param: 'X-FOO' }],
    ['xclient=1', 'param.unknown', { param: 'XCLIENT' }],
    ['BODY=BINARYMIME X=1', 'param.not-implemented', { param: 'BODY=BINARYMIME' }],
    ['X=1 BODY=BINARYMIME', 'param.unknown', { param: 'X' }],
    ['NOTIFY=NEVER', 'param.unknown', { param: 'NOTIFY' }],
    ['ORCPT=rfc822;a@b', 'param.unknown', { param: 'ORCPT' }],
    ['=1', 'mail.syntax', undefined],
    ['-SIZE=1', 'mail.syntax', undefined],
    ['SI_ZE=1', 'mail.syntax', undefined],
    ['SIZE=1\tBODY=7BIT', 'param.syntax', { param: 'SIZE' }],
    ['\tSIZE=1', 'mail.syntax', undefined],
  ];
  for (const [input, replyId, vars] of cases) {
    const error = vars === undefined ? { replyId } : { replyId, vars };
    assert.deepEqual(parseMailParams(input), { ok: false, error }, input);
  }
});

test('parseRcptParams accepts NOTIFY and ORCPT', () => {
  const cases: ReadonlyArray<readonly [string, RcptParams]> = [
    ['', NO_RCPT_PARAMS],
    ['NOTIFY=NEVER', rcpt({ notify: 'NEVER' })],
    ['notify=never', rcpt({ notify: 'NEVER' })],
    ['NOTIFY=SUCCESS', rcpt({ notify: ['SUCCESS'] })],
    ['NOTIFY=failure,delay', rcpt({ notify: ['FAILURE', 'DELAY'] })],
    ['NOTIFY=DELAY,SUCCESS,FAILURE', rcpt({ notify: ['DELAY', 'SUCCESS', 'FAILURE'] })],
    ['NOTIFY=SUCCESS,SUCCESS', rcpt({ notify: ['SUCCESS'] })],
    ['ORCPT=rfc822;Bob@Example.COM', rcpt({ orcpt: { addrType: 'rfc822', address: 'Bob@Example.COM' } })],
    ['ORCPT=rfc822;a+2Bb@example.com', rcpt({ orcpt: { addrType: 'rfc822', address: 'a+b@example.com' } })],
    ['ORCPT=RFC822;a+20b@c', rcpt({ orcpt: { addrType: 'RFC822', address: 'a b@c' } })],
    ['ORCPT=utf-8;j\\x{F6}hn@example.com', rcpt({ orcpt: { addrType: 'utf-8', address: 'jöhn@example.com' } })],
    ['ORCPT=utf-8;jöhn@example.com', rcpt({ orcpt: { addrType: 'utf-8', address: 'jöhn@example.com' } })],
    ['ORCPT=x-local;user', rcpt({ orcpt: { addrType: 'x-local', address: 'user' } })],
    ['NOTIFY=FAILURE ORCPT=rfc822;a@b',
      { notify: ['FAILURE'], orcpt: { addrType: 'rfc822', address: 'a@b' } }],
  ];
  for (const [input, params] of cases) assert.deepEqual(parseRcptParams(input), { ok: true, params }, input);
});

test('parseRcptParams rejects with the exact reply', () => {
  const cases: readonly Err[] = [
    ['NOTIFY', 'param.syntax', { param: 'NOTIFY' }],
    ['NOTIFY=', 'param.syntax', { param: 'NOTIFY' }],
    ['NOTIFY=SOMETIMES', 'param.syntax', { param: 'NOTIFY' }],
    ['NOTIFY=NEVER,SUCCESS', 'param.syntax', { param: 'NOTIFY' }],
    ['NOTIFY=SUCCESS,NEVER', 'param.syntax', { param: 'NOTIFY' }],
    ['NOTIFY=SUCCESS,', 'param.syntax', { param: 'NOTIFY' }],
    ['NOTIFY=,DELAY', 'param.syntax', { param: 'NOTIFY' }],
    ['NOTIFY=NEVER NOTIFY=NEVER', 'param.syntax', { param: 'NOTIFY' }],
    ['ORCPT', 'param.syntax', { param: 'ORCPT' }],
    ['ORCPT=a@b', 'param.syntax', { param: 'ORCPT' }],
    ['ORCPT=;a@b', 'param.syntax', { param: 'ORCPT' }],
    ['ORCPT=rfc822;', 'param.syntax', { param: 'ORCPT' }],
    ['ORCPT=rfc 822;a@b', 'param.syntax', { param: 'ORCPT' }],
    ['ORCPT=rf(c;a@b', 'param.syntax', { param: 'ORCPT' }],
    ['ORCPT=rfc822;a+2', 'param.syntax', { param: 'ORCPT' }],
    ['ORCPT=rfc822;jöhn@example.com', 'param.syntax', { param: 'ORCPT' }],
    ['ORCPT=rfc822;a+0Db', 'param.syntax', { param: 'ORCPT' }],
    [`ORCPT=rfc822;${'a'.repeat(501)}`, 'param.syntax', { param: 'ORCPT' }],
    ['ORCPT=utf-8;a\\x{0}b', 'param.syntax', { param: 'ORCPT' }],
    ['ORCPT=rfc822;a@b ORCPT=rfc822;a@b', 'param.syntax', { param: 'ORCPT' }],
    ['SIZE=10', 'param.unknown', { param: 'SIZE' }],
    ['SMTPUTF8', 'param.unknown', { param: 'SMTPUTF8' }],
    ['X-ANY', 'param.unknown', { param: 'X-ANY' }],
    ['NOTIFY=NEVER =x', 'rcpt.syntax', undefined],
    ['NOTIFY=NEVER ü=1', 'rcpt.syntax', undefined],
  ];
  for (const [input, replyId, vars] of cases) {
    const error = vars === undefined ? { replyId } : { replyId, vars };
    assert.deepEqual(parseRcptParams(input), { ok: false, error }, input);
  }
  assert.equal(parseRcptParams(`ORCPT=rfc822;${'a'.repeat(500)}`).ok, true);
});

test('encodeMailParams / encodeRcptParams: wire form', () => {
  assert.equal(encodeMailParams(NO_MAIL_PARAMS), '');
  assert.equal(
    encodeMailParams({ size: 1000, body: '8BITMIME', smtputf8: true, ret: 'HDRS', envid: 'a+b c', auth: '<>' }),
    'SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=a+2Bb+20c AUTH=<>');
  assert.equal(encodeRcptParams(NO_RCPT_PARAMS), '');
  assert.equal(encodeRcptParams({ notify: 'NEVER', orcpt: null }), 'NOTIFY=NEVER');
  assert.equal(
    encodeRcptParams({ notify: ['SUCCESS', 'FAILURE'], orcpt: { addrType: 'rfc822', address: 'a+b@c' } }),
    'NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb@c');
  assert.equal(encodeRcptParams({ notify: null, orcpt: { addrType: 'utf-8', address: 'jöhn@c' } }),
    'ORCPT=utf-8;j\\x{F6}hn@c');
});

const printable = fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 100 });
const noControls = fc.string({ unit: 'binary', minLength: 1, maxLength: 60 })
  .filter((s) => !/[\x00-\x1f\x7f-\x9f]/.test(s));

const mailParamsArb: fc.Arbitrary<MailParams> = fc.record({
  size: fc.option(fc.maxSafeNat()),
  body: fc.constantFrom<MailParams['body']>(null, '7BIT', '8BITMIME'),
  smtputf8: fc.boolean(),
  ret: fc.constantFrom<MailParams['ret']>(null, 'FULL', 'HDRS'),
  envid: fc.option(printable),
  auth: fc.option(fc.oneof(fc.constant('<>'), noControls)),
});

const rcptParamsArb: fc.Arbitrary<RcptParams> = fc.record({
  notify: fc.option(fc.oneof(
    fc.constant<'NEVER'>('NEVER'),
    fc.shuffledSubarray<'SUCCESS' | 'FAILURE' | 'DELAY'>(['SUCCESS', 'FAILURE', 'DELAY'], { minLength: 1 }),
  )),
  orcpt: fc.option(fc.record({
    addrType: fc.constantFrom('rfc822', 'utf-8', 'UTF-8', 'x-other'),
    address: noControls,
  })),
});

test('encode → parse round-trips generated parameters', () => {
  // structuredClone: fast-check's records have a null prototype, the parser's objects do not.
  fc.assert(fc.property(mailParamsArb, (p) => {
    assert.deepEqual(parseMailParams(encodeMailParams(p)), { ok: true, params: structuredClone(p) });
  }), { numRuns: 1000 });
  fc.assert(fc.property(rcptParamsArb, (p) => {
    assert.deepEqual(parseRcptParams(encodeRcptParams(p)), { ok: true, params: structuredClone(p) });
  }), { numRuns: 1000 });
});
