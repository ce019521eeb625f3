/**
 * The store's disk fills up. The queue lives on a small tmpfs (mounted here: needs root),
 * sized each cycle so that a filler file of `fillerBytes` leaves only `headroomBytes` free. The
 * next hop refuses (421 at the greeting and at MAIL) so nothing leaves the queue, and the load goes on until the gateway answers 452 4.3.1. Then: the
 * queue database passes `PRAGMA integrity_check` and every message that got 250 is in it with
 * its body intact; the filler is deleted (space returns), new messages get 250 again, the next
 * hop takes mail again, and everything accepted is delivered. `cycles` repeats fill and recovery.
 * Used by test/faults/disk-full.test.ts and bench/faults/disk-full.ts.
 */
import { existsSync, mkdtempSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway, type TestGateway } from '../support/test-gateway.js';
import type { SinkAction } from '../support/sink-listener.js';
import {
  acceptedNumbers, accountFor, faultGatewayYaml, formatAccounting, loadMessage, mountTmpfs, queueSnapshot, RecordingSink, resizeTmpfs, startLoad, unmount, until,
  type Accounting, type LoadRun, type QueueSnapshot, type SendOutcome,
} from './fault-harness.js';

export interface DiskFullOptions {
  /** tmpfs size, e.g. "16m". */
  readonly tmpfsSize: string;
  /** Free space the filler leaves. */
  readonly headroomBytes: number;
  /** The filler: what deleting it gives back. */
  readonly fillerBytes: number;
  readonly messageSize: number;
  readonly concurrency: number;
  /** Fill-and-recover rounds. */
  readonly cycles: number;
  /** Messages sent after the space returned, per cycle (all must get 250). */
  readonly afterRecovery: number;
  readonly drainTimeoutMs: number;
  readonly log?: (line: string) => void;
}

export interface DiskFullCycle {
  /** Messages that got 250 before the disk was full. */
  readonly acceptedBeforeFull: number;
  /** Refusals while full, by stage and reply ("end of data 452 4.3.1" → n). */
  readonly refusals: Readonly<Record<string, number>>;
  /** Integrity check of the database while full. */
  readonly integrityWhileFull: string;
  /** Accepted messages missing from the queue, or whose stored body differs from what was sent. */
  readonly damaged: readonly string[];
  readonly acceptedAfterRecovery: number;
  readonly refusedAfterRecovery: readonly string[];
}

export interface DiskFullReport {
  readonly cycles: readonly DiskFullCycle[];
  readonly accounting: Accounting;
  readonly final: QueueSnapshot;
  /** Delivered bodies that differ from what was sent. */
  readonly corruptDeliveries: readonly string[];
  readonly elapsedMs: number;
  summary(): string;
}

