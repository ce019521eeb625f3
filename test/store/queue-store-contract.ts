/**
 * The QueueStore contract: behaviour every implementation must show (the embedded SQLite store
 * now, a shared PostgreSQL store later). An implementation's test file calls
 * `runQueueStoreContract` with a function that opens its store on a fresh directory; reopening the
 * same directory must show the same queue (that is what "durable" means to these tests).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StoreError, type QueueStore } from '../../src/store/queue-store.js';
import type { Envelope, EnvelopeRecipient, Lease, QueueId } from '../../src/store/queue-types.js';
import { sampleBody, sampleClient, sampleEnvelope } from './fixtures/sample-message.js';

export interface ContractStoreOptions {
  /** Bytes that must stay free; admission fails below it. */
  readonly minFreeBytes: number;
  /** Milliseconds since the epoch, as the store should see "now". */
  readonly clock?: () => number;
}

/** The store a contract test works on; `reopen` closes it and opens the same directory again. */
interface StoreUnderTest {
  store: QueueStore;
  readonly directory: string;
  reopen(): Promise<QueueStore>;
}

export type OpenQueueStore = (directory: string, options: ContractStoreOptions) => QueueStore;

const TEST_TIMEOUT_MS = 60_000;

/** Runs `body` with a fresh directory that is removed afterwards. */
export async function withTempDirectory<T>(body: (directory: string) => Promise<T>): Promise<T> {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-store-'));
  try {
    return await body(directory);
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

/** Begins, writes `body` in pieces of `pieceSize` bytes (through one reused buffer), commits. */
export async function storeMessage(
  store: QueueStore,
  body: Uint8Array,
  envelope: Envelope = sampleEnvelope(),
  pieceSize = 4096,
): Promise<string> {
  const message = store.beginMessage();
  // The caller's buffer is reused for every piece: the store must copy what it keeps.
  const reused = new Uint8Array(pieceSize);
  for (let offset = 0; offset < body.length; offset += pieceSize) {
    const length = Math.min(pieceSize, body.length - offset);
    reused.set(body.subarray(offset, offset + length));
    message.write(reused.subarray(0, length));
    reused.fill(0xee);
  }
  assert.equal(message.size, body.length);
  await message.commit(envelope);
  return message.id;
}

function isStoreError(error: unknown): error is StoreError {
  return error instanceof StoreError;
}

export function runQueueStoreContract(name: string, open: OpenQueueStore): void {
  const options: ContractStoreOptions = { minFreeBytes: 0 };

  /** Opens a store on a fresh directory, runs `body`, closes the store and removes the directory. */
  async function withStore(
    body: (subject: StoreUnderTest) => Promise<void>,
    storeOptions: ContractStoreOptions = options,
  ): Promise<void> {
    await withTempDirectory(async (directory) => {
      const subject: StoreUnderTest = {
        store: open(directory, storeOptions),
        directory,
        async reopen() {
          await subject.store.close();
          subject.store = open(directory, storeOptions);
          return subject.store;
        },
      };
      try {
        await body(subject);
      } finally {
        await subject.store.close();
      }
    });
  }

  test(`${name}: a committed body reads back byte-exact, 8-bit bytes and pieces over 64 KiB included`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withStore(async ({ store }) => {
      const body = Buffer.concat([
        Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
        sampleBody(200_000, 1),
        Buffer.from('\r\n.\r\n\u00e4\u00f6\u00fc\r\n', 'utf8'),
      ]);
      const message = store.beginMessage();
      message.write(body.subarray(0, 3)); // odd small piece
      message.write(body.subarray(3, 3 + 150_000)); // one piece larger than 64 KiB
      message.write(body.subarray(3 + 150_000, 3 + 150_000 + 65_536)); // exactly 64 KiB, unaligned
      message.write(new Uint8Array(0));
      message.write(body.subarray(3 + 150_000 + 65_536));
      assert.equal(message.size, body.length);
      await message.commit(sampleEnvelope());

      assert.deepEqual(store.readBody(message.id), body);
      assert.equal(store.getMessage(message.id)?.size, body.length);

      // Pieces of exactly 64 KiB from a buffer the writer reuses.
      const aligned = sampleBody(5 * 65_536 + 17, 4);
      const alignedId = await storeMessage(store, aligned, sampleEnvelope(), 65_536);
      assert.ok(store.readBody(alignedId).equals(aligned), 'body written in 64 KiB pieces differs');
    });
  });

  test(`${name}: a 5 MB body written in 1 KiB pieces reads back byte-exact`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withStore(async ({ store }) => {
      const body = sampleBody(5 * 1024 * 1024, 2);
      const id = await storeMessage(store, body, sampleEnvelope(), 1024);
      assert.ok(store.readBody(id).equals(body), 'body differs');
    });
  });

  test(`${name}: an empty body is a message too`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withStore(async ({ store }) => {
      const id = await storeMessage(store, new Uint8Array(0));
      assert.equal(store.readBody(id).length, 0);
      assert.equal(store.getMessage(id)?.size, 0);
    });
  });

  test(`${name}: envelope and per-recipient DSN parameters round-trip exactly`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withStore(async (subject) => {
      const store = subject.store;
      const recipients: EnvelopeRecipient[] = [
        { address: 'plain@example.test', notify: null, orcpt: null },
        { address: 'never@example.test', notify: 'NEVER', orcpt: { addrType: 'rfc822', address: 'old@example.test' } },
        {
          address: 'j\u00f6rg@b\u00fccher.example',
          notify: ['SUCCESS', 'FAILURE', 'DELAY'],
          orcpt: { addrType: 'utf-8', address: 'J\u00f6rg+x@B\u00fccher.example' },
        },
        { address: '"quoted@local"@Example.TEST', notify: ['DELAY'], orcpt: null },
        { address: 'Postmaster', notify: ['FAILURE'], orcpt: null },
      ];
      const envelope: Envelope = {
        sender: '',
        recipients,
        ret: 'HDRS',
        envid: 'QQ314159 +=x\u00e9',
        body: '8BITMIME',
        smtputf8: true,
        client: { ...sampleClient, rdns: 'mail.example.org', senderGroup: null, policy: null },
        sessionId: 'sess-42',
        receivedAt: 1_700_000_123_456,
      };
      const other: Envelope = sampleEnvelope({ ret: 'FULL', body: '7BIT', envid: null });
      const id = await storeMessage(store, Buffer.from('Subject: x\r\n\r\nhi\r\n'), envelope);
      const otherId = await storeMessage(store, Buffer.from('x'), other);

      const check = (current: QueueStore): void => {
        const message = current.getMessage(id);
        assert.ok(message);
        assert.equal(message.id, id);
        assert.equal(message.state, 'queued');
        assert.deepEqual(message.envelope, envelope);
        assert.deepEqual(
          message.recipients,
          recipients.map((r) => ({ ...r, state: 'queued', attempts: 0, lastReply: null, status: null, nextAttemptAt: envelope.receivedAt })),
        );
        assert.equal(message.attempts, 0);
        assert.equal(message.origin, 'received');
        assert.equal(message.delayWarnings, 0);
        assert.ok(message.nextAttemptAt <= envelope.receivedAt, 'a new message is due at once');
        assert.deepEqual(current.getMessage(otherId)?.envelope, other);
      };
      check(store);
      check(await subject.reopen());
    });
  });

  test(`${name}: queue ids are unique and made of [0-9A-Za-z]`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withStore(async ({ store }) => {
      const ids = new Set<string>();
      for (let i = 0; i < 2000; i++) {
        const message = store.beginMessage();
        assert.match(message.id, /^[0-9A-Za-z]{1,20}$/);
        ids.add(message.id);
        message.abort();
      }
      assert.equal(ids.size, 2000);
    });
  });

  test(`${name}: abort leaves nothing, never throws, and a committed message ignores it`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withStore(async (subject) => {
      let store = subject.store;
      const aborted = store.beginMessage();
      aborted.write(sampleBody(300_000, 3));
      aborted.abort();
      aborted.abort();
      assert.throws(() => aborted.write(Buffer.from('more')), isStoreError);
      await assert.rejects(aborted.commit(sampleEnvelope()), isStoreError);

      const untouched = store.beginMessage();
      untouched.abort(); // before any write

      const kept = store.beginMessage();
      kept.write(Buffer.from('kept'));
      const committing = kept.commit(sampleEnvelope());
      kept.abort(); // after commit(): the message is already being accepted
      await committing;
      kept.abort();

      assert.equal(store.getMessage(aborted.id), null);
      assert.equal(store.getMessage(untouched.id), null);
      assert.deepEqual(store.listMessages().map((m) => m.id), [kept.id]);
      store = await subject.reopen();
      assert.deepEqual(store.listMessages().map((m) => m.id), [kept.id]);
      assert.equal(store.readBody(kept.id).toString(), 'kept');
      assert.deepEqual(store.counts(), { queued: 1, held: 0, done: 0 });
    });
  });

  test(`${name}: a message can be committed once`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withStore(async ({ store }) => {
      const message = store.beginMessage();
      message.write(Buffer.from('once'));
      await message.commit(sampleEnvelope());
      await assert.rejects(message.commit(sampleEnvelope()), isStoreError);
      assert.throws(() => message.write(Buffer.from('x')), isStoreError);
      assert.equal(store.listMessages().length, 1);
    });
  });

  test(`${name}: 200 concurrent commits all resolve and are all durable`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withStore(async (subject) => {
      let store = subject.store;
      const bodies = Array.from({ length: 200 }, (_, i) => sampleBody(500 + i * 97, 100 + i));
      const ids = await Promise.all(
        bodies.map((body, i) => storeMessage(store, body, sampleEnvelope({ sessionId: `s${i}` }))),
      );
      assert.equal(new Set(ids).size, 200);
      store = await subject.reopen();
      assert.equal(store.counts().queued, 200);
      ids.forEach((id, i) => {
        assert.ok(store.readBody(id).equals(bodies[i]), `body of ${id}`);
        assert.equal(store.getMessage(id)?.envelope.sessionId, `s${i}`);
      });
    });
  });

  test(`${name}: close waits for a commit in flight`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withTempDirectory(async (directory) => {
      const store = open(directory, options);
      const message = store.beginMessage();
      message.write(Buffer.from('last one'));
      const committed = message.commit(sampleEnvelope());
      const closed = store.close();
      await committed;
      await closed;
      await store.close(); // idempotent
      assert.throws(() => store.beginMessage(), isStoreError);
      assert.throws(() => store.listMessages(), isStoreError);

      const again = open(directory, options);
      try {
        assert.equal(again.readBody(message.id).toString(), 'last one');
      } finally {
        await again.close();
      }
    });
  });

  test(`${name}: leaseDue claims due messages once; an expired lease can be taken over`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withStore(async ({ store }) => {
      const t0 = 1_700_000_000_000;
      const first = await storeMessage(store, Buffer.from('1'), sampleEnvelope({ receivedAt: t0 }));
      const second = await storeMessage(store, Buffer.from('2'), sampleEnvelope({ receivedAt: t0 + 10 }));
      const later = await storeMessage(store, Buffer.from('3'), sampleEnvelope({ receivedAt: t0 + 60_000 }));

      assert.deepEqual(store.leaseDue('A', t0 + 100, 0, 1000), []);
      const leasesA = store.leaseDue('A', t0 + 100, 10, 1000);
      assert.deepEqual(
        leasesA.map((l) => l.id),
        [first, second],
        'oldest first; a message not yet due is not leased',
      );
      for (const lease of leasesA) {
        assert.equal(lease.owner, 'A');
        assert.equal(lease.expiresAt, t0 + 1100);
      }
      assert.deepEqual(store.leaseDue('B', t0 + 100, 10, 1000), [], 'B gets nothing while A holds them');
      assert.deepEqual(store.leaseDue('B', t0 + 1099, 10, 1000), []);

      // A renews one before expiry; the other expires and B takes it.
      const renewed = store.renewLease(leasesA[0], t0 + 900, 5000);
      assert.deepEqual(renewed, { id: first, owner: 'A', expiresAt: t0 + 5900 });
      const leasesB = store.leaseDue('B', t0 + 1100, 10, 1000);
      assert.deepEqual(leasesB.map((l) => l.id), [second]);
      assert.equal(store.renewLease(leasesA[1], t0 + 1100, 1000), null, 'A lost the expired lease');
      store.releaseLease(leasesA[1]); // not A's any more: no effect
      assert.deepEqual(store.leaseDue('C', t0 + 1100, 10, 1000), []);

      // A renewal after expiry fails even when nobody took the message.
      assert.equal(store.renewLease(renewed!, t0 + 5900, 1000), null);

      // Release makes a message available at once; max is respected.
      store.releaseLease(leasesB[0]);
      assert.deepEqual(store.leaseDue('C', t0 + 1200, 1, 1000).map((l) => l.id), [second]);
      assert.deepEqual(store.leaseDue('D', t0 + 6000, 1, 1000).map((l) => l.id), [first]);
      const all = store.leaseDue('E', t0 + 70_000, 10, 1000).map((l) => l.id);
      assert.deepEqual(all, [first, second, later], 'every lease has expired by now');
    });
  });

  test(`${name}: listMessages filters by state, recipient domain, age and limit, oldest first`, { timeout: TEST_TIMEOUT_MS }, async () => {
    const now = 1_700_000_000_000;
    await withStore(
      async ({ store }) => {
        const rcpt = (address: string): EnvelopeRecipient => ({ address, notify: null, orcpt: null });
        // Committed out of age order on purpose.
        const middle = await storeMessage(
          store,
          Buffer.from('m'),
          sampleEnvelope({ receivedAt: now - 60_000, recipients: [rcpt('a@Example.TEST'), rcpt('b@other.test')] }),
        );
        const oldest = await storeMessage(
          store,
          Buffer.from('o'),
          sampleEnvelope({ receivedAt: now - 3_600_000, recipients: [rcpt('"x@example.test"@third.test')] }),
        );
        const newest = await storeMessage(
          store,
          Buffer.from('n'),
          sampleEnvelope({ receivedAt: now - 1000, recipients: [rcpt('c@example.test'), rcpt('Postmaster')] }),
        );
        const ids = (filter?: Parameters<QueueStore['listMessages']>[0]): string[] =>
          store.listMessages(filter).map((m) => m.id);

        assert.deepEqual(ids(), [oldest, middle, newest]);
        assert.deepEqual(ids({ state: 'queued' }), [oldest, middle, newest]);
        assert.deepEqual(ids({ state: 'held' }), []);
        assert.deepEqual(ids({ state: 'done' }), []);
        assert.deepEqual(ids({ domain: 'example.test' }), [middle, newest]);
        assert.deepEqual(ids({ domain: 'EXAMPLE.test' }), [middle, newest], 'domain is case-insensitive');
        assert.deepEqual(ids({ domain: 'third.test' }), [oldest], 'the domain follows the last @');
        assert.deepEqual(ids({ domain: 'example' }), []);
        assert.deepEqual(ids({ olderThanMs: 60_000 }), [oldest, middle]);
        assert.deepEqual(ids({ olderThanMs: 2 * 3_600_000 }), []);
        assert.deepEqual(ids({ limit: 2 }), [oldest, middle]);
        assert.deepEqual(ids({ domain: 'example.test', olderThanMs: 500, limit: 1 }), [middle]);
        assert.deepEqual(store.counts(), { queued: 3, held: 0, done: 0 });
      },
      { minFreeBytes: 0, clock: () => now },
    );
  });

  test(`${name}: admission answers from free space minus the reserve`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withStore(async ({ store }) => {
      const admission = store.admission(1000);
      assert.equal(admission.ok, true);
      assert.ok(admission.available === null || admission.available > 1000);
      assert.equal(store.admission(null).ok, true);
    });
    await withStore(
      async ({ store }) => {
        const admission = store.admission(1000);
        assert.equal(admission.ok, false);
        assert.ok(admission.available !== null && admission.available < 0);
        assert.equal(store.admission(null).ok, false);
      },
      { minFreeBytes: Number.MAX_SAFE_INTEGER },
    );
  });

  test(`${name}: reopening keeps every message; begun but uncommitted ones are gone`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withStore(async (subject) => {
      let store = subject.store;
      const committed = await storeMessage(store, sampleBody(100_000, 7));
      const unfinished = store.beginMessage();
      unfinished.write(sampleBody(300_000, 8)); // reaches the database, never committed
      const lease = store.leaseDue('worker', Date.now(), 10, 60_000);
      assert.deepEqual(lease.map((l) => l.id), [committed]);

      store = await subject.reopen();
      assert.deepEqual(store.listMessages().map((m) => m.id), [committed]);
      assert.equal(store.getMessage(unfinished.id), null);
      assert.ok(store.readBody(committed).equals(sampleBody(100_000, 7)));
      assert.deepEqual(store.leaseDue('other', Date.now(), 10, 60_000), [], 'the lease survives too');
      assert.throws(() => store.readBody(unfinished.id), isStoreError);
    });
  });

  // ── delivery ─────────────────────────────────────────────────────────────────────────────

  const rcpt = (address: string): EnvelopeRecipient => ({ address, notify: null, orcpt: null });

  async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const c of chunks) parts.push(Buffer.from(c));
    return Buffer.concat(parts);
  }

  function leaseOf(store: QueueStore, owner: string, now: number, id: QueueId): Lease {
    const lease = store.leaseDue(owner, now, 100, 60_000).find((l) => l.id === id);
    assert.ok(lease, `${owner} leases ${id}`);
    return lease;
  }

  test(`${name}: bodyChunks streams a body byte-exact in bounded chunks; an unknown id throws`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withStore(async ({ store }) => {
      const body = sampleBody(300_000, 11);
      const id = await storeMessage(store, body, sampleEnvelope(), 10_000);
      let largest = 0;
      const parts: Buffer[] = [];
      for await (const c of store.bodyChunks(id)) {
        largest = Math.max(largest, c.length);
        parts.push(Buffer.from(c));
      }
      assert.ok(Buffer.concat(parts).equals(body));
      assert.ok(largest <= 256 * 1024, `chunks stay small (largest ${largest})`);
      assert.equal((await collect(store.bodyChunks(await storeMessage(store, new Uint8Array(0))))).length, 0);
      await assert.rejects(collect(store.bodyChunks('nosuchid')), isStoreError);
    });
  });

  test(`${name}: recordDelivery keeps per-recipient outcomes, reschedules to the earliest due recipient, releases the lease`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withStore(async (subject) => {
      let store = subject.store;
      const t0 = 1_700_000_000_000;
      const id = await storeMessage(store, Buffer.from('Subject: x\r\n\r\nbody\r\n'), sampleEnvelope({
        receivedAt: t0, recipients: [rcpt('a@one.test'), rcpt('b@two.test'), rcpt('c@three.test')],
      }));
      const lease = leaseOf(store, 'W1', t0, id);
      const result = await store.recordDelivery({
        lease,
        recipients: [
          { index: 0, state: 'delivered', lastReply: '250 2.0.0 Ok: queued as X', status: '2.0.0' },
          { index: 1, state: 'queued', lastReply: '450 4.2.1 Mailbox busy', status: '4.2.1', nextAttemptAt: t0 + 120_000 },
          { index: 2, state: 'queued', lastReply: 'connect to 127.0.0.9:25: Connection refused', status: '4.4.1', nextAttemptAt: t0 + 60_000 },
        ],
        attempts: [
          { at: t0 + 5, recipients: [0, 1], nextHop: 'smtp:mx.one.test[127.0.0.2]:25', reply: '250 2.0.0 Ok', outcome: 'delivered', status: '2.0.0' },
          { at: t0 + 6, recipients: [2], nextHop: 'smtp:mx.three.test[127.0.0.9]:25', reply: 'Connection refused', outcome: 'soft', status: '4.4.1' },
        ],
        generated: [],
        delayWarnings: 1,
      });
      assert.deepEqual(result, { applied: true, generated: [], finished: false });
      const check = (current: QueueStore): void => {
        const m = current.getMessage(id);
        assert.ok(m);
        assert.equal(m.state, 'queued');
        assert.equal(m.attempts, 1);
        assert.equal(m.delayWarnings, 1);
        assert.equal(m.nextAttemptAt, t0 + 60_000, 'due with its earliest queued recipient');
        assert.deepEqual(m.recipients.map((r) => [r.state, r.attempts, r.status, r.nextAttemptAt]), [
          ['delivered', 1, '2.0.0', t0],
          ['queued', 1, '4.2.1', t0 + 120_000],
          ['queued', 1, '4.4.1', t0 + 60_000],
        ]);
        assert.equal(m.recipients[1].lastReply, '450 4.2.1 Mailbox busy');
        const attempts = current.listAttempts(id);
        assert.deepEqual(attempts.map((a) => [a.at, a.recipients, a.outcome, a.nextHop]), [
          [t0 + 5, [0, 1], 'delivered', 'smtp:mx.one.test[127.0.0.2]:25'],
          [t0 + 6, [2], 'soft', 'smtp:mx.three.test[127.0.0.9]:25'],
        ]);
      };
      check(store);
      assert.deepEqual(store.leaseDue('W2', t0 + 59_999, 10, 1000), [], 'not due yet, and the lease is gone');
      assert.equal(store.nextWakeAt(), t0 + 60_000);
      store = await subject.reopen();
      check(store);

      // A final outcome for a recipient that is final already changes nothing.
      const lease2 = leaseOf(store, 'W2', t0 + 60_000, id);
      await store.recordDelivery({
        lease: lease2,
        recipients: [
          { index: 0, state: 'bounced', lastReply: 'late', status: '5.0.0' },
          { index: 1, state: 'bounced', lastReply: '550 5.1.1 User unknown', status: '5.1.1' },
          { index: 2, state: 'expired', lastReply: 'Connection refused', status: '5.4.7' },
        ],
        attempts: [],
        generated: [],
      });
      const done = store.getMessage(id);
      assert.ok(done);
      assert.equal(done.state, 'done');
      assert.equal(done.attempts, 2);
      assert.deepEqual(done.recipients.map((r) => r.state), ['delivered', 'bounced', 'expired']);
      assert.equal(done.recipients[0].lastReply, '250 2.0.0 Ok: queued as X');
      assert.equal(store.readBody(id).length, 0, 'the body of a done message is dropped');
      assert.equal(store.listAttempts(id).length, 2, 'the attempts are kept');
      assert.deepEqual(store.counts(), { queued: 0, held: 0, done: 1 });
      assert.equal(store.nextWakeAt(), null);
      assert.deepEqual(store.leaseDue('W3', t0 + 1e9, 10, 1000), []);
    });
  });

  test(`${name}: a report under a lease that passed to another worker is refused; the new owner's applies`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withStore(async ({ store }) => {
      const t0 = 1_700_000_000_000;
      const id = await storeMessage(store, Buffer.from('x'), sampleEnvelope({ receivedAt: t0 }));
      const dead = store.leaseDue('dead-worker', t0, 10, 1000)[0];
      assert.equal(store.nextWakeAt(), t0 + 1000, 'wake when the lease expires');
      const alive = store.leaseDue('alive', t0 + 1000, 10, 1000)[0];
      assert.equal(alive.id, id);
      const late = await store.recordDelivery({
        lease: dead, recipients: [{ index: 0, state: 'delivered', lastReply: '250 ok', status: '2.0.0' }], attempts: [], generated: [],
      });
      assert.deepEqual(late, { applied: false, generated: [], finished: false });
      assert.equal(store.getMessage(id)?.recipients[0].state, 'queued');
      const ok = await store.recordDelivery({
        lease: alive, recipients: [{ index: 0, state: 'delivered', lastReply: '250 ok', status: '2.0.0' }], attempts: [], generated: [],
      });
      assert.equal(ok.finished, true);
    });
  });

  test(`${name}: generated messages are queued with the outcome, their bodies copied inside the store; onEnqueued reports them`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withStore(async (subject) => {
      let store = subject.store;
      const seen: QueueId[][] = [];
      const off = store.onEnqueued((ids) => seen.push([...ids]));
      const t0 = 1_700_000_000_000;
      const original = sampleBody(200_000, 21);
      const id = await storeMessage(store, original, sampleEnvelope({ receivedAt: t0 }));
      assert.deepEqual(seen, [[id]], 'a received message is announced once it is durable');
      const lease = leaseOf(store, 'W', t0, id);
      const dsnEnvelope = sampleEnvelope({ sender: '', recipients: [rcpt('sender@example.org')], receivedAt: t0 + 10, sessionId: 'dsn' });
      const head = Buffer.from('Content-Type: multipart/report\r\n\r\n--b\r\n');
      const tail = Buffer.from('\r\n--b--\r\n');
      const result = await store.recordDelivery({
        lease,
        recipients: [{ index: 0, state: 'bounced', lastReply: '550 5.1.1 User unknown', status: '5.1.1' }],
        attempts: [{ at: t0 + 10, recipients: [0], nextHop: null, reply: '550 5.1.1 User unknown', outcome: 'hard', status: '5.1.1' }],
        generated: [
          { envelope: dsnEnvelope, origin: 'dsn', body: [head, { copyOf: id }, tail] },
          { envelope: { ...dsnEnvelope, recipients: [rcpt('postmaster@mx.test')] }, origin: 'postmaster-notice', body: [head, tail] },
        ],
      });
      assert.equal(result.applied, true);
      assert.equal(result.finished, true);
      assert.equal(result.generated.length, 2);
      assert.deepEqual(seen.slice(1), [result.generated]);
      off();
      const check = async (current: QueueStore): Promise<void> => {
        const [dsnId, noticeId] = result.generated;
        const dsn = current.getMessage(dsnId);
        assert.ok(dsn);
        assert.equal(dsn.origin, 'dsn');
        assert.equal(dsn.state, 'queued');
        assert.deepEqual(dsn.envelope, dsnEnvelope);
        assert.equal(dsn.nextAttemptAt, t0 + 10);
        const expected = Buffer.concat([head, original, tail]);
        assert.equal(dsn.size, expected.length);
        assert.ok((await collect(current.bodyChunks(dsnId))).equals(expected));
        assert.ok(current.readBody(dsnId).equals(expected));
        assert.equal(current.getMessage(noticeId)?.origin, 'postmaster-notice');
        assert.equal(current.getMessage(id)?.state, 'done');
      };
      await check(store);
      store = await subject.reopen();
      await check(store);
      assert.deepEqual(store.leaseDue('X', t0 + 10, 10, 1000).map((l) => l.id).sort(), [...result.generated].sort());
    });
  });

  test(`${name}: reports made together are each applied or refused on their own`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withStore(async ({ store }) => {
      const t0 = 1_700_000_000_000;
      const ids = await Promise.all([1, 2, 3].map((i) => storeMessage(store, Buffer.from(`m${i}`), sampleEnvelope({ receivedAt: t0 + i }))));
      const leases = store.leaseDue('W', t0 + 10, 10, 60_000);
      assert.equal(leases.length, 3);
      const [a, b, c] = await Promise.allSettled([
        store.recordDelivery({ lease: leases[0], recipients: [{ index: 0, state: 'delivered', lastReply: '250 ok', status: '2.0.0' }], attempts: [], generated: [] }),
        // Broken: a queued recipient needs its next attempt time.
        store.recordDelivery({ lease: leases[1], recipients: [{ index: 0, state: 'queued', lastReply: '450 later', status: '4.0.0' }], attempts: [], generated: [] }),
        store.recordDelivery({ lease: leases[2], recipients: [{ index: 0, state: 'bounced', lastReply: '550 no', status: '5.0.0' }], attempts: [], generated: [] }),
      ]);
      assert.equal(a.status, 'fulfilled');
      assert.equal(b.status, 'rejected');
      assert.ok(b.status === 'rejected' && isStoreError(b.reason));
      assert.equal(c.status, 'fulfilled');
      assert.deepEqual(ids.map((id) => store.getMessage(id)?.recipients[0].state), ['delivered', 'queued', 'bounced']);
      assert.equal(store.getMessage(ids[1])?.recipients[0].attempts, 0, 'the refused report left no trace');
    });
  });

  test(`${name}: tracking — a message's timeline runs from its session's events to its outcomes, in order, and searches find it`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withStore(async ({ store }) => {
      const t0 = 1_700_000_000_000;
      const heard: string[] = [];
      const unsubscribe = store.onTracked((events) => heard.push(...events.map((e) => e.kind)));
      store.recordEvents([
        { kind: 'connection', at: t0, sessionId: 'S1', outcome: 'accepted', reply: '220 mx.test ESMTP', detail: { client: '192.0.2.25' } },
        { kind: 'rcpt', at: t0, sessionId: 'S1', sender: 'sender@example.org', recipient: 'nobody@one.test', outcome: 'rejected', reply: '550 5.1.1 No such user' },
        { kind: 'rcpt', at: t0, sessionId: 'S1', sender: 'sender@example.org', recipient: 'a@one.test', outcome: 'accepted', reply: '250 2.1.5 Ok' },
      ]);
      const body = Buffer.from('Received: by mx.test\r\nMessage-ID: <abc.123@example.org>\r\nSubject: x\r\n\r\nbody\r\n');
      const id = await storeMessage(store, body, sampleEnvelope({
        sessionId: 'S1', receivedAt: t0, recipients: [rcpt('a@one.test'), rcpt('B@two.test')],
      }));
      // A second transaction of the same session: its RCPT events are not the first message's.
      store.recordEvents([{ kind: 'rcpt', at: t0, sessionId: 'S1', sender: 'sender@example.org', recipient: 'z@one.test', outcome: 'accepted', reply: '250 2.1.5 Ok' }]);
      await storeMessage(store, Buffer.from('Subject: y\r\n\r\n'), sampleEnvelope({ sessionId: 'S1', receivedAt: t0, recipients: [rcpt('z@one.test')] }));
      const lease = leaseOf(store, 'W', t0, id);
      await store.recordDelivery({
        lease,
        recipients: [
          { index: 0, state: 'delivered', lastReply: '250 2.0.0 Ok: queued as X', status: '2.0.0' },
          { index: 1, state: 'bounced', lastReply: '550 5.1.1 <B@two.test>: Recipient address rejected', status: '5.1.1' },
        ],
        attempts: [
          { at: t0 + 5, recipients: [0], nextHop: 'smtp:mx.one.test[127.0.0.2]:25', reply: '250 2.0.0 Ok: queued as X', outcome: 'delivered', status: '2.0.0' },
          { at: t0 + 5, recipients: [1], nextHop: 'smtp:mx.two.test[127.0.0.3]:25', reply: '550 5.1.1 <B@two.test>: Recipient address rejected', outcome: 'hard', status: '5.1.1' },
        ],
        generated: [{ envelope: sampleEnvelope({ sender: '', recipients: [rcpt('sender@example.org')], receivedAt: t0 + 5 }), origin: 'dsn', body: [Buffer.from('Subject: DSN\r\n\r\n')] }],
      });
      const timeline = store.messageEvents(id);
      assert.deepEqual(timeline.map((e) => [e.kind, e.recipient, e.outcome]), [
        ['connection', null, 'accepted'],
        ['rcpt', 'nobody@one.test', 'rejected'],
        ['rcpt', 'a@one.test', 'accepted'],
        ['accepted', null, 'accepted'],
        ['attempt', 'a@one.test', 'delivered'],
        ['attempt', 'B@two.test', 'hard'],
        ['delivered', 'a@one.test', 'delivered'],
        ['bounced', 'B@two.test', 'hard'],
        ['dsn', 'sender@example.org', null],
      ]);
      const accepted = timeline[3];
      assert.equal(accepted.queueId, id);
      assert.deepEqual([accepted.detail.size, accepted.detail.senderGroup, accepted.detail.policy, accepted.detail.messageId], [body.length, 'UNKNOWN', 'ACCEPTED', '<abc.123@example.org>']);
      assert.equal(timeline[5].nextHop, 'smtp:mx.two.test[127.0.0.3]:25');
      assert.equal(timeline[7].reply, '550 5.1.1 <B@two.test>: Recipient address rejected');
      assert.equal(timeline[7].code, 550);
      assert.equal(typeof timeline[8].detail.dsnId, 'string');

      assert.deepEqual(store.searchMessages({ messageId: 'abc.123@example.org' }), [id]);
      assert.deepEqual(store.searchMessages({ messageId: '<abc.123@example.org>' }), [id]);
      assert.deepEqual(store.searchMessages({ recipient: 'b@TWO.test' }), [id]);
      assert.deepEqual(store.searchMessages({ nextHop: '127.0.0.3' }), [id]);
      assert.deepEqual(store.searchMessages({ outcome: 'bounced' }), [id]);
      assert.equal(store.searchMessages({ sender: 'SENDER@example.org' }).length, 2);
      assert.deepEqual(store.searchMessages({ sender: 'sender@example.org', since: t0 + 1 }), []);
      assert.deepEqual(store.searchRefusals({ recipient: 'nobody@one.test' }).map((e) => e.reply), ['550 5.1.1 No such user']);

      const counts = store.trackingCounts(t0 - 60_000, 60_000);
      const total = (kind: string): number => counts.filter((c) => c.kind === kind).reduce((n, c) => n + c.count, 0);
      assert.deepEqual([total('accepted'), total('attempt'), total('bounced'), total('delivered')], [3, 2, 1, 1]);
      const [two] = store.bounceSummary(t0 - 1, 10);
      assert.deepEqual([two.domain, two.soft, two.hard, two.replies[0].reply], ['two.test', 0, 1, '550 5.1.1 <B@two.test>: Recipient address rejected']);
      assert.ok(heard.includes('accepted') && heard.includes('bounced') && heard.includes('rcpt'), heard.join());

      // Retention: everything older goes, finished messages with it; queued ones stay.
      const pruned = store.pruneTracking(t0 + 1_000);
      assert.ok(pruned.events >= 9);
      assert.equal(pruned.messages, 1);
      assert.equal(store.getMessage(id), null);
      unsubscribe();
    });
  });

  test(`${name}: administration — hold, release, retry, delete; a leased message is busy; each change is tracked`, { timeout: TEST_TIMEOUT_MS }, async () => {
    await withStore(async ({ store }) => {
      const t0 = 1_700_000_000_000;
      const id = await storeMessage(store, Buffer.from('Subject: x\r\n\r\n'), sampleEnvelope({ receivedAt: t0 }));
      const woken: string[] = [];
      store.onEnqueued((ids) => woken.push(...ids));
      assert.equal(store.holdMessage('nope', t0), 'not-found');
      assert.equal(store.holdMessage(id, t0 + 1), 'changed');
      assert.equal(store.getMessage(id)?.state, 'held');
      assert.deepEqual(store.leaseDue('W', t0 + 10, 10, 1000), [], 'a held message is never due');
      assert.equal(store.retryMessage(id, t0 + 2), 'wrong-state');
      assert.equal(store.releaseMessage(id, t0 + 3), 'changed');
      assert.equal(store.getMessage(id)?.nextAttemptAt, t0 + 3);
      const lease = store.leaseMessage(id, 'admin', t0 + 4, 60_000);
      assert.ok(lease);
      assert.equal(store.leaseMessage(id, 'other', t0 + 5, 60_000), null);
      assert.equal(store.deleteMessage(id, t0 + 5), 'busy');
      store.releaseLease(lease);
      assert.equal(store.retryMessage(id, t0 + 6), 'changed');
      assert.deepEqual(woken, [id, id]);
      assert.equal(store.deleteMessage(id, t0 + 7), 'changed');
      const m = store.getMessage(id);
      assert.deepEqual([m?.state, m?.recipients[0].state], ['done', 'deleted']);
      assert.equal(store.readBody(id).length, 0, 'the body is gone');
      assert.equal(store.deleteMessage(id, t0 + 8), 'wrong-state');
      assert.deepEqual(store.messageEvents(id).map((e) => e.kind), ['accepted', 'held', 'released', 'retry', 'deleted']);
    });
  });
}
