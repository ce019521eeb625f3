/**
 * The verdict helper for the policy engine: every lookup result × status × quota × SIZE mapped to
 * its catalogue reply, asserted as the exact bytes on the wire; and RecipientVerifier, which
 * feeds it from a real directory and real maildirsize files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MailboxDelivery } from '../../src/mailbox/mailbox-delivery.js';
import {
  exceedsQuota, LOOP_REPLY_ID, mailboxesOf, recipientVerdict, verdictReply, type RecipientCheckInput,
} from '../../src/mailbox/recipient-check.js';
import { RecipientVerifier } from '../../src/mailbox/recipient-verifier.js';
import type { AliasTarget, LookupResult, MailboxUser } from '../../src/mailbox/user-directory.js';
import { UserDirectory } from '../../src/mailbox/user-directory.js';
import { encodeReply } from '../../src/smtp/reply.js';
import { messageBytes } from './fixtures/message-bytes.js';

function user(localPart: string, extra: Partial<MailboxUser> = {}): MailboxUser {
  return {
    address: `${localPart}@example.test`, key: `${localPart}@example.test`, localPart, domain: 'example.test',
    quota: null, status: 'active', aliases: [], admin: false, passwordHash: null, maildir: null, builtin: false, ...extra,
  };
}

const ADDRESS = 'Alice@example.test';

/** The verdict's reply as sent, plus its class and reason; null for "not ours". */
function wire(input: Partial<RecipientCheckInput> & { lookup: LookupResult }): [string, string, string] | null {
  const v = recipientVerdict({ overQuota: 'soft', declaredSize: null, ...input });
  return v === null ? null : [encodeReply(verdictReply(v)), v.class, v.reason];
}

const asUser = (u: MailboxUser): LookupResult => ({ kind: 'user', address: ADDRESS, user: u });

test('each lookup result maps to exactly one catalogue reply', () => {
  assert.deepEqual(wire({ lookup: asUser(user('alice')) }), ['250 2.1.5 Recipient <Alice@example.test> OK\r\n', 'accept', 'user']);
  assert.deepEqual(wire({ lookup: { kind: 'forward', address: ADDRESS, mode: 'forward', to: 'alice@new.test' } }),
    ['251 2.1.5 User not local; will forward to <alice@new.test>\r\n', 'accept', 'forward']);
  assert.deepEqual(wire({ lookup: { kind: 'forward', address: ADDRESS, mode: 'refer', to: 'alice@new.test' } }),
    ['551 5.1.6 User not local; please try <alice@new.test>\r\n', 'hard', 'refer']);
  assert.deepEqual(wire({ lookup: { kind: 'unknown', address: ADDRESS } }),
    ['550 5.1.1 Recipient address rejected: User unknown\r\n', 'hard', 'unknown']);
  assert.deepEqual(wire({ lookup: asUser(user('alice', { status: 'disabled' })) }),
    ['550 5.2.1 Recipient address rejected: Mailbox disabled\r\n', 'hard', 'disabled']);
  assert.deepEqual(wire({ lookup: asUser(user('alice', { status: 'locked' })) }),
    ['450 4.2.1 Recipient address rejected: Mailbox temporarily unavailable\r\n', 'soft', 'locked']);
  assert.deepEqual(wire({ lookup: { kind: 'tempfail', address: ADDRESS, reason: 'x' } }),
    ['451 4.4.3 Recipient address rejected: lookup failed temporarily\r\n', 'soft', 'tempfail']);
  assert.deepEqual(wire({ lookup: { kind: 'loop', address: ADDRESS, chain: ['a@x', 'b@x', 'a@x'] } }),
    ['451 4.3.0 Local error in processing, try again later\r\n', 'soft', 'loop']);
  assert.equal(LOOP_REPLY_ID, 'local-error');
  assert.equal(wire({ lookup: { kind: 'not-local', address: 'x@partner.test' } }), null);
});

