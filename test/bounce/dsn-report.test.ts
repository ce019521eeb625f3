/** DSNs as written, read back by a strict parser: structure, fields, and what RET returns. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HeaderCollector, ORIGINAL_BODY, renderDsn, returnsFullMessage, rfc5322Date,
  type DsnInput, type DsnOriginal, type DsnRecipient, type RenderedDsn,
} from '../../src/bounce/dsn-report.js';
import { parseDsn } from './parse-dsn.js';

const T0 = Date.UTC(2026, 10, 28, 9, 30, 0);
const HEADERS = Buffer.from('From: a@src.test\r\nTo: b@dst.test\r\nSubject: quarterly report\r\nMessage-ID: <m1@src.test>\r\n\r\n');
const BODY = Buffer.concat([HEADERS, Buffer.from('Hello,\r\n.leading dot\r\n')]);

function original(overrides: Partial<DsnOriginal> = {}): DsnOriginal {
  return {
    queueId: '0Q5abcDEF123xyz', sender: 'a@src.test', envid: null, ret: null, receivedAt: T0,
    size: BODY.length, smtputf8: false, eightBit: false, headers: HEADERS, ...overrides,
  };
}

const failed: DsnRecipient = {
  finalRecipient: 'b@dst.test',
  originalRecipient: { addrType: 'rfc822', address: 'B.Original@dst.test' },
  action: 'failed',
  status: '5.1.1',
  diagnostic: { type: 'smtp', text: '550 5.1.1 <b@dst.test>: Recipient address rejected: User unknown in virtual mailbox table' },
  remoteMta: 'mx.dst.test',
  lastAttemptAt: T0 + 5000,
  willRetryUntil: null,
  reason: 'host mx.dst.test[127.0.0.2] said: 550 5.1.1 User unknown (in reply to RCPT TO command)',
};

function input(overrides: Partial<DsnInput> = {}): DsnInput {
  return {
    kind: 'failure', reportingMta: 'mx.postern.test', to: 'a@src.test', original: original(),
    recipients: [failed], now: T0 + 6000, maxReturnedSize: 10 * 1024 * 1024, ...overrides,
  };
}

/** The DSN's bytes with the original body put where the store would copy it. */
function materialise(r: RenderedDsn, body: Buffer = BODY): Buffer {
  return Buffer.concat(r.parts.map((p) => (p === ORIGINAL_BODY ? body : p)));
}

test('a failure DSN: multipart/report with the RFC 3464 fields, per message and per recipient', () => {
  const r = renderDsn(input({ original: original({ envid: 'QQ314159', ret: 'HDRS' }) }));
  const dsn = parseDsn(materialise(r));
  assert.equal(dsn.headers.get('from'), 'Mail Delivery System <MAILER-DAEMON@mx.postern.test>');
  assert.equal(dsn.headers.get('to'), '<a@src.test>');
  assert.equal(dsn.headers.get('subject'), 'Undelivered Mail Returned to Sender');
  assert.equal(dsn.headers.get('auto-submitted'), 'auto-replied');
  assert.equal(dsn.headers.get('date'), 'Sat, 28 Nov 2026 09:30:06 +0000');
  assert.equal(dsn.headers.get('message-id'), r.messageId);
  assert.equal(dsn.perMessage.get('reporting-mta'), 'dns; mx.postern.test');
  assert.equal(dsn.perMessage.get('original-envelope-id'), 'QQ314159');
  assert.equal(dsn.perMessage.get('arrival-date'), 'Sat, 28 Nov 2026 09:30:00 +0000');
  assert.equal(dsn.perRecipient.length, 1);
  const rc = dsn.perRecipient[0];
  assert.equal(rc.get('final-recipient'), 'rfc822; b@dst.test');
  assert.equal(rc.get('original-recipient'), 'rfc822; B.Original@dst.test');
  assert.equal(rc.get('action'), 'failed');
  assert.equal(rc.get('status'), '5.1.1');
  assert.equal(rc.get('remote-mta'), 'dns; mx.dst.test');
  assert.equal(rc.get('diagnostic-code'), 'smtp; 550 5.1.1 <b@dst.test>: Recipient address rejected: User unknown in virtual mailbox table');
  assert.equal(rc.get('last-attempt-date'), 'Sat, 28 Nov 2026 09:30:05 +0000');
  assert.match(dsn.parts[0].body, /could not\r\nbe delivered/);
  assert.match(dsn.parts[0].body.replace(/\r\n\s+/g, ' '), /<b@dst\.test>: host mx\.dst\.test\[127\.0\.0\.2\] said: 550 5\.1\.1 User unknown \(in reply to RCPT TO command\)/);
  // RET=HDRS: the header only.
  assert.equal(r.returned, 'headers');
  assert.equal(dsn.returned.headers.get('content-type'), 'text/rfc822-headers');
  assert.equal(dsn.returned.body, HEADERS.toString('latin1'));
  for (const line of materialise(r).toString('latin1').split('\r\n')) assert.ok(line.length <= 998, 'no line over 998 octets');
});

test('RET: FULL returns the message, HDRS the header; without RET the whole message under 10 KB, else the header', () => {
  const full = renderDsn(input({ original: original({ ret: 'FULL' }) }));
  assert.equal(full.returned, 'full');
  const parsed = parseDsn(materialise(full));
  assert.equal(parsed.returned.headers.get('content-type'), 'message/rfc822');
  assert.equal(parsed.returned.body, BODY.toString('latin1'), 'the original, byte for byte');

  assert.equal(renderDsn(input({ original: original({ ret: null, size: 10 * 1024 - 1 }) })).returned, 'full');
  assert.equal(renderDsn(input({ original: original({ ret: null, size: 10 * 1024 }) })).returned, 'headers');
  assert.equal(renderDsn(input({ original: original({ ret: 'FULL', size: 50_000_000 }), maxReturnedSize: 10_000_000 })).returned, 'headers', 'past the size limit: headers even with FULL');
  assert.equal(returnsFullMessage('HDRS', 10, 1e9), false);
  assert.equal(returnsFullMessage('FULL', 1e6, 1e9), true);
});

