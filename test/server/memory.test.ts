/**
 * Bounded memory: a 50 MB message streams through the session into the store; the heap and
 * buffers of this process (client and server both live here) do not grow by anything like it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SmtpTestClient } from '../support/smtp-test-client.js';
import { startTestGateway } from '../support/test-gateway.js';

function used(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

test('a 50 MB message does not grow memory by 50 MB', { timeout: 120_000 }, async () => {
  const gw = await startTestGateway('limits: { max_message_size: 64MB }');
  try {
    const c = await SmtpTestClient.connect(gw.port);
    await c.code();
    await c.cmd('EHLO client.test');
    await c.cmd('MAIL FROM:<a@client.test> SIZE=52428800');
    await c.cmd('RCPT TO:<b@example.test>');
    assert.equal(await c.cmd('DATA'), '354');
    const line = Buffer.from(`${'m'.repeat(1022)}\r\n`);
    const block = Buffer.concat(Array.from({ length: 64 }, () => line)); // 64 KiB
    global.gc?.();
    const base = used();
    let peak = base;
    // Live memory: collect garbage before each sample (the runner starts node with --expose-gc).
    const sampler = setInterval(() => {
      global.gc?.();
      peak = Math.max(peak, used());
    }, 100);
    c.write('Subject: big\r\n\r\n');
    for (let sent = 0; sent < 50 * 1024 * 1024; sent += block.length) {
      if (!c.socket.write(block)) await new Promise((r) => c.socket.once('drain', r));
    }
    c.write('.\r\n');
    const r = await c.reply(60_000);
    clearInterval(sampler);
    assert.equal(r.code, 250);
    const id = /queued as (\S+)/.exec(r.lines[0])![1];
    assert.ok(gw.gateway.store.getMessage(id)!.size > 50 * 1024 * 1024);
    const growth = peak - base;
    console.log(`# memory growth during a 50 MB message: ${(growth / 1048576).toFixed(1)} MB`);
    assert.ok(growth < 16 * 1024 * 1024, `memory grew by ${(growth / 1048576).toFixed(1)} MB`);
    c.close();
  } finally {
    await gw.stop();
  }
});
