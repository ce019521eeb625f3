/**
 * The server's life: crash safety (SIGKILL right after 250), graceful stop on SIGTERM,
 * timeouts, connection caps, storage trouble — over real sockets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { SmtpTestClient, sendMessage } from '../support/smtp-test-client.js';
import { startChildGateway, writeTestConfig } from '../support/child-gateway.js';
import { startTestGateway } from '../support/test-gateway.js';
import { openSqliteQueueStore } from '../../src/store/sqlite/sqlite-queue-store.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'postern-life-'));
}

test('crash: SIGKILL right after the 250 — on restart the message is in the queue', { timeout: 60_000 }, async () => {
  const dir = tempDir();
  try {
    const cfg = writeTestConfig(dir);
    const gw = await startChildGateway(cfg);
    const c = await SmtpTestClient.openData(gw.port);
    c.write('Subject: survive\r\n\r\nkill -9 me\r\n.\r\n');
    const r = await c.reply();
    gw.child.kill('SIGKILL'); // the instant the 250 arrived
    assert.equal(r.code, 250);
    const id = /queued as (\S+)/.exec(r.lines[0])![1];
    assert.equal(await gw.exited, 'SIGKILL');
    c.close();
    // Restart the gateway on the same store: the message is there, byte-exact.
    const again = await startChildGateway(cfg);
    again.child.kill('SIGTERM');
    assert.equal(await again.exited, 0);
    const store = openSqliteQueueStore({ directory: join(dir, 'queue'), minFreeBytes: 0 });
    try {
      const msg = store.getMessage(id);
      assert.ok(msg, `message ${id} survived`);
      assert.equal(msg.state, 'queued');
      assert.match(store.readBody(id).toString(), /\r\n\r\nkill -9 me\r\n$/);
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGTERM: new connections get 421 4.3.2, DATA in flight finishes with 250, then exit 0', { timeout: 60_000 }, async () => {
  const dir = tempDir();
  try {
    const gw = await startChildGateway(writeTestConfig(dir, 'shutdown: { grace: 10s }'));
    const idle = await SmtpTestClient.connect(gw.port);
    assert.equal(await idle.code(), '220');
    const busy = await SmtpTestClient.connect(gw.port);
    await busy.code();
    await busy.cmd('EHLO client.test');
    await busy.cmd('MAIL FROM:<a@client.test>');
    await busy.cmd('RCPT TO:<b@example.test>');
    assert.equal(await busy.cmd('DATA'), '354');
    busy.write('Subject: in flight\r\n\r\nfirst half\r\n');
    gw.child.kill('SIGTERM');
    // The idle session is told at once.
    assert.equal(await idle.code(), '421 4.3.2');
    await idle.waitClosed();
    // A new connection during draining.
    const late = await SmtpTestClient.connect(gw.port);
    assert.equal(await late.code(), '421 4.3.2');
    await late.waitClosed();
    // The message in flight completes.
    busy.write('second half\r\n.\r\n');
    assert.equal(await busy.code(), '250 2.0.0');
    assert.equal(await busy.cmd('MAIL FROM:<a@client.test>'), '421 4.3.2');
    await busy.waitClosed();
    assert.equal(await gw.exited, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('idle timeout: 421 4.4.2 and close', { timeout: 20_000 }, async () => {
  const gw = await startTestGateway('timeouts: { command: 300ms }');
  try {
    const c = await SmtpTestClient.connect(gw.port);
    assert.equal(await c.code(), '220');
    await c.cmd('EHLO client.test');
    assert.equal(await c.code(3000), '421 4.4.2');
    await c.waitClosed();
  } finally {
    await gw.stop();
  }
});

test('data timeout: 421 4.4.2 while waiting for message data, nothing queued', { timeout: 20_000 }, async () => {
  const gw = await startTestGateway('timeouts: { command: 5s, data_block: 300ms }');
  try {
    const c = await SmtpTestClient.openData(gw.port);
    c.write('Subject: slow\r\n');
    assert.equal(await c.code(3000), '421 4.4.2');
    await c.waitClosed();
    assert.equal(gw.gateway.store.counts().queued, 0);
  } finally {
    await gw.stop();
  }
});

test('slow drip (slowloris): below the minimum data rate the transfer ends with 421 4.4.2', { timeout: 20_000 }, async () => {
  const gw = await startTestGateway('timeouts: { command: 5s, data_block: 1500ms }\nlimits: { min_data_rate: 1000 }');
  try {
    const c = await SmtpTestClient.openData(gw.port);
    // 20 bytes every 400 ms: always well inside the data-block timeout, far below 1000 bytes/s.
    const t0 = Date.now();
    const drip = setInterval(() => c.write('x'.repeat(18) + '\r\n'), 400);
    try {
      assert.equal(await c.code(5000), '421 4.4.2');
    } finally {
      clearInterval(drip);
    }
    const took = Date.now() - t0;
    assert.ok(took >= 1400 && took < 3000, `cut after ${took} ms`);
    await c.waitClosed();
    assert.equal(gw.gateway.store.counts().queued, 0);
  } finally {
    await gw.stop();
  }
});

test('total connection limit: 421 4.7.0 at the greeting, then close', { timeout: 20_000 }, async () => {
  const gw = await startTestGateway('listeners: [ { name: inbound, listen: "127.0.0.1:0", max_connections: 2 } ]');
  try {
    const a = await SmtpTestClient.connect(gw.port);
    const b = await SmtpTestClient.connect(gw.port);
    assert.equal(await a.code(), '220');
    assert.equal(await b.code(), '220');
    const c = await SmtpTestClient.connect(gw.port);
    assert.equal(await c.code(), '421 4.7.0');
    await c.waitClosed();
    a.close();
    await a.waitClosed();
    // A slot is free again.
    await new Promise((r) => setTimeout(r, 100));
    const d = await SmtpTestClient.connect(gw.port);
    assert.equal(await d.code(), '220');
    b.close();
    d.close();
  } finally {
    await gw.stop();
  }
});

test('free disk below the reserve: 452 4.3.1 at MAIL (with and without SIZE)', { timeout: 20_000 }, async () => {
  const gw = await startTestGateway('', { minFreeSpace: '1000000GB' });
  try {
    const c = await SmtpTestClient.connect(gw.port);
    await c.code();
    await c.cmd('EHLO client.test');
    assert.equal(await c.cmd('MAIL FROM:<a@client.test> SIZE=1000'), '452 4.3.1');
    assert.equal(await c.cmd('MAIL FROM:<a@client.test>'), '452 4.3.1');
    c.close();
  } finally {
    await gw.stop();
  }
});

test('a store that fails: 451 4.3.0, never a 250', { timeout: 20_000 }, async () => {
  const gw = await startTestGateway();
  try {
    const c = await SmtpTestClient.connect(gw.port);
    await c.code();
    await c.cmd('EHLO client.test');
    await c.cmd('MAIL FROM:<a@client.test>');
    await c.cmd('RCPT TO:<b@example.test>');
    assert.equal(await c.cmd('DATA'), '354');
    c.write('Subject: doomed\r\n\r\nbody\r\n');
    // The database goes away under the running server (as when its disk fails).
    await gw.gateway.store.close();
    c.write('.\r\n');
    assert.equal(await c.code(), '451 4.3.0');
    // And the next transaction cannot even start: still a 4xx, the session goes on.
    await c.cmd('MAIL FROM:<a@client.test>');
    await c.cmd('RCPT TO:<b@example.test>');
    assert.match(await c.cmd('DATA'), /^45[12] 4\.3\.[01]$/);
    assert.equal(await c.cmd('NOOP'), '250 2.0.0');
    c.close();
  } finally {
    await gw.stop().catch(() => undefined);
  }
});

test('the disk fills up while receiving: 452 4.3.1, nothing half-queued; more space, and it accepts again', { timeout: 60_000 }, async (t) => {
  const mnt = mkdtempSync(join(tmpdir(), 'postern-tmpfs-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt]).status === 0;
  if (!mounted) {
    rmSync(mnt, { recursive: true, force: true });
    t.skip('cannot mount a tmpfs here (needs root)');
    return;
  }
  const gw = await startTestGateway('', { dir: mnt });
  try {
    const body = `Subject: fill\r\n\r\n${`${'f'.repeat(998)}\r\n`.repeat(256)}`; // 256 KB
    const ids: string[] = [];
    let refused = '';
    for (let n = 0; n < 40 && !refused; n++) {
      try {
        ids.push(await sendMessage(gw.port, { from: 'a@client.test', to: ['b@example.test'], data: body }));
      } catch (err) {
        refused = String(err);
      }
    }
    assert.match(refused, /452 4\.3\.1/, `the disk never filled: ${ids.length} messages`);
    assert.ok(ids.length > 0);
    for (const id of ids) assert.ok(gw.gateway.store.getMessage(id), `accepted ${id} is in the queue`);
    assert.equal(gw.gateway.store.counts().queued, ids.length, 'nothing half-queued');
    assert.equal(spawnSync('mount', ['-o', 'remount,size=64m', mnt]).status, 0);
    ids.push(await sendMessage(gw.port, { from: 'a@client.test', to: ['b@example.test'], data: body }));
    assert.equal(gw.gateway.store.counts().queued, ids.length);
  } finally {
    await gw.stop();
    spawnSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  }
});
