// Paths and mailboxes: RFC 5321 §4.1.2, §4.1.3, §4.5.3.1, §4.1.1.3; RFC 6531 §3.3.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  formatMailbox, formatPath, mailboxDomainLower, parseForwardPath, parseMailbox, parsePath,
  POSTMASTER, type Mailbox,
} from '../../src/smtp/mailbox.js';
import { isAddressLiteral, isDomain, isIPv6Addr, punycodeEncode } from '../../src/smtp/abnf.js';

const mb = (localPart: string, domain: string, utf8 = false): Mailbox => ({ localPart, domain, utf8 });

const VALID: ReadonlyArray<readonly [string, Mailbox | null, string]> = [
  ['<>', null, ''],
  ['<> SIZE=10', null, ' SIZE=10'],
  ['<user@example.com>', mb('user', 'example.com'), ''],
  ['<User.Name+tag@Example.COM>', mb('User.Name+tag', 'Example.COM'), ''],
  ["<!#$%&'*+-/=?^_`{|}~@example.com>", mb("!#$%&'*+-/=?^_`{|}~", 'example.com'), ''],
  ['<user@localhost>', mb('user', 'localhost'), ''],
  ['<user@123.example>', mb('user', '123.example'), ''],
  ['<user@a-b.c-d.example>', mb('user', 'a-b.c-d.example'), ''],
  ['<user@xn--bcher-kva.example>', mb('user', 'xn--bcher-kva.example'), ''],
  ['<"john doe"@example.com>', mb('"john doe"', 'example.com'), ''],
  ['<"a\\"b"@example.com>', mb('"a\\"b"', 'example.com'), ''],
  ['<"a\\\\b"@example.com>', mb('"a\\\\b"', 'example.com'), ''],
  ['<""@example.com>', mb('""', 'example.com'), ''],
  ['<"a@b"@example.com>', mb('"a@b"', 'example.com'), ''],
  ['<"a>b"@example.com> X', mb('"a>b"', 'example.com'), ' X'],
  ['<"a<b"@example.com>', mb('"a<b"', 'example.com'), ''],
  ['<"a..b"@example.com>', mb('"a..b"', 'example.com'), ''],
  ['<user@[192.0.2.1]>', mb('user', '[192.0.2.1]'), ''],
  ['<user@[0.0.0.0]>', mb('user', '[0.0.0.0]'), ''],
  ['<user@[255.255.255.255]>', mb('user', '[255.255.255.255]'), ''],
  ['<user@[010.001.0.1]>', mb('user', '[010.001.0.1]'), ''],
  ['<user@[IPv6:2001:db8::1]>', mb('user', '[IPv6:2001:db8::1]'), ''],
  ['<user@[ipv6:2001:DB8::1]>', mb('user', '[ipv6:2001:DB8::1]'), ''],
  ['<user@[IPv6:::1]>', mb('user', '[IPv6:::1]'), ''],
  ['<user@[IPv6:::]>', mb('user', '[IPv6:::]'), ''],
  ['<user@[IPv6:1:2:3:4:5:6:7:8]>', mb('user', '[IPv6:1:2:3:4:5:6:7:8]'), ''],
  ['<user@[IPv6:::ffff:192.0.2.1]>', mb('user', '[IPv6:::ffff:192.0.2.1]'), ''],
  ['<user@[IPv6:1:2:3:4:5:6:192.0.2.1]>', mb('user', '[IPv6:1:2:3:4:5:6:192.0.2.1]'), ''],
  ['<user@[IPv6:1::192.0.2.1]>', mb('user', '[IPv6:1::192.0.2.1]'), ''],
  ['<user@[x-tag:some-thing]>', mb('user', '[x-tag:some-thing]'), ''],
  ['<user@[x-tag:<a>]> X', mb('user', '[x-tag:<a>]'), ' X'],
  // Source routes are accepted and ignored (RFC 5321 §4.1.2, §3.6.1).
  ['<@a.example,@b.example:user@c.example>', mb('user', 'c.example'), ''],
  ['<@a.example:user@c.example> NOTIFY=NEVER', mb('user', 'c.example'), ' NOTIFY=NEVER'],
  // RFC 6531 §3.3: UTF-8 local parts and U-labels are accepted and flagged.
  ['<jöhn@example.com>', mb('jöhn', 'example.com', true), ''],
  ['<user@bücher.example>', mb('user', 'bücher.example', true), ''],
  ['<用户@例子.广告>', mb('用户', '例子.广告', true), ''],
  ['<"jöhn doe"@example.com>', mb('"jöhn doe"', 'example.com', true), ''],
  ['<😀@example.com>', mb('😀', 'example.com', true), ''],
];

