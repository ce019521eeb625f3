/**
 * The `mailboxes:` config section (src/config/mailboxes-schema.ts; the root schema holds it), and
 * where a user's Maildir lands on disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocument } from 'yaml';
import {
  MAILBOXES_DEFAULT_YAML, mailboxesSchema, parseLmtpNextHop, resolveMailboxesPaths,
} from '../../src/config/mailboxes-schema.js';
import { maildirPath, pathSegment } from '../../src/mailbox/mailbox-path.js';
import { canonicalAddress } from '../../src/mailbox/mailbox-address.js';

const messages = (input: unknown): string[] => {
  const r = mailboxesSchema.safeParse(input);
  assert.equal(r.success, false);
  return r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

test('defaults: ./var/mail, no users file, soft, insensitive, maildir', () => {
  assert.deepEqual(mailboxesSchema.parse({}), {
    path: './var/mail', over_quota: 'soft', local_part_case: 'insensitive', transport: 'maildir',
  });
  // The documented default section parses to the same.
  const documented = parseDocument(MAILBOXES_DEFAULT_YAML).toJS() as { mailboxes: unknown };
  assert.deepEqual(mailboxesSchema.parse(documented.mailboxes), mailboxesSchema.parse({}));
});

test('every setting, and paths resolved against the config directory', () => {
  const parsed = mailboxesSchema.parse({
    path: 'mail', users_file: 'users.yaml', over_quota: 'hard', local_part_case: 'sensitive',
    transport: 'lmtp', lmtp_next_hop: 'lmtp://[::1]:2424',
  });
  assert.deepEqual(parsed.lmtp_next_hop, { kind: 'tcp', host: '::1', port: 2424, url: 'lmtp://[::1]:2424' });
  assert.deepEqual(resolveMailboxesPaths(parsed, '/etc/postern'), { ...parsed, path: '/etc/postern/mail', users_file: '/etc/postern/users.yaml' });
  assert.deepEqual(resolveMailboxesPaths(mailboxesSchema.parse({ path: '/srv/mail' }), '/etc/postern').path, '/srv/mail');
  assert.equal('users_file' in resolveMailboxesPaths(mailboxesSchema.parse({}), '/x'), false);
});

test('errors: unknown values and keys, LMTP without a next hop', () => {
  assert.deepEqual(messages({ over_quota: 'medium' }), ['over_quota: Invalid option: expected one of "soft"|"hard"']);
  assert.deepEqual(messages({ transport: 'lmtp' }), ['lmtp_next_hop: is required with transport: lmtp (an LMTP next hop like lmtp://127.0.0.1:24 or unix:/run/dovecot/lmtp)']);
  assert.deepEqual(messages({ transport: 'lmtp', lmtp_next_hop: 'smtp://x:25' }), ['lmtp_next_hop: expected an LMTP next hop like lmtp://127.0.0.1:24 or unix:/run/dovecot/lmtp, got "smtp://x:25"']);
  assert.equal(messages({ path: './m', user_file: 'x' }).length, 1);
});

test('LMTP next hops: TCP with the default port 24, or a UNIX socket', () => {
  assert.deepEqual(parseLmtpNextHop('lmtp://Mail.Example.test'), { kind: 'tcp', host: 'mail.example.test', port: 24, url: 'lmtp://Mail.Example.test' });
  assert.deepEqual(parseLmtpNextHop('unix:/run/dovecot/lmtp'), { kind: 'unix', path: '/run/dovecot/lmtp', url: 'unix:/run/dovecot/lmtp' });
  assert.deepEqual(parseLmtpNextHop('lmtp:unix:/run/lmtp'), { kind: 'unix', path: '/run/lmtp', url: 'lmtp:unix:/run/lmtp' });
  assert.equal(parseLmtpNextHop('lmtp://host:0'), null);
  assert.equal(parseLmtpNextHop('unix:relative'), null);
});

test('Maildir paths: <root>/<domain>/<local-part>, one safe segment each, or the maildir: setting', () => {
  const owner = (address: string, maildir: string | null = null) => {
    const c = canonicalAddress(address, 'insensitive')!;
    return { localPart: c.localPart, domain: c.domain, maildir };
  };
  assert.equal(maildirPath('/var/mail', owner('Alice@Example.test')), '/var/mail/example.test/alice');
  assert.equal(maildirPath('/var/mail', owner('"../../etc"@example.test')), '/var/mail/example.test/%22..%2F..%2Fetc%22');
  assert.equal(pathSegment('.hidden'), '%2Ehidden', 'never a Maildir++ folder name or ".."');
  assert.equal(pathSegment('..'), '%2E.');
  assert.equal(maildirPath('/var/mail', owner('jörg@bücher.test')), '/var/mail/xn--bcher-kva.test/j%C3%B6rg');
  assert.equal(maildirPath('/var/mail', owner('a@example.test', 'shared/a')), '/var/mail/shared/a');
  assert.equal(pathSegment('a%b'), 'a%25b', 'the escape character is escaped: no two addresses share a directory');
  assert.equal(pathSegment('first.last+tag=x-y_z'), 'first.last+tag=x-y_z');
});