test('over quota: 452 4.2.2 with over_quota soft, 552 5.2.2 with hard; SIZE that does not fit counts', () => {
  const full = user('alice', { quota: 10_000 });
  const usage = new Map([[full.key, 6000]]);
  const soft = ['452 4.2.2 Recipient address rejected: Mailbox full\r\n', 'soft', 'over-quota'];
  const hard = ['552 5.2.2 Recipient address rejected: Mailbox full\r\n', 'hard', 'over-quota'];
  const ok = ['250 2.1.5 Recipient <Alice@example.test> OK\r\n', 'accept', 'user'];

  assert.deepEqual(wire({ lookup: asUser(full), usage, declaredSize: 4000 }), ok, 'fits exactly');
  assert.deepEqual(wire({ lookup: asUser(full), usage, declaredSize: 4001 }), soft);
  assert.deepEqual(wire({ lookup: asUser(full), usage, declaredSize: 4001, overQuota: 'hard' }), hard);
  assert.deepEqual(wire({ lookup: asUser(full), usage, declaredSize: null }), ok, 'no SIZE, room left');

  const atQuota = new Map([[full.key, 10_000]]);
  assert.deepEqual(wire({ lookup: asUser(full), usage: atQuota, declaredSize: null }), soft, 'no SIZE, mailbox exactly full');
  assert.deepEqual(wire({ lookup: asUser(full), usage: atQuota, declaredSize: null, overQuota: 'hard' }), hard);
  const over = new Map([[full.key, 12_000]]);
  assert.deepEqual(wire({ lookup: asUser(full), usage: over }), soft, 'already over');

  // Status comes before quota; no usage known or no quota: not checked.
  assert.deepEqual(wire({ lookup: asUser({ ...full, status: 'locked' }), usage: over })?.[2], 'locked');
  assert.deepEqual(wire({ lookup: asUser(full), declaredSize: 10 ** 9 }), ok, 'usage not given: not checked here');
  assert.deepEqual(wire({ lookup: asUser(user('alice')), usage: new Map([['alice@example.test', 10 ** 12]]), declaredSize: 10 ** 12 }), ok, 'no quota');

  assert.equal(exceedsQuota(0, 0, 0), true);
  assert.equal(exceedsQuota(5, 5, 10), false);
  assert.equal(exceedsQuota(5, 6, 10), true);
  assert.equal(exceedsQuota(9, null, 10), false);
  assert.equal(exceedsQuota(10, null, 10), true);
  assert.equal(exceedsQuota(10 ** 15, 10 ** 15, null), false);
});

test('aliases: accepted when one target can take the mail; else the first soft, else the first hard refusal', () => {
  const alias = (...targets: AliasTarget[]): LookupResult => ({ kind: 'alias', address: 'sales@example.test', targets });
  const mb = (u: MailboxUser): AliasTarget => ({ kind: 'mailbox', address: u.address, user: u });
  const disabled = mb(user('d', { status: 'disabled' }));
  const locked = mb(user('l', { status: 'locked' }));
  const full = mb(user('f', { quota: 100 }));
  const usage = new Map([['f@example.test', 100]]);
  const unknown: AliasTarget = { kind: 'unknown', address: 'nobody@example.test' };
  const refer: AliasTarget = { kind: 'refer', address: 'gone@example.test', to: 'gone@new.test' };
  const remote: AliasTarget = { kind: 'remote', address: 'rep@partner.test' };
  const accepted = ['250 2.1.5 Recipient <sales@example.test> OK\r\n', 'accept', 'alias'];

  assert.deepEqual(wire({ lookup: alias(disabled, mb(user('ok'))), usage }), accepted);
  assert.deepEqual(wire({ lookup: alias(unknown, remote) }), accepted, 'a remote target takes it');
  assert.deepEqual(wire({ lookup: alias(disabled, locked, unknown) })?.[0], '450 4.2.1 Recipient address rejected: Mailbox temporarily unavailable\r\n');
  assert.deepEqual(wire({ lookup: alias(disabled, full), usage })?.[0], '452 4.2.2 Recipient address rejected: Mailbox full\r\n');
  assert.deepEqual(wire({ lookup: alias(disabled, full), usage, overQuota: 'hard' })?.[0], '550 5.2.1 Recipient address rejected: Mailbox disabled\r\n');
  assert.deepEqual(wire({ lookup: alias(unknown, disabled) })?.[0], '550 5.1.1 Recipient address rejected: User unknown\r\n');
  assert.deepEqual(wire({ lookup: alias(refer) })?.[0], '551 5.1.6 User not local; please try <gone@new.test>\r\n');
  assert.deepEqual(wire({ lookup: alias() })?.[0], '550 5.1.1 Recipient address rejected: User unknown\r\n');

  assert.deepEqual(mailboxesOf(alias(disabled, remote, full)).map((u) => u.key), ['d@example.test', 'f@example.test']);
  assert.deepEqual(mailboxesOf({ kind: 'forward', address: 'x', mode: 'forward', to: 'y' }), []);
});