test('parsePath accepts valid paths', () => {
  for (const [input, mailbox, rest] of VALID) {
    assert.deepEqual(parsePath(input), { ok: true, mailbox, rest }, input);
  }
});

const INVALID: ReadonlyArray<readonly [string, 'syntax' | 'mailbox']> = [
  ['', 'syntax'],
  ['user@example.com', 'syntax'],
  [' <user@example.com>', 'syntax'],
  ['<user@example.com', 'syntax'],
  ['<', 'syntax'],
  ['<<user@example.com>>', 'syntax'],
  ['<a<b@example.com>', 'syntax'],
  ['<a..b@example.com>', 'mailbox'],
  ['<.a@example.com>', 'mailbox'],
  ['<a.@example.com>', 'mailbox'],
  ['<a b@example.com>', 'mailbox'],
  ['<a(b)@example.com>', 'mailbox'],
  ['<a,b@example.com>', 'mailbox'],
  ['<a[b]@example.com>', 'mailbox'],
  ['<a\\b@example.com>', 'mailbox'],
  ['<a"b"@example.com>', 'mailbox'],
  ['<"a"b@example.com>', 'mailbox'],
  ['<"a"."b"@example.com>', 'mailbox'],
  ['<"unterminated@example.com>', 'mailbox'],
  ['<"a\\"@example.com>', 'mailbox'],
  ['<"a\tb"@example.com>', 'mailbox'],
  ['<"a\\\x01"@example.com>', 'mailbox'],
  ['<user>', 'mailbox'],
  ['<user@>', 'mailbox'],
  ['<@example.com>', 'mailbox'],
  ['< >', 'mailbox'],
  ['<user@@example.com>', 'mailbox'],
  ['<user@example.com.>', 'mailbox'],
  ['<user@.example.com>', 'mailbox'],
  ['<user@example..com>', 'mailbox'],
  ['<user@-example.com>', 'mailbox'],
  ['<user@example-.com>', 'mailbox'],
  ['<user@ex_ample.com>', 'mailbox'],
  ['<user@exa mple.com>', 'mailbox'],
  [`<user@${'a'.repeat(64)}.example>`, 'mailbox'],
  ['<user@[300.1.1.1]>', 'mailbox'],
  ['<user@[1.2.3]>', 'mailbox'],
  ['<user@[1.2.3.4.5]>', 'mailbox'],
  ['<user@[1.2.3.04a]>', 'mailbox'],
  ['<user@[1234.1.1.1]>', 'mailbox'],
  ['<user@[]>', 'mailbox'],
  ['<user@[192.0.2.1>', 'mailbox'],
  ['<user@192.0.2.1]>', 'mailbox'],
  ['<user@[IPv6:2001:db8::g]>', 'mailbox'],
  ['<user@[IPv6:1::2::3]>', 'mailbox'],
  ['<user@[IPv6::::1]>', 'mailbox'],
  ['<user@[IPv6:12345::1]>', 'mailbox'],
  ['<user@[IPv6:1:2:3:4:5:6:7]>', 'mailbox'],
  ['<user@[IPv6:1:2:3:4:5:6:7:8:9]>', 'mailbox'],
  ['<user@[IPv6:1:2:3:4:5:6:7:8::]>', 'mailbox'],
  ['<user@[IPv6:1.2.3.4]>', 'mailbox'],
  ['<user@[IPv6:::ffff:300.0.2.1]>', 'mailbox'],
  ['<user@[IPv6:1:2:3:4:5:6:7:1.2.3.4]>', 'mailbox'],
  ['<user@[IPv6:]>', 'mailbox'],
  ['<user@[x-tag:]>', 'mailbox'],
  ['<user@[-:x]>', 'mailbox'],
  ['<user@[tag:a\\b]>', 'mailbox'],
  ['<user@[bücher]>', 'mailbox'],
  ['<@a.example,b.example:user@c.example>', 'mailbox'],
  ['<@a_b.example:user@c.example>', 'mailbox'],
  ['<@a.example,@b.example:>', 'mailbox'],
  ['<@a.example user@c.example>', 'mailbox'],
  // Invalid UTF-8 arrives as U+FFFD from the decoder; a lone surrogate is never valid.
  ['<us\ufffder@example.com>', 'mailbox'],
  ['<user@ex\ufffdample.com>', 'mailbox'],
  ['<"us\ufffder"@example.com>', 'mailbox'],
  ['<us\ud800er@example.com>', 'mailbox'],
  ['<us\u0085er@example.com>', 'mailbox'],
  // U-labels: no leading hyphen, no "--" in positions 3-4, A-label ≤ 63 octets.
  ['<user@-bücher.example>', 'mailbox'],
  ['<user@bü--cher.example>', 'mailbox'],
  [`<user@${'a'.repeat(58)}ü.example>`, 'mailbox'],
];

