/**
 * The user directory: lookups (users, aliases expanded recursively, loops, forward/refer,
 * postmaster, case rules), and reloading (on change, on demand, keeping the last good copy).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, renameSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/mailbox/durable-file.js';
import { hashPassword } from '../../src/mailbox/password-hash.js';
import { UserDirectory, type LookupResult, type ReloadEvent, type UserDirectoryOptions } from '../../src/mailbox/user-directory.js';

const lines = (...l: string[]): string => `${l.join('\n')}\n`;

const USERS = lines(
  'users:',
  '  - { address: alice@example.test, quota: 1MB, aliases: [a.smith@example.test], admin: true }',
  '  - { address: bob@example.test }',
  '  - { address: carol@example.test, status: disabled }',
  '  - { address: dave@other.test, status: locked }',
  'aliases:',
  '  sales@example.test: [alice@example.test, bob@example.test, rep@partner.test]',
  '  info@example.test: sales@example.test',
  '  team@example.test: [info@example.test, sales@example.test, ALICE@example.test]',
  '  broken@example.test: [nobody@example.test, gone@example.test]',
  '  moved@example.test: old@example.test',
  '  ring1@example.test: ring2@example.test',
  '  ring2@example.test: [bob@example.test, ring3@example.test]',
  '  ring3@example.test: ring1@example.test',
  '  self@example.test: self@example.test',
  '  via-forward@example.test: fw1@example.test',
  'forwarding:',
  '  old@example.test: { mode: forward, to: new@elsewhere.test }',
  '  gone@example.test: { mode: refer, to: gone@newjob.test }',
  '  fw1@example.test: { mode: forward, to: via-forward@example.test }',
  '  local-fw@example.test: { mode: forward, to: bob@example.test }',
  '  partner-user@partner.test: { mode: refer, to: x@y.test }',
);

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'postern-directory-'));
}

/** A directory over `text` in a temp file; closed and removed after `fn`. */
async function withDirectory(
  text: string | null,
  options: Partial<UserDirectoryOptions>,
  fn: (directory: UserDirectory, file: string, events: ReloadEvent[]) => Promise<void>,
): Promise<void> {
  const dir = tempDir();
  const file = join(dir, 'users.yaml');
  if (text !== null) writeFileSync(file, text);
  const events: ReloadEvent[] = [];
  const directory = await UserDirectory.open({
    file, localDomains: ['example.test', 'other.test'], watch: false, ...options,
    onReload: (e) => events.push(e),
  });
  try {
    await fn(directory, file, events);
  } finally {
    await directory.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A compact view of a result: kind plus what matters. */
function brief(r: LookupResult): unknown {
  switch (r.kind) {
    case 'user': return ['user', r.user.address, r.user.status, ...(r.user.builtin ? ['builtin'] : [])];
    case 'alias': return ['alias', r.targets.map((t) => (t.kind === 'refer' ? `refer:${t.address}>${t.to}` : `${t.kind}:${t.address}`))];
    case 'forward': return [r.mode, r.to];
    case 'loop': return ['loop', r.chain.join(' > ')];
    case 'tempfail': return ['tempfail'];
    default: return [r.kind];
  }
}

/** Resolves once `events` has `count` entries (the watcher reloaded), or fails after 5 s. */
async function reloads(events: ReloadEvent[], count: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (events.length < count) {
    if (Date.now() > deadline) assert.fail(`expected ${count} reloads, saw ${events.length}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('users, their own aliases, unknown and not-local addresses', { timeout: 10_000 }, async () => {
  await withDirectory(USERS, {}, async (d) => {
    assert.deepEqual(brief(d.lookup('alice@example.test')), ['user', 'alice@example.test', 'active']);
    assert.deepEqual(brief(d.lookup('a.smith@example.test')), ['user', 'alice@example.test', 'active']);
    assert.deepEqual(brief(d.lookup('<bob@example.test>')), ['user', 'bob@example.test', 'active']);
    assert.deepEqual(brief(d.lookup('carol@example.test')), ['user', 'carol@example.test', 'disabled']);
    assert.deepEqual(brief(d.lookup('dave@other.test')), ['user', 'dave@other.test', 'locked']);
    assert.deepEqual(brief(d.lookup('nobody@example.test')), ['unknown']);
    assert.deepEqual(brief(d.lookup('alice@partner.test')), ['not-local']);
    assert.deepEqual(brief(d.lookup('not an address')), ['unknown']);
    const alice = d.lookup('alice@example.test');
    assert.ok(alice.kind === 'user');
    assert.deepEqual(alice.user, {
      address: 'alice@example.test', key: 'alice@example.test', localPart: 'alice', domain: 'example.test',
      quota: 1024 ** 2, status: 'active', aliases: ['a.smith@example.test'], admin: true, passwordHash: null,
      maildir: null, builtin: false,
    });
    assert.equal(alice.address, 'alice@example.test', 'the result keeps the address asked for');
    assert.deepEqual(d.users().map((u) => u.address), ['alice@example.test', 'bob@example.test', 'carol@example.test', 'dave@other.test']);
  });
});

test('aliases expand recursively to their final targets, each once', { timeout: 10_000 }, async () => {
  await withDirectory(USERS, {}, async (d) => {
    assert.deepEqual(brief(d.lookup('sales@example.test')), ['alias', ['mailbox:alice@example.test', 'mailbox:bob@example.test', 'remote:rep@partner.test']]);
    assert.deepEqual(brief(d.lookup('info@example.test')), brief(d.lookup('sales@example.test')), 'alias of an alias');
    // A diamond (team → info → sales, team → sales) is not a loop; alice appears once.
    assert.deepEqual(brief(d.lookup('team@example.test')), ['alias', ['mailbox:alice@example.test', 'mailbox:bob@example.test', 'remote:rep@partner.test']]);
    // Targets that cannot take mail are reported as such.
    assert.deepEqual(brief(d.lookup('broken@example.test')), ['alias', ['unknown:nobody@example.test', 'refer:gone@example.test>gone@newjob.test']]);
    // A forward-mode entry inside an alias is followed.
    assert.deepEqual(brief(d.lookup('moved@example.test')), ['alias', ['remote:new@elsewhere.test']]);
  });
});

test('loops are detected and reported with their chain', { timeout: 10_000 }, async () => {
  await withDirectory(USERS, {}, async (d) => {
    assert.deepEqual(brief(d.lookup('ring1@example.test')), ['loop', 'ring1@example.test > ring2@example.test > ring3@example.test > ring1@example.test']);
    assert.deepEqual(brief(d.lookup('ring2@example.test')), ['loop', 'ring2@example.test > ring3@example.test > ring1@example.test > ring2@example.test']);
    assert.deepEqual(brief(d.lookup('self@example.test')), ['loop', 'self@example.test > self@example.test']);
    // Through the forwarding table: alias → forward → alias.
    assert.deepEqual(brief(d.lookup('via-forward@example.test')), ['loop', 'via-forward@example.test > fw1@example.test > via-forward@example.test']);
    assert.deepEqual(brief(d.lookup('fw1@example.test')), ['loop', 'fw1@example.test > via-forward@example.test > fw1@example.test']);
    // Loaded with a warning for each.
    const warnings = d.status().warnings;
    assert.ok(warnings.includes('aliases["ring1@example.test"]: alias loop ring1@example.test → ring2@example.test → ring3@example.test → ring1@example.test; mail to it is refused'), warnings.join('\n'));
    assert.ok(warnings.some((w) => w.startsWith('forwarding["fw1@example.test"]: forwarding loop')));
  });
  // Long chains count as loops too (past 20 hops).
  const chain = Array.from({ length: 25 }, (_, i) => `  a${i}@example.test: a${i + 1}@example.test`);
  await withDirectory(lines('users: [ { address: a25@example.test } ]', 'aliases:', ...chain), {}, async (d) => {
    assert.equal(d.lookup('a0@example.test').kind, 'loop');
    assert.deepEqual(brief(d.lookup('a10@example.test')), ['alias', ['mailbox:a25@example.test']]);
  });
});

test('forwarding: forward and refer entries answer with the new address', { timeout: 10_000 }, async () => {
  await withDirectory(USERS, {}, async (d) => {
    assert.deepEqual(brief(d.lookup('old@example.test')), ['forward', 'new@elsewhere.test']);
    assert.deepEqual(brief(d.lookup('Gone@Example.Test')), ['refer', 'gone@newjob.test']);
    assert.deepEqual(brief(d.lookup('local-fw@example.test')), ['forward', 'bob@example.test']);
    // Forwarding entries apply in any domain (users who moved from a relay domain).
    assert.deepEqual(brief(d.lookup('partner-user@partner.test')), ['refer', 'x@y.test']);
  });
});

test('postmaster@ every local domain exists: postmaster: key, else first active admin, else built-in', { timeout: 10_000 }, async () => {
  // The first active admin.
  await withDirectory(USERS, {}, async (d) => {
    assert.deepEqual(brief(d.lookup('postmaster@example.test')), ['user', 'alice@example.test', 'active']);
    assert.deepEqual(brief(d.lookup('POSTMASTER@other.test')), ['user', 'alice@example.test', 'active']);
    assert.deepEqual(brief(d.lookup('Postmaster')), ['user', 'alice@example.test', 'active'], '<Postmaster> without a domain');
    assert.deepEqual(brief(d.lookup('postmaster@partner.test')), ['not-local']);
  });
  // The postmaster: key wins, and is expanded like an alias.
  await withDirectory(lines('postmaster: [bob@example.test, ops@example.test]', USERS.replace('aliases:\n', 'aliases:\n  ops@example.test: noc@partner.test\n')), {}, async (d) => {
    assert.deepEqual(brief(d.lookup('postmaster@example.test')), ['alias', ['mailbox:bob@example.test', 'remote:noc@partner.test']]);
  });
  // An explicit postmaster@ of one domain wins for that domain only.
  await withDirectory(lines('users:', '  - { address: postmaster@other.test }', '  - { address: boss@example.test, admin: true, status: disabled }'), {}, async (d) => {
    assert.deepEqual(brief(d.lookup('postmaster@other.test')), ['user', 'postmaster@other.test', 'active']);
    // No active admin: the built-in mailbox.
    const builtin = d.lookup('postmaster@example.test');
    assert.deepEqual(brief(builtin), ['user', 'postmaster@example.test', 'active', 'builtin']);
    assert.ok(builtin.kind === 'user');
    assert.equal(builtin.user.quota, null);
  });
  // No users file at all: only postmaster@ exists.
  const directory = await UserDirectory.open({ localDomains: ['example.test'] });
  try {
    assert.deepEqual(directory.status().state, 'loaded');
    assert.deepEqual(brief(directory.lookup('postmaster@example.test')), ['user', 'postmaster@example.test', 'active', 'builtin']);
    assert.deepEqual(brief(directory.lookup('alice@example.test')), ['unknown']);
  } finally {
    await directory.close();
  }
});

test('case: the domain never matters; the local part per local_part_case (postmaster always insensitive)', { timeout: 10_000 }, async () => {
  const text = lines('users:', '  - { address: Alice@Example.test }', '  - { address: "\\"bob smith\\"@example.test" }', '  - { address: jörg@bücher.test }');
  await withDirectory(text, { localDomains: ['example.test', 'xn--bcher-kva.test'] }, async (d) => {
    for (const a of ['alice@example.test', 'ALICE@EXAMPLE.TEST', 'Alice@example.Test', '"alice"@example.test']) {
      assert.deepEqual(brief(d.lookup(a)), ['user', 'Alice@Example.test', 'active'], a);
    }
    assert.deepEqual(brief(d.lookup('"Bob Smith"@example.test')), ['user', '"bob smith"@example.test', 'active']);
    assert.deepEqual(brief(d.lookup('JÖRG@xn--bcher-kva.test')), ['user', 'jörg@bücher.test', 'active'], 'IDN and A-label are one domain');
    const alice = d.lookup('ALICE@example.test');
    assert.ok(alice.kind === 'user');
    assert.equal(alice.user.key, 'alice@example.test');
  });
  await withDirectory(text, { localPartCase: 'sensitive', localDomains: ['example.test', 'bücher.test'] }, async (d) => {
    assert.deepEqual(brief(d.lookup('Alice@EXAMPLE.TEST')), ['user', 'Alice@Example.test', 'active']);
    assert.deepEqual(brief(d.lookup('"Alice"@example.test')), ['user', 'Alice@Example.test', 'active'], 'quotes that are not needed do not count');
    assert.deepEqual(brief(d.lookup('alice@example.test')), ['unknown']);
    assert.deepEqual(brief(d.lookup('"Bob Smith"@example.test')), ['unknown']);
    assert.deepEqual(brief(d.lookup('jörg@BÜCHER.test')), ['user', 'jörg@bücher.test', 'active']);
    assert.deepEqual(brief(d.lookup('PostMaster@example.test')), ['user', 'postmaster@example.test', 'active', 'builtin']);
  });
});

test('authenticate(): the right password of an existing user only', { timeout: 20_000 }, async () => {
  const hash = await hashPassword('s3cret', { N: 1024, r: 8, p: 1 });
  await withDirectory(lines('users:', `  - { address: alice@example.test, aliases: [al@example.test], password: "${hash}" }`, '  - { address: bob@example.test }'), {}, async (d) => {
    assert.equal((await d.authenticate('alice@example.test', 's3cret'))?.address, 'alice@example.test');
    assert.equal((await d.authenticate('AL@example.test', 's3cret'))?.address, 'alice@example.test');
    assert.equal(await d.authenticate('alice@example.test', 'wrong'), null);
    assert.equal(await d.authenticate('bob@example.test', ''), null, 'no password: no login');
    assert.equal(await d.authenticate('nobody@example.test', 's3cret'), null);
    assert.equal(await d.authenticate('postmaster@example.test', 's3cret'), null);
  });
});

test('reload on change (watched, debounced), also after an atomic rename', { timeout: 20_000 }, async () => {
  await withDirectory(USERS, { watch: true, debounceMs: 50 }, async (d, file, events) => {
    assert.equal(events.length, 1);
    assert.deepEqual(brief(d.lookup('eve@example.test')), ['unknown']);
    writeFileSync(file, `${USERS.replace('users:\n', 'users:\n  - { address: eve@example.test }\n')}`);
    await reloads(events, 2);
    assert.deepEqual(brief(d.lookup('eve@example.test')), ['user', 'eve@example.test', 'active']);
    assert.deepEqual(events[1], { ok: true, generation: 2, changed: true, warnings: d.status().warnings });

    // An editor's way: write a temp file, rename it over (new inode). Still seen.
    await writeFileAtomic(file, lines('users:', '  - { address: frank@example.test }'));
    await reloads(events, 3);
    await new Promise((resolve) => setTimeout(resolve, 150)); // let any trailing event settle
    assert.deepEqual(brief(d.lookup('frank@example.test')), ['user', 'frank@example.test', 'active']);
    assert.deepEqual(brief(d.lookup('eve@example.test')), ['unknown']);
    assert.equal(d.status().generation, 3);

    // Many quick writes: the debounce folds them into a few reloads, and the last one wins.
    const before = events.length;
    for (let i = 0; i < 20; i++) writeFileSync(file, lines('users:', `  - { address: u${i}@example.test }`));
    await reloads(events, before + 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(events.length - before <= 3, `${events.length - before} reloads for 20 writes`);
    assert.deepEqual(brief(d.lookup('u19@example.test')), ['user', 'u19@example.test', 'active']);
  });
});

test('a broken or missing file keeps the last good copy; reload() (SIGHUP) recovers', { timeout: 20_000 }, async () => {
  await withDirectory(USERS, {}, async (d, file) => {
    writeFileSync(file, 'users:\n  - address: [broken\n');
    const failed = await d.reload();
    assert.equal(failed.ok, false);
    assert.ok(!failed.ok && failed.servingGeneration === 1);
    assert.ok(!failed.ok && /users\.yaml:\d+:\d+: YAML/.test(failed.error.message), !failed.ok ? failed.error.message : '');
    assert.deepEqual(brief(d.lookup('alice@example.test')), ['user', 'alice@example.test', 'active'], 'still serving');
    assert.equal(d.status().stale, true);
    assert.equal(d.status().state, 'loaded');

    // Valid YAML, invalid content: same.
    writeFileSync(file, 'users:\n  - address: nope\n');
    assert.equal((await d.reload()).ok, false);
    // Gone (mid-edit by a tool that deletes first): same.
    unlinkSync(file);
    const missing = await d.reload();
    assert.ok(!missing.ok && /no such file|ENOENT/.test(missing.error.message));
    assert.equal(d.lookup('sales@example.test').kind, 'alias');

    writeFileSync(file, lines('users:', '  - { address: zed@example.test }'));
    const ok = await d.reload();
    assert.deepEqual(ok, { ok: true, generation: 2, changed: true, warnings: [] });
    assert.equal(d.status().stale, false);
    assert.deepEqual(brief(d.lookup('zed@example.test')), ['user', 'zed@example.test', 'active']);
    assert.deepEqual(await d.reload(), { ok: true, generation: 2, changed: false, warnings: [] }, 'unchanged: no new generation');
  });
});

test('a directory that never loaded answers tempfail, and loads when the file appears', { timeout: 20_000 }, async () => {
  await withDirectory(null, { watch: true, debounceMs: 50 }, async (d, file, events) => {
    assert.equal(d.status().state, 'never-loaded');
    const r = d.lookup('alice@example.test');
    assert.equal(r.kind, 'tempfail');
    assert.ok(r.kind === 'tempfail' && /users file has not loaded: .*no such file/.test(r.reason), JSON.stringify(r));
    assert.deepEqual(brief(d.lookup('postmaster@example.test')), ['tempfail'], 'not even postmaster: nothing is known');

    writeFileSync(`${file}.new`, USERS);
    renameSync(`${file}.new`, file);
    await reloads(events, 2);
    assert.equal(d.status().state, 'loaded');
    assert.deepEqual(brief(d.lookup('alice@example.test')), ['user', 'alice@example.test', 'active']);
  });
  await withDirectory('users: [ { address: x } ]\n', {}, async (d) => {
    assert.equal(d.status().state, 'never-loaded');
    assert.equal(d.lookup('x@example.test').kind, 'tempfail');
    assert.match(d.status().lastError!.message, /users\[0\]\.address/);
  });
});

test('warnings: entries outside the local domains', { timeout: 10_000 }, async () => {
  await withDirectory(lines('users:', '  - { address: a@example.test, aliases: [a@elsewhere.test] }', 'aliases:', '  b@elsewhere.test: a@example.test'), {}, async (d) => {
    assert.deepEqual(d.status().warnings, [
      'users[0].aliases[0]: elsewhere.test is not a local domain (domains.local), so "a@elsewhere.test" is never looked up here',
      'aliases["b@elsewhere.test"]: elsewhere.test is not a local domain (domains.local), so "b@elsewhere.test" is never looked up here',
    ]);
  });
});