test('RecipientVerifier: directory + maildirsize usage + verdict, end to end on real files', { timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-verify-'));
  try {
    const file = join(dir, 'users.yaml');
    writeFileSync(file, [
      'users:',
      '  - { address: alice@example.test, quota: 10000 }',
      '  - { address: bob@example.test, quota: 10000, status: disabled }',
      '  - { address: carol@example.test, status: locked }',
      'aliases:',
      '  loop@example.test: loop2@example.test',
      '  loop2@example.test: loop@example.test',
      '  both@example.test: [alice@example.test, carol@example.test]',
      'forwarding:',
      '  old@example.test: { mode: forward, to: alice@example.test }',
      '  gone@example.test: { mode: refer, to: gone@new.test }',
      '',
    ].join('\n'));
    const directory = await UserDirectory.open({ file, localDomains: ['example.test'], watch: false });
    try {
      const root = join(dir, 'mail');
      const delivery = new MailboxDelivery({ root, hostname: 'h' });
      const soft = new RecipientVerifier({ directory, quota: delivery.quota, overQuota: 'soft' });
      const hard = new RecipientVerifier({ directory, quota: delivery.quota, overQuota: 'hard' });
      const code = async (v: RecipientVerifier, address: string, size: number | null): Promise<string | null> => {
        const r = await v.verify(address, size);
        return r.verdict === null ? null : encodeReply(verdictReply(r.verdict)).trimEnd();
      };

      assert.equal(await code(soft, 'alice@example.test', 10_000), '250 2.1.5 Recipient <alice@example.test> OK');
      assert.equal(await code(soft, 'alice@example.test', 10_001), '452 4.2.2 Recipient address rejected: Mailbox full');
      assert.equal(await code(hard, 'alice@example.test', 10_001), '552 5.2.2 Recipient address rejected: Mailbox full');
      const alice = directory.lookup('alice@example.test');
      assert.ok(alice.kind === 'user');
      await delivery.deliver(alice.user, messageBytes(1, 9000));
      assert.equal(await code(soft, 'ALICE@example.test', 1000), '250 2.1.5 Recipient <ALICE@example.test> OK');
      assert.equal(await code(soft, 'alice@example.test', 1001), '452 4.2.2 Recipient address rejected: Mailbox full');
      assert.equal(await code(hard, 'alice@example.test', null), '250 2.1.5 Recipient <alice@example.test> OK');
      await delivery.deliver(alice.user, messageBytes(2, 1000));
      assert.equal(await code(hard, 'alice@example.test', null), '552 5.2.2 Recipient address rejected: Mailbox full');
      // Alias to a full mailbox and a locked one: the first soft refusal.
      assert.equal(await code(hard, 'both@example.test', null), '450 4.2.1 Recipient address rejected: Mailbox temporarily unavailable');

      assert.equal(await code(soft, 'bob@example.test', null), '550 5.2.1 Recipient address rejected: Mailbox disabled');
      assert.equal(await code(soft, 'carol@example.test', null), '450 4.2.1 Recipient address rejected: Mailbox temporarily unavailable');
      assert.equal(await code(soft, 'nobody@example.test', null), '550 5.1.1 Recipient address rejected: User unknown');
      assert.equal(await code(soft, 'loop@example.test', null), '451 4.3.0 Local error in processing, try again later');
      assert.equal(await code(soft, 'old@example.test', null), '251 2.1.5 User not local; will forward to <alice@example.test>');
      assert.equal(await code(soft, 'gone@example.test', null), '551 5.1.6 User not local; please try <gone@new.test>');
      assert.equal(await code(soft, 'someone@partner.test', null), null);

      // Transport lmtp: no local quota check at RCPT.
      const lmtp = new RecipientVerifier({ directory, quota: null, overQuota: 'hard' });
      assert.equal(await code(lmtp, 'alice@example.test', 10 ** 9), '250 2.1.5 Recipient <alice@example.test> OK');
    } finally {
      await directory.close();
    }
    // A directory that never loaded: 451 4.4.3 for everyone.
    const broken = await UserDirectory.open({ file: join(dir, 'missing.yaml'), localDomains: ['example.test'], watch: false });
    try {
      const v = new RecipientVerifier({ directory: broken, quota: null, overQuota: 'soft' });
      assert.equal(encodeReply(verdictReply((await v.verify('alice@example.test', null)).verdict!)), '451 4.4.3 Recipient address rejected: lookup failed temporarily\r\n');
    } finally {
      await broken.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
