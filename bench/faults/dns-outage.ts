/**
 * The DNS server goes away for longer, under a longer load.
 *   npx tsx bench/faults/dns-outage.ts [--messages 2000] [--concurrency 4] [--pause-ms 10] [--outage-ms 15000]
 */
import { runDnsOutage, type DnsOutageReport } from '../../test/faults/dns-outage-scenario.js';
import { benchMain } from './bench-main.js';

await benchMain('dns-outage', { messages: 2000, concurrency: 4, 'pause-ms': 10, 'stop-at': 0.2, 'outage-ms': 15_000, 'min-deferred': 100, 'drain-timeout-ms': 300_000 },
  (o) => runDnsOutage({
    messages: o.messages, concurrency: o.concurrency, pauseMs: o['pause-ms'], stopAt: o['stop-at'], outageMs: o['outage-ms'],
    minDeferred: o['min-deferred'], drainTimeoutMs: o['drain-timeout-ms'],
  }),
  (r) => {
    const d = r as DnsOutageReport;
    return [
      ...(d.hardDuringOutage > 0 ? [`${d.hardDuringOutage} hard outcomes during the outage`] : []),
      ...(d.final.dsns > 0 ? [`${d.final.dsns} DSNs`] : []),
      ...(d.accounting.delivered !== d.accounting.accepted ? ['not everything delivered'] : []),
    ];
  });
