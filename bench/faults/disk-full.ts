/**
 * The store's disk fills up and empties again, many times (needs root for the tmpfs).
 *   npx tsx bench/faults/disk-full.ts [--cycles 10] [--tmpfs-size 64m] [--headroom-mib 8] [--filler-mib 16] [--size-kib 128] [--after-recovery 50]
 */
import { runDiskFull, type DiskFullReport } from '../../test/faults/disk-full-scenario.js';
import { benchMain } from './bench-main.js';

await benchMain('disk-full', { cycles: 10, 'tmpfs-size': '64m', 'headroom-mib': 8, 'filler-mib': 16, 'size-kib': 128, concurrency: 4, 'after-recovery': 50, 'drain-timeout-ms': 120_000 },
  async (o, log) => {
    const r = await runDiskFull({
      tmpfsSize: o['tmpfs-size'], headroomBytes: o['headroom-mib'] * 1024 ** 2, fillerBytes: o['filler-mib'] * 1024 ** 2, messageSize: o['size-kib'] * 1024, concurrency: o.concurrency,
      cycles: o.cycles, afterRecovery: o['after-recovery'], drainTimeoutMs: o['drain-timeout-ms'], log,
    });
    if (r === null) console.log('cannot mount a tmpfs here (needs root)');
    return r;
  },
  (r) => (r as DiskFullReport).cycles.flatMap((c, i) => [
    ...(Object.keys(c.refusals).some((k) => !k.endsWith(' 452 4.3.1')) ? [`cycle ${i + 1}: refusals other than 452 4.3.1: ${JSON.stringify(c.refusals)}`] : []),
    ...(Object.keys(c.refusals).length === 0 ? [`cycle ${i + 1}: the disk never filled`] : []),
    ...(c.integrityWhileFull !== 'ok' ? [`cycle ${i + 1}: integrity while full: ${c.integrityWhileFull}`] : []),
    ...c.damaged.map((d) => `cycle ${i + 1}: ${d}`),
    ...c.refusedAfterRecovery.map((d) => `cycle ${i + 1} after recovery: ${d}`),
  ]));
