/**
 * Maildir delivery: byte-exact files, unique names, the tmp → new discipline, and crash safety
 * with a real child process killed by SIGKILL mid-write.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  cleanupMaildirTmp, cleanupMailRootTmp, MAILDIR_TMP_MAX_AGE_MS, maildirHostPart, MaildirWriter, sizeFromMaildirName,
} from '../../src/mailbox/maildir-writer.js';
import { checkMessageBytes, messageBytes } from './fixtures/message-bytes.js';

const CHILD = new URL('./fixtures/maildir-child.ts', import.meta.url).pathname;
const NAME = /^(\d+)\.M(\d{1,6})P(\d+)Q(\d+)\.([^,/:]+),S=(\d+)$/;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'postern-maildir-'));
}

const ls = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).sort() : []);

test('a Buffer is delivered byte-exact into new/, named time.M<usec>P<pid>Q<n>.<host>,S=<size>', { timeout: 20_000 }, async () => {
  const root = tempDir();
  try {
    const maildir = join(root, 'example.test', 'alice');
    const writer = new MaildirWriter({ hostname: 'mx.example.test' });
    const body = Buffer.from('Received: from client.test by mx.example.test; Sat, 28 Nov 2026 14:24:19 +0000\r\nSubject: hi\r\n\r\nbody\r\n.. dot\r\n\x00\xff\r\n', 'latin1');
    const before = Math.floor(Date.now() / 1000);
    const delivered = await writer.deliver(maildir, body);
    const after = Math.floor(Date.now() / 1000);

    for (const sub of ['cur', 'new', 'tmp']) {
      assert.ok(statSync(join(maildir, sub)).isDirectory(), `${sub}/ created`);
      assert.equal(statSync(join(maildir, sub)).mode & 0o777, 0o700);
    }
    assert.deepEqual(ls(join(maildir, 'new')), [delivered.name]);
    assert.deepEqual(ls(join(maildir, 'tmp')), [], 'nothing left in tmp/');
    assert.deepEqual(ls(join(maildir, 'cur')), []);
    assert.deepEqual(readFileSync(delivered.path), body);
    assert.equal(statSync(delivered.path).mode & 0o777, 0o600);

    const m = NAME.exec(delivered.name);
    assert.ok(m, delivered.name);
    assert.ok(Number(m[1]) >= before && Number(m[1]) <= after);
    assert.equal(Number(m[3]), process.pid);
    assert.equal(m[5], 'mx.example.test');
    assert.equal(Number(m[6]), body.length);
    assert.equal(delivered.size, body.length);
    assert.equal(sizeFromMaildirName(delivered.name), body.length);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a body as an async iterable (a Readable too) is written chunk by chunk, with a prefix', { timeout: 20_000 }, async () => {
  const root = tempDir();
  try {
    const writer = new MaildirWriter({ hostname: 'h' });
    const chunks = Array.from({ length: 50 }, (_, i) => messageBytes(i, 10_000 + i));
    const prefix = 'Return-Path: <sender@client.test>\r\nDelivered-To: alice@example.test\r\n';

    const fromGenerator = await writer.deliver(join(root, 'a'), (async function* () {
      for (const c of chunks) yield c;
    })(), { prefix });
    assert.deepEqual(readFileSync(fromGenerator.path), Buffer.concat([Buffer.from(prefix), ...chunks]));

    const fromReadable = await writer.deliver(join(root, 'b'), Readable.from(chunks));
    assert.deepEqual(readFileSync(fromReadable.path), Buffer.concat(chunks));
    assert.equal(fromReadable.size, chunks.reduce((n, c) => n + c.length, 0));

    const empty = await writer.deliver(join(root, 'c'), Buffer.alloc(0));
    assert.match(empty.name, /,S=0$/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('unique names: 2,000 in a row and 200 concurrent deliveries never collide', { timeout: 30_000 }, async () => {
  const root = tempDir();
  try {
    const writer = new MaildirWriter({ hostname: 'h' });
    const names = Array.from({ length: 2000 }, () => writer.uniqueName());
    assert.equal(new Set(names).size, names.length);
    const counters = names.map((n) => Number(/Q(\d+)\./.exec(n)![1]));
    assert.deepEqual(counters, [...counters].sort((a, b) => a - b), 'the Q counter increases');

    const maildir = join(root, 'm');
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => writer.deliver(maildir, messageBytes(i, 1000 + i))));
    assert.equal(new Set(results.map((r) => r.name)).size, 200);
    assert.equal(ls(join(maildir, 'new')).length, 200);
    for (const r of results) assert.notEqual(checkMessageBytes(readFileSync(r.path)), null);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the host part escapes "/" and ":" (Maildir spec) and "," (size fields)', () => {
  assert.equal(maildirHostPart('a/b:c,d'), 'a\\057b\\072c\\054d');
  assert.match(new MaildirWriter({ hostname: 'x:y' }).uniqueName(), /\.x\\072y$/);
});

test('writeTmp then discard leaves nothing; a failing body leaves nothing', { timeout: 20_000 }, async () => {
  const root = tempDir();
  try {
    const writer = new MaildirWriter({ hostname: 'h' });
    const maildir = join(root, 'm');
    const pending = await writer.writeTmp(maildir, Buffer.from('x'));
    assert.deepEqual(ls(join(maildir, 'tmp')), [pending.uniqueName]);
    assert.deepEqual(ls(join(maildir, 'new')), [], 'not delivered before commit');
    await writer.discard(pending);
    assert.deepEqual(ls(join(maildir, 'tmp')), []);

    await assert.rejects(writer.deliver(maildir, (async function* () {
      yield Buffer.from('half a message');
      throw new Error('the queue body broke');
    })()), /the queue body broke/);
    assert.deepEqual(ls(join(maildir, 'tmp')), []);
    assert.deepEqual(ls(join(maildir, 'new')), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a removed Maildir is created again on the next delivery', { timeout: 20_000 }, async () => {
  const root = tempDir();
  try {
    const writer = new MaildirWriter({ hostname: 'h' });
    const maildir = join(root, 'm');
    await writer.deliver(maildir, Buffer.from('one'));
    rmSync(maildir, { recursive: true });
    const again = await writer.deliver(maildir, Buffer.from('two'));
    assert.equal(readFileSync(again.path, 'utf8'), 'two');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/** Starts the fixture child and resolves once it printed `marker`. */
