/**
 * The common frame of the bench/faults scripts: `--name value` options over defaults (numbers
 * where the default is a number), the seed printed first, the scenario's summary printed, and
 * exit code 1 when a message was lost, something is left queued or leased, the queue database is
 * not intact, or the scenario reports other problems.
 */
import { parseArgs } from 'node:util';
import { chooseSeed, type Accounting, type QueueSnapshot } from '../../test/faults/fault-harness.js';

export interface BenchReport {
  readonly accounting: Accounting;
  readonly final: QueueSnapshot;
  summary(): string;
}

type Options = Record<string, number | string>;

export async function benchMain<O extends Options>(
  name: string,
  defaults: O,
  run: (opts: O & { seed: number }, log: (line: string) => void) => Promise<BenchReport | null>,
  problems: (report: BenchReport, opts: O & { seed: number }) => string[] = () => [],
): Promise<void> {
  const { values } = parseArgs({
    options: Object.fromEntries([...Object.keys(defaults), 'seed'].map((k) => [k, { type: 'string' }])),
    strict: true,
  });
  const opts = { ...defaults } as Options;
  for (const [k, v] of Object.entries(values)) {
    if (typeof v !== 'string' || k === 'seed') continue;
    opts[k] = typeof defaults[k] === 'number' ? Number(v) : v;
  }
  const seed = values.seed !== undefined ? Number(values.seed) >>> 0 : chooseSeed();
  const started = new Date().toISOString();
  console.log(`${name} — ${started} — seed ${seed} (replay with --seed ${seed})`);
  console.log(`options: ${Object.entries(opts).map(([k, v]) => `--${k} ${v}`).join(' ')}`);
  const log = (line: string): void => console.log(`  ${line}`);
  const all = { ...(opts as O), seed };
  const report = await run(all, log);
  if (report === null) {
    console.log('skipped (see above)');
    return;
  }
  console.log(report.summary());
  const a = report.accounting;
  const bad = [
    ...(a.lost.length > 0 ? [`${a.lost.length} messages lost`] : []),
    ...(a.phantoms.length > 0 ? [`${a.phantoms.length} deliveries never sent`] : []),
    ...(report.final.leased > 0 ? [`${report.final.leased} leases left`] : []),
    ...((report.final.states.queued ?? 0) > 0 ? [`${report.final.states.queued} messages still queued`] : []),
    ...(report.final.integrity !== 'ok' ? [`integrity_check: ${report.final.integrity}`] : []),
    ...problems(report, all),
  ];
  console.log(bad.length === 0 ? 'PASS: nothing lost' : `FAIL: ${bad.join('; ')}`);
  process.exitCode = bad.length === 0 ? 0 : 1;
}
