/**
 * The long soak: mixed load for `--duration-s` seconds, RSS and descriptors of the gateway
 * sampled every `--sample-ms`; prints the windows and the growth per 1000 messages.
 *   npx tsx bench/faults/soak.ts [--duration-s 600] [--concurrency 4] [--pause-ms 40] [--sample-ms 1000] [--csv FILE]
 */
import { writeFileSync } from 'node:fs';
import { runSoak, soakFlatness, type SoakReport } from '../../test/faults/soak-scenario.js';
import { benchMain } from './bench-main.js';

await benchMain('soak', { 'duration-s': 600, concurrency: 4, 'pause-ms': 40, 'sample-ms': 1000, csv: '', 'drain-timeout-ms': 300_000 },
  async (o, log) => {
    const r = await runSoak({
      seed: o.seed, durationMs: o['duration-s'] * 1000, concurrency: o.concurrency, pauseMs: o['pause-ms'], sampleEveryMs: o['sample-ms'],
      drainTimeoutMs: o['drain-timeout-ms'], log,
    });
    if (o.csv) writeFileSync(o.csv, `t_ms,rss_kib,fds\n${r.samples.map((s) => `${s.t},${s.rssKiB},${s.fds}`).join('\n')}\n`);
    return r;
  },
  (r, o) => [...(r as SoakReport).problems, ...soakFlatness(r as SoakReport, { concurrency: o.concurrency })]);