function startChild(mode: string, maildir: string, marker: RegExp): Promise<{ kill: () => Promise<void>; output: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, mode, maildir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const kill = async (): Promise<void> => {
    child.kill('SIGKILL');
    await exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void kill().then(() => reject(new Error(`child did not get to ${marker}: ${out} ${err}`)));
    }, 15_000);
    child.stdout.on('data', () => {
      if (marker.test(out)) {
        clearTimeout(timer);
        resolve({ kill, output: () => out });
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`child exited early: ${out} ${err}`));
    });
  });
}

test('crash mid-body (SIGKILL): nothing in new/, a partial file in tmp/ that the 36 h cleanup removes', { timeout: 30_000 }, async () => {
  const root = tempDir();
  try {
    const maildir = join(root, 'example.test', 'alice');
    const child = await startChild('mid-body', maildir, /WRITING/);
    await child.kill();

    assert.deepEqual(ls(join(maildir, 'new')), [], 'never a half-written file in new/');
    const leftovers = ls(join(maildir, 'tmp'));
    assert.equal(leftovers.length, 1);

    // Young leftovers stay (a delivery may be in progress); 36 h old ones go.
    assert.deepEqual(await cleanupMaildirTmp(maildir), []);
    const old = (Date.now() - MAILDIR_TMP_MAX_AGE_MS - 60_000) / 1000;
    utimesSync(join(maildir, 'tmp', leftovers[0]), old, old);
    writeFileSync(join(maildir, 'tmp', 'young'), 'x');
    assert.deepEqual(await cleanupMaildirTmp(maildir), leftovers);
    assert.deepEqual(ls(join(maildir, 'tmp')), ['young']);

    // The next delivery to the Maildir works as usual.
    const next = await new MaildirWriter({ hostname: 'h' }).deliver(maildir, Buffer.from('after the crash'));
    assert.deepEqual(ls(join(maildir, 'new')), [next.name]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('crash after the fsync of tmp/ but before the link into new/: still nothing in new/', { timeout: 30_000 }, async () => {
  const root = tempDir();
  try {
    const maildir = join(root, 'm');
    const child = await startChild('before-commit', maildir, /WRITTEN/);
    await child.kill();
    assert.deepEqual(ls(join(maildir, 'new')), []);
    assert.equal(ls(join(maildir, 'tmp')).length, 1);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('killed at a random moment of a stream of deliveries: every file in new/ is whole', { timeout: 60_000 }, async () => {
  const root = tempDir();
  try {
    for (let round = 0; round < 3; round++) {
      const maildir = join(root, `m${round}`);
      const child = await startChild('loop', maildir, /DELIVERED 2\n/);
      await new Promise((resolve) => setTimeout(resolve, 30 + round * 45));
      await child.kill();
      const delivered = [...child.output().matchAll(/DELIVERED (\d+)/g)].map((m) => Number(m[1]));
      const files = ls(join(maildir, 'new'));
      const numbers = files.map((f) => checkMessageBytes(readFileSync(join(maildir, 'new', f))));
      assert.ok(numbers.every((n) => n !== null), 'no partial file in new/');
      // Every delivery the child reported is there (at most one more that it had no time to report).
      for (const n of delivered) assert.ok(numbers.includes(n), `message ${n} reported delivered is in new/`);
      assert.ok(files.length <= delivered.length + 1);
      for (const f of files) assert.equal(sizeFromMaildirName(f), statSync(join(maildir, 'new', f)).size);
      assert.ok(ls(join(maildir, 'tmp')).length <= 1);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('cleanupMailRootTmp walks <root>/<domain>/<user>/ and Maildir++ folders', { timeout: 20_000 }, async () => {
  const root = tempDir();
  try {
    const writer = new MaildirWriter({ hostname: 'h' });
    const a = join(root, 'example.test', 'alice');
    const b = join(root, 'other.test', 'bob');
    await writer.deliver(a, Buffer.from('x'));
    await writer.deliver(join(a, '.Sent'), Buffer.from('y'));
    await writer.deliver(b, Buffer.from('z'));
    const old = (Date.now() - MAILDIR_TMP_MAX_AGE_MS - 1000) / 1000;
    for (const dir of [a, join(a, '.Sent'), b]) {
      writeFileSync(join(dir, 'tmp', 'stale'), 'partial');
      utimesSync(join(dir, 'tmp', 'stale'), old, old);
    }
    const removed = await cleanupMailRootTmp(root);
    assert.deepEqual(removed.sort(), [join(a, '.Sent', 'tmp', 'stale'), join(a, 'tmp', 'stale'), join(b, 'tmp', 'stale')].sort());
    assert.equal(ls(join(a, 'new')).length, 1, 'delivered mail is untouched');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
