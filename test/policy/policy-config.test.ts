/**
 * The policy sections of the config file: the embedded default, the predefined policies and
 * changing them field by field, and errors and warnings that name the path and line
 * (`sender_groups[2].policy: unknown policy "ACCPT"`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyseConfigText, defaultConfig, parseConfigText } from '../../src/config/load-config.js';
import { PREDEFINED_POLICIES, POLICY_DEFAULTS } from '../../src/config/policy-schema.js';

function issuesOf(text: string): string[] {
  return analyseConfigText(text, 'p.yaml', { baseDir: '/tmp' }).issues.map((i) => `${i.severity} ${i.line}:${i.column} ${i.path}: ${i.message}`);
}

test('the embedded default: loopback → RELAYED, everyone else → ACCEPTED; the five predefined policies', () => {
  const c = defaultConfig();
  assert.deepEqual(c.sender_groups, [
    { name: 'RELAYLIST', match: [{ kind: 'ip', ranges: ['127.0.0.0/8', '::1'] }], policy: 'RELAYED' },
    { name: 'ALL', match: [{ kind: 'all' }], policy: 'ACCEPTED' },
  ]);
  assert.deepEqual(Object.keys(c.policies), ['ACCEPTED', 'THROTTLED', 'TRUSTED', 'BLOCKED', 'RELAYED']);
  // The quick start's: anyone at example.test (README), delivered to ./var/mail.
  assert.deepEqual(c.domains.local, ['example.test']);
  assert.deepEqual(c.recipients, { valid: ['@example.test'], blocked: [] });
  assert.deepEqual(c.senders, { blocked: [] });
});

test('predefined limits (messages per connection / recipients per message / size / connections per IP / recipients per hour)', () => {
  const c = parseConfigText('', 'p.yaml', { baseDir: '/tmp' });
  const limits = (name: string) => {
    const p = c.policies[name];
    return [p.action, p.max_messages_per_connection, p.max_recipients_per_message, p.max_message_size, p.max_connections_per_ip, p.recipients_per_hour];
  };
  // null in the first three: from `limits:`, whose defaults are 1000 / 1000 / 100MB.
  assert.deepEqual(limits('ACCEPTED'), ['accept', null, null, null, 1000, null]);
  assert.deepEqual(c.limits.max_messages_per_connection, 1000);
  assert.deepEqual(c.limits.max_recipients, 1000);
  assert.deepEqual(c.limits.max_message_size, 100 * 1024 ** 2);
  // THROTTLED: 20 recipients per message in commercial gateways; RFC 5321 §4.5.3.1.8 requires 100.
  assert.deepEqual(limits('THROTTLED'), ['accept', 10, 100, 1024 ** 2, 10, 20]);
  assert.deepEqual(limits('TRUSTED'), ['accept', null, null, null, 1000, null]);
  assert.equal(c.policies.TRUSTED.trusted, true);
  assert.equal(c.policies.BLOCKED.action, 'reject');
  assert.equal(c.policies.RELAYED.action, 'relay');
  assert.deepEqual(c.policies.ACCEPTED, PREDEFINED_POLICIES.ACCEPTED);
});

test('a predefined policy changed field by field keeps its other fields; a new policy starts from the defaults', () => {
  const c = parseConfigText([
    'policies:',
    '  THROTTLED: { recipients_per_hour: 50, max_connections_per_ip: none }',
    '  STRICT: { reverse_dns: require_fcrdns, reject_at: connect, messages_per_hour: 100, max_message_size: 5MB,',
    '            reply_overrides: { rcpt.rate-limited: { code: 452 } } }',
  ].join('\n'), 'p.yaml', { baseDir: '/tmp' });
  assert.deepEqual(c.policies.THROTTLED, { ...PREDEFINED_POLICIES.THROTTLED, recipients_per_hour: 50, max_connections_per_ip: null });
  assert.deepEqual(c.policies.STRICT, {
    ...POLICY_DEFAULTS, reverse_dns: 'require_fcrdns', reject_at: 'connect', messages_per_hour: 100,
    max_message_size: 5 * 1024 ** 2, reply_overrides: { 'rcpt.rate-limited': { code: 452 } },
  });
});

test('matchers: one value or a list; names in lower case; regular expressions as written', () => {
  const c = parseConfigText([
    'sender_groups:',
    '  - { name: A, match: [ip: 203.0.113.0/24, rdns: [Mail.Example.TEST., .Partner.test], dnsbl: BL.test] , policy: BLOCKED }',
    '  - { name: B, match: [rdns: "/^MX\\\\d+$/"], policy: ACCEPTED }',
    '  - { name: C, match: [all], policy: ACCEPTED }',
  ].join('\n'), 'p.yaml', { baseDir: '/tmp' });
  assert.deepEqual(c.sender_groups[0].match, [
    { kind: 'ip', ranges: ['203.0.113.0/24'] },
    { kind: 'rdns', patterns: ['mail.example.test', '.partner.test'] },
    { kind: 'dnsbl', zones: ['bl.test'] },
  ]);
  assert.deepEqual(c.sender_groups[1].match, [{ kind: 'rdns', patterns: ['/^MX\\d+$/'] }]);
});

test('errors name the path and the line', () => {
  assert.deepEqual(issuesOf([
    'sender_groups:',
    '  - { name: A, match: [ip: 203.0.113.0/33], policy: BLOCKED }',
    '  - { name: B, match: [ipp: 192.0.2.1, rdns: "/(/"], policy: ACCEPTED }',
    '  - { name: C, match: [al], policy: ACCEPTED }',
  ].join('\n')), [
    'error 2:28 sender_groups[0].match[0].ip: "203.0.113.0/33": the prefix length must be 0 to 32',
    'error 3:24 sender_groups[1].match[0].ipp: unknown matcher; did you mean "ip"?; expected all, or one of ip: ADDRESS/CIDR, rdns: NAME | .SUFFIX | /REGEX/, dnsbl: ZONE',
    'error 3:46 sender_groups[1].match[1].rdns: "/(/" is not a valid regular expression: Invalid regular expression: /(/i: Unterminated group',
    'error 4:24 sender_groups[2].match[0]: unknown matcher "al"; did you mean "all"?; expected all, or one of ip: ADDRESS/CIDR, rdns: NAME | .SUFFIX | /REGEX/, dnsbl: ZONE',
  ]);
  assert.deepEqual(issuesOf([
    'sender_groups:',
    '  - { name: A, match: [all], policy: BLOCKED }',
    '  - { name: A, match: [all], policy: ACCEPTED }',
    '  - { name: C, match: [all], policy: ACCPT }',
  ].join('\n')), [
    'error 3:13 sender_groups[1].name: duplicate sender group name "A" (also sender_groups[0].name)',
    'error 4:38 sender_groups[2].policy: unknown policy "ACCPT"; known policies: ACCEPTED, THROTTLED, TRUSTED, BLOCKED, RELAYED',
  ]);
  assert.deepEqual(issuesOf('policies:\n  THROTTLED: { max_recipients_per_message: 20 }\n  SHUT: { action: reject, max_recipients_per_message: 20 }'), [
    'error 2:44 policies.THROTTLED.max_recipients_per_message: must be at least 100 for a policy that accepts mail (RFC 5321 §4.5.3.1.8: a server accepts 100 recipients per message)',
  ]);
  assert.deepEqual(issuesOf('policies:\n  MINE: { messages_per_hour: lots, reply_overrides: { rcpt.rate-limited: { code: 552 } }, colour: red }'), [
    'error 2:30 policies.MINE.messages_per_hour: expected a whole number of at least 1, or none, got "lots"',
    'error 2:82 policies.MINE.reply_overrides["rcpt.rate-limited"].code: "rcpt.rate-limited" is a transient (4xx) reply (453); 552 would make it permanent (5xx): set allow_class_change: true to do that on purpose',
    'error 2:91 policies.MINE.colour: unknown key; known keys: action, trusted, banner, max_message_size, max_recipients_per_message, max_messages_per_connection, max_connections_per_ip, messages_per_hour, recipients_per_hour, recipients_per_hour_per_sender, reverse_dns, reject_at, verify_sender_domain, reply_overrides',
  ]);
  assert.deepEqual(issuesOf('recipients: { valid: [nobody], blocked: ["@"] }'), [
    'error 1:23 recipients.valid[0]: expected an address like user@example.test, or @example.test for the whole domain, got "nobody"',
    'error 1:42 recipients.blocked[0]: expected an address like user@example.test, or @example.test for the whole domain, got "@"',
  ]);
});

test('warnings: no catch-all group, groups after the catch-all, valid recipients outside the local domains', () => {
  assert.deepEqual(issuesOf([
    'domains: { local: [example.test] }',
    'recipients: { valid: [a@example.test, b@other.test] }',
    'sender_groups:',
    '  - { name: A, match: [ip: 192.0.2.1], policy: BLOCKED }',
  ].join('\n')), [
    'warning 2:39 recipients.valid[1]: other.test is not in domains.local, so this entry never applies',
    'warning 4:3 sender_groups: no group matches every client (match: [all]); a client that matches no group is refused (554 5.7.1)',
  ]);
  assert.deepEqual(issuesOf([
    'sender_groups:',
    '  - { name: ALL, match: [all], policy: ACCEPTED }',
    '  - { name: LATE, match: [ip: 192.0.2.1], policy: BLOCKED }',
  ].join('\n')), [
    'warning 3:5 sender_groups[1]: sender_groups[0] matches every client, so this group and those after it never apply',
  ]);
});
