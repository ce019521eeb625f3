/**
 * The users file: its schema, errors that name the path and the line, duplicates per
 * local_part_case, password hashes, safe edits (lock, validation, atomic replace).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/config/config-error.js';
import { writeFileAtomic } from '../../src/mailbox/durable-file.js';
import { hashPassword, isPasswordHash, verifyPassword } from '../../src/mailbox/password-hash.js';
import {
  analyseUsersFileText, editUsersFile, type UsersFileOptions, formatQuota, parseUsersFileText, readUsersFile, UsersFileEditor, withUsersFileLock,
} from '../../src/mailbox/users-file.js';

const FAST = { N: 1024, r: 8, p: 1 };
const insensitive = { localPartCase: 'insensitive' } as const;
const sensitive = { localPartCase: 'sensitive' } as const;

const lines = (...l: string[]): string => `${l.join('\n')}\n`;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'postern-users-'));
}

/** Every error as `line:column path: message`. */
function errors(text: string, options: UsersFileOptions = insensitive): string[] {
  const analysis = analyseUsersFileText(text, options);
  assert.equal(analysis.data, undefined, 'expected errors');
  return analysis.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`);
}

test('a full file: users with defaults, aliases (one or many targets), forwarding, postmaster', async () => {
  const hash = await hashPassword('secret', FAST);
  const data = parseUsersFileText(lines(
    'postmaster: alice@example.test',
    'users:',
    '  - address: alice@example.test',
    '    quota: 1GB',
    '    status: active',
    '    aliases: [a.smith@example.test]',
    '    admin: true',
    `    password: ${hash}`,
    '  - address: bob@example.test',
    '  - { address: carol@example.test, quota: 1536, status: locked, aliases: c@example.test, maildir: shared/carol }',
    '  - address: dave@example.test',
    '    quota: none',
    '    status: disabled',
    'aliases:',
    '  sales@example.test: [alice@example.test, rep@partner.test]',
    '  info@example.test: sales@example.test',
    'forwarding:',
    '  old@example.test: { mode: forward, to: new@elsewhere.test }',
    '  gone@example.test: { mode: refer, to: gone@newjob.test }',
  ), 'users.yaml', insensitive);
  assert.deepEqual(data, {
    postmaster: ['alice@example.test'],
    users: [
      { address: 'alice@example.test', quota: 1024 ** 3, status: 'active', aliases: ['a.smith@example.test'], admin: true, password: hash, maildir: null },
      { address: 'bob@example.test', quota: null, status: 'active', aliases: [], admin: false, password: null, maildir: null },
      { address: 'carol@example.test', quota: 1536, status: 'locked', aliases: ['c@example.test'], admin: false, password: null, maildir: 'shared/carol' },
      { address: 'dave@example.test', quota: null, status: 'disabled', aliases: [], admin: false, password: null, maildir: null },
    ],
    aliases: [
      { address: 'sales@example.test', targets: ['alice@example.test', 'rep@partner.test'] },
      { address: 'info@example.test', targets: ['sales@example.test'] },
    ],
    forwarding: [
      { address: 'old@example.test', mode: 'forward', to: 'new@elsewhere.test' },
      { address: 'gone@example.test', mode: 'refer', to: 'gone@newjob.test' },
    ],
  });
  assert.deepEqual(parseUsersFileText('', 'empty.yaml', insensitive), { postmaster: [], users: [], aliases: [], forwarding: [] });
  assert.deepEqual(parseUsersFileText('# only comments\n', 'c.yaml', insensitive).users, []);
});

test('errors name the path, the line and the column', () => {
  assert.deepEqual(errors(lines(
    'users:',
    '  - address: alice@example.test',
    '    quota: lots',
    '    status: frozen',
    '  - address: not-an-address',
    '    pasword: x',
    'aliases:',
    '  "x@example.test": []',
    'forwarding:',
    '  y@example.test: { mode: bounce, to: z@example.test }',
    'extra: 1',
  )), [
    '3:12 users[0].quota: expected a size like 1GB (K/KB/KiB, M/MB/MiB, G/GB/GiB are multiples of 1024; a plain number is bytes), or none, got "lots"',
    '4:13 users[0].status: expected one of "active", "disabled", "locked", got "frozen"',
    '5:14 users[1].address: expected an address like alice@example.test, got "not-an-address"',
    '6:5 users[1].pasword: unknown key; did you mean "password"?',
    '8:21 aliases["x@example.test"]: needs at least one address',
    '10:27 forwarding["y@example.test"].mode: expected one of "forward", "refer", got "bounce"',
    '11:1 extra: unknown key; known keys: postmaster, users, aliases, forwarding',
  ]);
  assert.deepEqual(errors('users: {}\n'), ['1:8 users: expected a list, got a mapping']);
  assert.deepEqual(errors('users:\n  - quota: 1GB\n'), ['2:5 users[0].address: is required']);
  assert.deepEqual(errors('users: [\n'), [errors('users: [\n')[0]]);
  assert.match(errors('users: [\n')[0], /^\d+:\d+ : YAML: /);
  assert.deepEqual(errors('aliases:\n  nobody: a@example.test\n'), ['2:3 aliases.nobody: expected an address like alice@example.test, got "nobody"']);
  assert.deepEqual(errors('users:\n  - { address: a@example.test, quota: 0 }\n'), [
    '2:39 users[0].quota: expected a size like 1GB (K/KB/KiB, M/MB/MiB, G/GB/GiB are multiples of 1024; a plain number is bytes), or none, got 0',
  ]);
  assert.deepEqual(errors('users:\n  - { address: a@example.test, maildir: ../../etc }\n'), [
    '2:41 users[0].maildir: expected a path relative to mailboxes.path, without ".."',
  ]);
});

test('a plain-text password is refused; scrypt hashes verify with the right password only', async () => {
  assert.deepEqual(errors('users:\n  - { address: a@example.test, password: hunter2 }\n'), [
    '2:42 users[0].password: expected a password hash like scrypt$32768$8$1$<salt>$<hash> (set it with `postern users passwd`), never a plain-text password',
  ]);
  const hash = await hashPassword('correct horse', FAST);
  assert.match(hash, /^scrypt\$1024\$8\$1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  assert.ok(isPasswordHash(hash));
  assert.equal(await verifyPassword('correct horse', hash), true);
  assert.equal(await verifyPassword('correct horsE', hash), false);
  assert.equal(await verifyPassword('', hash), false);
  assert.notEqual(await hashPassword('correct horse', FAST), hash, 'a fresh salt every time');
  // The default parameters.
  const strong = await hashPassword('pw');
  assert.match(strong, /^scrypt\$32768\$8\$1\$/);
  assert.equal(await verifyPassword('pw', strong), true);
  // Malformed or hostile hashes never verify (and never run with absurd parameters).
  assert.equal(await verifyPassword('x', null), false);
  assert.equal(await verifyPassword('x', 'plain'), false);
  assert.equal(isPasswordHash(hash.replace('scrypt$1024', 'scrypt$1073741824')), false);
  assert.equal(isPasswordHash(hash.replace('scrypt$1024', 'scrypt$1000')), false, 'N must be a power of two');
});

test('an address is defined once: duplicates follow local_part_case; the domain never counts case', () => {
  const text = lines(
    'users:',
    '  - { address: alice@example.test, aliases: [Al@example.test] }',
    '  - address: Alice@EXAMPLE.test',
    'aliases:',
    '  al@Example.Test: bob@example.test',
    'forwarding:',
    '  "\\"alice\\"@example.test": { mode: refer, to: x@y.test }',
  );
  assert.deepEqual(errors(text), [
    '3:14 users[1].address: "Alice@EXAMPLE.test" is already defined at users[0].address',
    '5:3 aliases["al@Example.Test"]: "al@Example.Test" is already defined at users[0].aliases[0]',
    '7:3 forwarding["\\"alice\\"@example.test"]: ""alice"@example.test" is already defined at users[0].address',
  ]);
  // Case-sensitive local parts: only the quoted form (same as bare) and the domain clash.
  assert.deepEqual(errors(text, sensitive), [
    '7:3 forwarding["\\"alice\\"@example.test"]: ""alice"@example.test" is already defined at users[0].address',
  ]);
  assert.deepEqual(errors('users:\n  - { address: a@example.test, maildir: x }\n  - { address: b@example.test, maildir: x/ }\n'), [
    '3:41 users[1].maildir: is already the maildir of users[0]',
  ]);
});

test('readUsersFile: a missing file is a ConfigError naming the file', async () => {
  const dir = tempDir();
  try {
    await assert.rejects(readUsersFile(join(dir, 'nope.yaml'), insensitive), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.message, `${join(dir, 'nope.yaml')}: cannot read the users file: no such file`);
      return true;
    });
    writeFileSync(join(dir, 'u.yaml'), 'users:\n  - address: x\n');
    await assert.rejects(readUsersFile(join(dir, 'u.yaml'), insensitive), /u\.yaml:2:14: users\[0\]\.address: expected an address/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeFileAtomic: replaces the file whole, keeps its mode, leaves no temp file', { timeout: 10_000 }, async () => {
  const dir = tempDir();
  try {
    const file = join(dir, 'f.yaml');
    await writeFileAtomic(file, 'one\n');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    writeFileSync(file, 'two\n', { mode: 0o640 });
    chmodSync(file, 0o640);
    await writeFileAtomic(file, 'three\n');
    assert.equal(readFileSync(file, 'utf8'), 'three\n');
    assert.equal(statSync(file).mode & 0o777, 0o640);
    assert.deepEqual(readdirSync(dir), ['f.yaml']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('editing keeps comments, validates before writing, and refuses a broken file', { timeout: 20_000 }, async () => {
  const dir = tempDir();
  try {
    const file = join(dir, 'users.yaml');
    writeFileSync(file, lines(
      '# our users',
      'users:',
      '  - address: alice@example.test   # the boss',
      '    quota: 1GB',
      'aliases:',
      '  # sales team',
      '  sales@example.test: alice@example.test',
    ));
    await editUsersFile(file, insensitive, (editor) => {
      assert.equal(editor.findUser('ALICE@example.test'), 0);
      assert.equal(editor.findUser('sales@example.test'), -1);
      assert.equal(editor.definitionOf('Sales@Example.test'), 'aliases["sales@example.test"]');
      editor.addUser({ address: 'bob@example.test', quota: 500 * 1024 ** 2, status: 'active', admin: true });
      editor.setUserField(0, 'quota', formatQuota(2 * 1024 ** 3));
    });
    const text = readFileSync(file, 'utf8');
    assert.match(text, /^# our users$/m);
    assert.match(text, /alice@example\.test +# the boss/);
    assert.match(text, /# sales team/);
    const data = parseUsersFileText(text, file, insensitive);
    assert.deepEqual(data.users.map((u) => [u.address, u.quota, u.admin]), [
      ['alice@example.test', 2 * 1024 ** 3, false],
      ['bob@example.test', 500 * 1024 ** 2, true],
    ]);
    assert.equal(existsSync(`${file}.lock`), false, 'the lock is gone');

    // An edit that would make the file invalid is not written.
    await assert.rejects(editUsersFile(file, insensitive, (editor) => {
      editor.addUser({ address: 'Bob@example.test', quota: null, status: 'active' });
    }), /users\[2\]\.address: "Bob@example\.test" is already defined at users\[1\]\.address/);
    assert.equal(readFileSync(file, 'utf8'), text);
    // An edit that throws is not written.
    await assert.rejects(editUsersFile(file, insensitive, () => { throw new Error('changed my mind'); }), /changed my mind/);
    assert.equal(readFileSync(file, 'utf8'), text);

    // A broken file is not edited.
    writeFileSync(file, 'users:\n  - address: ???\n');
    await assert.rejects(UsersFileEditor.open(file, insensitive), ConfigError);

    // A new file starts from a commented template.
    const fresh = join(dir, 'new.yaml');
    await editUsersFile(fresh, insensitive, (editor) => editor.addUser({ address: 'x@example.test', quota: null, status: 'locked' }));
    assert.match(readFileSync(fresh, 'utf8'), /^# Postern users/);
    assert.deepEqual(parseUsersFileText(readFileSync(fresh, 'utf8'), fresh, insensitive).users.map((u) => u.status), ['locked']);
    assert.equal(statSync(fresh).mode & 0o777, 0o600, 'password hashes: owner only');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the lock: edits run one at a time; a lock left by a dead process is taken over', { timeout: 20_000 }, async () => {
  const dir = tempDir();
  try {
    const file = join(dir, 'users.yaml');
    const order: string[] = [];
    await Promise.all(Array.from({ length: 10 }, (_, i) => editUsersFile(file, insensitive, async (editor) => {
      order.push(`start ${i}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
      editor.addUser({ address: `u${i}@example.test`, quota: null, status: 'active' });
      order.push(`end ${i}`);
    })));
    for (let k = 0; k < order.length; k += 2) assert.match(`${order[k]}|${order[k + 1]}`, /^start (\d+)\|end \1$/);
    assert.equal(parseUsersFileText(readFileSync(file, 'utf8'), file, insensitive).users.length, 10, 'no edit lost');

    writeFileSync(`${file}.lock`, '999999999\n'); // no such process
    await withUsersFileLock(file, async () => undefined);
    assert.equal(existsSync(`${file}.lock`), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
