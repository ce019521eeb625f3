/**
 * `postern users ls|add|passwd|quota` as a user runs them, in child processes, against a temp
 * users file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MailboxDelivery } from '../../src/mailbox/mailbox-delivery.js';
import { verifyPassword } from '../../src/mailbox/password-hash.js';
import { parseUsersFileText } from '../../src/mailbox/users-file.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function postern(args: string[], input?: string): Run {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', input, timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same, without blocking the event loop (for concurrent runs). */
function posternAsync(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const usersOf = (file: string) => parseUsersFileText(readFileSync(file, 'utf8'), file, { localPartCase: 'insensitive' }).users;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'postern-users-cli-'));
}

test('add creates the file and adds users; duplicates and bad arguments are refused', { timeout: 120_000 }, () => {
  const dir = tempDir();
  try {
    const file = join(dir, 'users.yaml');
    const add = postern(['users', 'add', 'alice@example.test', '--quota', '1GB', '--alias', 'a.smith@example.test', '--alias', 'al@example.test', '--admin', '-f', file]);
    assert.equal(add.status, 0, add.stderr);
    assert.equal(add.stdout, `added alice@example.test (quota 1GB, active) to ${file}\n`);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(postern(['users', 'add', 'bob@example.test', '--status', 'locked', '--file', file]).status, 0);
    assert.deepEqual(usersOf(file).map((u) => [u.address, u.quota, u.status, u.aliases, u.admin, u.password]), [
      ['alice@example.test', 1024 ** 3, 'active', ['a.smith@example.test', 'al@example.test'], true, null],
      ['bob@example.test', null, 'locked', [], false, null],
    ]);
    const before = readFileSync(file, 'utf8');

    const duplicate = postern(['users', 'add', 'ALICE@Example.test', '-f', file]);
    assert.equal(duplicate.status, 1);
    assert.equal(duplicate.stderr, 'postern users: ALICE@Example.test is already defined at users[0].address\n');
    const aliasClash = postern(['users', 'add', 'carol@example.test', '--alias', 'AL@example.test', '-f', file]);
    assert.equal(aliasClash.status, 1);
    assert.match(aliasClash.stderr, /AL@example\.test is already defined at users\[0\]\.aliases\[1\]/);
    for (const [args, message] of [
      [['not-an-address'], /address "not-an-address": expected an address like alice@example\.test/],
      [['c@example.test', '--quota', 'lots'], /quota "lots": expected a size like 1GB/],
      [['c@example.test', '--status', 'frozen'], /status "frozen": expected one of active, disabled, locked/],
    ] as const) {
      const r = postern(['users', 'add', ...args, '-f', file]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
    }
    assert.equal(readFileSync(file, 'utf8'), before, 'refused edits change nothing');

    const noFile = postern(['users', 'add', 'x@example.test']);
    assert.equal(noFile.status, 2);
    assert.equal(noFile.stderr, 'postern users: no users file: give --file FILE, or --config FILE with mailboxes.users_file set\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('passwd reads the password from stdin (never argv) and stores an scrypt hash', { timeout: 120_000 }, async () => {
  const dir = tempDir();
  try {
    const file = join(dir, 'users.yaml');
    writeFileSync(file, '# keep me\nusers:\n  - address: alice@example.test # the boss\n');
    const r = postern(['users', 'passwd', 'Alice@example.test', '-f', file], 'correct horse battery\nignored second line\n');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'password set for Alice@example.test\n');
    const text = readFileSync(file, 'utf8');
    assert.match(text, /^# keep me$/m);
    assert.match(text, /# the boss/);
    assert.doesNotMatch(text, /correct horse/);
    const hash = usersOf(file)[0].password!;
    assert.match(hash, /^scrypt\$32768\$8\$1\$/);
    assert.equal(await verifyPassword('correct horse battery', hash), true);
    assert.equal(await verifyPassword('ignored second line', hash), false);

    // CRLF from a Windows pipe: the CR is not part of the password.
    assert.equal(postern(['users', 'passwd', 'alice@example.test', '-f', file], 'pw2\r\n').status, 0);
    assert.equal(await verifyPassword('pw2', usersOf(file)[0].password!), true);

    // A password on the command line is refused (commander: too many arguments), nothing changes.
    const before = readFileSync(file, 'utf8');
    const argv = postern(['users', 'passwd', 'alice@example.test', 'hunter2', '-f', file], 'x\n');
    assert.notEqual(argv.status, 0);
    assert.equal(readFileSync(file, 'utf8'), before);

    const empty = postern(['users', 'passwd', 'alice@example.test', '-f', file], '\n');
    assert.equal(empty.status, 1);
    assert.equal(empty.stderr, 'postern users: empty password; nothing was changed\n');
    const unknown = postern(['users', 'passwd', 'nobody@example.test', '-f', file], 'x\n');
    assert.equal(unknown.status, 1);
    assert.equal(unknown.stderr, `postern users: no user nobody@example.test in ${file}\n`);
    assert.equal(readFileSync(file, 'utf8'), before);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('quota sets a size or none; aliases and forwards have no quota', { timeout: 120_000 }, () => {
  const dir = tempDir();
  try {
    const file = join(dir, 'users.yaml');
    writeFileSync(file, 'users:\n  - { address: alice@example.test }\naliases:\n  sales@example.test: alice@example.test\n');
    let r = postern(['users', 'quota', 'alice@example.test', '500MB', '-f', file]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'quota of alice@example.test is now 500MB\n');
    assert.equal(usersOf(file)[0].quota, 500 * 1024 ** 2);
    r = postern(['users', 'quota', 'alice@example.test', '12345', '-f', file]);
    assert.equal(r.stdout, 'quota of alice@example.test is now 12345\n');
    assert.equal(usersOf(file)[0].quota, 12345);
    r = postern(['users', 'quota', 'alice@example.test', 'none', '-f', file]);
    assert.equal(usersOf(file)[0].quota, null);

    r = postern(['users', 'quota', 'sales@example.test', '1GB', '-f', file]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'postern users: sales@example.test is not a user but aliases["sales@example.test"]; only users have a password and a quota\n');
    r = postern(['users', 'quota', 'alice@example.test', '-5', '-f', file]);
    assert.notEqual(r.status, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ls: a table (with usage when --config names the mailboxes) and JSON lines', { timeout: 120_000 }, async () => {
  const dir = tempDir();
  try {
    mkdirSync(join(dir, 'etc'));
    const file = join(dir, 'etc', 'users.yaml');
    writeFileSync(file, [
      'users:',
      '  - { address: alice@example.test, quota: 1GB, aliases: [al@example.test], admin: true }',
      '  - { address: bob@example.test, status: disabled }',
      'aliases:',
      '  sales@example.test: [alice@example.test, rep@partner.test]',
      'forwarding:',
      '  old@example.test: { mode: refer, to: new@elsewhere.test }',
      '',
    ].join('\n'));
    const table = postern(['users', 'ls', '-f', file]);
    assert.equal(table.status, 0, table.stderr);
    assert.equal(table.stdout, [
      'ADDRESS             STATUS       QUOTA  ADMIN  PASSWORD  ALIASES',
      'alice@example.test  active         1GB  yes    -         al@example.test',
      'bob@example.test    disabled      none  no     -         -',
      'alias    sales@example.test -> alice@example.test, rep@partner.test',
      'refer    old@example.test -> new@elsewhere.test',
      '2 user(s), 1 alias(es), 1 forwarding entry',
      '',
    ].join('\n'));

    // Through the config: users_file and mailboxes.path relative to the config file.
    const config = join(dir, 'etc', 'postern.yaml');
    writeFileSync(config, 'hostname: mx.example.test\nmailboxes: { path: ../mail, users_file: users.yaml }\n');
    const delivery = new MailboxDelivery({ root: join(dir, 'mail'), hostname: 'h' });
    await delivery.deliver({ localPart: 'alice', domain: 'example.test', maildir: null, quota: 1024 ** 3 }, Buffer.alloc(4321, 0x41));
    const withUsage = postern(['users', 'ls', '--config', config]);
    assert.equal(withUsage.status, 0, withUsage.stderr);
    assert.match(withUsage.stdout, /^ADDRESS +STATUS +QUOTA +USED +ADMIN +PASSWORD +ALIASES$/m);
    assert.match(withUsage.stdout, /^alice@example\.test +active +1GB +4321 +yes +- +al@example\.test$/m);
    assert.match(withUsage.stdout, /^bob@example\.test +disabled +none +0 +no +- +-$/m);

    const json = postern(['users', 'ls', '--json', '-f', file]);
    assert.deepEqual(json.stdout.trim().split('\n').map((l) => JSON.parse(l)), [
      { kind: 'user', address: 'alice@example.test', status: 'active', quota: 1024 ** 3, admin: true, password: false, aliases: ['al@example.test'] },
      { kind: 'user', address: 'bob@example.test', status: 'disabled', quota: null, admin: false, password: false, aliases: [] },
      { kind: 'alias', address: 'sales@example.test', targets: ['alice@example.test', 'rep@partner.test'] },
      { kind: 'forward', address: 'old@example.test', mode: 'refer', to: 'new@elsewhere.test' },
    ]);

    const missing = postern(['users', 'ls', '-f', join(dir, 'nope.yaml')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /nope\.yaml: no such file/);
    writeFileSync(file, 'users:\n  - address: x\n');
    const broken = postern(['users', 'ls', '-f', file]);
    assert.equal(broken.status, 1);
    assert.match(broken.stderr, /the users file has errors, nothing was changed:\n.*users\.yaml:2:14: users\[0\]\.address: expected an address/);
    const badConfig = join(dir, 'bad.yaml');
    writeFileSync(badConfig, 'mailboxes: { over_quota: maybe, users_file: u.yaml }\n');
    const bad = postern(['users', 'ls', '--config', badConfig]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /mailboxes\.over_quota/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('concurrent adds from separate processes: none is lost (lock file), no temp files left', { timeout: 120_000 }, async () => {
  const dir = tempDir();
  try {
    const file = join(dir, 'users.yaml');
    const runs = await Promise.all(Array.from({ length: 6 }, (_, i) => posternAsync(['users', 'add', `u${i}@example.test`, '-f', file])));
    for (const r of runs) assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(usersOf(file).map((u) => u.address).sort(), Array.from({ length: 6 }, (_, i) => `u${i}@example.test`));
    assert.deepEqual(readdirSync(dir), ['users.yaml']);
    assert.equal(existsSync(`${file}.lock`), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** `script` (util-linux) runs a command on a pseudo-terminal; without it the TTY test is skipped. */
const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;

test('passwd at a terminal: asks twice without echo; a mismatch changes nothing', { timeout: 120_000, skip: !hasScript && 'needs script(1) for a pseudo-terminal' }, async () => {
  const dir = tempDir();
  try {
    const file = join(dir, 'users.yaml');
    writeFileSync(file, 'users:\n  - address: alice@example.test\n');
    /** Runs passwd on a pty, typing each answer once its prompt shows; returns everything the terminal showed. */
    const typed = (answers: string[]): Promise<{ status: number | null; screen: string }> => new Promise((resolve) => {
      const command = [process.execPath, '--import', 'tsx', MAIN, 'users', 'passwd', 'alice@example.test', '-f', file]
        .map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
      const child = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let screen = '';
      let prompts = 0;
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        screen += d;
        const seen = (screen.match(/password: /g) ?? []).length;
        while (prompts < seen && prompts < answers.length) child.stdin.write(`${answers[prompts++]}\r`);
      });
      child.on('exit', (status) => {
        clearTimeout(timer);
        resolve({ status, screen });
      });
    });

    const mismatch = await typed(['first-secret', 'second-secret']);
    assert.equal(mismatch.status, 1, mismatch.screen);
    assert.match(mismatch.screen, /New password: [\s\S]*Retype new password: [\s\S]*the passwords do not match; nothing was changed/);
    assert.equal(usersOf(file)[0].password, null);

    const ok = await typed(['tty-secret', 'tty-secret']);
    assert.equal(ok.status, 0, ok.screen);
    assert.doesNotMatch(ok.screen, /tty-secret/, 'never echoed');
    assert.match(ok.screen, /password set for alice@example\.test/);
    assert.equal(await verifyPassword('tty-secret', usersOf(file)[0].password!), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
