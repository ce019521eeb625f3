/**
 * Commit throughput and latency of the embedded queue: N messages of S bytes committed by C
 * concurrent loops (each loop: begin, write the body in 4 KiB pieces, commit, repeat), for each C
 * given. Shows what group commit buys: at C=1 every commit pays its own fsync; with more
 * concurrent sessions, one fsync serves a whole batch.
 *
 *   node --import tsx bench/store-commit.ts [--messages 5000] [--size 5120] [--concurrency 1,20,100] [--dir /var/tmp]
 *
 * The directory should be on the disk the queue will live on: tmpfs makes fsync free.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openSqliteQueueStore } from '../src/store/sqlite/sqlite-queue-store.js';
import type { Envelope } from '../src/store/queue-types.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '5000' },
    size: { type: 'string', default: '5120' },
    concurrency: { type: 'string', default: '1,20,100' },
    dir: { type: 'string', default: os.tmpdir() },
  },
});
const messageCount = Number(values.messages);
const bodySize = Number(values.size);
const concurrencies = values.concurrency.split(',').map(Number);

const envelope: Envelope = {
  sender: 'sender@example.org',
  recipients: [{ address: 'rcpt@example.test', notify: null, orcpt: null }],
  ret: null,
  envid: null,
  body: '8BITMIME',
  smtputf8: false,
  client: {
    ip: '192.0.2.1',
    port: 40000,
    helo: 'client.example.org',
    listener: 'inbound',
    senderGroup: null,
    policy: null,
    rdns: null,
  },
  sessionId: 'bench',
  receivedAt: Date.now(),
};

const body = Buffer.alloc(bodySize, 'x');
const PIECE = 4096;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function run(concurrency: number): Promise<void> {
  const directory = fs.mkdtempSync(path.join(values.dir, 'postern-bench-'));
  const store = openSqliteQueueStore({ directory, minFreeBytes: 0 });
  const latencies: number[] = [];
  let started = 0;

  async function commitLoop(): Promise<void> {
    while (started < messageCount) {
      started += 1;
      const message = store.beginMessage();
      for (let offset = 0; offset < body.length; offset += PIECE) message.write(body.subarray(offset, offset + PIECE));
      const t = performance.now();
      await message.commit(envelope);
      latencies.push(performance.now() - t);
    }
  }

  try {
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, () => commitLoop()));
    const seconds = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    const stats = store.stats();
    console.log(
      `C=${String(concurrency).padStart(3)}  ${String(Math.round(messageCount / seconds)).padStart(6)} msgs/s  ` +
        `p50 ${percentile(latencies, 50).toFixed(2)} ms  p99 ${percentile(latencies, 99).toFixed(2)} ms  ` +
        `batches ${stats.commitBatches} (avg ${(stats.committedMessages / stats.commitBatches).toFixed(1)}/fsync)`,
    );
  } finally {
    await store.close();
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

console.log(`${messageCount} messages of ${bodySize} bytes, store in ${values.dir}`);
for (const concurrency of concurrencies) await run(concurrency);
