/**
 * A crash between receipt and mailbox delivery never loses the message and never leaves a
 * half-written file in new/: `postern start` runs in a child process, is killed with SIGKILL
 * (no drain, no cleanup) after "250 queued" and before delivery — and, second, while it is
 * writing into the Maildir — then restarted. Every accepted message arrives (at least once),
 * and every file in new/ is a whole message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChildGateway, writeTestConfig, type ChildGateway } from '../support/child-gateway.js';
import { send } from './fixtures/mailbox-world.js';

const USERS = 'users:\n  - { address: alice@example.test, quota: 1GB }\n';
const PREFIX = 'Return-Path: <sender@example.test>\r\nDelivered-To: alice@example.test\r\n';
const RECEIVED = /^Received: from client\.test \(\[127\.0\.0\.1\]\)\r\n\tby mx\.test \(Postern\) with ESMTP id (\w+)\r\n\tfor <alice@example\.test>;\r\n\t\w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r\n/;

/**
 * A short lease: a message the killed process was delivering stays leased to it (it might be
 * another node, still alive) until the lease expires; then the restarted gateway takes it.
 */
function config(dir: string, delivering: boolean): string {
  writeFileSync(join(dir, 'users.yaml'), USERS);
  return writeTestConfig(dir, [
    'domains: { local: [example.test] }',
    'mailboxes: { path: ./mail, users_file: ./users.yaml }',
    `delivery: { enabled: ${delivering}, lease_time: 2s }`,
  ].join('\n'));
}

/** A message of about `size` bytes whose body names it (`n`), in CRLF lines. */
function bigMessage(n: number, size: number): string {
  const line = `message ${n}: ${'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(2)}\r\n`;
  return `From: <sender@example.test>\r\nSubject: crash test ${n}\r\n\r\n${line.repeat(Math.ceil(size / line.length))}`;
}

interface MaildirFile { readonly name: string; readonly data: Buffer }

function newFiles(dir: string): MaildirFile[] {
  const d = join(dir, 'mail', 'example.test', 'alice', 'new');
  if (!existsSync(d)) return [];
  return readdirSync(d).map((name) => ({ name, data: readFileSync(join(d, name)) }));
}

/** Each file in new/ is one whole message of `sent` (prefix, trace header, the bytes sent, S= its size); returns which. */
function assertWhole(files: readonly MaildirFile[], sent: readonly string[]): number[] {
  return files.map((f) => {
    assert.equal(Number(/,S=(\d+)$/.exec(f.name)?.[1]), f.data.length, `${f.name}: S= is the file's size`);
    const text = f.data.toString('latin1');
    assert.ok(text.startsWith(PREFIX), `${f.name}: Return-Path and Delivered-To first`);
    const rest = text.slice(PREFIX.length);
    const received = RECEIVED.exec(rest);
    assert.ok(received, `${f.name}: then the Received header`);
    const body = rest.slice(received[0].length);
    const which = sent.indexOf(body);
    assert.ok(which >= 0, `${f.name}: then exactly one message as sent (${body.length} bytes, not a piece of one)`);
    return which;
  });
}

async function waitFor<T>(what: string, fn: () => T | null | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function kill(child: ChildGateway): Promise<void> {
  child.child.kill('SIGKILL');
  assert.equal(await child.exited, 'SIGKILL');
}

async function stopGently(child: ChildGateway | null): Promise<void> {
  if (child === null || child.child.exitCode !== null || child.child.signalCode !== null) return;
  child.child.kill('SIGTERM');
  await Promise.race([child.exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGKILL');
}

test('killed after "250 queued", before delivery: after the restart the message is in new/, whole and once', { timeout: 90_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-crash-'));
  let child: ChildGateway | null = null;
  try {
    child = await startChildGateway(config(dir, false));
    const data = bigMessage(0, 300_000);
    const { rcpt, id } = await send(child.port, { from: 'sender@example.test', to: ['alice@example.test'], data });
    assert.deepEqual(rcpt, ['250 2.1.5']);
    assert.ok(id);
    await kill(child); // the message is only in the queue: nothing in any Maildir yet
    assert.deepEqual(newFiles(dir), []);

    child = await startChildGateway(config(dir, true));
    const files = await waitFor('the delivery', () => (newFiles(dir).length > 0 ? newFiles(dir) : null));
    await new Promise((r) => setTimeout(r, 500)); // nothing more comes
    const again = newFiles(dir);
    assert.equal(again.length, 1, 'exactly once');
    assert.deepEqual(assertWhole(again, [data]), [0]);
    assert.equal(RECEIVED.exec(files[0].data.toString('latin1').slice(PREFIX.length))?.[1], id, 'the trace header names its queue id');
    assert.deepEqual(readdirSync(join(dir, 'mail', 'example.test', 'alice', 'tmp')), []);
  } finally {
    await stopGently(child);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('killed while writing into the Maildir: new/ never holds a piece of a message; after the restart each arrives at least once', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-crash-'));
  let child: ChildGateway | null = null;
  try {
    child = await startChildGateway(config(dir, true));
    const tmp = join(dir, 'mail', 'example.test', 'alice', 'tmp');
    const sent = Array.from({ length: 6 }, (_, n) => bigMessage(n, 3 * 1024 * 1024));
    // Watch tmp/ closely: the kill comes when a delivery has a file there (being written or about to move).
    let seen = false;
    const watcher = (async () => {
      const deadline = Date.now() + 60_000;
      while (!seen && Date.now() < deadline) {
        if (existsSync(tmp) && readdirSync(tmp).some((n) => !n.startsWith('maildirsize'))) seen = true;
        else await new Promise((r) => setImmediate(r));
      }
    })();
    const accepted: string[] = [];
    for (const data of sent) {
      if (seen) break;
      const { rcpt } = await send(child.port, { from: 'sender@example.test', to: ['alice@example.test'], data });
      assert.deepEqual(rcpt, ['250 2.1.5']);
      accepted.push(data);
    }
    await Promise.race([watcher, new Promise((r) => setTimeout(r, 5000))]);
    seen = true;
    await kill(child);

    // Right after the crash: whatever is in new/ is whole (a piece may be left in tmp/, where
    // housekeeping removes it after 36 hours, as the Maildir spec says).
    const left = existsSync(tmp) ? readdirSync(tmp).filter((n) => !n.startsWith('maildirsize')) : [];
    t.diagnostic(`killed with ${accepted.length} accepted, ${newFiles(dir).length} in new/, ${left.length} in tmp/`);
    assertWhole(newFiles(dir), accepted);

    child = await startChildGateway(config(dir, true));
    const got = await waitFor('every accepted message', () => {
      const files = newFiles(dir);
      const which = new Set(assertWhole(files, accepted));
      return which.size === accepted.length ? files : null;
    }, 60_000);
    const counts = accepted.map((_, i) => assertWhole(got, accepted).filter((w) => w === i).length);
    assert.ok(counts.every((c) => c >= 1), `each at least once: ${counts.join(', ')}`);
  } finally {
    await stopGently(child);
    rmSync(dir, { recursive: true, force: true });
  }
});