test('a delay DSN: action delayed, 4.x.x status, Will-Retry-Until, the warning text', () => {
  const delayed: DsnRecipient = {
    ...failed, action: 'delayed', status: '4.4.1', willRetryUntil: T0 + 72 * 3_600_000,
    diagnostic: { type: 'X-Postern', text: 'connect to mx.dst.test[127.0.0.2]:25: Connection refused' },
    reason: 'connect to mx.dst.test[127.0.0.2]:25: Connection refused',
  };
  const dsn = parseDsn(materialise(renderDsn(input({ kind: 'delay', recipients: [delayed], now: T0 + 4 * 3_600_000 }))));
  assert.equal(dsn.headers.get('subject'), 'Delayed Mail (still being retried)');
  const rc = dsn.perRecipient[0];
  assert.equal(rc.get('action'), 'delayed');
  assert.equal(rc.get('status'), '4.4.1');
  assert.equal(rc.get('will-retry-until'), 'Tue, 1 Dec 2026 09:30:00 +0000');
  assert.equal(rc.get('diagnostic-code'), 'X-Postern; connect to mx.dst.test[127.0.0.2]:25: Connection refused');
  assert.match(dsn.parts[0].body, /THIS IS A WARNING ONLY/);
  assert.match(dsn.parts[0].body, /could not be delivered for 4\.0 hours/);
});

test('success DSNs: delivered (to a mailbox) and relayed (to a next hop without DSN)', () => {
  const delivered: DsnRecipient = { ...failed, action: 'delivered', status: '2.0.0', diagnostic: null, remoteMta: null, reason: 'delivered to mailbox' };
  const relayed: DsnRecipient = { ...failed, finalRecipient: 'c@dst.test', originalRecipient: null, action: 'relayed', status: '2.0.0', diagnostic: { type: 'smtp', text: '250 2.0.0 Ok' }, reason: 'relayed to a mailer without DSN support' };
  const dsn = parseDsn(materialise(renderDsn(input({ kind: 'success', recipients: [delivered, relayed] }))));
  assert.equal(dsn.headers.get('subject'), 'Successful Mail Delivery Report');
  assert.deepEqual(dsn.perRecipient.map((r) => [r.get('final-recipient'), r.get('action'), r.get('status')]), [
    ['rfc822; b@dst.test', 'delivered', '2.0.0'],
    ['rfc822; c@dst.test', 'relayed', '2.0.0'],
  ]);
  assert.equal(dsn.perRecipient[1].get('original-recipient'), undefined, 'no ORCPT, no Original-Recipient');
  assert.equal(dsn.perMessage.get('original-envelope-id'), undefined, 'no ENVID, no Original-Envelope-Id');
});

test('UTF-8 addresses make a message/global-delivery-status report (RFC 6533) that needs SMTPUTF8', () => {
  const utf8: DsnRecipient = { ...failed, finalRecipient: 'j\u00f6rg@b\u00fccher.test', originalRecipient: null };
  const r = renderDsn(input({ recipients: [utf8], original: original({ smtputf8: true, ret: 'FULL' }) }));
  assert.equal(r.smtputf8, true);
  const dsn = parseDsn(Buffer.from(materialise(r).toString('latin1'), 'latin1'));
  assert.equal(dsn.parts[1].headers.get('content-type'), 'message/global-delivery-status');
  assert.equal(dsn.returned.headers.get('content-type'), 'message/global');
  assert.equal(Buffer.from(dsn.perRecipient[0].get('final-recipient') ?? '', 'latin1').toString('utf8'), 'utf-8; j\u00f6rg@b\u00fccher.test');
});

test('a long diagnostic is folded, and unfolds to itself', () => {
  const long = 'x'.repeat(30) + ' ' + 'word '.repeat(60).trim();
  const r = renderDsn(input({ recipients: [{ ...failed, diagnostic: { type: 'smtp', text: `550 5.7.1 ${long}` } }] }));
  const text = materialise(r).toString('latin1');
  assert.ok(text.split('\r\n').every((l) => l.length <= 80 || !l.includes(' ')), 'folded at spaces');
  assert.equal(parseDsn(text).perRecipient[0].get('diagnostic-code'), `smtp; 550 5.7.1 ${long}`);
});

test('HeaderCollector finds the header across chunk boundaries, and stops at its limit', () => {
  const message = Buffer.concat([HEADERS, Buffer.from('body\r\n\r\nmore\r\n')]);
  for (let cut = 1; cut < message.length; cut++) {
    const h = new HeaderCollector(1024);
    if (!h.push(message.subarray(0, cut))) h.push(message.subarray(cut));
    assert.equal(h.headers().toString(), HEADERS.toString(), `cut at ${cut}`);
  }
  const capped = new HeaderCollector(20);
  assert.equal(capped.push(message), true);
  assert.equal(capped.headers().toString(), 'From: a@src.test\r\nTo\r\n\r\n');
  assert.equal(rfc5322Date(Date.UTC(2026, 0, 5, 3, 4, 5)), 'Mon, 5 Jan 2026 03:04:05 +0000');
});