/** null when a tmpfs cannot be mounted here (not root). */
export async function runDiskFull(o: DiskFullOptions): Promise<DiskFullReport | null> {
  const log = o.log ?? (() => undefined);
  const t0 = Date.now();
  const mnt = mkdtempSync(join(tmpdir(), 'postern-fault-disk-'));
  if (!mountTmpfs(mnt, o.tmpfsSize)) {
    rmSync(mnt, { recursive: true, force: true });
    return null;
  }
  // While the disk fills the next hop refuses, at the greeting and (on a connection kept from
  // before) at MAIL, so that nothing leaves the queue.
  let refuse = true;
  const notNow = (): SinkAction | undefined => (refuse ? { reply: '421 4.3.2 not now', close: true } : undefined);
  const sink = await new RecordingSink({ greeting: notNow, mail: notNow }).start();
  let gw: TestGateway | null = null;
  const filler = join(mnt, 'filler');
  try {
    gw = await startTestGateway(faultGatewayYaml({ relayPort: sink.port, leaseTime: '3s' }), { dir: mnt, delivery: true });
    const store = gw.gateway.store;
    const port = gw.port;
    const rcpt = (n: number): string => `k${n}@dst.test`;
    const message = (n: number) => loadMessage(n, 'load@src.test', rcpt(n), o.messageSize, 'disk');
    /** Every message's outcome, over all the runs (numbered on from one run to the next). */
    const outcomes = new Map<number, SendOutcome>();
    /** A load of `count` messages; with `stopAtRefusal` it ends at the first refusal. */
    let numbered = 0;
    const load = (count: number, stopAtRefusal: boolean): LoadRun => {
      const first = numbered;
      numbered += count;
      const run: LoadRun = startLoad({
        target: async () => port, count, first, concurrency: o.concurrency, perConnection: 3, message,
        onOutcome: (n, out) => {
          outcomes.set(n, out);
          if (stopAtRefusal && out.kind === 'refused') run.stop();
        },
      });
      return run;
    };
    const cycles: DiskFullCycle[] = [];
    for (let cycle = 0; cycle < o.cycles; cycle++) {
      refuse = true;
      // The fill of each cycle leaves the database larger (it grows into the headroom; the pages
      // of delivered messages are reused only up to its size), so that after a few cycles the
      // queue alone would fill the file system and deleting the filler would return nothing.
      // So each cycle the tmpfs is resized to what is used now + the filler + the headroom:
      // deleting the filler always returns `fillerBytes`.
      const used = (() => {
        const f = statfsSync(mnt);
        return (f.blocks - f.bfree) * f.bsize;
      })();
      resizeTmpfs(mnt, used + o.fillerBytes + o.headroomBytes);
      writeFileSync(filler, Buffer.alloc(o.fillerBytes));
      // Fill: until the first refusal (the store's disk is full). The database reuses the pages of
      // the messages delivered in earlier cycles before it grows, so the bound is the whole
      // file system (twice over), not the headroom.
      const { blocks, bsize } = statfsSync(mnt);
      const fill = load(Math.ceil((2 * blocks * bsize) / o.messageSize) + 20, true);
      await fill.done;
      const refusals: Record<string, number> = {};
      for (const out of fill.outcomes.values()) {
        if (out.kind === 'refused') {
          const key = `${out.stage} ${/^\d{3}(?: \d\.\d+\.\d+)?/.exec(out.reply)?.[0] ?? out.reply}`;
          refusals[key] = (refusals[key] ?? 0) + 1;
        }
      }
      // While full: the database is sound, and every message that got 250 is there, whole.
      const integrityWhileFull = queueSnapshot(join(mnt, 'queue'), { integrity: true }).integrity;
      const damaged: string[] = [];
      for (const [n, out] of fill.outcomes) {
        if (out.kind !== 'accepted') continue;
        const sent = Buffer.from(message(n).data);
        const m = store.getMessage(out.queueId);
        if (m === null) {
          damaged.push(`${out.queueId}: not in the queue`);
          continue;
        }
        if (m.state === 'done') continue; // delivered already (a previous cycle's sink took it)
        const body = store.readBody(out.queueId);
        if (!body.subarray(body.length - sent.length).equals(sent)) damaged.push(`${out.queueId}: body differs`);
      }
      log(`cycle ${cycle + 1}: ${diskUse(mnt)}`);
      log(`cycle ${cycle + 1}: full after ${fill.count('accepted')} accepted; refusals ${JSON.stringify(refusals)}; integrity ${integrityWhileFull}`);
      // Space returns; the next hop takes mail again.
      rmSync(filler);
      refuse = false;
      const after = load(o.afterRecovery, false);
      await after.done;
      const refusedAfterRecovery = [...after.outcomes.values()].filter((x) => x.kind !== 'accepted').map((x) => JSON.stringify(x));
      cycles.push({
        acceptedBeforeFull: fill.count('accepted'), refusals, integrityWhileFull, damaged,
        acceptedAfterRecovery: after.count('accepted'), refusedAfterRecovery,
      });
      const accepted = acceptedNumbers(outcomes).map(rcpt);
      await until('everything accepted to be delivered', () => accepted.every((r) => sink.delivered.has(r)) && store.counts().queued === 0,
        o.drainTimeoutMs, () => {
          const q = queueSnapshot(join(mnt, 'queue'), { integrity: false });
          return `${accepted.filter((r) => !sink.delivered.has(r)).length} not delivered, ${q.states.queued ?? 0} queued, ${q.leased} leased; ${diskUse(mnt)}`;
        });
    }
    await gw.stop();
    gw = null;
    const final = queueSnapshot(join(mnt, 'queue'));
    const accounting = accountFor(outcomes, rcpt, sink.delivered, (r) => ['bounced', 'expired'].includes(final.recipients.get(r) ?? ''));
    const corruptDeliveries: string[] = [];
    for (const [n, x] of outcomes) {
      if (x.kind !== 'accepted') continue;
      const got = sink.bodies.get(rcpt(n));
      const sent = Buffer.from(message(n).data);
      if (got && !got.subarray(got.length - sent.length).equals(sent)) corruptDeliveries.push(rcpt(n));
    }
    const elapsedMs = Date.now() - t0;
    return {
      cycles, accounting, final, corruptDeliveries, elapsedMs,
      summary: () => [
        `tmpfs=${o.tmpfsSize} (resized per cycle) filler=${o.fillerBytes} headroom=${o.headroomBytes} message size=${o.messageSize} cycles=${o.cycles} elapsed=${(elapsedMs / 1000).toFixed(1)}s`,
        ...cycles.map((c, i) => `cycle ${i + 1}: 250 before full=${c.acceptedBeforeFull} refusals=${JSON.stringify(c.refusals)} integrity while full=${c.integrityWhileFull} damaged=${c.damaged.length} 250 after space returned=${c.acceptedAfterRecovery}/${o.afterRecovery}`),
        formatAccounting(accounting),
        `delivered bodies that differ: ${corruptDeliveries.length}`,
        `queue at the end: ${JSON.stringify(final.states)} leased=${final.leased} dsns=${final.dsns} integrity=${final.integrity}`,
      ].join('\n'),
    };
  } finally {
    await gw?.stop().catch(() => undefined);
    await sink.stop();
    unmount(mnt);
    rmSync(mnt, { recursive: true, force: true });
  }
}

/** Sizes on the tmpfs: free space, the filler, the database and its WAL (MiB). */
function diskUse(mnt: string): string {
  const mib = (f: string): string => (existsSync(f) ? (statSync(f).size / 1024 ** 2).toFixed(1) : '-');
  const { bavail, bsize } = statfsSync(mnt);
  return `free ${((bavail * bsize) / 1024 ** 2).toFixed(1)} MiB, filler ${mib(join(mnt, 'filler'))}, queue.db ${mib(join(mnt, 'queue', 'queue.db'))}, wal ${mib(join(mnt, 'queue', 'queue.db-wal'))}`;
}