test('parsePath rejects invalid paths with the right kind', () => {
  for (const [input, kind] of INVALID) {
    assert.deepEqual(parsePath(input), { ok: false, kind }, JSON.stringify(input));
  }
});

test('RFC 5321 §4.5.3.1: local part ≤ 64 octets, label ≤ 63, domain ≤ 255, path ≤ 256', () => {
  const label63 = 'a'.repeat(63);
  assert.equal(parsePath(`<${'l'.repeat(64)}@example.com>`).ok, true);
  assert.deepEqual(parsePath(`<${'l'.repeat(65)}@example.com>`), { ok: false, kind: 'mailbox' });
  // Octets, not characters: 32 × "ü" is 64 octets, 33 × "ü" is 66.
  assert.equal(parsePath(`<${'ü'.repeat(32)}@example.com>`).ok, true);
  assert.deepEqual(parsePath(`<${'ü'.repeat(33)}@example.com>`), { ok: false, kind: 'mailbox' });
  assert.deepEqual(parsePath(`<"${'l'.repeat(63)}"@example.com>`), { ok: false, kind: 'mailbox' });
  assert.equal(parsePath(`<user@${label63}.example>`).ok, true);
  // 256 octets including the brackets is the largest path.
  const domain189 = `${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
  const path256 = `<${'a'.repeat(64)}@${domain189}>`;
  assert.equal(path256.length, 256);
  assert.equal(parsePath(path256).ok, true);
  assert.deepEqual(parsePath(`<${'a'.repeat(64)}@${domain189}d>`), { ok: false, kind: 'mailbox' });
  // The domain limit itself, below the path limit: parseMailbox has no path around it.
  const domain255 = `${label63}.${label63}.${label63}.${'e'.repeat(63)}`;
  assert.equal(domain255.length, 255);
  assert.deepEqual(parseMailbox(`u@${domain255}`), mb('u', domain255));
  assert.equal(parseMailbox(`u@${domain255}a`), null);
  assert.equal(isDomain(domain255, false), true);
  assert.equal(isDomain(`${domain255}a`, false), false);
});

test('U-label length is measured on its A-label (RFC 5890 §2.3.2.1, RFC 3492)', () => {
  assert.equal(punycodeEncode('bücher'), 'bcher-kva');
  assert.equal(punycodeEncode('münchen'), 'mnchen-3ya');
  assert.equal(punycodeEncode('例え'), 'r8jz45g');
  assert.equal(punycodeEncode('ドメイン名例'), 'eckwd4c7cu47r2wf');
  // 58 ASCII + 1 "ü": "xn--" + 58 + "-" + 3 = 66 > 63.
  assert.equal(isDomain(`${'a'.repeat(58)}ü.example`, true), false);
  assert.equal(isDomain(`${'a'.repeat(54)}ü.example`, true), true);
  assert.equal(isDomain('bücher.example', false), false);
});

test('address literals (RFC 5321 §4.1.3)', () => {
  const good = ['[127.0.0.1]', '[IPv6:fe80::1]', '[IPv6:FFFF::]', '[IPv6:1:2:3:4:5:6:7::]', '[IPv6:::1.2.3.4]', '[x:y]'];
  const bad = ['127.0.0.1', '[127.0.0.256]', '[IPv6:fe80::1%eth0]', '[IPv6:fe80:::1]', '[:y]', '[x:]', '[IPv6:x]', '[]'];
  for (const s of good) assert.equal(isAddressLiteral(s), true, s);
  for (const s of bad) assert.equal(isAddressLiteral(s), false, s);
});

test('isIPv6Addr agrees with every form fast-check generates', () => {
  fc.assert(fc.property(fc.ipV6(), (ip) => isIPv6Addr(ip)), { numRuns: 2000 });
});

test('parseForwardPath: <Postmaster> without domain, <> refused (RFC 5321 §4.1.1.3)', () => {
  for (const p of ['<Postmaster>', '<postmaster>', '<POSTMASTER>', '<PostMaster>']) {
    assert.deepEqual(parseForwardPath(p), { ok: true, mailbox: POSTMASTER, rest: '' }, p);
  }
  assert.deepEqual(POSTMASTER, { localPart: 'Postmaster', domain: '', utf8: false });
  assert.deepEqual(parseForwardPath('<postmaster> NOTIFY=NEVER'), { ok: true, mailbox: POSTMASTER, rest: ' NOTIFY=NEVER' });
  assert.deepEqual(parseForwardPath('<Postmaster@Example.com>'),
    { ok: true, mailbox: mb('Postmaster', 'Example.com'), rest: '' });
  assert.deepEqual(parseForwardPath('<>'), { ok: false, kind: 'mailbox' });
  assert.deepEqual(parseForwardPath('<postmasterx>'), { ok: false, kind: 'mailbox' });
  assert.deepEqual(parseForwardPath('postmaster'), { ok: false, kind: 'syntax' });
  assert.deepEqual(parseForwardPath('<user@example.com>'), { ok: true, mailbox: mb('user', 'example.com'), rest: '' });
  // The reverse path has no such special case.
  assert.deepEqual(parsePath('<Postmaster>'), { ok: false, kind: 'mailbox' });
});

test('formatMailbox, formatPath and mailboxDomainLower', () => {
  assert.equal(formatMailbox(null), '');
  assert.equal(formatMailbox(mb('user', 'Example.COM')), 'user@Example.COM');
  assert.equal(formatMailbox(mb('"john doe"', 'example.com')), '"john doe"@example.com');
  assert.equal(formatMailbox(POSTMASTER), 'Postmaster');
  assert.equal(formatPath(null), '<>');
  assert.equal(formatPath(mb('a', '[IPv6:::1]')), '<a@[IPv6:::1]>');
  assert.equal(mailboxDomainLower(null), '');
  assert.equal(mailboxDomainLower(POSTMASTER), '');
  assert.equal(mailboxDomainLower(mb('User', 'Example.COM')), 'example.com');
  assert.equal(mailboxDomainLower(mb('u', 'BÜCHER.example', true)), 'bücher.example');
});

const dotString = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]{1,10}(\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]{1,10}){0,3}$/);
const quotedString = fc.stringMatching(/^"([\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e]){0,20}"$/);
const label = fc.stringMatching(/^[A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?$/);
const domainArb = fc.array(label, { minLength: 1, maxLength: 5 }).map((ls) => ls.join('.'));
const literal = fc.oneof(fc.ipV4().map((ip) => `[${ip}]`), fc.ipV6().map((ip) => `[IPv6:${ip}]`));

test('formatPath → parsePath round-trips generated mailboxes', () => {
  fc.assert(fc.property(fc.oneof(dotString, quotedString), fc.oneof(domainArb, literal), (localPart, domain) => {
    const m = mb(localPart, domain);
    assert.deepEqual(parsePath(formatPath(m)), { ok: true, mailbox: m, rest: '' });
  }), { numRuns: 1000 });
});

test('parsePath never throws and keeps its contract on arbitrary text', () => {
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (s) => {
    const r = parsePath(`<${s}`);
    if (r.ok && r.mailbox !== null) assert.deepEqual(parsePath(formatPath(r.mailbox)), { ok: true, mailbox: r.mailbox, rest: '' });
  }), { numRuns: 2000 });
});
