/**
 * The config of issue 7's security features: `sender_auth` (defaults, per-policy settings, an
 * unknown policy named), `dkim.sign` (paths relative to the file, a duplicate selector), `auth`
 * per IP and the listener's `sender_login_match`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyseConfigText, parseConfigText } from '../../src/config/load-config.js';
import { SENDER_AUTH_DEFAULTS, senderAuthFor } from '../../src/config/sender-auth-schema.js';

const errors = (text: string): string[] =>
  analyseConfigText(text, 't.yaml', { baseDir: '/etc/postern' }).issues
    .filter((i) => i.severity === 'error')
    .map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`);

test('sender_auth: defaults; a policy entry changes only what it names', () => {
  const c = parseConfigText([
    'policies: { STRICT: { action: accept } }',
    'sender_auth:',
    '  spf_fail: accept',
    '  policies:',
    '    STRICT: { temperror: defer, spf_softfail: reject }',
    '    TRUSTED: { check: false }',
  ].join('\n'), 't.yaml', { baseDir: '/tmp' });
  const { policies, ...base } = senderAuthFor(c.sender_auth, 'ACCEPTED') as typeof c.sender_auth;
  assert.deepEqual(base, { ...SENDER_AUTH_DEFAULTS, spf_fail: 'accept' });
  assert.deepEqual(Object.keys(policies), ['STRICT', 'TRUSTED']);
  assert.deepEqual(senderAuthFor(c.sender_auth, 'STRICT'), { ...SENDER_AUTH_DEFAULTS, spf_fail: 'accept', temperror: 'defer', spf_softfail: 'reject' });
  assert.equal(senderAuthFor(c.sender_auth, 'TRUSTED').check, false);
});

test('sender_auth: an unknown policy and a bad value are named with their line', () => {
  assert.deepEqual(errors('sender_auth:\n  dmarc_reject: bounce'), [
    '2:17 sender_auth.dmarc_reject: expected one of "reject", "quarantine", "accept", got "bounce"',
  ]);
  assert.deepEqual(errors('sender_auth:\n  policies:\n    STRCT: { check: false }'), [
    '3:5 sender_auth.policies.STRCT: unknown policy "STRCT"; known policies: ACCEPTED, THROTTLED, TRUSTED, BLOCKED, RELAYED',
  ]);
});

test('dkim.sign: key paths relative to the config file; domains in lower case; a selector twice is refused', () => {
  const c = parseConfigText('dkim: { sign: [{ domain: Example.TEST., selector: s1, key: keys/a.pem }] }', '/etc/postern/postern.yaml');
  assert.deepEqual(c.dkim.sign, [{ domain: 'example.test', selector: 's1', key: '/etc/postern/keys/a.pem' }]);
  assert.deepEqual(errors('dkim:\n  sign:\n    - { domain: a.test, selector: s1, key: k1 }\n    - { domain: a.test, selector: s1, key: k2 }'), [
    '4:35 dkim.sign[1].selector: duplicate selector s1 for a.test (also dkim.sign[0])',
  ]);
  assert.equal(errors('dkim: { sign: [{ domain: "not a domain", selector: s1, key: k }] }').length, 1);
});

test('auth per IP and sender_login_match', () => {
  const c = parseConfigText([
    'auth: { max_failures_per_ip: 4, failure_window: 10m }',
    'listeners: [{ name: sub, listen: "127.0.0.1:2587", auth: required, sender_login_match: false }]',
  ].join('\n'), 't.yaml', { baseDir: '/tmp' });
  assert.equal(c.auth.max_failures_per_ip, 4);
  assert.equal(c.auth.failure_window, 600_000);
  assert.equal(c.listeners[0].sender_login_match, false);
});
