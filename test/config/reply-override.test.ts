/**
 * Reply overrides validated against the catalogue: what an administrator may change (code within
 * its class, enhanced code, text) and what needs `allow_class_change` or is refused outright.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  renderReply, replyOverridesSchema, replyTemplateFor, resolveReplyOverride, validateReplyOverride,
  type ReplyOverride,
} from '../../src/config/reply-override.js';
import { encodeReply } from '../../src/smtp/reply.js';

function messagesFor(id: string, override: ReplyOverride): string[] {
  return validateReplyOverride(id, override).map((p) => `${p.path.join('.')}: ${p.message}`);
}

test('453 → 452 for the recipients-per-hour limit is allowed (same class)', () => {
  assert.deepEqual(messagesFor('rcpt.rate-limited', { code: 452 }), []);
  assert.deepEqual(resolveReplyOverride('rcpt.rate-limited', { code: 452 }), {
    id: 'rcpt.rate-limited', code: 452, enhanced: '4.5.3', text: 'Too many recipients this hour, try again later',
  });
});

test('452 → 552 is refused without allow_class_change, allowed with it', () => {
  const refused = messagesFor('rcpt.too-many', { code: 552 });
  assert.equal(refused.length, 1);
  assert.match(refused[0], /^code: "rcpt\.too-many" is a transient \(4xx\) reply \(452\); 552 would make it permanent \(5xx\): set allow_class_change: true/);
  assert.throws(() => resolveReplyOverride('rcpt.too-many', { code: 552 }), /allow_class_change/);

  assert.deepEqual(messagesFor('rcpt.too-many', { code: 552, allow_class_change: true }), []);
  // The enhanced code follows the class when none is given.
  assert.deepEqual(resolveReplyOverride('rcpt.too-many', { code: 552, allow_class_change: true }), {
    id: 'rcpt.too-many', code: 552, enhanced: '5.5.3', text: 'Too many recipients',
  });
});

test('a permanent reply stays permanent unless said so', () => {
  assert.equal(messagesFor('rcpt.unknown-user', { code: 450 }).length, 1);
  assert.deepEqual(messagesFor('rcpt.unknown-user', { code: 450, enhanced: '4.1.1', allow_class_change: true }), []);
  assert.deepEqual(messagesFor('rcpt.unknown-user', { code: 553 }), []);
});

test('an enhanced code whose class differs from the reply code is refused', () => {
  assert.deepEqual(messagesFor('rcpt.too-many', { enhanced: '5.5.3' }), [
    'enhanced: enhanced code 5.5.3 has class 5, but the reply code 452 has class 4; they must agree (RFC 3463 §3.1)',
  ]);
  assert.equal(messagesFor('rcpt.too-many', { code: 552, enhanced: '4.5.3', allow_class_change: true }).length, 1);
  assert.deepEqual(messagesFor('rcpt.too-many', { enhanced: '4.2.2' }), []);
});

test('malformed enhanced codes are refused', () => {
  for (const enhanced of ['4.5', '4.05.3', '3.5.3', '4.5.1000', 'x.y.z', '']) {
    assert.match(messagesFor('rcpt.too-many', { enhanced })[0] ?? '', /^enhanced: .* is not an RFC 3463 enhanced status code/, enhanced);
  }
});

test('an unknown reply id is refused, with the closest id suggested', () => {
  assert.deepEqual(messagesFor('rcpt.to-many', { code: 452 }), [': unknown reply id "rcpt.to-many"; did you mean "rcpt.too-many"?']);
  assert.deepEqual(messagesFor('no-such-thing-at-all', { code: 452 }), [': unknown reply id "no-such-thing-at-all"']);
});

test('codes must have the RFC 5321 §4.2 form', () => {
  for (const code of [199, 600, 460, 599, 45, 4520, 452.5]) {
    assert.match(messagesFor('rcpt.too-many', { code })[0] ?? '', /^code: .* is not a reply code: RFC 5321 §4\.2/, String(code));
  }
});

test('success and intermediate replies keep their code; their text may change', () => {
  assert.match(messagesFor('data.queued', { code: 550, allow_class_change: true })[0], /success \(2xx\).*no override may do/);
  assert.match(messagesFor('data.queued', { code: 251 })[0], /cannot be overridden, only its text/);
  assert.match(messagesFor('data.go-ahead', { code: 350 })[0], /cannot be overridden/);
  assert.deepEqual(messagesFor('data.queued', { text: 'Accepted, id {id}' }), []);
  assert.match(messagesFor('greeting', { enhanced: '2.0.0' })[0], /carries no enhanced status code/);
});

test('texts are one line of printable ASCII with the entry\'s own placeholders', () => {
  assert.match(messagesFor('rcpt.too-many', { text: 'a\r\n550 b' })[0], /one line of printable ASCII/);
  assert.match(messagesFor('rcpt.too-many', { text: 'Grüße' })[0], /printable ASCII/);
  assert.match(messagesFor('rcpt.too-many', { text: '   ' })[0], /must not be empty/);
  assert.match(messagesFor('rcpt.too-many', { text: 'x'.repeat(481) })[0], /at most 480/);
  assert.deepEqual(messagesFor('rcpt.too-many', { text: 'Slow down {client}' }), ['text: unknown placeholder {client}: this reply has none']);
  assert.deepEqual(messagesFor('connect.rejected', { text: '{hostname} go away {client}' }), [
    'text: unknown placeholder {client}: this reply has {hostname}',
  ]);
  assert.deepEqual(messagesFor('connect.rejected', { text: '{hostname} go away' }), []);
  assert.match(messagesFor('rcpt.too-many', {})[0], /at least one of code, enhanced, text/);
});

test('an override renders into a Reply like the catalogue does', () => {
  const template = replyTemplateFor('connect.rejected', {
    'connect.rejected': { code: 550, enhanced: '5.7.1', text: '{hostname} You are not welcome here' },
  });
  const rendered = renderReply(template, { hostname: 'mx.example.test' });
  assert.equal(encodeReply(rendered), '550 5.7.1 mx.example.test You are not welcome here\r\n');
  assert.equal(rendered.id, 'connect.rejected');
  // No override: the catalogue's entry.
  assert.equal(encodeReply(renderReply(replyTemplateFor('rcpt.too-many'))), '452 4.5.3 Too many recipients\r\n');
});

test('the overrides schema reports problems at the override\'s path', () => {
  const result = replyOverridesSchema.safeParse({
    'rcpt.too-many': { code: 552 },
    'rcpt.rate-limited': { code: 452 },
    'rcpt.to-many': { text: 'x' },
  });
  assert.equal(result.success, false);
  assert.deepEqual(result.error?.issues.map((i) => i.path), [['rcpt.too-many', 'code'], ['rcpt.to-many']]);

  const ok = replyOverridesSchema.safeParse({ 'rcpt.rate-limited': { code: 452 } });
  assert.deepEqual(ok, { success: true, data: { 'rcpt.rate-limited': { code: 452 } } });
  assert.equal(replyOverridesSchema.safeParse({ 'rcpt.too-many': { code: 452, colour: 'red' } }).success, false);
});
