/**
 * Commit options of a message received in a stream: bytes put before the body at commit (the
 * Authentication-Results header, known only at the end of data) — for a small body still staged
 * and for one already in chunk rows — and `hold` (quarantine): stored durably, never leased.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BODY_CHUNK_BYTES, openSqliteQueueStore } from '../../src/store/sqlite/sqlite-queue-store.js';
import { sampleBody, sampleEnvelope } from './fixtures/sample-message.js';

async function withStore(fn: (store: ReturnType<typeof openSqliteQueueStore>) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-commit-'));
  const store = openSqliteQueueStore({ directory: dir, minFreeBytes: 0 });
  try {
    await fn(store);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

const header = Buffer.from('Authentication-Results: mx.test; spf=pass smtp.mailfrom=a@b.test\r\n');

test('prepend: a small (staged) body and a large (chunked) body both start with the prepended bytes', { timeout: 20_000 }, async () => {
  await withStore(async (store) => {
    for (const size of [200, BODY_CHUNK_BYTES * 2 + 1234]) {
      const body = Buffer.concat([Buffer.from('Received: x\r\nSubject: s\r\n\r\n'), sampleBody(size, size)]);
      const msg = store.beginMessage();
      for (let i = 0; i < body.length; i += 10_000) msg.write(body.subarray(i, i + 10_000));
      await msg.commit(sampleEnvelope(), { prepend: header });
      const expected = Buffer.concat([header, body]);
      assert.equal(store.getMessage(msg.id)!.size, expected.length, `size ${size}`);
      assert.ok(store.readBody(msg.id).equals(expected), `readBody ${size}`);
      assert.ok((await collect(store.bodyChunks(msg.id))).equals(expected), `bodyChunks ${size}`);
    }
  });
});

test('hold: a quarantined message is stored held and never leased; a normal one is queued', { timeout: 20_000 }, async () => {
  await withStore(async (store) => {
    const held = store.beginMessage();
    held.write(Buffer.from('Subject: held\r\n\r\nx\r\n'));
    await held.commit(sampleEnvelope(), { hold: true });
    const normal = store.beginMessage();
    normal.write(Buffer.from('Subject: normal\r\n\r\nx\r\n'));
    await normal.commit(sampleEnvelope());
    assert.equal(store.getMessage(held.id)!.state, 'held');
    assert.equal(store.getMessage(normal.id)!.state, 'queued');
    assert.deepEqual(store.counts(), { queued: 1, held: 1, done: 0 });
    const leased = store.leaseDue('w', Date.now() + 86_400_000, 10, 60_000).map((l) => l.id);
    assert.deepEqual(leased, [normal.id]);
  });
});
