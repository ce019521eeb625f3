/**
 * A next hop that drops connections and answers 421/451 at random, with more messages.
 *   npx tsx bench/faults/flapping-next-hop.ts [--messages 1000] [--concurrency 8] [--flap-rate 0.15] [--seed N]
 */
import { runFlappingNextHop, type FlappingReport } from '../../test/faults/flapping-scenario.js';
import { benchMain } from './bench-main.js';

await benchMain('flapping-next-hop', { messages: 1000, concurrency: 8, 'flap-rate': 0.15, 'drain-timeout-ms': 300_000 },
  (o) => runFlappingNextHop({ seed: o.seed, messages: o.messages, concurrency: o.concurrency, flapRate: o['flap-rate'], drainTimeoutMs: o['drain-timeout-ms'] }),
  (r) => (r as FlappingReport).retry.violations.map((v) => `off schedule: ${v}`));
