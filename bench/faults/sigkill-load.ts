/**
 * SIGKILL at random moments during a load of thousands of messages, many rounds.
 *   npx tsx bench/faults/sigkill-load.ts [--messages 10000] [--rounds 10] [--concurrency 8]
 *     [--kill-min-ms 300] [--kill-max-ms 3000] [--lease-time 2s] [--size 1024] [--seed N]
 */
import { runSigkillLoad } from '../../test/faults/sigkill-scenario.js';
import { benchMain } from './bench-main.js';

await benchMain('sigkill-load', {
  messages: 10_000, rounds: 10, concurrency: 8, 'kill-min-ms': 300, 'kill-max-ms': 3000, 'lease-time': '2s', size: 1024,
  'drain-timeout-ms': 300_000,
}, (o, log) => runSigkillLoad({
  seed: o.seed, messages: o.messages, rounds: o.rounds, concurrency: o.concurrency, killAfterMs: [o['kill-min-ms'], o['kill-max-ms']],
  leaseTime: o['lease-time'], size: o.size, drainTimeoutMs: o['drain-timeout-ms'], log,
}));
